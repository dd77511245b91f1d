import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type ClusterClient,
  type ClusterClientOptions,
  createClusterClient,
} from '../../adapters/kubernetes/client.js';
import type { TokenProvider } from '../../adapters/kubernetes/connect.js';
import { KubernetesApiError } from '../../adapters/kubernetes/errors.js';
import { SourceError } from '../../core/errors.js';
import type { PolicyRule } from '../fakes/kubernetes/auth.js';
import { FakeKubernetes } from '../fakes/kubernetes/fake-kubernetes.js';
import { makePki } from '../fakes/kubernetes/tls.js';
import { waitFor } from '../helpers/wait.js';

// Longer than 300 lines on purpose: the client's whole contract (reads, retries, auth, writes)
// in one specification against one fake; splitting would duplicate the fixture and token minting.
// Port 27010 belongs to this file.
const PORT = 27010;
const FINALIZER = 'lbsync.io/load-balancer-cleanup';

/** What issue 10 grants lbsync's function identity. */
const LBSYNC_RULES: readonly PolicyRule[] = [
  { apiGroups: [''], resources: ['nodes', 'services'], verbs: ['get', 'list'] },
  { apiGroups: [''], resources: ['services/status', 'services'], verbs: ['patch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
];

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('the Kubernetes adapter client against the API fake', () => {
  let fake: FakeKubernetes;
  let dir: string;
  let issued = 0;
  const clients: ClusterClient[] = [];

  /** A token provider that mints a fresh fake token per call, like a cloud's would. */
  function minting(expiresInMs?: number): TokenProvider & { calls: number } {
    const provider = Object.assign(
      async () => {
        provider.calls++;
        const token = `lbsync-token-${++issued}`;
        const expiresAt = expiresInMs === undefined ? undefined : Date.now() + expiresInMs;
        fake.addToken(token, { user: 'lbsync', groups: ['lbsync:syncers'] }, expiresAt);
        return expiresAt === undefined ? { token } : { token, expiresAt };
      },
      { calls: 0 },
    );
    return provider;
  }

  function client(
    options: ClusterClientOptions = {},
    tokenProvider: TokenProvider = minting(),
  ): ClusterClient {
    const c = createClusterClient(
      { endpoint: fake.url, caPem: fake.caPem, tokenProvider },
      { retry: { baseDelayMs: 20 }, reportingInstance: 'test-host', ...options },
    );
    clients.push(c);
    return c;
  }

  const statuses = (path: RegExp): number[] =>
    fake.requests.filter((r) => path.test(r.path)).map((r) => r.status);

  beforeAll(async () => {
    fake = await FakeKubernetes.start({ port: PORT });
    fake.grant({ group: 'lbsync:syncers' }, LBSYNC_RULES);
    dir = mkdtempSync(join(tmpdir(), 'lbsync-k8s-client-'));
  });
  afterAll(async () => {
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    fake.requests.length = 0;
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    fake.clearFaults();
    await fake.reachable();
    for (const s of fake.objects.services()) {
      fake.objects.updateService(s.metadata.namespace ?? '', s.metadata.name, (o) => {
        delete o.metadata.finalizers;
      });
      fake.objects.deleteService(s.metadata.namespace ?? '', s.metadata.name);
    }
    for (const n of fake.objects.nodes()) fake.objects.deleteNode(n.metadata.name);
  });

  it('lists 1,234 nodes in three pages of 500', async () => {
    for (let i = 0; i < 1234; i++)
      fake.objects.addNode({
        name: `node-${String(i).padStart(4, '0')}`,
        providerID: `aws:///eu-west-1a/i-${i}`,
      });
    const c = client();
    const nodes = await c.listNodes();
    expect(nodes).toHaveLength(1234);
    expect(new Set(nodes.map((n) => n.metadata?.name)).size).toBe(1234);
    const pages = fake.requests.filter((r) => r.path === '/api/v1/nodes');
    expect(pages.map((r) => r.query.limit)).toEqual(['500', '500', '500']);
    expect(pages.map((r) => r.query.continue === undefined)).toEqual([true, false, false]);
    expect(c.requestCount).toBe(3);
  });

  it('restarts a list whose continue token expired mid-list, and sees the cluster as it is now', async () => {
    for (let i = 0; i < 5; i++) fake.objects.addNode({ name: `node-${i}` });
    fake.beforeRequest({ method: 'GET', path: /^\/api\/v1\/nodes$/, query: /continue=/ }, () => {
      fake.objects.addNode({ name: 'node-late' });
      fake.compact();
    });
    const nodes = await client({ pageSize: 2 }).listNodes();
    expect(nodes.map((n) => n.metadata?.name).sort()).toEqual([
      'node-0',
      'node-1',
      'node-2',
      'node-3',
      'node-4',
      'node-late',
    ]);
    expect(statuses(/^\/api\/v1\/nodes$/)).toEqual([200, 410, 200, 200, 200]);
  });

  it('gives up after bounded restarts with a retryable SourceError', async () => {
    for (let i = 0; i < 3; i++) fake.objects.addNode({ name: `node-${i}` });
    fake.beforeRequest(
      { method: 'GET', path: /^\/api\/v1\/nodes$/, query: /continue=/, times: 100 },
      () => {
        fake.objects.heartbeat('node-0');
        fake.compact();
      },
    );
    const err = await rejection(client({ pageSize: 1, maxListRestarts: 2 }).listNodes());
    expect(err).toBeInstanceOf(SourceError);
    expect((err as SourceError).retryable).toBe(true);
    expect(err.message).toContain('list nodes at the cluster scope');
    expect(statuses(/^\/api\/v1\/nodes$/)).toEqual([200, 410, 200, 410, 200, 410]);
  });

  it('waits out a 429 with Retry-After, then succeeds', async () => {
    fake.objects.addService({ name: 'web', ports: [{ port: 80 }] });
    fake.fail({ method: 'GET', path: /^\/api\/v1\/services$/, status: 429, retryAfterSeconds: 1 });
    const services = await client().listServices();
    expect(services.map((s) => s.metadata?.name)).toEqual(['web']);
    expect(statuses(/^\/api\/v1\/services$/)).toEqual([429, 200]);
  });

  it('fails retryable after bounded attempts when throttled for ever', async () => {
    fake.fail({
      method: 'GET',
      path: /^\/api\/v1\/services$/,
      status: 429,
      retryAfterSeconds: 1,
      times: 100,
    });
    const err = await rejection(client({ retry: { attempts: 3, baseDelayMs: 20 } }).listServices());
    expect(err).toBeInstanceOf(SourceError);
    expect((err as SourceError).retryable).toBe(true);
    expect(err.message).toMatch(
      /list services at the cluster scope failed after 3 attempts: 429 TooManyRequests/,
    );
    expect(statuses(/^\/api\/v1\/services$/)).toEqual([429, 429, 429]);
  });

  it('does not sleep past its budget when Retry-After is long: fails at once, retryable', async () => {
    fake.fail({
      method: 'GET',
      path: /^\/api\/v1\/services$/,
      status: 429,
      retryAfterSeconds: 120,
    });
    const err = await rejection(client().listServices());
    expect((err as SourceError).retryable).toBe(true);
    expect(statuses(/^\/api\/v1\/services$/)).toEqual([429]);
  });

  it('retries 5xx and dropped connections', async () => {
    fake.objects.addNode({ name: 'n1' });
    fake.fail({ method: 'GET', path: /^\/api\/v1\/nodes$/, status: 503 });
    fake.fail({ method: 'GET', path: /^\/api\/v1\/nodes$/, status: 'reset' });
    fake.fail({ method: 'GET', path: /^\/api\/v1\/nodes$/, status: 500 });
    expect(await client().listNodes()).toHaveLength(1);
    expect(statuses(/^\/api\/v1\/nodes$/)).toEqual([503, 0, 500, 200]);
  });

  it('fails a 403 at once, not retryable, naming the verb, the resource and the missing RBAC rule', async () => {
    fake.addToken('nodes-only', { user: 'half-configured', groups: [] });
    fake.grant({ user: 'half-configured' }, [
      { apiGroups: [''], resources: ['nodes'], verbs: ['list'] },
    ]);
    const c = client({}, async () => ({ token: 'nodes-only' }));
    await c.listNodes();
    const err = await rejection(c.listServices());
    expect(err).toBeInstanceOf(SourceError);
    expect((err as SourceError).retryable).toBe(false);
    expect(err.message).toContain(
      'list services at the cluster scope failed: 403 Forbidden services is forbidden: User "half-configured" cannot list resource "services"',
    );
    expect(err.message).toContain('{apiGroups: [""], resources: ["services"], verbs: ["list"]}');
    const write = await rejection(
      c.patchServiceStatus('default', 'web', [{ ip: '192.0.2.1', ipMode: 'Proxy' }]),
    );
    expect(write).toBeInstanceOf(KubernetesApiError);
    expect(write).toMatchObject({ status: 403, reason: 'Forbidden', retryable: false });
    expect(write.message).toContain('resources: ["services/status"], verbs: ["patch"]');
    expect(statuses(/services/)).toEqual([403, 403]);
  });

  it('asks the token provider again when the cluster refuses an expired token (401)', async () => {
    fake.objects.addNode({ name: 'n1' });
    const provider = minting();
    const c = client({}, provider);
    await c.listNodes();
    fake.tokens.expire(`lbsync-token-${issued}`);
    expect(await c.listNodes()).toHaveLength(1);
    expect(provider.calls).toBe(2);
    expect(statuses(/^\/api\/v1\/nodes$/)).toEqual([200, 401, 200]);
  });

  it('refreshes a token before it expires, without a 401', async () => {
    // Long enough that a loaded machine still sends the first request before the token expires.
    const provider = minting(1500);
    const c = client({}, provider);
    await c.listNodes();
    const firstExpiry = Date.now() + 1500;
    await waitFor(() => Date.now() > firstExpiry, 'the first token to reach its expiry');
    await c.listNodes();
    expect(provider.calls).toBe(2);
    expect(statuses(/^\/api\/v1\/nodes$/)).toEqual([200, 200]);
  });

  it('fails a 401 that a fresh token does not fix, not retryable', async () => {
    const err = await rejection(client({}, async () => ({ token: 'never-issued' })).listNodes());
    expect((err as SourceError).retryable).toBe(false);
    expect(err.message).toContain('401');
    expect(err.message).toContain("refused lbsync's credentials");
    expect(statuses(/^\/api\/v1\/nodes$/)).toEqual([401, 401]);
  });

  it('patches status.loadBalancer.ingress with ipMode Proxy through the status subresource', async () => {
    fake.objects.addService({
      name: 'web',
      namespace: 'shop',
      loadBalancerClass: 'lbsync.io/haproxy',
      ports: [{ port: 443 }],
    });
    const c = client();
    const ingress = [
      { ip: '192.0.2.10', ipMode: 'Proxy' as const },
      { ip: '192.0.2.11', ipMode: 'Proxy' as const },
    ];
    const patched = await c.patchServiceStatus('shop', 'web', ingress);
    expect(patched.status?.loadBalancer?.ingress).toEqual(ingress);
    expect(fake.objects.service('shop', 'web')?.status).toEqual({ loadBalancer: { ingress } });
    const again = await c.listServices();
    expect(again[0]?.status?.loadBalancer?.ingress).toEqual(ingress);
    const patch = fake.requests.find((r) => r.method === 'PATCH');
    expect(patch).toMatchObject({
      path: '/api/v1/namespaces/shop/services/web/status',
      contentType: 'application/merge-patch+json',
      user: 'lbsync',
    });
    await c.patchServiceStatus('shop', 'web', [{ ip: '192.0.2.12', ipMode: 'Proxy' }]);
    expect(fake.objects.service('shop', 'web')?.status).toEqual({
      loadBalancer: { ingress: [{ ip: '192.0.2.12', ipMode: 'Proxy' }] },
    });
  });

  it("adds and removes its finalizer under a concurrent writer, keeping the other writer's finalizer", async () => {
    fake.objects.addService({ name: 'web', ports: [{ port: 80 }] });
    const c = client();
    const sneakIn = (finalizers: (f: string[]) => string[]) => () => {
      fake.objects.updateService('default', 'web', (s) => {
        s.metadata.finalizers = finalizers(s.metadata.finalizers ?? []);
      });
    };
    fake.beforeRequest(
      { method: 'PATCH', path: /\/services\/web$/ },
      sneakIn((f) => [...f, 'other.example/cleanup']),
    );
    const added = await c.addFinalizer('default', 'web', FINALIZER);
    expect(added.metadata?.finalizers).toEqual(['other.example/cleanup', FINALIZER]);
    expect(await c.addFinalizer('default', 'web', FINALIZER)).toMatchObject({
      metadata: { finalizers: ['other.example/cleanup', FINALIZER] },
    });
    fake.beforeRequest(
      { method: 'PATCH', path: /\/services\/web$/ },
      sneakIn((f) => [...f, 'third.example/x']),
    );
    const removed = await c.removeFinalizer('default', 'web', FINALIZER);
    expect(removed?.metadata?.finalizers).toEqual(['other.example/cleanup', 'third.example/x']);
    expect(fake.requests.filter((r) => r.method === 'PATCH').map((r) => r.status)).toEqual([
      409, 200, 409, 200,
    ]);
  });

  it('fails retryable with a 409 KubernetesApiError when the Service keeps changing', async () => {
    fake.objects.addService({ name: 'web', ports: [{ port: 80 }] });
    fake.beforeRequest({ method: 'PATCH', path: /\/services\/web$/, times: 100 }, () => {
      fake.objects.updateService('default', 'web', (s) => {
        s.metadata.labels = { touched: String(Math.random()) };
      });
    });
    const err = await rejection(
      client({ finalizerAttempts: 3 }).addFinalizer('default', 'web', FINALIZER),
    );
    expect(err).toBeInstanceOf(KubernetesApiError);
    expect(err).toMatchObject({ status: 409, retryable: true });
    expect(fake.requests.filter((r) => r.method === 'PATCH').map((r) => r.status)).toEqual([
      409, 409, 409,
    ]);
  });

  it('holds a deleted Service by its finalizer until lbsync removes it', async () => {
    fake.objects.addService({ name: 'web', ports: [{ port: 80 }] });
    const c = client();
    await c.addFinalizer('default', 'web', FINALIZER);
    fake.objects.deleteService('default', 'web');
    const [held] = await c.listServices();
    expect(held?.metadata?.deletionTimestamp).toBeInstanceOf(Date);
    const refused = await rejection(c.addFinalizer('default', 'web', 'another.example/f'));
    expect(refused).toMatchObject({ retryable: false });
    expect(await c.removeFinalizer('default', 'web', FINALIZER)).not.toBeNull();
    expect(fake.objects.service('default', 'web')).toBeUndefined();
    expect(await c.listServices()).toEqual([]);
    expect(await c.removeFinalizer('default', 'web', FINALIZER)).toBeNull();
  });

  it('records core/v1 Events on a Service, as the upstream recorder shapes them', async () => {
    const svc = fake.objects.addService({ name: 'web', namespace: 'shop', ports: [{ port: 80 }] });
    const c = client();
    const ref = { namespace: 'shop', name: 'web', uid: svc.metadata.uid };
    await c.createEvent(ref, 'Normal', 'EnsuringLoadBalancer', 'Ensuring load balancer');
    await c.createEvent(ref, 'Warning', 'SyncLoadBalancerFailed', 'UDP port 53 is not supported');
    const events = fake.objects.events('shop');
    expect(events.map((e) => [e.type, e.reason, e.message])).toEqual([
      ['Normal', 'EnsuringLoadBalancer', 'Ensuring load balancer'],
      ['Warning', 'SyncLoadBalancerFailed', 'UDP port 53 is not supported'],
    ]);
    expect(events[1]).toMatchObject({
      involvedObject: {
        apiVersion: 'v1',
        kind: 'Service',
        namespace: 'shop',
        name: 'web',
        uid: svc.metadata.uid,
      },
      source: { component: 'lbsync' },
      reportingComponent: 'lbsync',
      reportingInstance: 'test-host',
      count: 1,
    });
    expect(events[1]?.metadata.name).toMatch(/^web\.[0-9a-f]+$/);
    expect(events[0]?.metadata.name).not.toBe(events[1]?.metadata.name);
    expect(Date.parse(String(events[1]?.lastTimestamp))).not.toBeNaN();
  });

  it('stops at once when the caller aborts, without retrying', async () => {
    await fake.unreachable('hang');
    const ctl = new AbortController();
    const c = client();
    const pending = rejection(c.listNodes(ctl.signal));
    await waitFor(() => fake.stalledRequests === 1, 'the request to reach the server');
    ctl.abort(new Error('deadline'));
    const err = await pending;
    expect(err).toBeInstanceOf(SourceError);
    expect(err.message).toContain('aborted by the caller');
    expect(c.requestCount).toBe(1);
  });

  it('times out a request the server never answers, and retries it (bounded)', async () => {
    await fake.unreachable('hang');
    const c = client({ requestTimeoutMs: 300, retry: { attempts: 2, baseDelayMs: 20 } });
    const err = await rejection(c.listNodes());
    expect((err as SourceError).retryable).toBe(true);
    expect(c.requestCount).toBe(2);
  });

  it('fails retryable when the API server refuses connections', async () => {
    await fake.unreachable('refuse');
    const err = await rejection(client({ retry: { attempts: 2, baseDelayMs: 20 } }).listServices());
    expect(err).toBeInstanceOf(SourceError);
    expect((err as SourceError).retryable).toBe(true);
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('refuses a server whose certificate the given CA did not sign, without retrying', async () => {
    const stranger = makePki(['127.0.0.1']);
    const c = createClusterClient({
      endpoint: fake.url,
      caPem: stranger.caPem,
      tokenProvider: minting(),
    });
    clients.push(c);
    const err = await rejection(c.listNodes());
    expect((err as SourceError).retryable).toBe(false);
    expect(c.requestCount).toBe(1);
    expect(fake.requests).toEqual([]);
  });

  it('reads a kubeconfig with an exec credential plugin, as kubectl does', async () => {
    fake.objects.addNode({ name: 'n1' });
    fake.addToken('from-exec-plugin', { user: 'exec-user', groups: ['lbsync:syncers'] });
    const plugin = join(dir, 'credential-plugin.sh');
    writeFileSync(
      plugin,
      `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-exec-plugin"}}'\n`,
    );
    chmodSync(plugin, 0o755);
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: other',
        'clusters:',
        '- name: fake',
        '  cluster:',
        `    server: ${fake.url}`,
        `    certificate-authority-data: ${Buffer.from(fake.caPem).toString('base64')}`,
        'users:',
        '- name: exec',
        '  user:',
        '    exec:',
        '      apiVersion: client.authentication.k8s.io/v1',
        `      command: ${plugin}`,
        '      interactiveMode: Never',
        'contexts:',
        '- name: other',
        '  context: {cluster: fake, user: nobody}',
        '- name: lbsync',
        '  context: {cluster: fake, user: exec}',
        '',
      ].join('\n'),
    );
    const c = createClusterClient({ kubeconfigPath: kubeconfig, context: 'lbsync' });
    clients.push(c);
    expect((await c.listNodes()).map((n) => n.metadata?.name)).toEqual(['n1']);
    expect(fake.requests.map((r) => r.user)).toEqual(['exec-user']);
    expect(() => createClusterClient({ kubeconfigPath: kubeconfig, context: 'missing' })).toThrow(
      'has no context "missing"',
    );
  });
});
