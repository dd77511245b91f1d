import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  Watch,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CLUSTER_ADMIN } from '../../fakes/kubernetes/auth.js';
import { FakeKubernetes } from '../../fakes/kubernetes/fake-kubernetes.js';
import { waitFor } from '../../helpers/wait.js';

// Longer than 300 lines on purpose: one specification of the fake's wire behaviour, read top to
// bottom, is easier to check against the real API than several halves sharing a server.
// Port 27000 belongs to this file.
const PORT = 27000;

function kubeConfig(fake: FakeKubernetes, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      { name: 'fake', server: fake.url, caData: Buffer.from(fake.caPem).toString('base64') },
    ],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'u' }],
    currentContext: 'fake',
  });
  return kc;
}

async function failure(
  p: Promise<unknown>,
): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const e = err as ApiException<string>;
    return {
      code: e.code,
      body: e.body === undefined ? {} : (JSON.parse(e.body) as Record<string, unknown>),
    };
  }
  throw new Error('expected the call to fail');
}

const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const strategic = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

describe('the Kubernetes API fake, through the real @kubernetes/client-node', () => {
  let fake: FakeKubernetes;
  let core: CoreV1Api;
  let kc: KubeConfig;

  beforeAll(async () => {
    fake = await FakeKubernetes.start({ port: PORT, maxWatchSeconds: 20 });
    fake.addToken('admin-token', { user: 'admin', groups: ['system:masters'] });
    fake.grant({ group: 'system:masters' }, CLUSTER_ADMIN);
    kc = kubeConfig(fake, 'admin-token');
    core = kc.makeApiClient(CoreV1Api);
  });
  afterAll(async () => {
    await fake.stop();
  });
  beforeEach(() => {
    for (const s of fake.objects.services()) {
      fake.objects.updateService(s.metadata.namespace ?? '', s.metadata.name, (o) => {
        delete o.metadata.finalizers;
      });
      fake.objects.deleteService(s.metadata.namespace ?? '', s.metadata.name);
    }
    for (const n of fake.objects.nodes()) fake.objects.deleteNode(n.metadata.name);
  });

  it('stamps uid, creationTimestamp and a rising resourceVersion on every object', async () => {
    fake.objects.addNode({
      name: 'n1',
      providerID: 'aws:///eu-west-1a/i-1',
      internalIP: '10.0.0.1',
    });
    fake.objects.addNode({ name: 'n2', internalIP: '10.0.0.2' });
    const list = await core.listNode();
    expect(list.items.map((n) => n.metadata?.name)).toEqual(['n1', 'n2']);
    const [a, b] = list.items;
    expect(a?.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(a?.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(Number(b?.metadata?.resourceVersion)).toBeGreaterThan(
      Number(a?.metadata?.resourceVersion),
    );
    expect(Number(list.metadata?.resourceVersion)).toBeGreaterThanOrEqual(
      Number(b?.metadata?.resourceVersion),
    );
    expect(a?.spec?.providerID).toBe('aws:///eu-west-1a/i-1');
    expect(a?.status?.addresses).toContainEqual({ type: 'InternalIP', address: '10.0.0.1' });
    expect(a?.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  });

  it('allocates clusterIP, nodePorts and a healthCheckNodePort for a Local LoadBalancer Service', async () => {
    fake.objects.addService({
      name: 'web',
      loadBalancerClass: 'lbsync.io/haproxy',
      externalTrafficPolicy: 'Local',
      ports: [{ name: 'http', port: 80, targetPort: 8080 }],
    });
    const svc = await core.readNamespacedService({ namespace: 'default', name: 'web' });
    expect(svc.spec?.clusterIP).toMatch(/^10\.96\./);
    const nodePort = svc.spec?.ports?.[0]?.nodePort ?? 0;
    expect(nodePort).toBeGreaterThanOrEqual(30000);
    expect(svc.spec?.healthCheckNodePort).toBeGreaterThanOrEqual(30000);
    expect(svc.spec?.healthCheckNodePort).not.toBe(nodePort);
    expect(svc.spec?.ports?.[0]).toMatchObject({ name: 'http', protocol: 'TCP', port: 80 });
  });

  it('pages a list with limit and continue from one consistent snapshot', async () => {
    for (let i = 0; i < 5; i++) fake.objects.addNode({ name: `node-${i}` });
    const first = await core.listNode({ limit: 2 });
    expect(first.items).toHaveLength(2);
    expect(first.metadata?.remainingItemCount).toBe(3);
    fake.objects.addNode({ name: 'node-9' });
    fake.objects.deleteNode('node-3');
    const second = await core.listNode({ limit: 2, _continue: first.metadata?._continue ?? '' });
    const third = await core.listNode({ limit: 2, _continue: second.metadata?._continue ?? '' });
    expect([...second.items, ...third.items].map((n) => n.metadata?.name)).toEqual([
      'node-2',
      'node-3',
      'node-4',
    ]);
    expect(third.metadata?._continue).toBeUndefined();
    expect(third.metadata?.resourceVersion).toBe(first.metadata?.resourceVersion);
  });

  it('answers a continue token from before a compaction with 410 Expired', async () => {
    for (let i = 0; i < 3; i++) fake.objects.addNode({ name: `node-${i}` });
    const first = await core.listNode({ limit: 1 });
    fake.objects.addNode({ name: 'node-x' });
    fake.compact();
    const f = await failure(
      core.listNode({ limit: 1, _continue: first.metadata?._continue ?? '' }),
    );
    expect(f.code).toBe(410);
    expect(f.body).toMatchObject({ kind: 'Status', reason: 'Expired', code: 410 });
  });

  it('filters by labelSelector and fieldSelector', async () => {
    fake.objects.addNode({ name: 'a', labels: { role: 'lb-backend' } });
    fake.objects.addNode({ name: 'b', labels: { role: 'system' } });
    const byLabel = await core.listNode({ labelSelector: 'role in (lb-backend)' });
    expect(byLabel.items.map((n) => n.metadata?.name)).toEqual(['a']);
    const byField = await core.listNode({ fieldSelector: 'metadata.name=b' });
    expect(byField.items.map((n) => n.metadata?.name)).toEqual(['b']);
    expect((await failure(core.listNode({ fieldSelector: 'spec.bogus=1' }))).code).toBe(400);
  });

  it('refuses an unknown token with a 401 and a token lacking a verb with the RBAC 403', async () => {
    const stranger = kubeConfig(fake, 'nope').makeApiClient(CoreV1Api);
    expect((await failure(stranger.listNode())).code).toBe(401);
    fake.addToken('viewer-token', { user: 'viewer', groups: [] });
    fake.grant({ user: 'viewer' }, [{ apiGroups: [''], resources: ['nodes'], verbs: ['list'] }]);
    const viewer = kubeConfig(fake, 'viewer-token').makeApiClient(CoreV1Api);
    await viewer.listNode();
    const f = await failure(viewer.listServiceForAllNamespaces());
    expect(f.code).toBe(403);
    expect(f.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message:
        'services is forbidden: User "viewer" cannot list resource "services" in API group "" at the cluster scope',
      reason: 'Forbidden',
      details: { kind: 'services' },
      code: 403,
    });
  });

  it('treats services/status as its own RBAC resource', async () => {
    fake.objects.addService({ name: 'web', ports: [{ port: 80 }] });
    fake.addToken('svc-editor', { user: 'editor', groups: [] });
    fake.grant({ user: 'editor' }, [
      { apiGroups: [''], resources: ['services'], verbs: ['get', 'patch'] },
    ]);
    const editor = kubeConfig(fake, 'svc-editor').makeApiClient(CoreV1Api);
    const f = await failure(
      editor.patchNamespacedServiceStatus(
        { namespace: 'default', name: 'web', body: { status: {} } },
        merge,
      ),
    );
    expect(f.body.message).toBe(
      'services "web" is forbidden: User "editor" cannot patch resource "services/status" in API group "" in the namespace "default"',
    );
  });

  it('applies only status on /status and ignores status on the main resource', async () => {
    fake.objects.addService({ name: 'web', ports: [{ port: 80 }] });
    const ingress = [{ ip: '192.0.2.10', ipMode: 'Proxy' }];
    const patched = await core.patchNamespacedServiceStatus(
      {
        namespace: 'default',
        name: 'web',
        body: { metadata: { labels: { sneaky: 'yes' } }, status: { loadBalancer: { ingress } } },
      },
      merge,
    );
    expect(patched.status?.loadBalancer?.ingress).toEqual(ingress);
    expect(patched.metadata?.labels?.sneaky).toBeUndefined();
    const main = await core.patchNamespacedService(
      {
        namespace: 'default',
        name: 'web',
        body: { metadata: { labels: { team: 'a' } }, status: { loadBalancer: { ingress: [] } } },
      },
      merge,
    );
    expect(main.metadata?.labels?.team).toBe('a');
    expect(main.status?.loadBalancer?.ingress).toEqual(ingress);
  });

  it('defaults ipMode to VIP and refuses ipMode without an ip (422)', async () => {
    fake.objects.addService({ name: 'web', ports: [{ port: 80 }] });
    const ok = await core.patchNamespacedServiceStatus(
      {
        namespace: 'default',
        name: 'web',
        body: { status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } } },
      },
      merge,
    );
    expect(ok.status?.loadBalancer?.ingress?.[0]?.ipMode).toBe('VIP');
    const f = await failure(
      core.patchNamespacedServiceStatus(
        {
          namespace: 'default',
          name: 'web',
          body: {
            status: { loadBalancer: { ingress: [{ hostname: 'lb.example', ipMode: 'Proxy' }] } },
          },
        },
        merge,
      ),
    );
    expect(f.code).toBe(422);
    expect(f.body.reason).toBe('Invalid');
  });

  it('merges finalizers as a set under strategic merge patch and deletes with $deleteFromPrimitiveList', async () => {
    fake.objects.addService({ name: 'web', ports: [{ port: 80 }], finalizers: ['a.example/x'] });
    const added = await core.patchNamespacedService(
      {
        namespace: 'default',
        name: 'web',
        body: { metadata: { finalizers: ['lbsync.io/load-balancer-cleanup'] } },
      },
      strategic,
    );
    expect(added.metadata?.finalizers).toEqual(['a.example/x', 'lbsync.io/load-balancer-cleanup']);
    const removed = await core.patchNamespacedService(
      {
        namespace: 'default',
        name: 'web',
        body: { metadata: { '$deleteFromPrimitiveList/finalizers': ['a.example/x'] } },
      },
      strategic,
    );
    expect(removed.metadata?.finalizers).toEqual(['lbsync.io/load-balancer-cleanup']);
    const ingress = await core.patchNamespacedServiceStatus(
      {
        namespace: 'default',
        name: 'web',
        body: { status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }, { ip: '192.0.2.2' }] } } },
      },
      strategic,
    );
    const replaced = await core.patchNamespacedServiceStatus(
      {
        namespace: 'default',
        name: 'web',
        body: { status: { loadBalancer: { ingress: [{ ip: '192.0.2.3', ipMode: 'Proxy' }] } } },
      },
      strategic,
    );
    expect(ingress.status?.loadBalancer?.ingress).toHaveLength(2);
    expect(replaced.status?.loadBalancer?.ingress).toEqual([{ ip: '192.0.2.3', ipMode: 'Proxy' }]);
  });

  it('applies JSON patches and refuses one whose test op fails', async () => {
    const svc = fake.objects.addService({ name: 'web', ports: [{ port: 80 }] });
    const rv = svc.metadata.resourceVersion;
    const ok = await core.patchNamespacedService(
      {
        namespace: 'default',
        name: 'web',
        body: [
          { op: 'test', path: '/metadata/resourceVersion', value: rv },
          { op: 'add', path: '/metadata/finalizers', value: ['lbsync.io/load-balancer-cleanup'] },
        ],
      },
      jsonPatch,
    );
    expect(ok.metadata?.finalizers).toEqual(['lbsync.io/load-balancer-cleanup']);
    const f = await failure(
      core.patchNamespacedService(
        {
          namespace: 'default',
          name: 'web',
          body: [{ op: 'test', path: '/metadata/resourceVersion', value: rv }],
        },
        jsonPatch,
      ),
    );
    expect(f.code).toBe(422);
  });

  it('refuses a PUT or a patch carrying a stale resourceVersion with 409 Conflict', async () => {
    fake.objects.addService({ name: 'web', ports: [{ port: 80 }] });
    const read = await core.readNamespacedService({ namespace: 'default', name: 'web' });
    fake.objects.updateService('default', 'web', (s) => {
      s.metadata.labels = { changed: 'by-someone-else' };
    });
    const put = await failure(
      core.replaceNamespacedService({ namespace: 'default', name: 'web', body: read }),
    );
    expect(put.code).toBe(409);
    expect(put.body.message).toBe(
      'Operation cannot be fulfilled on services "web": the object has been modified; please apply your changes to the latest version and try again',
    );
    const patch = await failure(
      core.patchNamespacedService(
        {
          namespace: 'default',
          name: 'web',
          body: {
            metadata: {
              resourceVersion: read.metadata?.resourceVersion,
              finalizers: ['x.example/y'],
            },
          },
        },
        merge,
      ),
    );
    expect(patch.code).toBe(409);
  });

  it('holds a deleted Service with finalizers until they are gone, then it is DELETED', async () => {
    fake.objects.addService({
      name: 'web',
      ports: [{ port: 80 }],
      finalizers: ['lbsync.io/load-balancer-cleanup'],
    });
    await core.deleteNamespacedService({ namespace: 'default', name: 'web' });
    const held = await core.readNamespacedService({ namespace: 'default', name: 'web' });
    expect(held.metadata?.deletionTimestamp).toBeInstanceOf(Date);
    const f = await failure(
      core.patchNamespacedService(
        {
          namespace: 'default',
          name: 'web',
          body: { metadata: { finalizers: ['lbsync.io/load-balancer-cleanup', 'new.example/f'] } },
        },
        merge,
      ),
    );
    expect(f.code).toBe(422);
    await core.patchNamespacedService(
      { namespace: 'default', name: 'web', body: { metadata: { finalizers: null } } },
      merge,
    );
    expect(
      (await failure(core.readNamespacedService({ namespace: 'default', name: 'web' }))).code,
    ).toBe(404);
  });

  it('creates core/v1 Events in a namespace', async () => {
    await core.createNamespacedEvent({
      namespace: 'default',
      body: {
        metadata: { name: 'web.1' },
        involvedObject: { kind: 'Service', namespace: 'default', name: 'web' },
        reason: 'EnsuredLoadBalancer',
        message: 'Ensured load balancer',
        type: 'Normal',
        source: { component: 'lbsync' },
      },
    });
    expect(fake.objects.events('default').map((e) => e.reason)).toEqual(['EnsuredLoadBalancer']);
    expect(
      (
        await failure(
          core.createNamespacedEvent({
            namespace: 'nowhere',
            body: { metadata: { name: 'x' }, involvedObject: { name: 'web' } },
          }),
        )
      ).code,
    ).toBe(404);
  });

  it('streams ADDED, MODIFIED and DELETED from a resourceVersion, then ends the watch on stop', async () => {
    const start = String(fake.resourceVersion);
    const seen: string[] = [];
    let ended = false;
    const ctl = await new Watch(kc).watch(
      '/api/v1/nodes',
      { resourceVersion: start, labelSelector: 'pool=web' },
      (type, obj: { metadata?: { name?: string } }) => {
        seen.push(`${type} ${obj.metadata?.name ?? ''}`);
      },
      () => {
        ended = true;
      },
    );
    await waitFor(() => fake.openWatches === 1, 'the watch to open');
    fake.objects.addNode({ name: 'w1', labels: { pool: 'web' } });
    fake.objects.addNode({ name: 'other' });
    fake.objects.taintNode('w1', {
      key: 'ToBeDeletedByClusterAutoscaler',
      value: '1700000000',
      effect: 'NoSchedule',
    });
    fake.objects.labelNode('w1', 'pool', null);
    fake.objects.labelNode('w1', 'pool', 'web');
    fake.objects.deleteNode('w1');
    await waitFor(() => seen.length === 5, 'five watch events');
    expect(seen).toEqual(['ADDED w1', 'MODIFIED w1', 'DELETED w1', 'ADDED w1', 'DELETED w1']);
    ctl.abort();
    await waitFor(() => ended, 'the watch to end');
  });

  it('sends an in-stream ERROR 410 for a watch from a compacted resourceVersion', async () => {
    const old = String(fake.resourceVersion);
    fake.objects.addNode({ name: 'n1' });
    fake.compact();
    const events: { type: string; object: Record<string, unknown> }[] = [];
    let ended = false;
    await new Watch(kc).watch(
      '/api/v1/nodes',
      { resourceVersion: old },
      (type, object) => {
        events.push({ type, object });
      },
      () => {
        ended = true;
      },
    );
    await waitFor(() => ended, 'the server to end the stream');
    expect(events).toEqual([
      {
        type: 'ERROR',
        object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired' }),
      },
    ]);
  });

  it('injects 429 with Retry-After, 5xx and dropped connections, then serves again, logging every call', async () => {
    fake.fail({ method: 'GET', path: /^\/api\/v1\/nodes$/, status: 429, retryAfterSeconds: 7 });
    fake.fail({ method: 'GET', path: /^\/api\/v1\/nodes$/, status: 503 });
    const throttled = await failure(core.listNode());
    expect(throttled).toMatchObject({
      code: 429,
      body: { reason: 'TooManyRequests', details: { retryAfterSeconds: 7 } },
    });
    expect((await failure(core.listNode())).code).toBe(503);
    fake.fail({ path: /^\/api\/v1\/nodes$/, status: 'reset' });
    await expect(core.listNode()).rejects.toThrow();
    await core.listNode();
    const calls = fake.requests.filter((r) => r.path === '/api/v1/nodes').slice(-4);
    expect(calls.map((r) => r.status)).toEqual([429, 503, 0, 200]);
    expect(calls.every((r) => r.user === 'admin')).toBe(true);
  });

  it('can refuse connections and come back', async () => {
    await fake.unreachable('refuse');
    await expect(core.listNode()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await fake.reachable();
    await core.listNode();
  });
});
