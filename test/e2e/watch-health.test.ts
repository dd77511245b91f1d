import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HealthServer, startHealthServer } from '../../adapters/kubernetes/health-server.js';
import { ClusterWatcher } from '../../adapters/kubernetes/watcher.js';
import { validateSpec } from '../../adapters/spec.js';
import { watchKubeConfig, watchTarget } from '../../cli/watch.js';
import { memoryLogger } from '../../core/log.js';
import { configureAzureFunction } from '../../functions/azure.js';
import { FakeKubernetes } from '../fakes/kubernetes/fake-kubernetes.js';
import { startAzureHost } from '../helpers/azure-host.js';
import { waitFor } from '../helpers/wait.js';

/*
 * The watcher's /readyz and /healthz end to end: the watcher as `lbsync
 * watch` builds it, on the real clock, against the Kubernetes API fake and
 * the real Azure function behind its key, probed over HTTP on loopback. The
 * fake holds a list in flight, answers a watch with 410 Gone, or goes away;
 * every wait is on an answer or a phase, never on time. The liveness bound
 * is short (set by option) so the stuck states show within a test.
 */

// Ports 19300-19399 belong to this file.
const API_PORT = 19301;
const HOST_PORT = 19302;
const HEALTH_PORT = 19310;
const REFUSED_HEALTH_PORT = 19311;
const CLI_HEALTH_PORT = 19320;
const UNREACHABLE_HEALTH_PORT = 19312;
// Nothing listens here: the function of the unreachable case.
const CLOSED_URL = 'http://127.0.0.1:19399/api/lbsync';
const KEY = 'function-key-for-the-health-test';
const root = join(import.meta.dirname, '../..');
const NODE_LIST = { method: 'GET', path: /^\/api\/v1\/nodes$/, query: /^(?!.*watch=true)/ };

interface Probe {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Headers;
}

async function probe(port: number, path: string, method = 'GET'): Promise<Probe> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  const text = await r.text();
  return {
    status: r.status,
    body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
    headers: r.headers,
  };
}

const phaseOf = (p: Probe, r: 'nodes' | 'services'): unknown =>
  (p.body.resources as Record<string, { phase: string }> | undefined)?.[r]?.phase;

/** A gate the fake's hook waits on: `held` once a request reached it. */
function gate(): { held: boolean; open: () => void; wait: () => Promise<void> } {
  let release = (): void => {};
  const opened = new Promise<void>((r) => {
    release = r;
  });
  const g = {
    held: false,
    open: () => release(),
    wait: async () => {
      g.held = true;
      await opened;
    },
  };
  return g;
}

describe('lbsync watch: /readyz and /healthz', () => {
  let dir: string;
  let fake: FakeKubernetes;
  let host: Awaited<ReturnType<typeof startAzureHost>>;
  let kubeconfig: string;
  let watcher: ClusterWatcher;
  let health: HealthServer;
  const gates: ReturnType<typeof gate>[] = [];
  const extra: {
    watcher?: ClusterWatcher;
    health?: HealthServer;
    unreachable?: { w: ClusterWatcher; h: HealthServer };
    child?: ChildProcess;
  } = {};

  const start = async (key: string, port: number, failedSends: number, url = host.url) => {
    const options = { target: 'azure', url, key } as const;
    const w = ClusterWatcher.start({
      kubeConfig: watchKubeConfig({ kubeconfig }),
      target: await watchTarget(options),
      filter: { loadBalancerClass: 'lbsync.io/haproxy' },
      debounceMs: 20,
      sendAttempts: 3,
      sendBackoff: { baseMs: 10, maxMs: 20 },
      reconnect: { baseMs: 20, maxMs: 100 },
      liveness: { stallAfterMs: 300, failedSends },
      logger: memoryLogger([]),
    });
    const h = await startHealthServer({
      bind: `127.0.0.1:${port}`,
      health: () => w.health,
      logger: memoryLogger([]),
    });
    return { w, h };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-e2e-watch-health-'));
    fake = await FakeKubernetes.start({ port: API_PORT });
    fake.addToken('watcher-token', { user: 'watcher', groups: [] });
    fake.grant({ user: 'watcher' }, [
      { apiGroups: [''], resources: ['nodes', 'services'], verbs: ['get', 'list', 'watch'] },
    ]);
    fake.objects.addNode({ name: 'node-1', internalIP: '10.0.0.1' });
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, fake.kubeconfig('watcher-token', 'w'));
    // Every sync fails: the LB's directory cannot be created. The function answers 422 with its report.
    configureAzureFunction({
      spec: validateSpec({
        name: 'watch-health',
        workers: { source: 'static', workers: [{ id: 'w1', address: '10.0.0.1' }] },
        loadBalancers: {
          transport: 'local',
          lbs: [
            {
              name: 'lb-1',
              configPath: '/proc/lbsync-no-such-dir/haproxy.cfg',
              stateDir: '/proc/lbsync-no-such-dir/state',
            },
          ],
        },
        services: [{ name: 'http', bind: '127.0.0.1:19380', nodePort: 30080 }],
      }),
      logger: memoryLogger([]),
    });
    host = await startAzureHost(HOST_PORT, KEY);
  });

  afterAll(async () => {
    for (const g of gates) g.open();
    extra.child?.kill('SIGKILL');
    watcher?.stop();
    extra.watcher?.stop();
    await health?.close();
    await extra.health?.close();
    extra.unreachable?.w.stop();
    await extra.unreachable?.h.close();
    await host?.close();
    await fake?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers /readyz 503 until both first lists are in and the watches run, then 200', async () => {
    // Prepare: the first node list is held in flight.
    const list = gate();
    gates.push(list);
    fake.beforeRequest(NODE_LIST, list.wait);
    ({ w: watcher, h: health } = await start(KEY, HEALTH_PORT, 3));
    await waitFor(() => list.held, 'the first node list to reach the API');

    // Act and assess: not ready while listing, ready once both watch.
    const before = await probe(HEALTH_PORT, '/readyz');
    expect(before.status).toBe(503);
    expect(before.body.ready).toBe(false);
    expect(phaseOf(before, 'nodes')).toBe('listing');
    expect(before.headers.get('content-type')).toBe('application/json');
    list.open();
    await waitFor(
      async () => (await probe(HEALTH_PORT, '/readyz')).status === 200,
      '/readyz to answer 200',
    );
    const after = await probe(HEALTH_PORT, '/readyz');
    expect(after.body.ready).toBe(true);
    expect([phaseOf(after, 'nodes'), phaseOf(after, 'services')]).toEqual(['watching', 'watching']);
    expect(watcher.nodes.stats.lists).toBe(1);
  });

  it('answers /readyz 503 while its watches are dropped and while the relist after a 410 Gone runs, and 200 once it is done', async () => {
    const gone = watcher.nodes.stats.relistsAfterGone;
    const relist = gate();
    gates.push(relist);
    fake.beforeRequest(NODE_LIST, relist.wait);
    fake.fail({ status: 410, method: 'GET', path: /^\/api\/v1\/nodes$/, query: /watch=true/ });

    // Act: the API drops every watch and refuses connections.
    await fake.unreachable('refuse');
    await waitFor(
      () => watcher.nodes.stats.failures > 0 && watcher.services.stats.failures > 0,
      'both watches to fail',
    );
    const dropped = await probe(HEALTH_PORT, '/readyz');
    // It comes back; the node watch gets 410 Gone, and the relist is held.
    await fake.reachable();
    await waitFor(() => relist.held, 'the relist to reach the API');
    const relisting = await probe(HEALTH_PORT, '/readyz');
    relist.open();
    await waitFor(
      async () => (await probe(HEALTH_PORT, '/readyz')).status === 200,
      '/readyz to answer 200 again',
    );

    // Assess
    expect(dropped.status).toBe(503);
    expect(relisting.status).toBe(503);
    expect(phaseOf(relisting, 'nodes')).toBe('listing');
    expect(watcher.nodes.stats.relistsAfterGone).toBe(gone + 1);
    expect(watcher.nodes.stats.watching).toBe(true);
  });

  it('keeps /healthz 200 while the function answers that its sync failed', async () => {
    // Act: the start resync (and any after it) reach the function, whose sync fails.
    await waitFor(
      () => watcher.stats.delivered >= 1 && !watcher.pending,
      'a resync to be answered',
    );
    const h = await probe(HEALTH_PORT, '/healthz');

    // Assess
    expect(watcher.lastDelivery).toMatchObject({ delivered: true, status: 422, retry: false });
    expect(h.status).toBe(200);
    expect(h.body).toMatchObject({ live: true, problems: [], sends: { failedInRow: 0 } });
  });

  it('turns /healthz 503 once neither watch made progress past --health-stall while the API is away, and 200 when it is back', async () => {
    // Act
    await fake.unreachable('refuse');
    await waitFor(
      async () => ((await probe(HEALTH_PORT, '/healthz')).body.problems as string[]).length === 2,
      '/healthz to name both resources',
    );
    const stuck = await probe(HEALTH_PORT, '/healthz');
    await fake.reachable();
    await waitFor(
      async () =>
        (await probe(HEALTH_PORT, '/healthz')).status === 200 &&
        (await probe(HEALTH_PORT, '/readyz')).status === 200,
      '/healthz and /readyz to answer 200 again',
    );

    // Assess: both resources name why; the function side is not the reason.
    expect(stuck.body.live).toBe(false);
    const problems = stuck.body.problems as string[];
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(['nodes', 'services']);
    expect(problems[0]).toMatch(
      /no list, watch or event for \d+ ms \((backoff|opening|reopening)\)/,
    );
    expect((await probe(HEALTH_PORT, '/healthz')).body.problems).toEqual([]);
  });

  it('turns /healthz 503 when resyncs keep being refused the credentials, and stays ready', async () => {
    // Prepare: a second watcher with a wrong (say, rotated) function key.
    const { w, h } = await start('a-stale-function-key', REFUSED_HEALTH_PORT, 2);
    extra.watcher = w;
    extra.health = h;

    // Act: the start resync is refused (a 401 is not retried), then the resync for a new Service.
    await waitFor(() => w.health.sends.failedInRow === 1, 'the start resync to be refused');
    fake.objects.addService({
      name: 'web',
      loadBalancerClass: 'lbsync.io/haproxy',
      ports: [{ port: 80, nodePort: 30080 }],
    });
    await waitFor(
      async () => (await probe(REFUSED_HEALTH_PORT, '/healthz')).status === 503,
      '/healthz to answer 503',
    );
    const live = await probe(REFUSED_HEALTH_PORT, '/healthz');
    const ready = await probe(REFUSED_HEALTH_PORT, '/readyz');

    // Assess
    expect(w.stats.delivered).toBe(0);
    expect(live.body.problems).toEqual([
      expect.stringMatching(
        /^resync: 2 requests in a row did not reach the function or were refused/,
      ),
    ]);
    expect((live.body.sends as { last: string }).last).toMatch(/^HTTP 401/);
    expect(ready.status).toBe(200);
    w.stop();
    await h.close();
  });

  it('turns /healthz 503 when no resync request reaches the function at all', async () => {
    // Prepare: a watcher whose function URL has nothing listening; each window tries 3 times.
    const { w, h } = await start(KEY, UNREACHABLE_HEALTH_PORT, 3, CLOSED_URL);
    extra.unreachable = { w, h };

    // Act
    await waitFor(
      async () => (await probe(UNREACHABLE_HEALTH_PORT, '/healthz')).status === 503,
      '/healthz to answer 503',
    );
    const live = await probe(UNREACHABLE_HEALTH_PORT, '/healthz');

    // Assess
    expect(w.stats).toMatchObject({ sent: 3, delivered: 0 });
    expect(live.body.problems).toEqual([
      expect.stringMatching(/^resync: 3 requests in a row did not reach the function/),
    ]);
    expect((live.body.sends as { last: string }).last).toMatch(/^cannot reach /);
    w.stop();
    await h.close();
  });

  it('answers 404 on other paths and 405 on other methods', async () => {
    const missing = await probe(HEALTH_PORT, '/metrics');
    const post = await probe(HEALTH_PORT, '/healthz', 'POST');
    const head = await probe(HEALTH_PORT, '/readyz', 'HEAD');
    const query = await probe(HEALTH_PORT, '/readyz?verbose=1');

    expect(missing.status).toBe(404);
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toEqual({});
    expect(query.status).toBe(200);
  });

  it('serves them from `lbsync watch --health-addr` in the process, and stops serving on SIGTERM', async () => {
    // Prepare
    let stderr = '';
    const p = spawn(
      process.execPath,
      [
        join(root, 'bin/lbsync.js'),
        'watch',
        '--kubeconfig',
        kubeconfig,
        '--health-addr',
        `127.0.0.1:${CLI_HEALTH_PORT}`,
      ],
      {
        cwd: root,
        env: {
          ...process.env,
          LBSYNC_WATCH_TARGET: 'azure',
          LBSYNC_WATCH_URL: host.url,
          LBSYNC_FUNCTION_KEY: KEY,
          LBSYNC_WATCH_DEBOUNCE_MS: '50',
          LBSYNC_LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    extra.child = p;
    p.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => p.on('close', (code) => resolve(code)));

    // Act
    await waitFor(
      async () => {
        try {
          return (await probe(CLI_HEALTH_PORT, '/readyz')).status === 200;
        } catch {
          return false; // not listening yet
        }
      },
      'the process to answer /readyz 200',
      { timeoutMs: 30_000 },
    );
    const live = await probe(CLI_HEALTH_PORT, '/healthz');
    p.kill('SIGTERM');
    const code = await exited;

    // Assess
    expect(live.status).toBe(200);
    expect(code).toBe(0);
    await expect(probe(CLI_HEALTH_PORT, '/healthz')).rejects.toThrow();
    const lines = stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toContainEqual(
      expect.objectContaining({
        msg: 'watch: serving /readyz and /healthz',
        address: `127.0.0.1:${CLI_HEALTH_PORT}`,
      }),
    );
    expect(lines.some((l) => l.msg === 'watch: stopping' && l.signal === 'SIGTERM')).toBe(true);
  });

  it.each([
    [
      `127.0.0.1:${HEALTH_PORT}`,
      /^lbsync: --health-addr 127\.0\.0\.1:19310: cannot listen: EADDRINUSE/,
    ],
    ['8081', /^lbsync: .*bind "8081" is not "\[address\]:port"/],
  ])('names a --health-addr %s it cannot serve and exits non-zero', async (addr, message) => {
    const p = spawn(
      process.execPath,
      [join(root, 'bin/lbsync.js'), 'watch', '--kubeconfig', kubeconfig, '--health-addr', addr],
      {
        cwd: root,
        env: {
          ...process.env,
          LBSYNC_WATCH_TARGET: 'azure',
          LBSYNC_WATCH_URL: host.url,
          LBSYNC_FUNCTION_KEY: KEY,
          LBSYNC_LOG_LEVEL: 'silent',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    p.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const code = await new Promise<number | null>((resolve) => p.on('close', resolve));
    expect(code).not.toBe(0);
    expect(stderr).toMatch(message);
  });
});
