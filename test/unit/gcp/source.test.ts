import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  closeGcpClients,
  createGcpClients,
  type GcpClients,
} from '../../../adapters/gcp/clients.js';
import { type MigRef, MigSource, memberRole } from '../../../adapters/gcp/source.js';
import { InputError, SourceError } from '../../../core/errors.js';
import { canonicalWorkers } from '../../../core/render.js';
import { FakeCompute } from '../../fakes/gcp/compute.js';

// Port 24201 belongs to this file.
const PORT = 24201;
const PROJECT = 'lbsync-demo';

describe('memberRole', () => {
  it.each([
    { action: 'NONE', status: 'RUNNING', role: 'serving' },
    { action: 'NONE', status: 'STOPPED', role: 'skip' },
    { action: 'CREATING', status: 'PROVISIONING', role: 'skip' },
    { action: 'CREATING_WITHOUT_RETRIES', status: 'STAGING', role: 'skip' },
    { action: 'DELETING', status: 'RUNNING', role: 'draining' },
    { action: 'ABANDONING', status: 'RUNNING', role: 'draining' },
    { action: 'RECREATING', status: 'RUNNING', role: 'draining' },
    { action: 'VERIFYING', status: 'RUNNING', role: 'draining' },
  ])('treats $action/$status as $role', ({ action, status, role }) => {
    expect(memberRole(action, status)).toBe(role);
  });
});

describe('MigSource against the Compute fake', () => {
  let compute: FakeCompute;
  let clients: GcpClients;
  const fast = { attempts: 3, baseMs: 10 };

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
    compute.addMig({ name: 'web-a', zone: 'europe-west1-b' });
    compute.addMig({ name: 'web-r', region: 'europe-west1', paginated: true });
    const a = 'zones/europe-west1-b/web-a';
    compute.addInstance({ name: 'web-a-1', zone: 'europe-west1-b', ip: '10.1.0.1', mig: a });
    compute.addInstance({
      name: 'web-a-2',
      zone: 'europe-west1-b',
      ip: '10.1.0.2',
      mig: a,
      currentAction: 'DELETING',
    });
    compute.addInstance({
      name: 'web-a-3',
      zone: 'europe-west1-b',
      ip: '10.1.0.3',
      mig: a,
      currentAction: 'CREATING',
      status: 'PROVISIONING',
    });
    compute.addInstance({ name: 'other-vm', zone: 'europe-west1-b', ip: '10.9.0.1' });
    for (let i = 0; i < 250; i++) {
      compute.addInstance({
        name: `web-r-${String(i).padStart(3, '0')}`,
        zone: i % 2 === 0 ? 'europe-west1-c' : 'europe-west1-d',
        ip: `10.2.${Math.floor(i / 200)}.${(i % 200) + 1}`,
        mig: 'regions/europe-west1/web-r',
      });
    }
  });

  afterAll(async () => {
    await closeGcpClients(clients);
    await compute.stop();
  });

  beforeEach(() => {
    compute.clearFaults();
    compute.requests.length = 0;
  });

  const source = (
    groups: readonly MigRef[] = [
      { name: 'web-a', zone: 'europe-west1-b' },
      { name: 'web-r', region: 'europe-west1' },
    ],
  ): MigSource => new MigSource({ project: PROJECT, groups, clients, batchSize: 100, retry: fast });

  it('lists zonal and regional MIGs: RUNNING/NONE serve, DELETING drains, CREATING is left out', async () => {
    const workers = await source().resolve();
    expect(workers).toHaveLength(252);
    expect(workers.find((w) => w.id === 'web-a-1')).toEqual({
      id: 'web-a-1',
      address: '10.1.0.1',
      state: 'serving',
      group: 'web-a',
      zone: 'europe-west1-b',
      // The node name GKE gives this instance, so cluster nodes can be matched.
      providerId: 'gce://lbsync-demo/europe-west1-b/web-a-1',
    });
    expect(workers.find((w) => w.id === 'web-a-2')?.state).toBe('draining');
    expect(workers.some((w) => w.id === 'web-a-3' || w.id === 'other-vm')).toBe(false);
    expect(workers.filter((w) => w.group === 'web-r' && w.zone === 'europe-west1-d')).toHaveLength(
      125,
    );
  });

  it('resolves IPs in batches per zone, never one request per instance', async () => {
    await source().resolve();
    // web-a: 1 zone x 1 batch; web-r: 2 zones x 2 batches (125 names each).
    expect(compute.count(/\/zones\/[^/]+\/instances$/, 'GET')).toBe(5);
    expect(compute.count(/\/instances\/[^/]+$/, 'GET')).toBe(0);
    // The PAGINATED regional MIG comes in pages of 500: one page here.
    expect(
      compute.count(/regions\/europe-west1\/instanceGroupManagers\/web-r\/listManagedInstances$/),
    ).toBe(1);
  });

  it('leaves out an instance the MIG lists but the zone no longer has', async () => {
    compute.hideFromInstanceList('web-a-1');
    try {
      const workers = await source([{ name: 'web-a', zone: 'europe-west1-b' }]).resolve();
      expect(workers.map((w) => w.id)).toEqual(['web-a-2']);
    } finally {
      compute.addInstance({
        name: 'web-a-1',
        zone: 'europe-west1-b',
        ip: '10.1.0.1',
        mig: 'zones/europe-west1-b/web-a',
      });
    }
  });

  it('passes what Compute reports on to the core, which refuses the metadata server address', async () => {
    compute.addMig({ name: 'web-odd', zone: 'europe-west1-b' });
    compute.addInstance({
      name: 'web-odd-1',
      zone: 'europe-west1-b',
      ip: '169.254.169.254',
      mig: 'zones/europe-west1-b/web-odd',
    });
    const workers = await source([{ name: 'web-odd', zone: 'europe-west1-b' }]).resolve();
    expect(workers.map((w) => w.address)).toEqual(['169.254.169.254']);
    expect(() => canonicalWorkers(workers)).toThrowError(InputError);
    expect(() => canonicalWorkers(workers)).toThrowError(/metadata server/);
  });

  it('retries throttling and 503s, then succeeds', async () => {
    compute.fail(429, /listManagedInstances$/, 2);
    compute.fail(503, /\/instances$/, 1, 'GET');
    const workers = await source([{ name: 'web-a', zone: 'europe-west1-b' }]).resolve();
    expect(workers).toHaveLength(2);
    expect(compute.requests.filter((r) => r.status === 429)).toHaveLength(2);
  });

  it('gives up on persistent throttling with a retryable SourceError', async () => {
    compute.fail(429, /listManagedInstances$/, 10);
    const err = await source([{ name: 'web-a', zone: 'europe-west1-b' }])
      .resolve()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as SourceError).retryable).toBe(true);
    expect((err as Error).message).toMatch(/zones\/europe-west1-b\/web-a.*HTTP 429/);
  });

  it('reports a MIG that does not exist as a permanent SourceError', async () => {
    const err = await source([{ name: 'nope', zone: 'europe-west1-b' }])
      .resolve()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as SourceError).retryable).toBe(false);
    expect((err as Error).message).toMatch(/HTTP 404/);
  });
});
