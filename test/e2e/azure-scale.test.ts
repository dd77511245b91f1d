import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EventGridEvent, HttpRequest, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoad } from '../../adapters/local/load.js';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import type { SyncReport } from '../../core/sync.js';
import { FakeArm } from '../fakes/azure/fake-arm.js';
import { BOOT_CONFIG, LbVm } from '../fakes/lb-vm.js';

// Ports 23001 and 23200-23299 and workers on 127.0.23.100-119 belong to this
// file. NodePorts must be 30000-32767; they listen only on those addresses.
const ARM_PORT = 23001;
const FRONT = 23200;
const NODE_PORT = 30300;
const SERVICES = 10;
const HOSTS = 20;
const SUB = '00000000-0000-4000-8000-0000000000a4';
const host = (i: number): string => `127.0.23.${100 + (i % HOSTS)}`;

describe('Azure at scale: 2,000 workers x 10 services through a staged payload', () => {
  let dir: string;
  let arm: FakeArm;
  let lb: LbVm;
  let fn: typeof import('../../functions/azure.js');
  const servers: WorkerServer[] = [];
  const ports = Array.from({ length: SERVICES }, (_, i) => NODE_PORT + i);

  const context = (): InvocationContext =>
    new InvocationContext({ invocationId: 'scale', functionName: 'lbsync', logHandler: () => {} });
  const resync = async (): Promise<SyncReport> => {
    const res = await fn.onHttp(
      new HttpRequest({
        method: 'POST',
        url: 'http://localhost/api/lbsync',
        body: { string: JSON.stringify({ lbsync: 'resync' }) },
      }),
      context(),
    );
    return res.jsonBody as SyncReport;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-e2e-azure-scale-'));
    arm = await FakeArm.start({ port: ARM_PORT, pageSize: 1000 });
    // 2,000 workers: 1,200 in a Uniform and 800 in a Flexible scale set, in
    // two resource groups; 100 worker ids share each of 20 real listeners.
    arm.addScaleSet(SUB, 'mc-big', 'aks-big-vmss', 'uniform');
    arm.addScaleSet(SUB, 'mc-flex', 'aks-big-flex', 'flexible');
    for (let i = 0; i < 2000; i++) {
      if (i < 1200)
        arm.addInstance('mc-big', 'aks-big-vmss', { instanceId: String(i), ip: host(i) });
      else
        arm.addInstance('mc-flex', 'aks-big-flex', {
          instanceId: (0x10000000 + i).toString(16),
          ip: host(i),
        });
    }
    for (let h = 0; h < HOSTS; h++) {
      servers.push(await startWorkerServer({ id: host(h), address: host(h), ports }));
    }
    lb = await LbVm.start('lb-big', join(dir, 'lb-big'), BOOT_CONFIG);
    arm.addLbVm({ subscriptionId: SUB, resourceGroup: 'rg-edge', name: 'lb-big', vm: lb });
    const spec = {
      name: 'e2e-azure-scale',
      cloud: 'azure',
      workers: {
        azure: {
          subscriptionId: SUB,
          scaleSets: [
            { resourceGroup: 'mc-big', name: 'aks-big-vmss', orchestration: 'uniform' },
            { resourceGroup: 'mc-flex', name: 'aks-big-flex', orchestration: 'flexible' },
          ],
        },
      },
      loadBalancers: {
        azure: {
          vms: [{ resourceGroup: 'rg-edge', name: 'lb-big' }],
          staging: { containerUrl: `${arm.storageAccountUrl}/lbsync`, sasMinutes: 5 },
        },
      },
      services: ports.map((p, i) => ({
        name: `svc${i}`,
        bind: `127.0.0.1:${FRONT + i}`,
        nodePort: p,
      })),
      // 20,000 health-checked servers would flood this 2-core machine; traffic proves reachability.
      healthCheck: { enabled: false },
      guards: { minWorkers: 1, maxRemovalPercent: 50 },
      drain: { seconds: 0 },
      tuning: { maxconn: 4000 },
    };
    Object.assign(process.env, {
      LBSYNC_SPEC: JSON.stringify(spec),
      LBSYNC_AZURE_ENDPOINT: arm.url,
      LBSYNC_AZURE_CA_FILE: arm.caFile,
      LBSYNC_AZURE_ACCESS_TOKEN: 'fake-token',
      LBSYNC_AZURE_POLL_MS: '50',
      LBSYNC_LOG_LEVEL: 'warn',
    });
    fn = await import('../../functions/azure.js');
  });

  afterAll(async () => {
    await arm?.stop();
    await lb?.stop();
    await Promise.all(servers.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a tampered staged download on the LB (sha256 checked there)', async () => {
    // Prepare
    arm.tamperBlobReads = true;

    // Act
    const report = await resync();
    arm.tamperBlobReads = false;

    // Assess
    expect(report.results[0]?.outcome).toBe('invalid');
    expect(readFileSync(lb.configPath, 'utf8')).toBe(BOOT_CONFIG);
  });

  it('an event brings all 20,000 servers to the LB via a blob with a read-only SAS', async () => {
    // Act
    await fn.onEventGrid(
      {
        id: 'scale-1',
        subject: `/subscriptions/${SUB}/resourceGroups/mc-big/providers/Microsoft.Compute/virtualMachineScaleSets/aks-big-vmss`,
        eventType: 'Microsoft.Resources.ResourceWriteSuccess',
        eventTime: new Date().toISOString(),
        data: { operationName: 'Microsoft.Compute/virtualMachineScaleSets/write' },
        dataVersion: '2',
        metadataVersion: '1',
        topic: `/subscriptions/${SUB}`,
      } as unknown as EventGridEvent,
      context(),
    );

    // Assess: the config is live with every server, and came by blob.
    const cfg = readFileSync(lb.configPath, 'utf8');
    expect(cfg.match(/^\s+server /gm)?.length).toBe(20_000);
    expect(cfg).toContain('server aks-big-vmss_1199 ');
    expect(cfg).toContain(`server aks-big-flex_${(0x10000000 + 1999).toString(16)} `);
    expect(arm.blobs.size).toBeGreaterThanOrEqual(1);
    const applied = arm.runCommands('/lb-big/').at(-1);
    expect(applied?.scriptBytes).toBeLessThan(64 * 1024);
    const downloads = arm.requests.filter(
      (r) => r.method === 'GET' && r.path.startsWith('/lbsyncstage/'),
    );
    expect(downloads.at(-1)?.query).toMatch(/sp=r/);
    expect(downloads.at(-1)?.status).toBe(200);

    // Traffic through every service reaches every real listener.
    for (let i = 0; i < SERVICES; i++) {
      const s = await startLoad({
        host: '127.0.0.1',
        port: FRONT + i,
        concurrency: 4,
        maxRequests: 200,
        maxMs: 8000,
      }).done;
      expect(s.failed).toBe(0);
      expect(Object.keys(s.byWorker).length).toBe(HOSTS);
    }
  });

  it('a resync of the same 2,000 workers reports unchanged', async () => {
    // Act
    const report = await resync();

    // Assess
    expect(report.servers).toBe(20_000);
    expect(report.results.map((r) => r.outcome)).toEqual(['unchanged']);
  });
});
