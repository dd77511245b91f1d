import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HaproxyProcess } from '../../adapters/local/haproxy.js';
import { type LoadLoop, startLoad } from '../../adapters/local/load.js';
import { SimulatedGroup } from '../../adapters/local/source.js';
import { LocalTransport } from '../../adapters/local/transport.js';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import { validateSpec } from '../../adapters/spec.js';
import { memoryLogger } from '../../core/log.js';
import { compileTemplate, loadTemplate } from '../../core/render.js';
import { runSync, type SyncDeps } from '../../core/sync.js';

// Ports 25000-25099 and workers on 127.0.25.x belong to this file.
const FRONT = 25001;
const NODE_PORT = 30250;
const HEALTH = 10256;
const addr = (n: number): string => `127.0.25.${n}`;

const BOOT =
  'global\n    log stdout format raw local0 notice\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n';

describe('the pipeline end to end on a real HAProxy', () => {
  let dir: string;
  let haproxy: HaproxyProcess;
  let deps: SyncDeps;
  let group: SimulatedGroup;
  let load: LoadLoop;
  const servers = new Map<string, WorkerServer>();
  const logs: Record<string, unknown>[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-e2e-pipeline-'));
    haproxy = await HaproxyProcess.start({ dir, config: BOOT });
    const spec = validateSpec({
      name: 'e2e',
      cloud: 'local',
      workers: { local: { static: [] } },
      loadBalancers: {
        local: [{ name: 'lb-1', configPath: haproxy.configPath, stateDir: haproxy.stateDir }],
      },
      services: [{ name: 'http', bind: `127.0.0.1:${FRONT}`, nodePort: NODE_PORT }],
      healthCheck: { port: HEALTH, interval: '1s' },
      runtimeSocket: join(dir, 'admin.sock'),
      guards: { minWorkers: 1, maxRemovalPercent: 60 },
      // The profile's maxconn needs ~100k FDs; this machine's hard limit is 20000.
      tuning: { maxconn: 4000 },
      drain: { seconds: 5 },
    });
    group = new SimulatedGroup('e2e-workers');
    deps = {
      spec,
      template: await loadTemplate(spec),
      source: group,
      transport: new LocalTransport([
        {
          id: 'lb-1',
          configPath: haproxy.configPath,
          stateDir: haproxy.stateDir,
          reload: 'master-socket',
          masterSocket: haproxy.masterSocket,
        },
      ]),
      logger: memoryLogger(logs),
    };
  });

  afterAll(async () => {
    await load?.stop();
    await haproxy?.stop();
    await Promise.all([...servers.values()].map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  async function launch(n: number): Promise<void> {
    const id = `w${n}`;
    servers.set(
      id,
      await startWorkerServer({ id, address: addr(n), ports: [NODE_PORT], healthPort: HEALTH }),
    );
    group.launch(id, addr(n));
  }

  /** Requests sent after `since` must reach exactly the serving workers. */
  async function expectTrafficOnExactly(since: number, serving: readonly string[]): Promise<void> {
    const deadline = Date.now() + 5000;
    let after = load.samples.filter((s) => s.startedAt > since);
    while (Date.now() < deadline) {
      after = load.samples.filter((s) => s.startedAt > since);
      const seen = new Set(after.map((s) => s.worker));
      if (after.length >= serving.length * 8 && serving.every((w) => seen.has(w))) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const seen = [...new Set(after.map((s) => s.worker))].sort();
    expect(seen).toEqual([...serving].sort());
  }

  it('applies 24 scale-out and scale-in changes under continuous load with zero failed requests', async () => {
    // Prepare: three workers, first sync, then a bounded load loop.
    for (const n of [1, 2, 3]) await launch(n);
    const first = await runSync({ reason: 'manual' }, deps);
    expect(first.results[0]?.outcome).toBe('applied');
    load = startLoad({
      host: '127.0.0.1',
      port: FRONT,
      concurrency: 4,
      maxRequests: 100_000,
      maxMs: 90_000,
    });
    await expectTrafficOnExactly(Date.now(), ['w1', 'w2', 'w3']);

    // Act: 24 changes — scale out to 9, drain and remove down to 3, back out again.
    let next = 4;
    let changes = 0;
    const serving = (): string[] =>
      group
        .current()
        .filter((w) => w.state === 'serving')
        .map((w) => w.id);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 6; i++) {
        await launch(next++);
        const r = await runSync({ reason: 'event', group: group.name }, deps);
        // Requests sent from here on saw the new config; earlier ones may still finish on the old one.
        const before = Date.now();
        expect(r.results[0]?.outcome, JSON.stringify(r.results[0])).toBe('applied');
        changes++;
        await expectTrafficOnExactly(before, serving());
      }
      const victims = serving().slice(0, 3);
      for (const id of victims) {
        group.drain(id);
        let r = await runSync({ reason: 'event', group: group.name }, deps);
        let before = Date.now();
        expect(r.results[0]?.outcome).toBe('applied');
        changes++;
        await expectTrafficOnExactly(before, serving());
        group.terminate(id);
        r = await runSync({ reason: 'event', group: group.name }, deps);
        before = Date.now();
        expect(r.results[0]?.outcome).toBe('applied');
        changes++;
        await expectTrafficOnExactly(before, serving());
        await servers.get(id)?.close();
        servers.delete(id);
      }
    }

    // Assess
    const summary = await load.stop();
    expect(changes).toBeGreaterThanOrEqual(20);
    expect(summary.errors).toEqual([]);
    expect(summary.failed).toBe(0);
    expect(summary.requests).toBeGreaterThan(500);
    const stages = new Set(logs.map((l) => l.stage));
    expect([...stages]).toEqual(
      expect.arrayContaining(['resolve', 'render', 'plan', 'push', 'report']),
    );
    expect(logs.every((l) => l.cloud === 'local' && typeof l.generation === 'number')).toBe(true);
  });

  it('does not push or reload when nothing changed', async () => {
    const reloads = await haproxy.reloadCount();
    const r = await runSync({ reason: 'schedule' }, deps);
    expect(r.results[0]?.outcome).toBe('unchanged');
    expect(await haproxy.reloadCount()).toBe(reloads);
  });

  it('rejects a template that renders an invalid config and keeps serving the live one', async () => {
    // Prepare
    const live = readFileSync(haproxy.configPath, 'utf8');
    const bad = compileTemplate(
      readFileSync(join(import.meta.dirname, '../fixtures/templates/invalid-haproxy.hbs'), 'utf8'),
    );
    load = startLoad({
      host: '127.0.0.1',
      port: FRONT,
      concurrency: 2,
      maxRequests: 2000,
      maxMs: 10_000,
    });
    await launch(40); // a real change, so the push happens
    // Act
    const r = await runSync({ reason: 'manual' }, { ...deps, template: bad });
    // Assess
    expect(r.ok).toBe(false);
    expect(r.retryable).toBe(false);
    expect(r.results[0]?.outcome).toBe('rejected');
    expect(r.results[0]?.message).toMatch(/bogus_directive/);
    expect(readFileSync(haproxy.configPath, 'utf8')).toBe(live);
    const summary = await load.stop();
    expect(summary.failed).toBe(0);
    expect(summary.requests).toBeGreaterThan(0);
  });

  it('refuses an empty worker set unless forced, and the LB keeps its workers', async () => {
    const live = readFileSync(haproxy.configPath, 'utf8');
    for (const w of group.current()) group.terminate(w.id);
    const refused = await runSync({ reason: 'event' }, deps);
    expect(refused.results[0]?.outcome).toBe('refused');
    expect(refused.results[0]?.message).toMatch(/refusing an empty worker set/);
    expect(readFileSync(haproxy.configPath, 'utf8')).toBe(live);
    const forced = await runSync({ reason: 'manual', force: true }, deps);
    expect(forced.results[0]?.outcome).toBe('applied');
    expect(readFileSync(haproxy.configPath, 'utf8')).not.toContain('    server ');
  });
});
