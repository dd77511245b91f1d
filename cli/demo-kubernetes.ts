import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findHaproxy, HaproxyProcess } from '../adapters/local/haproxy.js';
import { type LoadLoop, startLoad } from '../adapters/local/load.js';
import { startWorkerServer, type WorkerServer } from '../adapters/local/workers.js';
import { buildRuntime, type Runtime } from '../adapters/runtime.js';
import { validateSpec } from '../adapters/spec.js';
import { createLogger } from '../core/log.js';
import { runSync, type SyncReport } from '../core/sync.js';
import type { PolicyRule } from '../test/fakes/kubernetes/auth.js';
import { FakeKubernetes } from '../test/fakes/kubernetes/fake-kubernetes.js';
import { sleep, table, waitFor } from './demo-kit.js';

/*
 * The Kubernetes act of `lbsync demo`: the cluster is lbsync's protocol-level
 * API fake (test/fakes/kubernetes), started on loopback with its own CA and
 * a token, and lbsync reaches it through a kubeconfig with the real client,
 * exactly as `lbsync apply --kubeconfig` would reach a real cluster. Nodes
 * are worker servers on <subnet>.11-13; HAProxy is real.
 */

/** Options for `runKubernetesDemo` (`lbsync demo --kubernetes`). */
export interface KubernetesDemoOptions {
  /** The web Service's port (its frontend on 127.0.0.1); port+1 is the stats page, port+2 the api Service. */
  readonly port: number;
  readonly subnet: string;
  /** The web Service's nodePort; the api Service gets nodePort+1. */
  readonly nodePort: number;
  /** The simulated API server's port on 127.0.0.1. */
  readonly apiPort: number;
  readonly keepDir?: boolean;
  readonly logLevel: string;
  readonly out: (s: string) => void;
}

const BOOT_CONFIG =
  'global\n    log stdout format raw local0 notice\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n';
const CLASS = 'lbsync.io/haproxy';
const FINALIZER = 'lbsync.io/load-balancer-cleanup';
const TAINT = 'ToBeDeletedByClusterAutoscaler';
const HEALTH_PORT = 10256;
const TOKEN = 'lbsync-demo-token';
const USER = 'system:serviceaccount:lbsync:lbsync';
/** What lbsync's identity may do in the cluster, and nothing else. */
const RULES: readonly PolicyRule[] = [
  { apiGroups: [''], resources: ['nodes', 'services'], verbs: ['get', 'list'] },
  { apiGroups: [''], resources: ['services', 'services/status'], verbs: ['patch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
];
/**
 * node-1 answers slowly, so requests are in flight when the new config goes live: longer
 * than a sync takes, or every request sent before the reload may finish before it.
 */
const SLOW_MS = 1200;

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.setTimeout(2000, () => s.destroy());
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => resolve(false));
  });
}

const yesNo = (b: boolean): string => (b ? 'yes' : 'no');

/**
 * Run the Kubernetes act: a Service of type LoadBalancer gets its external
 * IP, a node the autoscaler tainted drains under load with no failed
 * request, and a deleted Service loses its frontend before its finalizer.
 * Returns true when every step did what it says. Cleans up what it started.
 */
export async function runKubernetesDemo(o: KubernetesDemoOptions): Promise<boolean> {
  const haproxyBin = findHaproxy();
  if (haproxyBin === null) {
    throw new Error(
      'haproxy is not installed: run `apt-get install -y haproxy socat` (Debian/Ubuntu) and retry',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'lbsync-demo-k8s-'));
  const nodes = new Map<string, WorkerServer>();
  const addr = (host: number): string => `${o.subnet}.${host}`;
  const apiPort = o.port + 2;
  let fake: FakeKubernetes | null = null;
  let haproxy: HaproxyProcess | null = null;
  let rt: Runtime | null = null;
  let load: LoadLoop | null = null;
  let allOk = true;
  const check = (ok: boolean, what: string): void => {
    if (!ok) o.out(`  FAILED: ${what}\n`);
    allOk &&= ok;
  };
  try {
    fake = await FakeKubernetes.start({ port: o.apiPort });
    fake.addToken(TOKEN, { user: USER, groups: [] });
    fake.grant({ user: USER }, RULES);
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, fake.kubeconfig(TOKEN, 'lbsync'), { mode: 0o600 });
    haproxy = await HaproxyProcess.start({ dir, config: BOOT_CONFIG, haproxyBin });
    o.out(
      `lbsync demo --kubernetes: a SIMULATED Kubernetes API server (lbsync's protocol-level fake from test/fakes/kubernetes, not a real cluster) on ${fake.url}\n` +
        `  lbsync reaches it with the real client through ${kubeconfig}; HAProxy ${haproxyBin}; nodes on ${o.subnet}.11-13\n` +
        `  work dir ${dir}${o.keepDir ? '' : ' (removed at the end)'}\n\n`,
    );

    for (const [n, host] of [
      [1, 11],
      [2, 12],
      [3, 13],
    ] as const) {
      const name = `node-${n}`;
      nodes.set(
        name,
        await startWorkerServer({
          id: name,
          address: addr(host),
          ports: [o.nodePort, o.nodePort + 1],
          healthPort: HEALTH_PORT,
          ...(n === 1 ? { delayMs: SLOW_MS } : {}),
        }),
      );
      fake.objects.addNode({ name, internalIP: addr(host), zone: 'demo-a' });
    }
    for (const [name, port, nodePort] of [
      ['web', o.port, o.nodePort],
      ['api', apiPort, o.nodePort + 1],
    ] as const) {
      fake.objects.addService({
        name,
        namespace: 'demo',
        type: 'LoadBalancer',
        loadBalancerClass: CLASS,
        ports: [{ name: 'http', port, nodePort }],
      });
    }

    const spec = validateSpec({
      name: 'demo-k8s',
      workers: { source: 'kubernetes' },
      loadBalancers: {
        transport: 'local',
        lbs: [
          {
            name: 'demo-lb',
            configPath: haproxy.configPath,
            stateDir: haproxy.stateDir,
            reload: 'master-socket',
            masterSocket: haproxy.masterSocket,
            address: '127.0.0.1',
          },
        ],
      },
      kubernetes: { kubeconfig, bindAddress: '127.0.0.1' },
      profile: 'web',
      // The web profile's maxconn needs ~100k file descriptors; a laptop's limit is often lower.
      tuning: { maxconn: 4000 },
      healthCheck: { port: HEALTH_PORT, interval: '1s', rise: 1, fall: 1 },
      stats: { bind: `127.0.0.1:${o.port + 1}` },
      runtimeSocket: join(dir, 'admin.sock'),
      drain: { seconds: 5 },
    });
    rt = await buildRuntime({
      spec,
      logger: createLogger({ level: o.logLevel, fd: 2, base: { cloud: 'local' } }),
    });
    const runtime = rt;

    const t0 = Date.now();
    const rows: string[][] = [];
    const sync = async (label: string): Promise<SyncReport> => {
      const started = Date.now();
      const report = await runSync({ reason: 'event' }, runtime);
      const r = report.results[0];
      check(report.ok, `${label}: the sync did not succeed (${r?.outcome ?? 'no LB'})`);
      const discovered = report.services.filter((s) => s.origin.kind === 'kubernetes').length;
      rows.push([
        String(started - t0),
        label,
        r?.outcome ?? 'no LB',
        String(Date.now() - started),
        `${report.workers.serving}/${report.workers.draining}`,
        String(discovered),
      ]);
      return report;
    };
    const ingressOf = (name: string): { ip?: string; ipMode?: string }[] =>
      (
        (fake?.objects.service('demo', name)?.status ?? {}) as {
          loadBalancer?: { ingress?: { ip?: string; ipMode?: string }[] };
        }
      ).loadBalancer?.ingress ?? [];

    // Act 1: two Services of type LoadBalancer appear.
    o.out(
      `1. Services demo/web (port ${o.port} -> nodePort ${o.nodePort}) and demo/api (port ${apiPort} -> nodePort ${o.nodePort + 1}), type LoadBalancer, loadBalancerClass ${CLASS}; nodes node-1 node-2 node-3\n`,
    );
    await sync('Services web and api created');
    for (const name of ['web', 'api']) {
      const ingress = ingressOf(name);
      const svc = fake.objects.service('demo', name);
      const events = fake.objects
        .events('demo')
        .filter((e) => (e as { involvedObject?: { name?: string } }).involvedObject?.name === name)
        .map((e) => (e as { reason?: string }).reason);
      o.out(
        `   Service demo/${name}: external IP ${ingress.map((i) => i.ip).join(', ') || 'none'} (status.loadBalancer.ingress, ipMode ${ingress[0]?.ipMode ?? '-'}); ` +
          `finalizer ${svc?.metadata.finalizers?.includes(FINALIZER) ? FINALIZER : 'missing'}; Events ${events.join(', ')}\n`,
      );
      check(ingress[0]?.ip === '127.0.0.1', `demo/${name} got no external IP`);
    }
    load = startLoad({
      host: '127.0.0.1',
      port: o.port,
      concurrency: 4,
      maxRequests: 50_000,
      maxMs: 45_000,
    });
    const running = load;
    await waitFor(() => (running.samples.length > 20 ? true : undefined), 5000);
    o.out(
      `   load loop on 127.0.0.1:${o.port}: 4 connections at a time, fresh connection each\n\n`,
    );

    // Act 2: the cluster autoscaler picks node-1 for scale-in and taints it.
    o.out(`2. the cluster autoscaler taints node-1 ${TAINT}:NoSchedule (scale-in)\n`);
    await waitFor(
      () => ((nodes.get('node-1')?.openConnections() ?? 0) > 0 ? true : undefined),
      5000,
    );
    fake.objects.taintNode('node-1', { key: TAINT, effect: 'NoSchedule' });
    const drained = await sync('node-1 tainted ToBeDeleted');
    const note = drained.notes?.find((n) => n.name === 'node-1');
    o.out(
      `   node-1: ${note?.verdict ?? 'serving'} (${note?.rule ?? '-'}): weight 0, in-flight requests finish\n`,
    );
    check(note?.verdict === 'draining', 'node-1 is not draining');
    const appliedAt = Date.now();
    // In flight across the reload: sent to node-1 before the new config went live, answered after.
    const acrossReload = (): number =>
      running.samples.filter(
        (x) => x.worker === 'node-1' && x.startedAt < appliedAt && x.at > appliedAt,
      ).length;
    const inFlight = await waitFor(() => (acrossReload() > 0 ? true : undefined), 5000);
    await sleep(1000);
    const newAfter = running.samples.filter(
      (x) => x.worker === 'node-1' && x.startedAt > appliedAt,
    ).length;
    o.out(
      `   node-1: ${acrossReload()} request(s) in flight across the reload completed; ${newAfter} new request(s) reached it after\n\n`,
    );
    check(inFlight === true && newAfter === 0, 'node-1 did not drain');

    // Act 3: the autoscaler deletes the drained node; its VM goes.
    o.out('3. the cluster autoscaler deletes node-1\n');
    fake.objects.deleteNode('node-1');
    await sync('node-1 deleted');
    const gone = nodes.get('node-1');
    await waitFor(() => ((gone?.openConnections() ?? 0) === 0 ? true : undefined), 5000);
    await gone?.close();
    nodes.delete('node-1');
    o.out('   node-1: out of the backends; its VM stopped\n\n');

    // Act 4: a user deletes the api Service; lbsync's finalizer holds it until its frontend is gone.
    o.out('4. kubectl delete service -n demo api\n');
    const before = await listening(apiPort);
    fake.objects.deleteService('demo', 'api');
    const held = fake.objects.service('demo', 'api');
    o.out(
      `   Service demo/api: held by finalizer ${held?.metadata.finalizers?.join(', ') ?? '-'} (deletionTimestamp set)\n`,
    );
    const removed = await sync('Service api deleted');
    const after = await listening(apiPort);
    const released = fake.objects.service('demo', 'api') === undefined;
    const frontendGone = !readFileSync(haproxy.configPath, 'utf8').includes(
      `frontend fe_demo-api-${apiPort}\n`,
    );
    o.out(
      `   frontend fe_demo-api-${apiPort} ${frontendGone ? 'removed from the LB config (the finalizer goes only after every LB applied)' : 'still in the LB config'}\n`,
    );
    o.out(`   127.0.0.1:${apiPort} listening before: ${yesNo(before)}, after: ${yesNo(after)}\n`);
    o.out(
      released
        ? `   finalizer ${FINALIZER} released; Service demo/api gone from the cluster\n\n`
        : '   the Service is still there\n\n',
    );
    check(
      before && !after && frontendGone && released && removed.ok,
      'the api Service was not cleaned up',
    );

    const summary = await load.stop();
    load = null;
    o.out('Timeline (ms since the first sync)\n');
    o.out(
      table(['t', 'event', 'result', 'sync ms', 'serving/draining', 'Service frontends'], rows),
    );
    o.out(`\nRequests to demo/web per node\n`);
    o.out(
      table(
        ['node', 'requests'],
        Object.entries(summary.byWorker)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, v]) => [k, String(v)]),
      ),
    );
    o.out(
      `\n${summary.requests} requests, ${summary.failed} failed${summary.failed ? ` (${[...new Set(summary.errors)].slice(0, 3).join('; ')})` : ''}\n`,
    );
    check(summary.failed === 0, 'requests failed');
    o.out(
      allOk
        ? 'demo ok: external IP published, node drained with zero failed requests, deleted Service cleaned up\n'
        : 'demo FAILED\n',
    );
    return allOk;
  } finally {
    await load?.stop();
    await rt?.close();
    await haproxy?.stop();
    await fake?.stop();
    await Promise.all([...nodes.values()].map((w) => w.close()));
    if (!o.keepDir) rmSync(dir, { recursive: true, force: true });
    else o.out(`kept ${dir}\n`);
  }
}
