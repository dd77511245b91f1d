import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_ADMIN } from '../fakes/kubernetes/auth.js';
import { FakeKubernetes } from '../fakes/kubernetes/fake-kubernetes.js';

/*
 * A second real client cross-checks the fake's wire format: kubectl (Go's
 * client-go: discovery via /version, /api, /apis, /api/v1, then paginated
 * lists and patches) must see exactly what the fake holds. kubectl runs
 * asynchronously: the fake serves from this process's event loop.
 */

// Port 27020 belongs to this file.
const PORT = 27020;
const run = promisify(execFile);

interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

describe('kubectl against the Kubernetes API fake', () => {
  let fake: FakeKubernetes;
  let dir: string;

  function kubeconfig(token: string): string {
    const file = join(dir, `kubeconfig-${token}`);
    writeFileSync(file, fake.kubeconfig(token, 'u'));
    return file;
  }

  async function kubectl(token: string, ...args: string[]): Promise<KubectlResult> {
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      KUBECONFIG: kubeconfig(token),
    };
    try {
      const { stdout, stderr } = await run(
        'kubectl',
        ['--cache-dir', join(dir, 'cache'), '--request-timeout', '20s', ...args],
        { env, encoding: 'utf8' },
      );
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-kubectl-'));
    fake = await FakeKubernetes.start({ port: PORT });
    fake.addToken('admin', { user: 'admin', groups: ['system:masters'] });
    fake.grant({ group: 'system:masters' }, CLUSTER_ADMIN);
    fake.addToken('viewer', { user: 'viewer', groups: [] });
    fake.grant({ user: 'viewer' }, [
      { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list'] },
    ]);
    fake.objects.addNode({
      name: 'worker-a',
      providerID: 'aws:///eu-west-1a/i-0a',
      internalIP: '10.0.1.5',
      zone: 'eu-west-1a',
    });
    fake.objects.addNode({
      name: 'worker-b',
      providerID: 'aws:///eu-west-1b/i-0b',
      internalIP: '10.0.2.5',
      taints: [
        { key: 'ToBeDeletedByClusterAutoscaler', value: '1700000000', effect: 'NoSchedule' },
      ],
    });
    fake.objects.addService({
      name: 'web',
      loadBalancerClass: 'lbsync.io/haproxy',
      ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      ingress: [{ ip: '192.0.2.10', ipMode: 'Proxy' }],
    });
    fake.objects.addService({
      name: 'api',
      namespace: 'shop',
      externalTrafficPolicy: 'Local',
      ports: [{ name: 'https', port: 443 }],
    });
  });
  afterAll(async () => {
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists exactly the fake's nodes and services with `kubectl get nodes,svc -A -o json`", async () => {
    const r = await kubectl('admin', 'get', 'nodes,svc', '-A', '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    const list = JSON.parse(r.stdout) as {
      items: {
        kind: string;
        metadata: { name: string; namespace?: string; uid: string };
        spec: Record<string, unknown>;
        status: Record<string, unknown>;
      }[];
    };
    const seen = list.items.map(
      (i) => `${i.kind} ${i.metadata.namespace ?? ''}/${i.metadata.name} ${i.metadata.uid}`,
    );
    const expected = [
      ...fake.objects.nodes().map((n) => `Node /${n.metadata.name} ${n.metadata.uid}`),
      ...fake.objects
        .services()
        .map((s) => `Service ${s.metadata.namespace}/${s.metadata.name} ${s.metadata.uid}`),
    ];
    expect(seen).toEqual(expected);
    const web = list.items.find((i) => i.metadata.name === 'web');
    expect(web?.spec).toMatchObject({
      type: 'LoadBalancer',
      loadBalancerClass: 'lbsync.io/haproxy',
      ports: [
        { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: expect.any(Number) },
      ],
    });
    expect(web?.status).toEqual({
      loadBalancer: { ingress: [{ ip: '192.0.2.10', ipMode: 'Proxy' }] },
    });
    const b = list.items.find((i) => i.metadata.name === 'worker-b');
    expect(b?.spec).toMatchObject({
      providerID: 'aws:///eu-west-1b/i-0b',
      taints: [{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule' }],
    });
    const paths = fake.requests.filter((q) => q.user === 'admin').map((q) => q.path);
    expect(paths).toEqual(
      expect.arrayContaining(['/api', '/api/v1', '/api/v1/nodes', '/api/v1/services']),
    );
  });

  it('reports Forbidden when the token lacks list on services', async () => {
    const r = await kubectl('viewer', 'get', 'nodes,svc', '-A', '-o', 'json');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      'Error from server (Forbidden): services is forbidden: User "viewer" cannot list resource "services" in API group "" at the cluster scope',
    );
  });

  it('reports Unauthorized for a token the cluster does not accept', async () => {
    const r = await kubectl('stranger', 'get', 'nodes', '-o', 'json');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Unauthorized');
  });

  // Not `--subresource=status`: Debian's kubectl (1.20, what scripts/ensure.sh installs where
  // none is present) predates it; client-node covers the status subresource.
  it('adds a finalizer with a strategic merge patch and deletes a Service it then holds', async () => {
    const fin = await kubectl(
      'admin',
      'patch',
      'svc',
      'api',
      '-n',
      'shop',
      '-p',
      JSON.stringify({ metadata: { finalizers: ['lbsync.io/load-balancer-cleanup'] } }),
    );
    expect(fin.code, fin.stderr).toBe(0);
    const patch = fake.requests.filter((q) => q.method === 'PATCH').map((q) => q.contentType);
    expect(patch).toEqual(['application/strategic-merge-patch+json']);
    expect(fake.objects.service('shop', 'api')?.metadata.finalizers).toEqual([
      'lbsync.io/load-balancer-cleanup',
    ]);
    const del = await kubectl('admin', 'delete', 'svc', 'api', '-n', 'shop', '--wait=false');
    expect(del.code, del.stderr).toBe(0);
    expect(fake.objects.service('shop', 'api')?.metadata.deletionTimestamp).toBeDefined();
  });
});
