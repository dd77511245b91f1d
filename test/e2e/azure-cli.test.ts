import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import { parseSpec, type Spec } from '../../adapters/spec.js';
import { statusOf } from '../../cli/lb-status.js';
import type { SyncReport } from '../../core/sync.js';
import { FakeArm } from '../fakes/azure/fake-arm.js';
import { BOOT_CONFIG, LbVm } from '../fakes/lb-vm.js';

// Ports 23003-23004 and 23400-23499, workers on 127.0.23.70-79 belong to this
// file. NodePorts must be 30000-32767; they listen only on those addresses.
const SUB = '00000000-0000-4000-8000-0000000000a4';
const KEY = 'function-key-for-tests';

describe('lbsync resync/status --cloud azure', () => {
  let dir: string;
  let arm: FakeArm;
  let lb: LbVm;
  let host: Server;
  let spec: Spec;
  let cli: typeof import('../../cli/azure.js');
  const workers: WorkerServer[] = [];
  const url = 'http://127.0.0.1:23004/api/lbsync';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-e2e-azure-cli-'));
    arm = await FakeArm.start({ port: 23003 });
    arm.addScaleSet(SUB, 'mc-cli', 'cli-vmss', 'uniform');
    for (let i = 0; i < 3; i++) {
      const address = `127.0.23.${70 + i}`;
      arm.addInstance('mc-cli', 'cli-vmss', { instanceId: String(i), ip: address });
      workers.push(await startWorkerServer({ id: `cli-vmss_${i}`, address, ports: [30400] }));
    }
    lb = await LbVm.start('lb-cli', join(dir, 'lb-cli'), BOOT_CONFIG);
    arm.addLbVm({ subscriptionId: SUB, resourceGroup: 'rg-edge', name: 'lb-cli', vm: lb });
    const yaml = `
name: e2e-azure-cli
cloud: azure
workers:
  azure:
    subscriptionId: ${SUB}
    scaleSets: [{ resourceGroup: mc-cli, name: cli-vmss }]
loadBalancers:
  azure:
    vms: [{ resourceGroup: rg-edge, name: lb-cli }]
services: [{ name: http, bind: "127.0.0.1:23400", nodePort: 30400 }]
healthCheck: { enabled: false }
drain: { seconds: 0 }
tuning: { maxconn: 4000 }
`;
    spec = parseSpec(yaml);
    Object.assign(process.env, {
      LBSYNC_SPEC: yaml,
      LBSYNC_AZURE_ENDPOINT: arm.url,
      LBSYNC_AZURE_CA_FILE: arm.caFile,
      LBSYNC_AZURE_ACCESS_TOKEN: 'fake-token',
      LBSYNC_AZURE_POLL_MS: '25',
      LBSYNC_LOG_LEVEL: 'warn',
    });
    const fn = await import('../../functions/azure.js');
    cli = await import('../../cli/azure.js');
    // A stand-in for the Functions host: function-key auth, then the registered handler.
    host = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      if (req.headers['x-functions-key'] !== KEY) {
        res.writeHead(401).end();
        return;
      }
      const out = await fn.onHttp(
        new HttpRequest({
          method: 'POST',
          url: `http://127.0.0.1:23004${req.url}`,
          body: { string: Buffer.concat(chunks).toString('utf8') },
        }),
        new InvocationContext({ functionName: 'lbsync', logHandler: () => {} }),
      );
      res.writeHead(out.status ?? 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(out.jsonBody));
    });
    await new Promise<void>((r) => host.listen(23004, '127.0.0.1', () => r()));
  });

  afterAll(async () => {
    await new Promise<void>((r) => (host ? host.close(() => r()) : r()));
    await arm?.stop();
    await lb?.stop();
    await Promise.all(workers.map((w) => w.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('resync posts to the function with its key and returns the per-LB report', async () => {
    // Act
    const report = (await cli.resyncAzure({ url, key: KEY })) as SyncReport;

    // Assess
    expect(report.results).toMatchObject([{ lb: 'lb-cli', outcome: 'applied', ok: true }]);
    expect(report.servers).toBe(3);
  });

  it('status reads generation, sha256 and servers from every LB with Run Command', async () => {
    // Prepare
    const report = (await cli.resyncAzure({ url, key: KEY, dryRun: true })) as SyncReport;

    // Act
    const rows = await statusOf(spec, { tuning: { azure: { pollMs: 25 } } });

    // Assess
    expect(rows).toEqual([
      { lb: 'lb-cli', generation: expect.any(Number), sha256: report.sha256, servers: 3 },
    ]);
  });

  it('names the missing key when the function answers 401', async () => {
    await expect(cli.resyncAzure({ url, key: 'wrong' })).rejects.toThrow(/function key/);
  });
});
