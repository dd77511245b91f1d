import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EventGridEvent, HttpRequest, InvocationContext, type Timer } from '@azure/functions';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startLoad } from '../../adapters/local/load.js';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import type { SyncReport } from '../../core/sync.js';
import { FakeArm } from '../fakes/azure/fake-arm.js';
import { BOOT_CONFIG, LbVm } from '../fakes/lb-vm.js';
import { eventFixture } from '../helpers/fixtures.js';

// Ports 23000-23099 and workers on 127.0.23.11-60 belong to this file.
const ARM_PORT = 23000;
const FRONT = 23100;
// NodePorts must be 30000-32767; they listen only on this file's 127.0.23.x addresses.
const NODE_PORT = 30230;
const HEALTH = 23181;
const SUB = '00000000-0000-4000-8000-0000000000a4';
const UNIFORM = { resourceGroup: 'mc-weu', name: 'aks-system-vmss' } as const;
const FLEX = { resourceGroup: 'mc-apps', name: 'aks-apps-flex' } as const;
const fixture = (name: string): Record<string, unknown> => eventFixture('azure', name);

/** The `eventgrid` fixtures as the Functions host hands them to the handler. */
function gridEvent(name: string, patch: Record<string, unknown> = {}): EventGridEvent {
  return { ...fixture(name), ...patch } as unknown as EventGridEvent;
}

describe('Azure: scale set event -> function -> ARM fake -> Run Command -> HAProxy', () => {
  let dir: string;
  let arm: FakeArm;
  let lb1: LbVm;
  let lb2: LbVm;
  let fn: typeof import('../../functions/azure.js');
  const workers = new Map<string, WorkerServer>();
  const logs: unknown[][] = [];
  let ip = 10;

  const context = (name: string): InvocationContext =>
    new InvocationContext({
      invocationId: `t-${Math.random().toString(36).slice(2)}`,
      functionName: name,
      logHandler: (level, ...args) => logs.push([level, ...args]),
    });

  async function addWorker(
    ss: { readonly resourceGroup: string; readonly name: string },
    instanceId: string,
  ): Promise<string> {
    const address = `127.0.23.${++ip}`;
    const id = `${ss.name}_${instanceId}`;
    workers.set(
      id,
      await startWorkerServer({ id, address, ports: [NODE_PORT], healthPort: HEALTH }),
    );
    arm.addInstance(ss.resourceGroup, ss.name, { instanceId, ip: address, name: id });
    return id;
  }

  async function removeWorker(
    ss: { readonly resourceGroup: string; readonly name: string },
    instanceId: string,
  ): Promise<void> {
    const id = `${ss.name}_${instanceId}`;
    arm.removeInstance(ss.resourceGroup, ss.name, instanceId);
    await workers.get(id)?.close();
    workers.delete(id);
  }

  /** Requests through the LB frontend, by answering worker (bounded). */
  async function traffic(): Promise<Readonly<Record<string, number>>> {
    // Health checks (inter 1s, rise 1) need a moment to mark new servers up.
    const deadline = Date.now() + 8000;
    let last: Readonly<Record<string, number>> = {};
    while (Date.now() < deadline) {
      const load = startLoad({
        host: '127.0.0.1',
        port: FRONT,
        concurrency: 4,
        maxRequests: 120,
        maxMs: 3000,
      });
      const s = await load.done;
      last = s.byWorker;
      const expected = [...workers.keys()].sort();
      if (s.failed === 0 && JSON.stringify(Object.keys(last).sort()) === JSON.stringify(expected)) {
        return last;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    return last;
  }

  const runCommandCount = (): number => arm.runCommands().length;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-e2e-azure-'));
    arm = await FakeArm.start({ port: ARM_PORT, pageSize: 1 });
    arm.addScaleSet(SUB, UNIFORM.resourceGroup, UNIFORM.name, 'uniform');
    arm.addScaleSet(SUB, FLEX.resourceGroup, FLEX.name, 'flexible');
    [lb1, lb2] = await Promise.all([
      LbVm.start('lb-weu-1', join(dir, 'lb-weu-1'), BOOT_CONFIG),
      LbVm.start('lb-vmss-0', join(dir, 'lb-vmss-0'), BOOT_CONFIG),
    ]);
    arm.addLbVm({ subscriptionId: SUB, resourceGroup: 'rg-edge', name: 'lb-weu-1', vm: lb1 });
    arm.addLbVm({
      subscriptionId: SUB,
      resourceGroup: 'rg-edge',
      name: '0',
      scaleSet: 'lb-vmss',
      instanceId: '0',
      vm: lb2,
    });
    await addWorker(UNIFORM, '0');
    await addWorker(UNIFORM, '1');
    await addWorker(FLEX, 'a1b2c3d4');

    const spec = {
      name: 'e2e-azure',
      cloud: 'azure',
      workers: {
        azure: {
          subscriptionId: SUB,
          scaleSets: [
            { ...UNIFORM, orchestration: 'uniform' },
            { ...FLEX, orchestration: 'flexible' },
          ],
        },
      },
      loadBalancers: {
        azure: {
          vms: [
            { resourceGroup: 'rg-edge', name: 'lb-weu-1' },
            { resourceGroup: 'rg-edge', name: '0', scaleSet: 'lb-vmss' },
          ],
        },
      },
      services: [{ name: 'http', bind: `127.0.0.1:${FRONT}`, nodePort: NODE_PORT }],
      healthCheck: { port: HEALTH, interval: '1s', rise: 1, fall: 1 },
      guards: { minWorkers: 1, maxRemovalPercent: 60 },
      drain: { seconds: 0 },
      // The machine's FD limit (20,000) is below the web profile's maxconn.
      tuning: { maxconn: 4000 },
    };
    Object.assign(process.env, {
      LBSYNC_SPEC: JSON.stringify(spec),
      LBSYNC_AZURE_ENDPOINT: arm.url,
      LBSYNC_AZURE_CA_FILE: arm.caFile,
      LBSYNC_AZURE_ACCESS_TOKEN: 'fake-token',
      LBSYNC_AZURE_POLL_MS: '25',
      LBSYNC_AZURE_BUSY_BACKOFF_MS: '200',
      LBSYNC_AZURE_SETTLE_INTERVAL_MS: '300',
      LBSYNC_AZURE_SETTLE_CHECKS: '10',
      LBSYNC_LOG_LEVEL: 'warn',
    });
    fn = await import('../../functions/azure.js');
  });

  afterAll(async () => {
    await arm?.stop();
    await Promise.all([lb1?.stop(), lb2?.stop()]);
    await Promise.all([...workers.values()].map((w) => w.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    logs.length = 0;
  });

  it('a scale set write event puts every serving worker of both orchestrations behind both LBs', async () => {
    // Act
    await fn.onEventGrid(gridEvent('vmss-write-success.json'), context('lbsyncEvents'));

    // Assess
    const seen = await traffic();
    expect(Object.keys(seen).sort()).toEqual([
      'aks-apps-flex_a1b2c3d4',
      'aks-system-vmss_0',
      'aks-system-vmss_1',
    ]);
    for (const vm of [lb1, lb2]) {
      const cfg = readFileSync(vm.configPath, 'utf8');
      expect(cfg).toContain('server aks-system-vmss_0 ');
      expect(cfg).toContain('server aks-apps-flex_a1b2c3d4 ');
    }
    // Both the standalone VM and the scale set instance got exactly one Run
    // Command: one round trip per sync, the LB plans against its live config.
    expect(arm.runCommands('/virtualmachines/lb-weu-1/')).toHaveLength(1);
    expect(arm.runCommands('/virtualmachinescalesets/lb-vmss/virtualmachines/0/')).toHaveLength(1);
    // Paging: with 1 item a page, the lists followed nextLink.
    expect(arm.requests.some((r) => r.query.includes('skiptoken'))).toBe(true);
  });

  it('logs one structured line per stage with cloud, group, lb and generation', async () => {
    // Act
    await fn.onEventGrid(gridEvent('vmss-write-success.json'), context('lbsyncEvents'));

    // Assess
    const lines = logs.map(([, line]) => JSON.parse(String(line)) as Record<string, unknown>);
    const stages = lines.map((l) => l.stage);
    for (const stage of ['trigger', 'resolve', 'render', 'plan', 'report']) {
      expect(stages).toContain(stage);
    }
    const plan = lines.find((l) => l.stage === 'plan');
    expect(plan).toMatchObject({
      cloud: 'azure',
      group: 'mc-weu/aks-system-vmss',
      eventId: '4db48cba-50a2-455a-93b4-de41a3b5b7f6',
    });
    expect(typeof plan?.generation).toBe('number');
    expect(['lb-weu-1', 'lb-vmss_0']).toContain(plan?.lb);
  });

  it('scale out (Uniform): a new instance serves after the write event', async () => {
    // Prepare
    await addWorker(UNIFORM, '2');

    // Act
    await fn.onEventGrid(gridEvent('vmss-write-success.json'), context('lbsyncEvents'));

    // Assess
    expect(Object.keys(await traffic())).toContain('aks-system-vmss_2');
  });

  it('scale out (Flexible): a new VM serves after its VM write event', async () => {
    // Prepare
    await addWorker(FLEX, 'e5f6a7b8');

    // Act
    await fn.onEventGrid(gridEvent('flex-vm-write-success.json'), context('lbsyncEvents'));

    // Assess
    expect(Object.keys(await traffic())).toContain('aks-apps-flex_e5f6a7b8');
  });

  it('scale in (Uniform and Flexible): removed instances stop getting traffic', async () => {
    // Prepare
    await removeWorker(UNIFORM, '2');
    await removeWorker(FLEX, 'e5f6a7b8');

    // Act
    await fn.onEventGrid(gridEvent('vmss-vm-delete-success.json'), context('lbsyncEvents'));

    // Assess
    const seen = await traffic();
    expect(Object.keys(seen)).not.toContain('aks-system-vmss_2');
    expect(Object.keys(seen)).not.toContain('aks-apps-flex_e5f6a7b8');
    expect(readFileSync(lb1.configPath, 'utf8')).not.toContain('aks-apps-flex_e5f6a7b8');
  });

  it('only running, successfully provisioned instances serve', async () => {
    // Prepare
    await addWorker(UNIFORM, '5');
    arm.updateInstance(UNIFORM.resourceGroup, UNIFORM.name, '5', { provisioningState: 'Creating' });
    await addWorker(UNIFORM, '6');
    arm.updateInstance(UNIFORM.resourceGroup, UNIFORM.name, '6', { power: 'deallocated' });

    // Act
    await fn.onEventGrid(gridEvent('vmss-write-success.json'), context('lbsyncEvents'));

    // Assess
    const cfg = readFileSync(lb1.configPath, 'utf8');
    expect(cfg).not.toContain('aks-system-vmss_5');
    expect(cfg).not.toContain('aks-system-vmss_6');
    await removeWorker(UNIFORM, '5');
    await removeWorker(UNIFORM, '6');
  });

  it('a duplicate event changes nothing and does not reload HAProxy', async () => {
    // Prepare
    const event = gridEvent('vmss-write-success.json');
    await fn.onEventGrid(event, context('lbsyncEvents'));
    const reloads = await Promise.all([lb1.reloadCount(), lb2.reloadCount()]);
    const before = runCommandCount();
    logs.length = 0;

    // Act
    await fn.onEventGrid(event, context('lbsyncEvents'));

    // Assess
    expect(await Promise.all([lb1.reloadCount(), lb2.reloadCount()])).toEqual(reloads);
    // One command per LB (no status probe first); the apply script answered
    // "unchanged" and recorded the newer generation.
    expect(runCommandCount() - before).toBe(2);
    const lines = logs.map(([, l]) => JSON.parse(String(l)) as Record<string, unknown>);
    const pushes = lines.filter((l) => l.stage === 'push').map((l) => l.result);
    expect(pushes).toEqual(['unchanged', 'unchanged']);
  });

  it('an out-of-order (older) event still converges on the current membership', async () => {
    // Prepare: a delete event from before the latest scale out arrives late.
    const id = await addWorker(UNIFORM, '7');
    await fn.onEventGrid(gridEvent('vmss-write-success.json'), context('lbsyncEvents'));

    // Act
    await fn.onEventGrid(
      gridEvent('vmss-vm-delete-success.json', { eventTime: '2026-11-23T15:00:00Z' }),
      context('lbsyncEvents'),
    );

    // Assess: the late delete is only a trigger; the worker that exists stays.
    expect(readFileSync(lb1.configPath, 'utf8')).toContain(`server ${id} `);
    expect(Object.keys(await traffic())).toContain(id);
  });

  it.each([
    ['storage-write-success.json', 'a resource that is not a scale set'],
    ['vmss-write-failure.json', 'a failed write'],
    ['lb-vm-runcommand-action.json', "the LB VM's own Run Command"],
  ])('ignores %s (%s) without calling ARM', async (file) => {
    // Prepare
    const before = arm.requests.length;

    // Act
    await fn.onEventGrid(gridEvent(file), context('lbsyncEvents'));

    // Assess
    expect(arm.requests.length).toBe(before);
    const line = JSON.parse(String(logs[0]?.[1])) as Record<string, unknown>;
    expect(line).toMatchObject({ stage: 'trigger', verdict: 'ignore' });
  });

  it('one LB failing does not block the other, and the invocation fails for a retry', async () => {
    // Prepare
    const id = await addWorker(UNIFORM, '8');
    arm.failRunCommands('rg-edge', '0', 1);

    // Act
    const run = fn.onEventGrid(gridEvent('vmss-write-success.json'), context('lbsyncEvents'));

    // Assess
    await expect(run).rejects.toMatchObject({ name: 'SyncFailedError', retryable: true });
    expect(readFileSync(lb1.configPath, 'utf8')).toContain(`server ${id} `);
    expect(readFileSync(lb2.configPath, 'utf8')).not.toContain(`server ${id} `);
    // The retry Event Grid makes heals the failed LB.
    await fn.onEventGrid(gridEvent('vmss-write-success.json'), context('lbsyncEvents'));
    expect(readFileSync(lb2.configPath, 'utf8')).toContain(`server ${id} `);
  });

  it('waits and retries while the LB VM runs another command (409 Conflict)', async () => {
    // Prepare
    const id = await addWorker(UNIFORM, '9');
    arm.makeBusy('rg-edge', 'lb-weu-1', 700);

    // Act
    await fn.onEventGrid(gridEvent('vmss-write-success.json'), context('lbsyncEvents'));

    // Assess
    expect(readFileSync(lb1.configPath, 'utf8')).toContain(`server ${id} `);
    const conflicts = arm.requests.filter((r) => r.status === 409);
    expect(conflicts.length).toBeGreaterThanOrEqual(1);
    // The same VM's command was accepted after the conflict.
    const lastConflict = conflicts[conflicts.length - 1];
    const accepted = arm
      .runCommands('/virtualmachines/lb-weu-1/')
      .filter((r) => r.at > (lastConflict?.at ?? 0));
    expect(accepted.length).toBeGreaterThanOrEqual(1);
  });

  it('honours 429 Retry-After from ARM and still converges', async () => {
    // Prepare
    const id = await addWorker(UNIFORM, '10');
    arm.fault({
      method: 'POST',
      path: /lb-weu-1\/runcommand$/,
      status: 429,
      times: 1,
      retryAfterSeconds: 1,
    });

    // Act
    await fn.onEventGrid(gridEvent('vmss-write-success.json'), context('lbsyncEvents'));

    // Assess
    const throttled = arm.requests.findIndex((r) => r.status === 429);
    expect(throttled).toBeGreaterThanOrEqual(0);
    const retry = arm.requests
      .slice(throttled + 1)
      .find((r) => r.method === 'POST' && r.path.endsWith('lb-weu-1/runcommand'));
    expect((retry?.at ?? 0) - (arm.requests[throttled]?.at ?? 0)).toBeGreaterThanOrEqual(900);
    expect(readFileSync(lb1.configPath, 'utf8')).toContain(`server ${id} `);
  });

  it('a throttled worker listing that outlasts the SDK retries fails the invocation as retryable', async () => {
    // Prepare
    arm.fault({
      method: 'GET',
      path: /aks-system-vmss\/virtualmachines$/,
      status: 429,
      times: 4,
      retryAfterSeconds: 0,
    });

    // Act
    const run = fn.onEventGrid(gridEvent('vmss-write-success.json'), context('lbsyncEvents'));

    // Assess
    // Every cloud's function throws the same SyncFailedError for a retry; the
    // run's result inside says which error ended it.
    await expect(run).rejects.toMatchObject({
      name: 'SyncFailedError',
      retryable: true,
      result: { outcome: 'failed', error: { type: 'SourceError', retryable: true } },
    });
  });

  it('manual resync over HTTP answers per-LB results; dryRun pushes nothing', async () => {
    // Prepare
    await addWorker(UNIFORM, '11');
    const before = runCommandCount();
    const request = (body: unknown): HttpRequest =>
      new HttpRequest({
        method: 'POST',
        url: 'http://localhost/api/lbsync',
        body: { string: JSON.stringify(body) },
      });

    // Act
    const dry = await fn.onHttp(request({ lbsync: 'resync', dryRun: true }), context('lbsync'));
    const afterDry = runCommandCount();
    const real = await fn.onHttp(request({ lbsync: 'resync' }), context('lbsync'));
    const bad = await fn.onHttp(request({ lbsync: 'resync', force: 'yes' }), context('lbsync'));

    // Assess
    expect(dry.status).toBe(200);
    const dryReport = dry.jsonBody as SyncReport;
    expect(dryReport.dryRun).toBe(true);
    expect(dryReport.results.map((r) => r.outcome)).toEqual(['planned', 'planned']);
    expect(afterDry - before).toBe(2); // status only
    expect(real.status).toBe(200);
    const report = real.jsonBody as SyncReport;
    expect(report.results.map((r) => [r.lb, r.outcome])).toEqual([
      ['lb-vmss_0', 'applied'],
      ['lb-weu-1', 'applied'],
    ]);
    expect(bad.status).toBe(400);
  });

  it('the timer resync heals a change no event announced', async () => {
    // Prepare
    const id = await addWorker(FLEX, 'c0ffee01');

    // Act
    await fn.onTimer({ isPastDue: false } as unknown as Timer, context('lbsyncSchedule'));

    // Assess
    expect(readFileSync(lb2.configPath, 'utf8')).toContain(`server ${id} `);
  });

  it('an Event Grid event delivered through a Storage queue (JSON text) syncs the same way', async () => {
    // Prepare
    const id = await addWorker(UNIFORM, '12');

    // Act
    await fn.onQueuedEvent(
      JSON.stringify(fixture('vmss-write-success.json')),
      context('lbsyncQueuedEvents'),
    );

    // Assess
    expect(readFileSync(lb1.configPath, 'utf8')).toContain(`server ${id} `);
  });

  it('events in the CloudEvents 1.0 schema (type, source) scale out and in the same way', async () => {
    // Prepare: a subscription may deliver either schema; the handler reads both.
    const id = await addWorker(UNIFORM, '13');

    // Act
    await fn.onEventGrid(gridEvent('cloudevents-vmss-write-success.json'), context('lbsyncEvents'));

    // Assess
    expect(readFileSync(lb1.configPath, 'utf8')).toContain(`server ${id} `);
    expect(Object.keys(await traffic())).toContain(id);

    // Act: scale in, announced as a CloudEvent batch through the queue.
    await removeWorker(UNIFORM, '13');
    await fn.onQueuedEvent(
      JSON.stringify([fixture('cloudevents-vmss-vm-delete-success.json')]),
      context('lbsyncQueuedEvents'),
    );

    // Assess
    expect(readFileSync(lb1.configPath, 'utf8')).not.toContain(`server ${id} `);
    expect(Object.keys(await traffic())).not.toContain(id);
  });

  it.each([
    'cloudevents-storage-write-success.json',
    'cloudevents-vmss-write-failure.json',
    'cloudevents-lb-vm-runcommand-action.json',
  ])('ignores %s without calling ARM, like its Event Grid schema twin', async (file) => {
    // Prepare
    const before = arm.requests.length;

    // Act
    await fn.onEventGrid(gridEvent(file), context('lbsyncEvents'));

    // Assess
    expect(arm.requests.length).toBe(before);
    const line = JSON.parse(String(logs[0]?.[1])) as Record<string, unknown>;
    expect(line).toMatchObject({ stage: 'trigger', verdict: 'ignore' });
  });

  it('the autoscale webhook (fired when scaling starts) re-syncs until the new instances serve', async () => {
    // Prepare: the scale set is at 7 serving instances; autoscale starts 7 -> 9.
    const serving = (): number =>
      Object.keys(Object.fromEntries(workers)).filter((k) => k.startsWith(`${UNIFORM.name}_`))
        .length;
    const body = fixture('autoscale-scale-out.json');
    const ctxBody = body.context as Record<string, unknown>;
    Object.assign(ctxBody, { oldCapacity: String(serving()), newCapacity: String(serving() + 2) });
    // The new VMs appear only after the webhook has been answered... started.
    const late = new Promise<void>((resolve) =>
      setTimeout(() => {
        void Promise.all([addWorker(UNIFORM, '20'), addWorker(UNIFORM, '21')]).then(() =>
          resolve(),
        );
      }, 500),
    );

    // Act
    const res = await fn.onHttp(
      new HttpRequest({
        method: 'POST',
        url: 'http://localhost/api/lbsync?code=key',
        body: { string: JSON.stringify(body) },
      }),
      context('lbsync'),
    );
    await late;

    // Assess
    expect(res.status).toBe(200);
    const out = res.jsonBody as { ok: boolean; syncs: number; reports: SyncReport[] };
    expect(out.ok).toBe(true);
    expect(out.syncs).toBeGreaterThanOrEqual(2);
    expect(readFileSync(lb1.configPath, 'utf8')).toContain('server aks-system-vmss_21 ');
    expect(Object.keys(await traffic())).toContain('aks-system-vmss_20');
  });

  it('ignores an autoscale notification for a scale set not in the spec', async () => {
    // Prepare
    const body = fixture('autoscale-scale-in.json');
    Object.assign(body.context as Record<string, unknown>, { resourceName: 'other-vmss' });
    const before = arm.requests.length;

    // Act
    const res = await fn.onHttp(
      new HttpRequest({
        method: 'POST',
        url: 'http://localhost/api/lbsync',
        body: { string: JSON.stringify(body) },
      }),
      context('lbsync'),
    );

    // Assess
    expect(res.status).toBe(200);
    expect(res.jsonBody).toMatchObject({ ignored: expect.stringContaining('not configured') });
    expect(arm.requests.length).toBe(before);
  });
});
