import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { EXCLUDE_LABEL, TO_BE_DELETED_TAINT } from '../../adapters/kubernetes/eligibility.js';
import { functionRbac } from '../../adapters/kubernetes/rbac.js';
import { ClusterWatcher } from '../../adapters/kubernetes/watcher.js';
import { HaproxyProcess } from '../../adapters/local/haproxy.js';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import { type Spec, validateSpec } from '../../adapters/spec.js';
import { watchKubeConfig, watchTarget } from '../../cli/watch.js';
import { memoryLogger } from '../../core/log.js';
import { configureGcpFunction } from '../../functions/gcp.js';
import { FakeGoogleIdentity } from '../fakes/gcp/identity.js';
import type { PolicyRule } from '../fakes/kubernetes/auth.js';
import { FakeKubernetes } from '../fakes/kubernetes/fake-kubernetes.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitFor } from '../helpers/wait.js';

/*
 * The watcher end to end: the Kubernetes API fake, `lbsync watch` as the CLI
 * builds it (kubeconfig, GCP target), and the real GCP resync function
 * served by the Functions Framework (getTestServer), syncing a real HAProxy
 * from the same fake cluster. GCP because the Functions Framework is the
 * function's real HTTP front (routing, body parsing, status), so the watcher
 * POSTs to exactly what Cloud Run runs; the Azure handler would need a
 * hand-written stand-in for the Functions host. The identity token comes
 * from a metadata server fake through google-auth-library. Time is a
 * ManualClock: every wait is on a count.
 */

// Ports 19000-19099 and workers on 127.0.37.x belong to this file.
const API_PORT = 19001;
const FUNCTION_PORT = 19002;
const METADATA_PORT = 19003;
const FRONT = 19080;
const NODE_PORT = 31370;
const HEALTH = 10256;
const CLASS = 'lbsync.io/haproxy';
const FUNCTION_USER = 'lbsync-fn-watch@lbsync-demo.iam.gserviceaccount.com';
const WATCHER_USER = 'system:serviceaccount:lbsync:lbsync-watcher';
const addr = (n: number): string => `127.0.37.${n}`;
const BOOT =
  'global\n    log stdout format raw local0 notice\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n';

/** The rules of the ClusterRole in a manifest, as the fake's RBAC takes them. */
function rulesOf(docs: readonly Record<string, unknown>[]): PolicyRule[] {
  const role = docs.find((d) => d.kind === 'ClusterRole');
  return (role?.rules ?? []) as PolicyRule[];
}

describe('lbsync watch: cluster changes -> one debounced, authenticated resync -> the GCP function', () => {
  let dir: string;
  let fake: FakeKubernetes;
  let identity: FakeGoogleIdentity;
  let haproxy: HaproxyProcess;
  let server: Server;
  let watcher: ClusterWatcher;
  const clock = new ManualClock();
  const posts: { readonly authorization: string | undefined }[] = [];
  const workers: WorkerServer[] = [];
  const logs: Record<string, unknown>[] = [];
  const url = `http://127.0.0.1:${FUNCTION_PORT}/`;

  const backends = (): string[] =>
    readFileSync(haproxy.configPath, 'utf8')
      .split('\n')
      .filter((l) => /^\s+server /.test(l))
      .map((l) => l.trim().split(/\s+/)[2] ?? '');
  const seenServiceVersion = async (ns: string, name: string): Promise<void> => {
    const rv = Number(fake.objects.service(ns, name)?.metadata.resourceVersion);
    await waitFor(
      () => Number(watcher.services.stats.resourceVersion ?? 0) >= rv,
      `the watcher to see ${ns}/${name} at ${rv}`,
    );
  };
  /** Advance past the debounce window and wait for the resync it sends. */
  const flush = async (expectedPosts: number): Promise<void> => {
    await waitFor(() => watcher.pending, 'a resync to be scheduled');
    clock.advance(1000);
    await waitFor(
      () => posts.length === expectedPosts && watcher.stats.delivered === expectedPosts,
      `resync ${expectedPosts} to be delivered`,
    );
    await waitFor(() => !watcher.pending, 'the resync to finish');
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-e2e-watch-'));
    fake = await FakeKubernetes.start({ port: API_PORT });
    identity = await FakeGoogleIdentity.start(METADATA_PORT, {
      project: 'lbsync-demo',
      email: 'lbsync-wt-watch@lbsync-demo.iam.gserviceaccount.com',
    });
    Object.assign(process.env, {
      GCE_METADATA_HOST: identity.host,
      METADATA_SERVER_DETECTION: 'assume-present',
    });
    haproxy = await HaproxyProcess.start({ dir, config: BOOT });
    for (const n of [1, 2, 3]) {
      workers.push(
        await startWorkerServer({
          id: `node-${n}`,
          address: addr(n),
          ports: [NODE_PORT, NODE_PORT + 1],
          healthPort: HEALTH,
        }),
      );
      fake.objects.addNode({ name: `node-${n}`, internalIP: addr(n) });
    }
    fake.objects.addService({
      name: 'web',
      namespace: 'shop',
      loadBalancerClass: CLASS,
      ports: [{ name: 'http', port: FRONT, nodePort: NODE_PORT }],
    });
    // The function reaches the cluster with its own token, granted exactly `lbsync rbac`.
    writeFileSync(join(dir, 'function-token'), 'function-token\n');
    const spec: Spec = validateSpec({
      name: 'watch',
      workers: { source: 'kubernetes' },
      loadBalancers: {
        transport: 'local',
        lbs: [
          {
            name: 'lb-1',
            configPath: haproxy.configPath,
            stateDir: haproxy.stateDir,
            reload: 'master-socket',
            masterSocket: haproxy.masterSocket,
            address: '127.0.0.1',
          },
        ],
      },
      kubernetes: {
        endpoint: fake.url,
        caData: Buffer.from(fake.caPem).toString('base64'),
        tokenFile: join(dir, 'function-token'),
        bindAddress: '127.0.0.1',
      },
      healthCheck: { port: HEALTH, interval: '1s', rise: 1, fall: 1 },
      guards: { minWorkers: 1, maxRemovalPercent: 50 },
      tuning: { maxconn: 4000 },
      drain: { seconds: 0 },
    });
    fake.addToken('function-token', { user: FUNCTION_USER, groups: [] });
    fake.grant(
      { user: FUNCTION_USER },
      rulesOf(functionRbac(spec, { kind: 'User', name: FUNCTION_USER })),
    );
    // The watcher's identity gets exactly the ClusterRole of templates/kubernetes.
    const manifest = parseAllDocuments(
      readFileSync(join(import.meta.dirname, '../../templates/kubernetes/rbac.yaml'), 'utf8'),
    ).map((d) => d.toJSON() as Record<string, unknown>);
    fake.addToken('watcher-token', { user: WATCHER_USER, groups: [] });
    fake.grant({ user: WATCHER_USER }, rulesOf(manifest));
    configureGcpFunction({ spec, logger: memoryLogger(logs) });
    server = getTestServer('lbsyncGcpResync');
    server.prependListener('request', (req) => {
      if (req.method === 'POST') posts.push({ authorization: req.headers.authorization });
    });
    await new Promise<void>((resolve) =>
      server.listen(FUNCTION_PORT, '127.0.0.1', () => resolve()),
    );
    // The watcher as `lbsync watch --target gcp --url … --kubeconfig …` builds it, on the test's clock.
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, fake.kubeconfig('watcher-token', 'watcher'));
    const options = {
      target: 'gcp',
      url,
      kubeconfig,
      loadBalancerClass: CLASS,
      debounce: 1000,
      resyncOnStart: true,
      logLevel: 'silent',
    } as const;
    watcher = ClusterWatcher.start({
      kubeConfig: watchKubeConfig(options),
      target: await watchTarget(options),
      filter: { loadBalancerClass: CLASS },
      debounceMs: 1000,
      clock,
      logger: memoryLogger(logs),
      reconnect: { baseMs: 1000, maxMs: 4000 },
    });
  });

  afterAll(async () => {
    watcher?.stop();
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await haproxy?.stop();
    await fake?.stop();
    await identity?.stop();
    await Promise.all(workers.map((w) => w.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends one resync once its first lists are in, with an identity token for the function, and ignores the status and finalizer the function writes', async () => {
    // Act
    await waitFor(() => watcher.ready, 'both watches to open');
    await flush(1);

    // Assess: the function synced the LB and wrote the Service's status and finalizer.
    expect(backends()).toEqual([
      `${addr(1)}:${NODE_PORT}`,
      `${addr(2)}:${NODE_PORT}`,
      `${addr(3)}:${NODE_PORT}`,
    ]);
    expect(fake.objects.service('shop', 'web')?.status).toMatchObject({
      loadBalancer: { ingress: [{ ip: '127.0.0.1', ipMode: 'Proxy' }] },
    });
    const token = posts[0]?.authorization?.replace(/^Bearer /, '') ?? '';
    expect(identity.verifyIdentity(token)).toMatchObject({
      aud: `http://127.0.0.1:${FUNCTION_PORT}`,
      email: 'lbsync-wt-watch@lbsync-demo.iam.gserviceaccount.com',
    });
    // The function's own writes reach the watcher and wake nothing.
    await seenServiceVersion('shop', 'web');
    expect(watcher.pending).toBe(false);
    clock.advance(5000);
    expect(posts).toHaveLength(1);
  });

  it('sends exactly one resync for a node labelled out, and the node leaves the backends', async () => {
    const relevant = watcher.stats.relevant;
    // Act
    fake.objects.labelNode('node-3', EXCLUDE_LABEL, 'true');
    await waitFor(() => watcher.stats.relevant === relevant + 1, 'the label change');
    await flush(2);
    // Assess
    expect(backends()).not.toContain(`${addr(3)}:${NODE_PORT}`);
    clock.advance(5000);
    expect(posts).toHaveLength(2);
  });

  it('sends no resync for node heartbeats', async () => {
    const seen = watcher.stats.seen.nodes;
    // Act
    for (const n of [1, 2, 3]) fake.objects.heartbeat(`node-${n}`);
    await waitFor(() => watcher.stats.seen.nodes === seen + 3, 'three heartbeats');
    // Assess
    expect(watcher.pending).toBe(false);
    clock.advance(5000);
    expect(posts).toHaveLength(2);
  });

  it("sends exactly one resync for a new Service of lbsync's class, none for another class", async () => {
    const relevant = watcher.stats.relevant;
    // Act
    fake.objects.addService({
      name: 'other',
      loadBalancerClass: 'example.com/other',
      ports: [{ port: 19082, nodePort: 31372 }],
    });
    fake.objects.addService({
      name: 'api',
      namespace: 'shop',
      loadBalancerClass: CLASS,
      ports: [{ port: 19081, nodePort: NODE_PORT + 1 }],
    });
    await seenServiceVersion('shop', 'api');
    expect(watcher.stats.relevant).toBe(relevant + 1);
    await flush(3);
    // Assess: the new Service got its external IP; that write woke nothing.
    expect(fake.objects.service('shop', 'api')?.status).toMatchObject({
      loadBalancer: { ingress: [{ ip: '127.0.0.1' }] },
    });
    await seenServiceVersion('shop', 'api');
    expect(watcher.pending).toBe(false);
    clock.advance(5000);
    expect(posts).toHaveLength(3);
  });

  it('turns a burst of changes inside the debounce window into one resync', async () => {
    const relevant = watcher.stats.relevant;
    // Act: three changes, each before the window of the previous one closed.
    fake.objects.taintNode('node-2', { key: TO_BE_DELETED_TAINT, effect: 'NoSchedule' });
    await waitFor(() => watcher.stats.relevant === relevant + 1, 'the taint');
    clock.advance(600);
    fake.objects.labelNode('node-3', EXCLUDE_LABEL, null);
    await waitFor(() => watcher.stats.relevant === relevant + 2, 'the label removal');
    clock.advance(600);
    fake.objects.deleteService('default', 'other');
    fake.objects.updateService('shop', 'api', (s) => {
      s.metadata.annotations = { 'lbsync.io/timeout-server': '60s' };
    });
    await waitFor(() => watcher.stats.relevant === relevant + 3, 'the annotation');
    expect(posts).toHaveLength(3);
    await flush(4);
    // Assess: one resync covered all three.
    expect(backends()).toContain(`${addr(3)}:${NODE_PORT}`);
    clock.advance(5000);
    expect(posts).toHaveLength(4);
  });

  it('lists again after a 410 on the watch (HTTP and in-stream) and still sends the change it missed', async () => {
    const gone = {
      nodes: watcher.nodes.stats.relistsAfterGone,
      services: watcher.services.stats.relistsAfterGone,
    };
    // Prepare: the API goes away; the watcher backs off.
    await fake.unreachable('refuse');
    await waitFor(
      () => watcher.nodes.stats.failures > 0 && watcher.services.stats.failures > 0,
      'both watches to fail',
    );
    // A change nobody watched, then the history it was in is compacted.
    fake.objects.untaintNode('node-2', TO_BE_DELETED_TAINT);
    fake.compact();
    await fake.reachable();
    fake.fail({ status: 410, method: 'GET', path: /^\/api\/v1\/nodes$/, query: /watch=true/ });
    // Act: the backoff ends; nodes get a 410 answer, services a 410 ERROR event.
    clock.advance(4000);
    await waitFor(
      () =>
        watcher.nodes.stats.relistsAfterGone === gone.nodes + 1 &&
        watcher.services.stats.relistsAfterGone === gone.services + 1 &&
        watcher.ready,
      'both resources to list again and watch',
    );
    await flush(5);
    // Assess
    const how = logs.filter(
      (l) => l.msg === 'kubernetes watch: resourceVersion gone (410), listing again',
    );
    expect(how.map((l) => `${l.resource}:${l.how}`).sort()).toEqual([
      'nodes:HTTP',
      'services:in-stream',
    ]);
    expect(posts).toHaveLength(5);
  });
});
