import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import { validateSpec } from '../../adapters/spec.js';
import { memoryLogger } from '../../core/log.js';
import { configureGcpFunction } from '../../functions/gcp.js';
import { type RunningAgent, startAgent } from '../fakes/gcp/agent.js';
import { FakeCompute } from '../fakes/gcp/compute.js';
import { FakeGoogleIdentity } from '../fakes/gcp/identity.js';
import { FakeMetadataServer } from '../fakes/gcp/metadata-server.js';
import { FakeKubernetes } from '../fakes/kubernetes/fake-kubernetes.js';
import { BOOT_CONFIG, LbVm } from '../fakes/lb-vm.js';
import {
  type ClusterHarness,
  clusterScenario,
  errorLines,
  LBSYNC_RULES,
} from '../helpers/kubernetes-scenario.js';

// Ports 18300-18399 and workers on 127.0.36.x belong to this file.
const GOOGLE_PORT = 18301;
const IDENTITY_PORT = 18302;
const API_PORT = 18303;
const LB_METADATA_PORT = 18304;
const SERVICE_PORT = 18380;
const NODE_PORT = 31361;
const HEALTH = 10256;
// The project, zone and MIG the audit-log fixture names.
const PROJECT = 'lbsync-demo';
const ZONE = 'europe-west1-b';
const SA = `lbsync-fn@${PROJECT}.iam.gserviceaccount.com`;
const LB_IP = '10.0.36.10';
const FIXTURE = join(import.meta.dirname, '../fixtures/events/gcp/mig-resize.json');

describe('GKE: audit-log event -> Cloud Function -> ADC token -> cluster API -> metadata + agent -> HAProxy -> Service status', () => {
  let dir: string;
  let google: FakeCompute;
  let identity: FakeGoogleIdentity;
  let k8s: FakeKubernetes;
  let lbMetadata: FakeMetadataServer;
  let agent: RunningAgent;
  let lb: LbVm;
  const logs: Record<string, unknown>[] = [];
  const nodes: { node: string; worker: string; server: WorkerServer }[] = [];
  const saved = { ...process.env };
  let h: ClusterHarness;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-e2e-k8s-gcp-'));
    [google, identity, k8s] = await Promise.all([
      FakeCompute.start(GOOGLE_PORT),
      FakeGoogleIdentity.start(IDENTITY_PORT, { project: PROJECT, email: SA }),
      FakeKubernetes.start({ port: API_PORT }),
    ]);
    google.addMig({ name: 'web-a', zone: ZONE });
    google.addInstance({
      name: 'lb-gke',
      zone: ZONE,
      ip: LB_IP,
      items: [{ key: 'ssh-keys', value: 'ops:ssh-ed25519 AAAA ops' }],
    });
    lb = await LbVm.start('lb-gke', join(dir, 'lb'), BOOT_CONFIG);
    lbMetadata = await FakeMetadataServer.start(google, 'lb-gke', LB_METADATA_PORT);
    agent = await startAgent(lb, lbMetadata.url);
    // The cluster: clusters.get knows its endpoint and CA; its API server takes the service
    // account's live access tokens (as its email), and RBAC binds that user.
    google.gkeClusters.add({
      project: PROJECT,
      location: 'europe-west1',
      name: 'prod',
      endpoint: new URL(k8s.url).host,
      caPem: k8s.caPem,
    });
    k8s.setAuthenticator(identity.gkeAuthenticator());
    // The Google APIs fake takes Compute's static test token and the service account's.
    google.acceptToken = (t) => t === 'fake-token' || identity.validate(t) !== null;
    k8s.grant({ user: SA }, LBSYNC_RULES);
    for (const n of [1, 2, 3]) {
      const worker = `web-a-w${n}`;
      const address = `127.0.36.${10 + n}`;
      const server = await startWorkerServer({
        id: worker,
        address,
        ports: [NODE_PORT],
        healthPort: HEALTH,
        delayMs: n === 3 ? 800 : 0,
      });
      google.addInstance({ name: worker, zone: ZONE, ip: address, mig: `zones/${ZONE}/web-a` });
      k8s.objects.addNode({
        name: worker,
        internalIP: address,
        providerID: `gce://${PROJECT}/${ZONE}/${worker}`,
      });
      nodes.push({ node: worker, worker, server });
    }
    // ADC as on Cloud Functions: no key file, no gcloud login, the metadata server.
    delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    Object.assign(process.env, { GCE_METADATA_HOST: identity.host, CLOUDSDK_CONFIG: dir });
    configureGcpFunction({
      spec: validateSpec({
        name: 'e2e-k8s-gcp',
        workers: { source: 'gcp-mig', project: PROJECT, groups: [{ name: 'web-a', zone: ZONE }] },
        loadBalancers: { transport: 'gcp-metadata', instances: [{ name: 'lb-gke', zone: ZONE }] },
        kubernetes: {
          cluster: { gke: { name: 'prod', location: 'europe-west1' } },
          bindAddress: '127.0.0.1',
        },
        healthCheck: { port: HEALTH, interval: '1s', rise: 1, fall: 1 },
        guards: { minWorkers: 1, maxRemovalPercent: 50 },
        drain: { seconds: 5 },
        lbApply: { reload: 'master-socket' },
        tuning: { maxconn: 4000 },
      }),
      logger: memoryLogger(logs),
      tuning: {
        gcp: {
          // Compute with the fake's static token (as the other GCP tests); GKE with ADC.
          clientOptions: google.clientOptions(),
          containerEndpoint: `http://127.0.0.1:${google.port}`,
          agentTimeoutMs: 30_000,
          pollMs: 100,
          retry: { attempts: 4, baseMs: 50 },
        },
      },
    });
    const event = readFileSync(FIXTURE, 'utf8');
    h = {
      k8s,
      nodes,
      port: SERVICE_PORT,
      nodePort: NODE_PORT,
      ingress: LB_IP,
      clusterUser: SA,
      lbConfig: () => readFileSync(lb.configPath, 'utf8'),
      async sync() {
        const from = logs.length;
        const res = await request(getTestServer('lbsyncGcpEvent'))
          .post('/')
          .set('content-type', 'application/cloudevents+json')
          .send(event);
        // 2xx acknowledges the event; anything else makes Eventarc redeliver it.
        return { redelivered: res.status >= 300, errors: errorLines(logs, from) };
      },
      // The token the function's client holds is past its expiry in the cluster's eyes; the
      // client still caches it, so asking again hands back the same token.
      refuseTokens: () => identity.expireIssued(),
    };
  });

  afterAll(async () => {
    process.env = saved;
    await agent?.stop();
    await lb?.stop();
    await Promise.all([
      google?.stop(),
      identity?.stop(),
      k8s?.stop(),
      lbMetadata?.stop(),
      ...nodes.map((n) => n.server.close()),
    ]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('discovers the cluster with clusters.get once and signs in with the service account’s token', async () => {
    // Act: the cold start and a first run (no Service yet).
    const out = await h.sync();

    // Assess
    expect(out).toEqual({ redelivered: false, errors: [] });
    const gets = (): number => google.count(/\/clusters\/prod$/, 'GET');
    expect(gets()).toBe(1);
    expect(identity.requests.map((r) => r.path)).toContain(
      '/computeMetadata/v1/instance/service-accounts/default/token',
    );
    await h.sync();
    expect(gets()).toBe(1);
  });

  clusterScenario(() => h);
});
