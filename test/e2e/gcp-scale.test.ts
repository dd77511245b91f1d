import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateSpec } from '../../adapters/spec.js';
import { memoryLogger } from '../../core/log.js';
import { configureGcpFunction } from '../../functions/gcp.js';
import { type RunningAgent, startAgent } from '../fakes/gcp/agent.js';
import { FakeCompute } from '../fakes/gcp/compute.js';
import { FakeMetadataServer } from '../fakes/gcp/metadata-server.js';
import { BOOT_CONFIG, LbVm } from '../fakes/lb-vm.js';
import { fixtureText } from '../helpers/fixtures.js';

// Ports 24100-24199 belong to this file. The 2,000 workers are never dialled
// (health checks off, no traffic), so their 10.24.x.y addresses are inert.
const COMPUTE_PORT = 24101;
const MD_PORT = 24102;
const PROJECT = 'lbsync-demo';
const ZONES = ['europe-west1-b', 'europe-west1-c', 'europe-west1-d'];
const WORKERS = 2000;
const SERVICES = 10;

describe('GCP at scale: 2,000 workers x 10 services through metadata chunks and the agent', () => {
  let dir: string;
  let compute: FakeCompute;
  let md: FakeMetadataServer;
  let vm: LbVm;
  let agent: RunningAgent;
  const logs: Record<string, unknown>[] = [];
  let configure: (chunkBytes?: number) => void;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-e2e-gcp-scale-'));
    compute = await FakeCompute.start(COMPUTE_PORT);
    compute.addMig({ name: 'web-r', region: 'europe-west1', paginated: true });
    for (let i = 0; i < WORKERS; i++) {
      // GKE-style names: <cluster>-<pool>-<hash>-<suffix>.
      compute.addInstance({
        name: `gke-prod-eu-default-pool-7f3a9c2e-${i.toString(36).padStart(4, '0')}`,
        zone: ZONES[i % ZONES.length] ?? 'europe-west1-b',
        ip: `10.24.${Math.floor(i / 250)}.${(i % 250) + 1}`,
        mig: 'regions/europe-west1/web-r',
      });
    }
    compute.addInstance({ name: 'lb-big', zone: 'europe-west1-b', ip: '10.0.0.99' });
    vm = await LbVm.start('lb-big', join(dir, 'lb-big'), BOOT_CONFIG);
    md = await FakeMetadataServer.start(compute, 'lb-big', MD_PORT);
    agent = await startAgent(vm, md.url);
    configure = (chunkBytes) =>
      configureGcpFunction({
        spec: validateSpec({
          name: 'gcp-scale',
          cloud: 'gcp',
          workers: {
            gcp: { project: PROJECT, groups: [{ name: 'web-r', region: 'europe-west1' }] },
          },
          loadBalancers: { gcp: { instances: [{ name: 'lb-big', zone: 'europe-west1-b' }] } },
          services: Array.from({ length: SERVICES }, (_, i) => ({
            name: `svc${i}`,
            bind: `127.0.0.1:${24110 + i}`,
            nodePort: 30100 + i,
          })),
          healthCheck: { enabled: false },
          tuning: { maxconn: 4000 },
          lbApply: { reload: 'master-socket' },
        }),
        logger: memoryLogger(logs),
        tuning: {
          gcp: {
            clientOptions: compute.clientOptions(),
            agentTimeoutMs: 60_000,
            pollMs: 200,
            ...(chunkBytes ? { chunkBytes } : {}),
          },
        },
      });
    configure();
  });

  afterAll(async () => {
    await agent?.stop();
    await md?.stop();
    await vm?.stop();
    await compute?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies 20,000 server lines from one audit-log event through metadata, sha256 intact', async () => {
    // Act
    const event = fixtureText('events/gcp/regional-mig-recreate.json');
    await request(getTestServer('lbsyncGcpEvent'))
      .post('/')
      .set('content-type', 'application/cloudevents+json')
      .send(event)
      .expect(204);

    // Assess: the agent's result, the live config, and how it travelled.
    const result = JSON.parse(compute.instance('lb-big').guest.get('lbsync/result') ?? '{}');
    expect(result).toMatchObject({ result: 'applied', servers: WORKERS * SERVICES });
    const live = readFileSync(vm.configPath, 'utf8');
    expect(live.split('\n').filter((l) => /^\s+server /.test(l))).toHaveLength(WORKERS * SERVICES);
    expect(createHash('sha256').update(live).digest('hex')).toBe(result.sha256);
    // Measured: ~132 KB of payload (~1 MB of config, gzip -9, base64): one
    // 256 KiB value holds it; bigger fleets or less regular names split further.
    const render = logs.find((l) => l.stage === 'render');
    expect(render?.payloadBytes).toBeGreaterThan(100_000);
    const chunks = Math.ceil(Number(render?.payloadBytes) / 262_144);
    const keys = compute.instance('lb-big').items.map((i) => i.key);
    expect(keys.filter((k) => k.startsWith('lbsync-payload-'))).toHaveLength(chunks);
    for (const it of compute.instance('lb-big').items) {
      expect(Buffer.byteLength(it.value)).toBeLessThanOrEqual(262_144);
    }
    // Membership in 4 pages, IPs in batches: about 20 list calls, not 2,000 gets.
    expect(compute.count(/listManagedInstances$/)).toBe(4);
    expect(compute.count(/zones\/[^/]+\/instances$/, 'GET')).toBeLessThanOrEqual(25);
    expect(compute.count(/instances\/gke-[^/]+$/, 'GET')).toBe(0);
  });

  it('reassembles a payload split over several 32 KiB chunk keys after a scale-in', async () => {
    // Prepare: smaller chunks force the multi-key path; 10 instances leave.
    configure(32 * 1024);
    for (let i = 0; i < 10; i++)
      compute.deleteInstance(
        `gke-prod-eu-default-pool-7f3a9c2e-${i.toString(36).padStart(4, '0')}`,
      );
    // Act
    const res = await request(getTestServer('lbsyncGcpResync'))
      .post('/')
      .set('authorization', 'Bearer id-token')
      .send({ lbsync: 'resync' });
    // Assess
    expect(res.status, JSON.stringify(res.body.results)).toBe(200);
    expect(res.body.results[0].outcome).toBe('applied');
    const keys = compute.instance('lb-big').items.map((i) => i.key);
    expect(keys.filter((k) => k.startsWith('lbsync-payload-')).length).toBeGreaterThanOrEqual(4);
    const live = readFileSync(vm.configPath, 'utf8');
    expect(live.split('\n').filter((l) => /^\s+server /.test(l))).toHaveLength(
      (WORKERS - 10) * SERVICES,
    );
  });
});
