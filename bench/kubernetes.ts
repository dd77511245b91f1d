import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimulatedGroup } from '../adapters/local/source.js';
import { buildRuntime } from '../adapters/runtime.js';
import { validateSpec } from '../adapters/spec.js';
import { memoryLogger } from '../core/log.js';
import type { LbTarget, LiveState, Worker } from '../core/model.js';
import type { Transport } from '../core/ports.js';
import { renderConfig, servicesOf } from '../core/render.js';
import { runSync } from '../core/sync.js';
import type { PolicyRule } from '../test/fakes/kubernetes/auth.js';
import { FakeKubernetes } from '../test/fakes/kubernetes/fake-kubernetes.js';
import { median } from './lib.js';
import type { BenchTable } from './table.js';

// Ports 19950-19999 belong to the Kubernetes benchmark; nothing listens on the nodes' addresses.
const API_PORT = 19950;
const TOKEN = 'bench-token';
const RULES: readonly PolicyRule[] = [
  { apiGroups: [''], resources: ['nodes', 'services'], verbs: ['get', 'list'] },
];
const TAINT = 'ToBeDeletedByClusterAutoscaler';
const EXCLUDE = 'node.kubernetes.io/exclude-from-external-load-balancers';

const instanceId = (i: number): string => `i-${i.toString(16).padStart(17, '0')}`;
const nodeAddress = (i: number): string =>
  `10.${((i + 1) >> 16) & 255}.${((i + 1) >> 8) & 255}.${(i + 1) & 255}`;

/**
 * An LB that runs `live`: what the local transport's status returns (the
 * text and worker ids included), without a subprocess, so the figures are
 * lbsync's own work. A dry run never applies.
 */
class LiveLb implements Transport {
  public constructor(private readonly live: LiveState) {}
  public async targets(): Promise<readonly LbTarget[]> {
    return [{ id: 'lb-1', address: '10.255.0.1' }];
  }
  public async status(): Promise<LiveState> {
    return this.live;
  }
  public async apply(): Promise<never> {
    throw new Error('the benchmark plans only');
  }
}

interface Row {
  readonly nodes: number;
  readonly services: number;
  readonly servers: number;
  readonly requests: number;
  readonly nodePages: number;
  readonly servicePages: number;
  readonly resolveMs: number;
  readonly renderMs: number;
  readonly planMs: number;
  readonly totalMs: number;
  readonly configBytes: number;
}

/** One size: seed the fake, then time N dry runs (resolve + render + plan) through the real client. */
async function benchSize(nodes: number, services: number, runs: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'lbsync-bench-k8s-'));
  const fake = await FakeKubernetes.start({ port: API_PORT });
  try {
    fake.addToken(TOKEN, { user: 'lbsync', groups: [] });
    fake.grant({ user: 'lbsync' }, RULES);
    const members: Worker[] = [];
    for (let i = 0; i < nodes; i++) {
      const providerID = `aws:///eu-west-1a/${instanceId(i)}`;
      // 1% labelled out, 1% tainted by the autoscaler: the node rules run on every node.
      fake.objects.addNode({
        name: `ip-${nodeAddress(i).replaceAll('.', '-')}.eu-west-1.compute.internal`,
        internalIP: nodeAddress(i),
        providerID,
        zone: 'eu-west-1a',
        ...(i % 100 === 7 ? { labels: { [EXCLUDE]: 'true' } } : {}),
        ...(i % 100 === 57 ? { taints: [{ key: TAINT, effect: 'NoSchedule' as const }] } : {}),
      });
      members.push({
        id: instanceId(i),
        address: nodeAddress(i),
        state: 'serving',
        providerId: providerID,
      });
    }
    for (let j = 0; j < services; j++) {
      fake.objects.addService({
        name: `svc-${j}`,
        namespace: `team-${j % 10}`,
        loadBalancerClass: 'lbsync.io/haproxy',
        ports: [{ name: 'tcp', port: 10_000 + j, nodePort: 30_000 + j }],
      });
    }
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, TOKEN);
    const spec = validateSpec({
      name: 'bench-k8s',
      workers: { source: 'static', workers: [] },
      loadBalancers: {
        transport: 'local',
        lbs: [{ name: 'lb-1', configPath: join(dir, 'haproxy.cfg'), stateDir: dir }],
      },
      kubernetes: {
        endpoint: fake.url,
        caData: Buffer.from(fake.caPem).toString('base64'),
        tokenFile,
      },
      guards: { minWorkers: 1, maxRemovalPercent: 50 },
    });
    const logs: Record<string, unknown>[] = [];
    const rt = await buildRuntime({
      spec,
      logger: memoryLogger(logs),
      source: new SimulatedGroup('bench-asg', members),
    });
    try {
      // The LB runs the config of the cluster as seeded; then one more node is tainted, so
      // every timed run plans a real change (one server to weight 0) against that live config.
      const [workers, discovered] = await Promise.all([
        rt.source.resolve(),
        rt.services?.resolve() ?? Promise.resolve([]),
      ]);
      const live = renderConfig(spec, workers, rt.template, [...servicesOf(spec), ...discovered]);
      fake.objects.taintNode(
        `ip-${nodeAddress(0).replaceAll('.', '-')}.eu-west-1.compute.internal`,
        {
          key: TAINT,
          effect: 'NoSchedule',
        },
      );
      const deps = {
        ...rt,
        transport: new LiveLb({
          generation: 1,
          sha256: live.sha256,
          servers: live.servers,
          workerIds: live.workerIds,
          text: live.text,
        }),
      };
      const samples: Omit<Row, 'nodes' | 'services'>[] = [];
      for (let r = 0; r < runs + 1; r++) {
        logs.length = 0;
        const before = fake.requests.length;
        const report = await runSync({ reason: 'manual', dryRun: true }, deps);
        const seen = fake.requests.slice(before);
        const stage = (name: string): number =>
          Number(logs.find((l) => l.stage === name && typeof l.ms === 'number')?.ms ?? Number.NaN);
        if (report.results[0]?.plan?.action !== 'apply')
          throw new Error(
            `bench kubernetes: expected a change to plan, got ${report.results[0]?.plan?.action}`,
          );
        if (r === 0) continue; // warm-up: JIT, TLS session, token file
        samples.push({
          servers: report.servers,
          requests: seen.length,
          nodePages: seen.filter((q) => /\/api\/v1\/nodes$/.test(q.path)).length,
          servicePages: seen.filter((q) => /\/api\/v1\/services$/.test(q.path)).length,
          resolveMs: stage('resolve'),
          renderMs: stage('render'),
          planMs: report.results[0]?.ms ?? Number.NaN,
          totalMs: report.ms,
          configBytes: Buffer.byteLength(live.text),
        });
      }
      const first = samples[0];
      if (first === undefined) throw new Error('bench kubernetes: no runs');
      const med = (k: keyof Omit<Row, 'nodes' | 'services'>): number =>
        median(samples.map((s) => s[k]));
      return {
        nodes,
        services,
        servers: first.servers,
        requests: med('requests'),
        nodePages: med('nodePages'),
        servicePages: med('servicePages'),
        resolveMs: med('resolveMs'),
        renderMs: med('renderMs'),
        planMs: med('planMs'),
        totalMs: med('totalMs'),
        configBytes: first.configBytes,
      };
    } finally {
      await rt.close();
    }
  } finally {
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** resolve + render + plan through @kubernetes/client-node against the API fake, at two sizes. */
export async function benchKubernetes(): Promise<BenchTable> {
  const rows: (string | number)[][] = [];
  for (const [nodes, services, runs] of [
    [500, 20, 9],
    [5000, 200, 5],
  ] as const) {
    const r = await benchSize(nodes, services, runs);
    rows.push([
      r.nodes,
      r.services,
      r.servers,
      `${r.requests} (${r.nodePages} + ${r.servicePages})`,
      Math.round(r.resolveMs),
      Math.round(r.renderMs),
      Math.round(r.planMs),
      Math.round(r.totalMs),
      (r.configBytes / 1e6).toFixed(1),
    ]);
  }
  return {
    id: 'kubernetes',
    title:
      'Kubernetes: resolve (group ∩ Nodes by providerID, Services) + render + plan, one dry run, through the real client against the API fake in the same process (median ms)',
    columns: [
      'nodes',
      'Services',
      'servers',
      'API requests/run (node + service pages)',
      'resolve ms',
      'render ms',
      'status+plan ms',
      'total ms',
      'config MB',
    ],
    rows,
  };
}
