import { afterAll, expect, it } from 'vitest';
import { type LoadLoop, startLoad } from '../../adapters/local/load.js';
import type { WorkerServer } from '../../adapters/local/workers.js';
import type { PolicyRule } from '../fakes/kubernetes/auth.js';
import type { FakeKubernetes } from '../fakes/kubernetes/fake-kubernetes.js';
import { waitFor } from './wait.js';

/*
 * The Kubernetes scenario every cloud's function goes through end to end:
 * cloud event -> the real function entry point -> the cloud's own token ->
 * the cluster API (the Kubernetes fake, whose authenticator trusts only the
 * cloud fake's tokens) -> render -> a real HAProxy on an LB VM -> Service
 * status. Each cloud's test file builds a `ClusterHarness` from its own
 * fakes and calls `clusterScenario` inside its describe.
 */

/** What the function's identity is granted in the cluster (docs/kubernetes.md). */
export const LBSYNC_RULES: readonly PolicyRule[] = [
  { apiGroups: [''], resources: ['nodes', 'services'], verbs: ['get', 'list'] },
  { apiGroups: [''], resources: ['services', 'services/status'], verbs: ['patch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
];

/** The node label and taint the scenario applies, as upstream names them. */
const EXCLUDE_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';
const AUTOSCALER_TAINT = 'ToBeDeletedByClusterAutoscaler';

/** What one delivery of a cloud event to the function came to. */
export interface SyncOutcome {
  /** The entry point told the platform to deliver the event again (threw, or answered 5xx). */
  readonly redelivered: boolean;
  /** The `msg`/`error` of every error line the run logged. */
  readonly errors: readonly string[];
}

/** A cloud's set-up of the scenario: three nodes, one LB VM, the function. */
export interface ClusterHarness {
  readonly k8s: FakeKubernetes;
  /** Nodes in order; the third worker answers slowly (requests stay in flight). */
  readonly nodes: readonly {
    readonly node: string;
    readonly worker: string;
    readonly server: WorkerServer;
  }[];
  /** The Service port the LB binds (on 127.0.0.1) and its NodePort. */
  readonly port: number;
  readonly nodePort: number;
  /** The address Service status must show (the LB VM's, or kubernetes.ingress). */
  readonly ingress: string;
  /** The Kubernetes user the function's cloud identity maps to. */
  readonly clusterUser: string;
  /** The LB VM's live HAProxy config. */
  lbConfig(): string;
  /** Deliver one of the cloud's events (or its resync request) to the real entry point. */
  sync(): Promise<SyncOutcome>;
  /** From now on the cloud's fake no longer vouches for the tokens the function holds. */
  refuseTokens(): void | Promise<void>;
}

/** Errors (msg and error fields) in log lines pushed after index `from`. */
export function errorLines(lines: readonly Record<string, unknown>[], from: number): string[] {
  return lines
    .slice(from)
    .filter((l) => l.level === 'error')
    .map((l) => [l.msg, l.error].filter((x) => typeof x === 'string').join(': '));
}

/** Requests through the LB reach exactly `workers`, none failing (health checks may need a moment). */
async function expectTraffic(port: number, workers: readonly string[]): Promise<void> {
  const expected = [...workers].sort();
  let seen: string[] = [];
  let failed = 0;
  await waitFor(
    async () => {
      const probe = startLoad({
        host: '127.0.0.1',
        port,
        concurrency: 3,
        maxRequests: workers.length * 8,
        maxMs: 5000,
      });
      const s = await probe.done;
      seen = Object.keys(s.byWorker).sort();
      failed = s.failed;
      return failed === 0 && JSON.stringify(seen) === JSON.stringify(expected);
    },
    `traffic on exactly ${expected.join(', ')}`,
  ).catch(() => undefined);
  expect({ seen, failed }).toEqual({ seen: expected, failed: 0 });
}

/** The scenario's tests, in order (each builds on the cluster state the one before left). */
export function clusterScenario(harness: () => ClusterHarness): void {
  let load: LoadLoop | undefined;
  afterAll(async () => {
    await load?.stop();
  });
  const ingressOf = (h: ClusterHarness): unknown =>
    (h.k8s.objects.service('shop', 'web')?.status as { loadBalancer?: { ingress?: unknown } })
      ?.loadBalancer?.ingress;

  it("gives a new LoadBalancer Service traffic on every node and its status the LB's address, signed in as the function's identity", async () => {
    // Prepare
    const h = harness();
    h.k8s.objects.addService({
      name: 'web',
      namespace: 'shop',
      type: 'LoadBalancer',
      loadBalancerClass: 'lbsync.io/haproxy',
      ports: [{ name: 'http', port: h.port, nodePort: h.nodePort }],
    });

    // Act
    const out = await h.sync();

    // Assess
    expect(out).toEqual({ redelivered: false, errors: [] });
    expect(h.lbConfig()).toContain(`bind 127.0.0.1:${h.port}`);
    await expectTraffic(
      h.port,
      h.nodes.map((n) => n.worker),
    );
    expect(ingressOf(h)).toEqual([{ ip: h.ingress, ipMode: 'Proxy' }]);
    // Every cluster call carried the cloud's token for the mapped identity; none was refused.
    const users = new Set(h.k8s.requests.map((r) => r.user));
    expect([...users]).toEqual([h.clusterUser]);
    expect(h.k8s.countRequests({ status: 401 })).toBe(0);
  });

  it('takes a node labelled out of external load balancers out of the backends', async () => {
    // Act
    const h = harness();
    const [first, second, third] = h.nodes;
    h.k8s.objects.labelNode(first?.node ?? '', EXCLUDE_LABEL, 'true');
    const out = await h.sync();

    // Assess
    expect(out).toEqual({ redelivered: false, errors: [] });
    expect(h.lbConfig()).not.toContain(`server ${first?.worker} `);
    await expectTraffic(h.port, [second?.worker ?? '', third?.worker ?? '']);
  });

  it('drains a node the cluster autoscaler tainted for deletion: in-flight requests finish, none fails', async () => {
    // Prepare: load on the Service, with requests in flight to the slow third node.
    const h = harness();
    const slow = h.nodes[2];
    load = startLoad({
      host: '127.0.0.1',
      port: h.port,
      concurrency: 6,
      maxRequests: 100_000,
      maxMs: 60_000,
    });
    await waitFor(
      () => (slow?.server.openConnections() ?? 0) > 0,
      'requests in flight to the slow node',
    );
    const inFlightFrom = Date.now();

    // Act
    h.k8s.objects.taintNode(slow?.node ?? '', { key: AUTOSCALER_TAINT, effect: 'NoSchedule' });
    const out = await h.sync();

    // Assess: weight 0 on the slow node; what was in flight completed; nothing failed.
    expect(out).toEqual({ redelivered: false, errors: [] });
    expect(h.lbConfig()).toMatch(new RegExp(`server ${slow?.worker} \\S+ weight 0`));
    const drainedAt = Date.now();
    await waitFor(
      () =>
        (load?.samples ?? []).some(
          (s) => s.worker === slow?.worker && s.startedAt <= inFlightFrom && s.at > inFlightFrom,
        ),
      'a request in flight to the slow node to complete',
    );
    const summary = await load.stop();
    expect(summary.failed).toBe(0);
    // Well after the reload, no new request went to the draining node.
    const late = load.samples.filter(
      (s) => s.worker === slow?.worker && s.startedAt > drainedAt + 1000,
    );
    expect(late).toEqual([]);
    load = undefined;
  });

  it("fails the run when the cluster refuses the function's token, and the LB keeps its config", async () => {
    // Prepare
    const h = harness();
    const before = h.lbConfig();
    const refusedBefore = h.k8s.countRequests({ status: 401 });
    h.k8s.objects.labelNode(h.nodes[0]?.node ?? '', EXCLUDE_LABEL, null);
    await h.refuseTokens();

    // Act
    const out = await h.sync();

    // Assess: refused after one fresh token; a retry with the same identity gets the same
    // answer, so the event is not redelivered (the schedule tries again); nothing changed.
    expect(out.redelivered).toBe(false);
    expect(out.errors.join('\n')).toMatch(/401\b.*refused lbsync's credentials/);
    expect(h.k8s.countRequests({ status: 401 })).toBeGreaterThan(refusedBefore);
    expect(h.lbConfig()).toBe(before);
    await expectTraffic(h.port, [h.nodes[1]?.worker ?? '']);
  });
}
