import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HaproxyProcess } from '../../adapters/local/haproxy.js';
import { type LoadLoop, startLoad } from '../../adapters/local/load.js';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import { buildRuntime, type Runtime } from '../../adapters/runtime.js';
import { validateSpec } from '../../adapters/spec.js';
import { memoryLogger } from '../../core/log.js';
import { runSync } from '../../core/sync.js';
import type { PolicyRule } from '../fakes/kubernetes/auth.js';
import { FakeKubernetes } from '../fakes/kubernetes/fake-kubernetes.js';
import { waitFor } from '../helpers/wait.js';

// Ports 17000-17099 and workers on 127.0.33.x belong to this file.
const API_PORT = 17000;
const HEALTH = 10256;
const FINALIZER = 'lbsync.io/load-balancer-cleanup';
const addr = (n: number): string => `127.0.33.${n}`;
const BOOT =
  'global\n    log stdout format raw local0 notice\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n';

/** What the function's identity is granted in the cluster (docs/kubernetes.md). */
const LBSYNC_RULES: readonly PolicyRule[] = [
  { apiGroups: [''], resources: ['nodes', 'services'], verbs: ['get', 'list'] },
  { apiGroups: [''], resources: ['services', 'services/status'], verbs: ['patch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
];

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('Kubernetes Services and Nodes -> lbsync -> a real HAProxy, through the API fake', () => {
  let dir: string;
  let fake: FakeKubernetes;
  let haproxy: HaproxyProcess;
  let rt: Runtime;
  let load: LoadLoop | undefined;
  const logs: Record<string, unknown>[] = [];
  const workers = new Map<string, WorkerServer>();
  const ids = [1, 2, 3, 4, 5].map((n) => `w${n}`);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-e2e-k8s-'));
    fake = await FakeKubernetes.start({ port: API_PORT });
    fake.addToken('lbsync-sa-token', { user: 'system:serviceaccount:lbsync:lbsync', groups: [] });
    fake.grant({ user: 'system:serviceaccount:lbsync:lbsync' }, LBSYNC_RULES);
    haproxy = await HaproxyProcess.start({ dir, config: BOOT });
    // The kubeconfig a user points the CLI at: server, CA and token, as kubectl reads it.
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, fake.kubeconfig('lbsync-sa-token', 'lbsync'));
    for (const [i, id] of ids.entries()) {
      const n = i + 1;
      workers.set(
        id,
        await startWorkerServer({
          id,
          address: addr(n),
          ports: [31330, 31331, 31332, 31333, 31334],
          healthPort: HEALTH,
          delayMs: id === 'w5' ? 800 : 0,
        }),
      );
      fake.objects.addNode({
        name: `node-${n}`,
        internalIP: addr(n),
        providerID: `aws:///eu-west-1a/i-0000000000000000${n}`,
      });
    }
    const spec = validateSpec({
      name: 'e2e-k8s',
      workers: {
        source: 'static',
        workers: ids.map((id, i) => ({ id, address: addr(i + 1) })),
      },
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
      kubernetes: { kubeconfig, bindAddress: '127.0.0.1' },
      healthCheck: { port: HEALTH, interval: '1s', rise: 1, fall: 1 },
      runtimeSocket: join(dir, 'admin.sock'),
      guards: { minWorkers: 1, maxRemovalPercent: 50 },
      tuning: { maxconn: 4000 },
      drain: { seconds: 5 },
    });
    rt = await buildRuntime({ spec, logger: memoryLogger(logs) });
  });

  afterAll(async () => {
    await load?.stop();
    await rt?.close();
    await haproxy?.stop();
    await fake?.stop();
    await Promise.all([...workers.values()].map((w) => w.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  const config = (): string => readFileSync(haproxy.configPath, 'utf8');
  const sync = () => runSync({ reason: 'event' }, rt);

  /** Requests started after `since` reach exactly `expected`. */
  async function expectTraffic(port: number, expected: readonly string[]): Promise<void> {
    const probe = startLoad({
      host: '127.0.0.1',
      port,
      concurrency: 4,
      maxRequests: 80,
      maxMs: 20_000,
    });
    const s = await probe.done;
    expect(s.failed).toBe(0);
    expect(Object.keys(s.byWorker).sort()).toEqual([...expected].sort());
  }

  it("gives a LoadBalancer Service of lbsync's class a frontend on every node, then its status, finalizer and Events", async () => {
    // Prepare
    fake.objects.addService({
      name: 'web',
      namespace: 'shop',
      type: 'LoadBalancer',
      loadBalancerClass: 'lbsync.io/haproxy',
      ports: [{ name: 'http', port: 17080, nodePort: 31330 }],
    });
    fake.objects.addService({
      name: 'other-class',
      type: 'LoadBalancer',
      loadBalancerClass: 'example.com/other',
      ports: [{ port: 17081, nodePort: 31331 }],
    });

    // Act
    const r = await sync();

    // Assess: traffic on the five nodes; the other class's Service is not ours.
    expect(r.results.map((x) => x.outcome)).toEqual(['applied']);
    await expectTraffic(17080, ids);
    expect(await listening(17081)).toBe(false);
    const web = fake.objects.service('shop', 'web');
    expect(web?.status).toMatchObject({
      loadBalancer: { ingress: [{ ip: '127.0.0.1', ipMode: 'Proxy' }] },
    });
    expect(web?.metadata.finalizers).toContain(FINALIZER);
    expect(fake.objects.service('default', 'other-class')?.metadata.finalizers ?? []).not.toContain(
      FINALIZER,
    );
    const reasons = fake.objects.events('shop').map((e) => e.reason);
    expect(reasons).toEqual(
      expect.arrayContaining(['EnsuringLoadBalancer', 'EnsuredLoadBalancer']),
    );
    expect(r.notes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'service', name: 'shop/web', verdict: 'accepted' }),
      ]),
    );

    // Act again: nothing changed, so no status patch and no new Events.
    const patches = fake.countRequests({ method: 'PATCH' });
    const events = fake.objects.events('shop').length;
    const again = await sync();
    expect(again.results.map((x) => x.outcome)).toEqual(['unchanged']);
    expect(fake.countRequests({ method: 'PATCH' })).toBe(patches);
    expect(fake.objects.events('shop')).toHaveLength(events);
  });

  it('takes an excluded node and a deleted node out of the backends, naming the rule', async () => {
    // Act: node-1 is labelled out (an empty value excludes, as upstream parses it); node-2 goes.
    fake.objects.labelNode('node-1', 'node.kubernetes.io/exclude-from-external-load-balancers', '');
    fake.objects.deleteNode('node-2');
    const r = await sync();

    // Assess
    expect(r.results.map((x) => x.outcome)).toEqual(['applied']);
    await expectTraffic(17080, ['w3', 'w4', 'w5']);
    const lines = logs.filter((l) => l.stage === 'resolve' && typeof l.rule === 'string');
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ node: 'node-1', verdict: 'excluded', rule: 'exclude-label' }),
        expect.objectContaining({ node: 'w2', verdict: 'excluded', rule: 'no-node' }),
      ]),
    );
  });

  it('drains a node the cluster autoscaler tainted for deletion: in-flight requests finish, none fails', async () => {
    // Prepare: a load loop on the slow node's frontend.
    load = startLoad({
      host: '127.0.0.1',
      port: 17080,
      concurrency: 6,
      maxRequests: 100_000,
      maxMs: 60_000,
    });
    // The loop's own traffic reaches w5 (a leftover connection of an earlier probe does not count).
    await waitFor(
      () =>
        (load?.samples ?? []).some((s) => s.worker === 'w5') &&
        (workers.get('w5')?.openConnections() ?? 0) > 0,
      'requests of the loop in flight to w5',
    );
    const inFlightBefore = Date.now();

    // Act
    fake.objects.taintNode('node-5', {
      key: 'ToBeDeletedByClusterAutoscaler',
      effect: 'NoSchedule',
    });
    const r = await sync();

    // Assess: weight 0 on w5; what was in flight completed; nothing failed.
    expect(r.results.map((x) => x.outcome)).toEqual(['applied']);
    expect(config()).toMatch(/server w5 127\.0\.33\.5:31330 weight 0/);
    const stopped = Date.now();
    await waitFor(
      () =>
        (load?.samples ?? []).some(
          (s) => s.worker === 'w5' && s.startedAt < inFlightBefore && s.at > inFlightBefore,
        ),
      'an in-flight request to w5 to complete',
    );
    await load.stop();
    const summary = await load.done;
    expect(summary.failed).toBe(0);
    const newToW5 = load.samples.filter((s) => s.worker === 'w5' && s.startedAt > stopped + 1000);
    expect(newToW5).toEqual([]);
    load = undefined;
  });

  it('refuses a UDP Service and a port conflict with Warning Events while the others sync', async () => {
    // Prepare
    fake.objects.addService({
      name: 'dns',
      namespace: 'shop',
      type: 'LoadBalancer',
      loadBalancerClass: 'lbsync.io/haproxy',
      ports: [{ port: 17053, nodePort: 31332, protocol: 'UDP' }],
    });
    fake.objects.addService({
      name: 'copycat',
      namespace: 'shop',
      type: 'LoadBalancer',
      loadBalancerClass: 'lbsync.io/haproxy',
      ports: [{ port: 17080, nodePort: 31333 }],
    });
    fake.objects.addService({
      name: 'api',
      namespace: 'shop',
      type: 'LoadBalancer',
      loadBalancerClass: 'lbsync.io/haproxy',
      ports: [{ port: 17082, nodePort: 31334 }],
    });

    // Act
    const r = await sync();

    // Assess: api syncs (w5 still drains); dns and copycat get a Warning each; web keeps its port.
    expect(r.results.map((x) => x.outcome)).toEqual(['applied']);
    await expectTraffic(17082, ['w3', 'w4']);
    type Event = { type?: string; reason?: string; involvedObject?: { name?: string } };
    const warnings = (fake.objects.events('shop') as Event[]).filter((e) => e.type === 'Warning');
    const about = (name: string) => warnings.filter((e) => e.involvedObject?.name === name);
    expect(about('dns').map((e) => e.reason)).toEqual(['UnsupportedProtocol']);
    expect(about('copycat').map((e) => e.reason)).toEqual(['PortConflict']);
    expect(about('api')).toEqual([]);
    const ingressOf = (name: string): unknown[] =>
      (fake.objects.service('shop', name)?.status as { loadBalancer?: { ingress?: unknown[] } })
        ?.loadBalancer?.ingress ?? [];
    expect(ingressOf('dns')).toEqual([]);
    expect(ingressOf('api')).toHaveLength(1);

    // A second run repeats no Event.
    const count = warnings.length;
    await sync();
    expect(
      (fake.objects.events('shop') as Event[]).filter((e) => e.type === 'Warning'),
    ).toHaveLength(count);
  });

  it("removes a deleted Service's frontend from the LB before its finalizer", async () => {
    // Prepare: when lbsync releases the finalizer, record whether the LB still served the port.
    let servedAtRelease: boolean | undefined;
    fake.beforeRequest(
      { method: 'PATCH', path: /\/namespaces\/shop\/services\/api$/ },
      async () => {
        servedAtRelease = config().includes('bind 127.0.0.1:17082');
      },
    );
    fake.objects.deleteService('shop', 'api');
    expect(fake.objects.service('shop', 'api')).toBeDefined(); // held by the finalizer

    // Act
    const r = await sync();

    // Assess
    expect(r.results.map((x) => x.outcome)).toEqual(['applied']);
    expect(servedAtRelease).toBe(false);
    expect(await listening(17082)).toBe(false);
    expect(fake.objects.service('shop', 'api')).toBeUndefined();
    await expectTraffic(17080, ['w3', 'w4']);
  });

  it('leaves the LB serving its last good config when the API is unreachable or throttles', async () => {
    const before = config();
    // Act 1: connection refused.
    await fake.unreachable('refuse');
    const down = await sync().catch((e: unknown) => e);
    await fake.reachable();
    // Act 2: throttled past the client's retries.
    fake.fail({
      method: 'GET',
      path: /\/api\/v1\/nodes$/,
      status: 429,
      times: 20,
      retryAfterSeconds: 0,
    });
    const throttled = await sync().catch((e: unknown) => e);
    fake.clearFaults();

    // Assess
    for (const err of [down, throttled]) {
      expect(err).toMatchObject({ name: 'SourceError', retryable: true });
    }
    expect(config()).toBe(before);
    await expectTraffic(17080, ['w3', 'w4']);
  });
});
