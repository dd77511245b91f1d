import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  closeGcpClients,
  createGcpClients,
  type GcpClients,
} from '../../../adapters/gcp/clients.js';
import { layoutPayload } from '../../../adapters/gcp/metadata.js';
import { MetadataTransport } from '../../../adapters/gcp/transport.js';
import { TransportError } from '../../../core/errors.js';
import { encodePayload } from '../../../core/payload.js';
import { FakeCompute } from '../../fakes/gcp/compute.js';

// Port 24203 belongs to this file. No agent runs here: these are the cases
// decided before or without one (the agent cases are in test/e2e/gcp.test.ts).
const PORT = 24203;
const APPLY = {
  configPath: '/etc/haproxy/haproxy.cfg',
  stateDir: '/var/lib/lbsync',
  reload: 'auto' as const,
  masterSocket: '/run/haproxy-master.sock',
};

describe('MetadataTransport against the Compute fake', () => {
  let compute: FakeCompute;
  let clients: GcpClients;
  const transport = (agentTimeoutMs = 300): MetadataTransport =>
    new MetadataTransport({
      project: 'lbsync-demo',
      instances: [{ name: 'lb-1', zone: 'europe-west1-b' }],
      clients,
      apply: APPLY,
      agentTimeoutMs,
      pollMs: 50,
      fingerprintAttempts: 3,
      retry: { attempts: 2, baseMs: 10 },
    });

  beforeAll(async () => {
    compute = await FakeCompute.start(PORT);
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'fake-token', expiry_date: Date.now() + 3_600_000 });
    clients = createGcpClients({
      apiEndpoint: '127.0.0.1',
      port: PORT,
      protocol: 'http',
      authClient,
    });
  });

  afterAll(async () => {
    await closeGcpClients(clients);
    await compute.stop();
  });

  beforeEach(() => {
    compute.clearFaults();
    compute.deleteInstance('lb-1');
    compute.addInstance({
      name: 'lb-1',
      zone: 'europe-west1-b',
      ip: '10.0.0.1',
      items: [{ key: 'ssh-keys', value: 'ops:key' }],
    });
  });

  it("reports each LB's internal IP, read once and then kept from the transport's own reads", async () => {
    // Act
    const t = transport();
    const gets = compute.count(/instances\/lb-1$/, 'GET');
    const first = await t.targets();
    const again = await t.targets();

    // Assess
    expect(first).toEqual([{ id: 'lb-1', address: '10.0.0.1' }]);
    expect(again).toEqual(first);
    expect(compute.count(/instances\/lb-1$/, 'GET') - gets).toBe(1);
  });

  it('leaves the address out, not the LB, when the instance cannot be read', async () => {
    compute.fail(503, /instances\/lb-1$/, 1, 'GET');
    expect(await transport().targets()).toEqual([{ id: 'lb-1' }]);
  });

  it('reports a VM whose agent never published as having nothing applied', async () => {
    expect(await transport().status({ id: 'lb-1' })).toEqual({
      generation: 0,
      sha256: null,
      servers: 0,
    });
  });

  it('answers stale, without writing, when metadata already holds a newer generation', async () => {
    // Prepare: a newer sync got there first.
    const newer = layoutPayload(encodePayload('global\n', 2000, 0), APPLY);
    compute.writeMetadata('lb-1', [{ key: 'ssh-keys', value: 'ops:key' }, ...newer.items]);
    const writes = compute.count(/setMetadata$/);
    // Act
    const r = await transport().apply({ id: 'lb-1' }, encodePayload('global\n', 1000, 0));
    // Assess
    expect(r).toMatchObject({ result: 'stale', generation: 1000 });
    expect(r.message).toMatch(/already holds generation 2000/);
    expect(compute.count(/setMetadata$/)).toBe(writes);
  });

  it('times out, not retryably, when no agent reports; the payload stays in metadata', async () => {
    const err = await transport(300)
      .apply({ id: 'lb-1' }, encodePayload('global\n', 3000, 0))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).retryable).toBe(false);
    expect((err as Error).message).toMatch(/agent on lb-1 did not report generation 3000/);
    expect(compute.instance('lb-1').items.map((i) => i.key)).toEqual([
      'ssh-keys',
      'lbsync-manifest',
      'lbsync-payload-0',
    ]);
  });

  it('gives up with a retryable error when every setMetadata meets a stale fingerprint', async () => {
    compute.concurrentMetadataWriter('lb-1', 10);
    const err = await transport()
      .apply({ id: 'lb-1' }, encodePayload('global\n', 4000, 0))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).retryable).toBe(true);
    expect((err as Error).message).toMatch(/HTTP 412.*after 3 attempts/);
  });

  it('refuses, permanently and before writing, a payload the metadata limits cannot hold', async () => {
    compute.writeMetadata('lb-1', [{ key: 'startup-script', value: 'x'.repeat(200_000) }]);
    const huge = { generation: 5000, sha256: 'x', servers: 0, text: 'a'.repeat(400_000) };
    const writes = compute.count(/setMetadata$/);
    const err = await transport()
      .apply({ id: 'lb-1' }, huge)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).retryable).toBe(false);
    expect((err as Error).message).toMatch(/does not fit lb-1's metadata/);
    expect(compute.count(/setMetadata$/)).toBe(writes);
  });
});
