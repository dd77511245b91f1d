import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findHaproxy, HaproxyProcess } from '../adapters/local/haproxy.js';
import { startLoad } from '../adapters/local/load.js';
import { SimulatedGroup } from '../adapters/local/source.js';
import { LocalTransport } from '../adapters/local/transport.js';
import { startWorkerServer, type WorkerServer } from '../adapters/local/workers.js';
import { validateSpec } from '../adapters/spec.js';
import { createLogger } from '../core/log.js';
import { loadTemplate } from '../core/render.js';
import { runSync, type SyncReport } from '../core/sync.js';
import { sleep, table, waitFor } from './demo-kit.js';

/** Options for `runDemo` (the `lbsync demo` flags). */
export interface DemoOptions {
  readonly port: number;
  readonly subnet: string;
  readonly nodePort: number;
  readonly keepDir?: boolean;
  readonly logLevel: string;
  readonly out: (s: string) => void;
}

type Step =
  | { readonly kind: 'launch'; readonly id: string; readonly host: number }
  | { readonly kind: 'drain'; readonly id: string }
  | { readonly kind: 'terminate'; readonly id: string };

/** The scale story the demo tells: out, out, drain+in, out, a two-node scale-in. */
const STORY: readonly (readonly Step[])[] = [
  [{ kind: 'launch', id: 'w4', host: 14 }],
  [{ kind: 'launch', id: 'w5', host: 15 }],
  [{ kind: 'drain', id: 'w1' }],
  [{ kind: 'terminate', id: 'w1' }],
  [{ kind: 'launch', id: 'w6', host: 16 }],
  [
    { kind: 'drain', id: 'w2' },
    { kind: 'drain', id: 'w3' },
  ],
  [
    { kind: 'terminate', id: 'w2' },
    { kind: 'terminate', id: 'w3' },
  ],
];

const BOOT_CONFIG = `global
    log stdout format raw local0 notice
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
`;

/**
 * Run the local demo: real HAProxy in master-worker mode on loopback, worker
 * servers on <subnet>.x, scale events through the real pipeline and local
 * transport, continuous traffic, and a printed timeline. Returns true when no
 * request failed and every sync succeeded. Cleans up whatever it started.
 */
export async function runDemo(o: DemoOptions): Promise<boolean> {
  const haproxyBin = findHaproxy();
  if (haproxyBin === null) {
    throw new Error(
      'haproxy is not installed: run `apt-get install -y haproxy socat` (Debian/Ubuntu) and retry',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'lbsync-demo-'));
  const workers = new Map<string, WorkerServer>();
  const healthPort = 10256;
  const addr = (host: number): string => `${o.subnet}.${host}`;
  let haproxy: HaproxyProcess | null = null;
  let load: ReturnType<typeof startLoad> | null = null;
  try {
    haproxy = await HaproxyProcess.start({ dir, config: BOOT_CONFIG, haproxyBin });
    const spec = validateSpec({
      name: 'demo',
      cloud: 'local',
      workers: { local: { static: [] } },
      loadBalancers: {
        local: [
          {
            name: 'demo-lb',
            configPath: haproxy.configPath,
            stateDir: haproxy.stateDir,
            reload: 'master-socket',
            masterSocket: haproxy.masterSocket,
          },
        ],
      },
      profile: 'web',
      // The web profile's maxconn needs ~100k file descriptors; a laptop's limit is often lower.
      tuning: { maxconn: 4000 },
      services: [{ name: 'http', bind: `127.0.0.1:${o.port}`, nodePort: o.nodePort }],
      healthCheck: { port: healthPort, interval: '1s' },
      stats: { bind: `127.0.0.1:${o.port + 1}` },
      runtimeSocket: join(dir, 'admin.sock'),
      drain: { seconds: 5 },
    });
    const group = new SimulatedGroup('demo-workers');
    for (const [id, host] of [
      ['w1', 11],
      ['w2', 12],
      ['w3', 13],
    ] as const) {
      workers.set(
        id,
        await startWorkerServer({ id, address: addr(host), ports: [o.nodePort], healthPort }),
      );
      group.launch(id, addr(host));
    }
    const transport = new LocalTransport([
      {
        id: 'demo-lb',
        configPath: haproxy.configPath,
        stateDir: haproxy.stateDir,
        reload: 'master-socket',
        masterSocket: haproxy.masterSocket,
      },
    ]);
    const deps = {
      spec,
      template: await loadTemplate(spec),
      source: group,
      transport,
      logger: createLogger({
        level: o.logLevel,
        fd: 2,
        base: { cloud: 'local', group: group.name },
      }),
    };
    const t0 = Date.now();
    const rows: string[][] = [];
    let allOk = true;
    const sync = async (label: string): Promise<SyncReport> => {
      const started = Date.now();
      const report = await runSync({ reason: 'event', group: group.name }, deps);
      const r = report.results[0];
      allOk &&= report.ok;
      rows.push([
        String(started - t0),
        label,
        r?.outcome ?? 'no LB',
        String(Date.now() - started),
        String(r?.apply?.ms ?? '-'),
        `${report.workers.serving}/${report.workers.draining}`,
      ]);
      return report;
    };

    o.out(
      `lbsync demo: HAProxy ${haproxyBin} on 127.0.0.1:${o.port}, workers on ${o.subnet}.x:${o.nodePort}, stats on 127.0.0.1:${o.port + 1}/stats\n`,
    );
    await sync('initial sync (w1 w2 w3)');
    load = startLoad({
      host: '127.0.0.1',
      port: o.port,
      concurrency: 4,
      maxRequests: 200_000,
      maxMs: 60_000,
    });
    await sleep(700);

    const firstServed: string[][] = [];
    for (const step of STORY) {
      for (const s of step) {
        if (s.kind === 'launch') {
          workers.set(
            s.id,
            await startWorkerServer({
              id: s.id,
              address: addr(s.host),
              ports: [o.nodePort],
              healthPort,
            }),
          );
          group.launch(s.id, addr(s.host));
        } else if (s.kind === 'drain') group.drain(s.id);
        else group.terminate(s.id);
      }
      const label = step.map((s) => `${s.kind} ${s.id}`).join(', ');
      const before = Date.now();
      await sync(label);
      const applied = Date.now();
      for (const s of step) {
        if (s.kind === 'launch') {
          const seen = await waitFor(
            () => load?.samples.find((x) => x.at >= before && x.worker === s.id),
            5000,
          );
          firstServed.push([
            s.id,
            String(applied - before),
            seen ? String(seen.at - before) : 'not seen',
          ]);
          if (!seen) allOk = false;
        }
        if (s.kind === 'terminate') {
          // The worker left the config; old HAProxy processes finish its in-flight requests first.
          await sleep(300);
          await workers.get(s.id)?.close();
          workers.delete(s.id);
        }
      }
      await sleep(600);
    }
    const summary = await load.stop();
    load = null;

    o.out('\nTimeline (ms since the first event)\n');
    o.out(table(['t', 'event', 'result', 'sync ms', 'apply ms', 'serving/draining'], rows));
    o.out('\nNew workers (ms after the scale event)\n');
    o.out(table(['worker', 'sync returned', 'first request served'], firstServed));
    o.out('\nRequests served per worker\n');
    o.out(
      table(
        ['worker', 'requests'],
        Object.entries(summary.byWorker)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, v]) => [k, String(v)]),
      ),
    );
    o.out(
      `\n${summary.requests} requests, ${summary.failed} failed${summary.failed ? ` (${[...new Set(summary.errors)].slice(0, 3).join('; ')})` : ''}\n`,
    );
    allOk &&= summary.failed === 0;
    o.out(allOk ? 'demo ok: every change applied with zero failed requests\n' : 'demo FAILED\n');
    return allOk;
  } finally {
    await load?.stop();
    await haproxy?.stop();
    await Promise.all([...workers.values()].map((w) => w.close()));
    if (!o.keepDir) rmSync(dir, { recursive: true, force: true });
    else o.out(`kept ${dir}\n`);
  }
}
