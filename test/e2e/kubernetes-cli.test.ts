import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubernetesSpec } from '../../adapters/kubernetes/spec.js';
import { findHaproxy, HaproxyProcess } from '../../adapters/local/haproxy.js';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import { buildRuntime } from '../../adapters/runtime.js';
import { loadSpec } from '../../adapters/spec.js';
import { servicesStatusOf } from '../../cli/service-status.js';
import { silentLogger } from '../../core/log.js';
import type { ServiceSource } from '../../core/ports.js';
import type { PolicyRule } from '../fakes/kubernetes/auth.js';
import { FakeKubernetes } from '../fakes/kubernetes/fake-kubernetes.js';
import { type CliRun, runLbsync } from '../helpers/cli.js';

// Ports 19500-19999 and workers on 127.0.38.x-127.0.39.x belong to this file.
const API_PORT = 19500;
const WEB_PORT = 19510;
const API_SVC_PORT = 19511;
const DNS_PORT = 19512;
const HEALTH = 10256;
const addr = (n: number): string => `127.0.38.${n}`;
const BOOT =
  'global\n    log stdout format raw local0 notice\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n';
const EXCLUDE = 'node.kubernetes.io/exclude-from-external-load-balancers';

/** What lbsync's identity is granted in the cluster (docs/kubernetes.md). */
const LBSYNC_RULES: readonly PolicyRule[] = [
  { apiGroups: [''], resources: ['nodes', 'services'], verbs: ['get', 'list'] },
  { apiGroups: [''], resources: ['services', 'services/status'], verbs: ['patch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
];

/** Run the CLI as a user does (async: the API fake answers from this process meanwhile). */
const lbsync = (...args: string[]): Promise<CliRun> => runLbsync(args);

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

interface ServiceRow {
  service: string;
  state: string;
  ingress: { ip?: string }[];
  ingressMatches: boolean | null;
  inSync: boolean | null;
  reasons?: string[];
  lbs: { lb: string; present: boolean | null; missing?: string[]; servers?: number }[];
}

describe('lbsync plan, render, apply and status with a kubernetes section, through the API fake', () => {
  let dir: string;
  let fake: FakeKubernetes;
  let haproxy: HaproxyProcess;
  let specFile: string;
  let kubeconfig: string;
  const workers: WorkerServer[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-e2e-k8s-cli-'));
    fake = await FakeKubernetes.start({ port: API_PORT });
    fake.addToken('lbsync-token', { user: 'lbsync', groups: [] });
    fake.grant({ user: 'lbsync' }, LBSYNC_RULES);
    // A context whose user the cluster knows but granted nothing.
    fake.addToken('stranger-token', { user: 'stranger', groups: [] });
    haproxy = await HaproxyProcess.start({ dir, config: BOOT });
    kubeconfig = join(dir, 'kubeconfig');
    const ca = Buffer.from(fake.caPem).toString('base64');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: fake\n  cluster:\n    server: ${fake.url}\n    certificate-authority-data: ${ca}`,
        'users:',
        '- name: lbsync\n  user:\n    token: lbsync-token',
        '- name: stranger\n  user:\n    token: stranger-token',
        'contexts:',
        '- name: lbsync\n  context:\n    cluster: fake\n    user: lbsync',
        '- name: stranger\n  context:\n    cluster: fake\n    user: stranger',
        'current-context: lbsync',
      ].join('\n'),
    );
    for (const n of [1, 2, 3, 4]) {
      workers.push(
        await startWorkerServer({
          id: `w${n}`,
          address: addr(n),
          ports: [31510, 31511],
          healthPort: HEALTH,
        }),
      );
      fake.objects.addNode({ name: `node-${n}`, internalIP: addr(n) });
    }
    fake.objects.addNode({ name: 'node-9', internalIP: addr(9) }); // in the cluster, not in the group
    fake.objects.labelNode('node-2', EXCLUDE, '');
    fake.objects.taintNode('node-3', {
      key: 'ToBeDeletedByClusterAutoscaler',
      effect: 'NoSchedule',
    });
    fake.objects.addService({
      name: 'web',
      namespace: 'shop',
      loadBalancerClass: 'lbsync.io/haproxy',
      ports: [{ port: WEB_PORT, nodePort: 31510 }],
    });
    fake.objects.addService({
      name: 'dns',
      namespace: 'shop',
      loadBalancerClass: 'lbsync.io/haproxy',
      ports: [{ port: DNS_PORT, nodePort: 31512, protocol: 'UDP' }],
    });
    specFile = join(dir, 'lbsync.config.yaml');
    writeFileSync(
      specFile,
      [
        'name: k8s-cli-test',
        'workers:',
        '  source: static',
        `  workers: [${[1, 2, 3, 4, 5].map((n) => `{ id: w${n}, address: ${addr(n)} }`).join(', ')}]`,
        `loadBalancers: { transport: local, lbs: [{ name: lb-1, configPath: ${haproxy.configPath}, stateDir: ${haproxy.stateDir}, reload: master-socket, masterSocket: ${haproxy.masterSocket}, address: 127.0.0.1 }] }`,
        // The spec names a kubeconfig this machine does not have: --kubeconfig stands in for it.
        'kubernetes: { kubeconfig: ./not-here/kubeconfig, bindAddress: 127.0.0.1 }',
        `healthCheck: { port: ${HEALTH}, interval: 1s, rise: 1, fall: 1 }`,
        `runtimeSocket: ${join(dir, 'admin.sock')}`,
        'guards: { minWorkers: 1, maxRemovalPercent: 100 }',
        'tuning: { maxconn: 4000 }',
        'drain: { seconds: 5 }',
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await haproxy?.stop();
    await fake?.stop();
    await Promise.all(workers.map((w) => w.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  const status = async (): Promise<{ lbs: unknown[]; services: { services: ServiceRow[] } }> => {
    const r = await lbsync('status', specFile, '--kubeconfig', kubeconfig, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout);
  };
  const row = (rows: ServiceRow[], name: string): ServiceRow | undefined =>
    rows.find((x) => x.service === name);

  it("plans through --kubeconfig instead of the spec's kubeconfig, naming each Service and node and the rule that decided", async () => {
    // Without the flag the spec's own kubeconfig is used, and it is not there.
    const without = await lbsync('plan', specFile);
    expect(without.code).toBe(1);
    expect(without.stderr).toMatch(/^lbsync: cannot read kubeconfig .*not-here\/kubeconfig/);

    const before = readFileSync(haproxy.configPath, 'utf8');
    const r = await lbsync('plan', specFile, '--kubeconfig', kubeconfig);

    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/lb-1: planned \(plan apply: first sync/);
    const lines = r.stdout.split('\n').map((l) => l.trim());
    expect(lines).toEqual(
      expect.arrayContaining([
        'kubernetes: Services 1 accepted, 1 refused; nodes 1 draining, 3 left out (why, below)',
        `service shop/web: accepted (ports ${WEB_PORT})`,
        `service shop/dns: refused UnsupportedProtocol: lbsync balances TCP only; the Service is refused for ${DNS_PORT}/UDP`,
        `node node-2: excluded exclude-label: label ${EXCLUDE}="" (worker w2)`,
        'node node-3: draining to-be-deleted-taint: taint ToBeDeletedByClusterAutoscaler:NoSchedule (cluster autoscaler scale-in) (worker w3)',
        `worker w5: excluded no-node: no Node has providerID (none) or InternalIP ${addr(5)}`,
        'node node-9: excluded not-a-group-member: no member of the configured groups matches this node',
        `serving (2): w1 ${addr(1)}, w4 ${addr(4)}`,
      ]),
    );
    expect(readFileSync(haproxy.configPath, 'utf8')).toBe(before);
  });

  it('gives the same decisions in --json as notes', async () => {
    const r = await lbsync('plan', specFile, '--kubeconfig', kubeconfig, '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { notes: unknown[] };
    expect(report.notes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'service', name: 'shop/web', verdict: 'accepted' }),
        expect.objectContaining({ kind: 'service', name: 'shop/dns', rule: 'UnsupportedProtocol' }),
        expect.objectContaining({ kind: 'node', name: 'node-2', rule: 'exclude-label' }),
        expect.objectContaining({ kind: 'node', name: 'node-3', verdict: 'draining' }),
      ]),
    );
  });

  it('renders the config on stdout and the discoveries on stderr as comments HAProxy accepts', async () => {
    const r = await lbsync('render', specFile, '--kubeconfig', kubeconfig);

    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `frontend fe_shop-web-${WEB_PORT}\n    bind 127.0.0.1:${WEB_PORT}\n`,
    );
    expect(r.stdout).toContain(`server w3 ${addr(3)}:31510 weight 0`);
    expect(r.stdout).not.toMatch(/server w2 /);
    const notes = r.stderr.trimEnd().split('\n');
    expect(notes.every((l) => l.startsWith('# '))).toBe(true);
    expect(notes).toContain(
      `# node node-2: excluded exclude-label: label ${EXCLUDE}="" (worker w2)`,
    );
    // `render ... > cfg 2>&1` still gives a file haproxy -c accepts.
    const both = join(dir, 'both.cfg');
    writeFileSync(both, r.stdout + r.stderr);
    const haproxyBin = findHaproxy();
    expect(haproxyBin).not.toBeNull();
    expect(() =>
      execFileSync(haproxyBin ?? 'haproxy', ['-c', '-f', both], { stdio: 'pipe' }),
    ).not.toThrow();
  });

  it('uses the kubeconfig context --context names, and says which one is missing or lacks rights', async () => {
    const stranger = await lbsync(
      'plan',
      specFile,
      '--kubeconfig',
      kubeconfig,
      '--context',
      'stranger',
    );
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toMatch(/^lbsync: Kubernetes API: list (nodes|services).*403/);

    const unknown = await lbsync('plan', specFile, '--kubeconfig', kubeconfig, '--context', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(`lbsync: kubeconfig ${kubeconfig} has no context "nope"\n`);

    const named = await lbsync('plan', specFile, '--kubeconfig', kubeconfig, '--context', 'lbsync');
    expect(named.code).toBe(0);
  });

  it('refuses --kubeconfig for a spec without a kubernetes section, as a usage error', async () => {
    const r = await lbsync('plan', 'examples/local.yaml', '--kubeconfig', kubeconfig);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('lbsync: --kubeconfig: the spec has no kubernetes section\n');
  });

  it("applies, publishes the LB's address as the Service's external IP, and status shows both in step", async () => {
    const apply = await lbsync('apply', specFile, '--kubeconfig', kubeconfig);
    expect(apply.code).toBe(0);
    expect(apply.stdout).toContain('lb-1: applied');
    expect(fake.objects.service('shop', 'web')?.status).toMatchObject({
      loadBalancer: { ingress: [{ ip: '127.0.0.1', ipMode: 'Proxy' }] },
    });

    const human = await lbsync('status', specFile, '--kubeconfig', kubeconfig);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^lb-1: generation \d+ sha256 [0-9a-f]{64} servers 3\n/);
    expect(human.stdout).toContain(
      [
        '  shop/web: in sync',
        '    external IP 127.0.0.1 (Proxy); lbsync publishes 127.0.0.1 (Proxy): match',
        `    lb-1: fe_shop-web-${WEB_PORT} on 127.0.0.1:${WEB_PORT} present, 3 servers (1 draining)`,
      ].join('\n'),
    );
    expect(human.stdout).toContain('  shop/dns: refused\n    UnsupportedProtocol:');

    const json = await status();
    expect(row(json.services.services, 'shop/web')).toMatchObject({
      state: 'accepted',
      ingress: [{ ip: '127.0.0.1' }],
      ingressMatches: true,
      inSync: true,
      lbs: [{ lb: 'lb-1', present: true, servers: 3 }],
    });
    expect(row(json.services.services, 'shop/dns')).toMatchObject({
      state: 'refused',
      ingress: [],
      inSync: true,
    });
  });

  it('reports a Service the LBs do not serve yet, and an external IP that is not the LBs', async () => {
    // Prepare: a new Service nobody applied, and web's status rewritten by someone else.
    fake.objects.addService({
      name: 'api',
      namespace: 'shop',
      loadBalancerClass: 'lbsync.io/haproxy',
      ports: [{ port: API_SVC_PORT, nodePort: 31511 }],
    });
    fake.objects.updateService('shop', 'web', (s) => {
      s.status = { loadBalancer: { ingress: [{ ip: '192.0.2.7' }] } };
    });

    // Act
    const json = await status();
    const human = await lbsync('status', specFile, '--kubeconfig', kubeconfig);

    // Assess
    expect(row(json.services.services, 'shop/api')).toMatchObject({
      ingress: [],
      ingressMatches: false,
      inSync: false,
      lbs: [{ lb: 'lb-1', present: false, missing: [`shop-api-${API_SVC_PORT}`] }],
    });
    expect(row(json.services.services, 'shop/web')).toMatchObject({
      ingressMatches: false,
      inSync: false,
      lbs: [{ lb: 'lb-1', present: true }],
    });
    expect(human.stdout).toContain(
      [
        '  shop/api: NOT in sync',
        '    external IP none; lbsync publishes 127.0.0.1 (Proxy): MISMATCH',
        `    lb-1: missing fe_shop-api-${API_SVC_PORT}`,
      ].join('\n'),
    );
    expect(human.stdout).toContain(
      '    external IP 192.0.2.7 (VIP); lbsync publishes 127.0.0.1 (Proxy): MISMATCH',
    );

    // Act again: an apply puts both right.
    expect((await lbsync('apply', specFile, '--kubeconfig', kubeconfig)).code).toBe(0);
    const after = await status();
    expect(row(after.services.services, 'shop/api')?.inSync).toBe(true);
    expect(row(after.services.services, 'shop/web')?.inSync).toBe(true);
    expect(await listening(API_SVC_PORT)).toBe(true);
  });

  it('shows a deleted Service as deleting until an apply removes its frontend and releases the finalizer', async () => {
    fake.objects.deleteService('shop', 'api');

    const held = await status();
    expect(row(held.services.services, 'shop/api')).toMatchObject({
      state: 'deleting',
      inSync: false,
      reasons: [expect.stringContaining('finalizer lbsync.io/load-balancer-cleanup held')],
    });

    expect((await lbsync('apply', specFile, '--kubeconfig', kubeconfig)).code).toBe(0);
    const gone = await status();
    expect(row(gone.services.services, 'shop/api')).toBeUndefined();
    expect(fake.objects.service('shop', 'api')).toBeUndefined();
    expect(await listening(API_SVC_PORT)).toBe(false);
  });

  it('compares only the external IP through a transport that returns no config text, and says so', async () => {
    // Prepare: the runtime as `lbsync status` builds it; the LB reads as SSM, Run Command
    // and the GCP agent report it (generation, sha256, server count, no text).
    const spec = await loadSpec(specFile);
    const rt = await buildRuntime({
      spec,
      specFile,
      logger: silentLogger(),
      tuning: { kubernetes: { kubeconfigPath: kubeconfig } },
    });
    const k = spec.kubernetes as KubernetesSpec;
    try {
      const reads = [
        {
          target: { id: 'i-0lb1', address: '127.0.0.1' },
          live: { generation: 7, sha256: 'a'.repeat(64), servers: 3 },
        },
      ];

      // Act
      const s = await servicesStatusOf(k, rt.services as ServiceSource, reads);

      // Assess
      const web = s.services.find((x) => x.service === 'shop/web');
      expect(web).toMatchObject({ ingressMatches: true, inSync: null });
      expect(web?.lbs).toEqual([
        {
          lb: 'i-0lb1',
          present: null,
          compared:
            "not compared: this transport's status reports generation 7, sha256 and 3 servers, not the config text",
        },
      ]);
    } finally {
      await rt.close();
    }
  });

  it('still prints the LBs when the cluster cannot be read, and exits 1 saying so', async () => {
    await fake.unreachable('refuse');
    const r = await lbsync('status', specFile, '--kubeconfig', kubeconfig);
    await fake.reachable();

    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^lb-1: generation \d+ /);
    expect(r.stdout).toContain('  error: the cluster could not be read: Kubernetes API: list');
    expect(r.stderr).toBe('lbsync: the cluster could not be read\n');
  });
});

describe('lbsync demo --kubernetes', () => {
  it('runs the Kubernetes act against the simulated API server and cleans up after itself', async () => {
    const r = await lbsync(
      'demo',
      '--kubernetes',
      '--port',
      '19910',
      '--subnet',
      '127.0.39',
      '--node-port',
      '30391',
      '--api-port',
      '19900',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('SIMULATED Kubernetes API server');
    expect(r.stdout).toMatch(
      /Service demo\/web: external IP 127\.0\.0\.1 \(status\.loadBalancer\.ingress, ipMode Proxy\)/,
    );
    expect(r.stdout).toMatch(/node-1: draining \(to-be-deleted-taint\)/);
    expect(r.stdout).toMatch(/127\.0\.0\.1:19912 listening before: yes, after: no/);
    expect(r.stdout).toContain(
      'finalizer lbsync.io/load-balancer-cleanup released; Service demo/api gone',
    );
    expect(r.stdout).toMatch(/\n\d+ requests, 0 failed\n/);
    expect(r.stdout).toContain('demo ok');
    // Everything it started is gone: its work dir, and every process that named it.
    const work = /work dir (\S+)/.exec(r.stdout)?.[1] ?? '';
    expect(work).toMatch(/lbsync-demo-k8s-/);
    expect(existsSync(work)).toBe(false);
    const left = await new Promise<string>((resolve) => {
      const p = spawn('pgrep', ['-f', work]);
      let out = '';
      p.stdout.on('data', (c: Buffer) => {
        out += c.toString();
      });
      p.on('close', () => resolve(out));
    });
    expect(left.trim()).toBe('');
    expect(await listening(19900)).toBe(false);
    expect(await listening(19910)).toBe(false);
  }, 120_000);
});
