import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GoogleAuth } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLOUD_PLATFORM_SCOPE,
  discoverGkeCluster,
  gkeClusterAccess,
  gkeTokenProvider,
} from '../../../adapters/gcp/gke.js';
import { SourceError, SpecError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/log.js';
import type { ProviderContext } from '../../../core/provider.js';
import { FakeCompute } from '../../fakes/gcp/compute.js';
import { FakeGoogleIdentity } from '../../fakes/gcp/identity.js';
import { FakeKubernetes } from '../../fakes/kubernetes/fake-kubernetes.js';
import { listNodesStatus } from '../../helpers/cluster-auth.js';

// This file owns ports 18021 (Google APIs fake), 18022 (metadata server), 18023 (Kubernetes API).
const PROJECT = 'lbsync-gke-unit';
const SA = 'lbsync-fn@lbsync-gke-unit.iam.gserviceaccount.com';

describe('GKE sign-in: ADC tokens from the metadata server, discovery with clusters.get', () => {
  let google: FakeCompute;
  let identity: FakeGoogleIdentity;
  let k8s: FakeKubernetes;
  let gcloudDir: string;
  const saved = { ...process.env };

  beforeAll(async () => {
    [google, identity, k8s] = await Promise.all([
      FakeCompute.start(18021),
      FakeGoogleIdentity.start(18022, { project: PROJECT, email: SA }),
      FakeKubernetes.start({ port: 18023 }),
    ]);
    // ADC as on Cloud Functions: no key file, no gcloud login, a metadata server.
    gcloudDir = mkdtempSync(join(tmpdir(), 'lbsync-gke-unit-'));
    delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    Object.assign(process.env, { GCE_METADATA_HOST: identity.host, CLOUDSDK_CONFIG: gcloudDir });
    google.acceptToken = (t) => identity.validate(t) !== null;
    const k8sHost = new URL(k8s.url).host;
    google.gkeClusters.add({
      project: PROJECT,
      location: 'europe-west1',
      name: 'prod',
      endpoint: k8sHost,
      caPem: k8s.caPem,
    });
    google.gkeClusters.add({
      project: PROJECT,
      location: 'europe-west1',
      name: 'private',
      privateEndpoint: '10.8.0.2',
      caPem: k8s.caPem,
    });
    google.gkeClusters.add({
      project: PROJECT,
      location: 'europe-west1-b',
      name: 'new',
      status: 'PROVISIONING',
      caPem: k8s.caPem,
    });
    k8s.setAuthenticator(identity.gkeAuthenticator());
    k8s.grant({ user: SA }, [{ apiGroups: [''], resources: ['nodes'], verbs: ['list'] }]);
    k8s.objects.addNode({ name: 'gke-node-1', internalIP: '10.132.0.2' });
  });

  afterAll(async () => {
    process.env = saved;
    await Promise.all([google?.stop(), identity?.stop(), k8s?.stop()]);
    rmSync(gcloudDir, { recursive: true, force: true });
  });

  const containerEndpoint = (): string => `http://127.0.0.1:${google.port}`;
  const context = (spec: Record<string, unknown>): ProviderContext => ({
    spec: spec as unknown as ProviderContext['spec'],
    env: {},
    logger: silentLogger(),
    scripts: async () => ({ apply: '', drain: '' }),
    tuning: { gcp: { containerEndpoint: containerEndpoint() } },
    onClose: () => {},
  });
  const migSpec = {
    workers: { source: 'gcp-mig', project: PROJECT, groups: [] },
    loadBalancers: { transport: 'gcp-metadata', instances: [] },
  };
  const adc = (): GoogleAuth =>
    new GoogleAuth({ scopes: [CLOUD_PLATFORM_SCOPE], projectId: PROJECT });

  /** The HTTP status the cluster answers a node list made with `token`. */
  const statusWith = (token: string): Promise<number> => listNodesStatus(k8s, token);

  it("gets the service account's access token from the metadata server, and the cluster accepts it as its email", async () => {
    // Act
    const grant = await gkeTokenProvider(adc())();

    // Assess
    expect(identity.requests.map((r) => r.path)).toContain(
      '/computeMetadata/v1/instance/service-accounts/default/token',
    );
    expect(grant.expiresAt).toBeGreaterThan(Date.now() + 50 * 60_000);
    expect(await statusWith(grant.token)).toBe(200);
    expect(k8s.requests.at(-1)?.user).toBe(SA);
  });

  it('refuses a token the metadata server did not issue, and one that expired', async () => {
    expect(await statusWith('ya29.forged')).toBe(401);
    const fresh = await gkeTokenProvider(adc())();
    identity.expireIssued();
    expect(await statusWith(fresh.token)).toBe(401);
  });

  it('discovers endpoint and CA with clusters.get, in the workers’ project, with the same identity', async () => {
    // Act
    const grant = await gkeClusterAccess(
      { cluster: { gke: { name: 'prod', location: 'europe-west1' } } },
      context(migSpec),
    );

    // Assess
    expect(grant.endpoint).toBe(k8s.url);
    expect(grant.caPem).toBe(k8s.caPem);
    expect(google.requests.at(-1)).toMatchObject({
      method: 'GET',
      path: `/v1/projects/${PROJECT}/locations/europe-west1/clusters/prod`,
      status: 200,
    });
    expect(await statusWith((await grant.tokenProvider()).token)).toBe(200);
  });

  it("takes the project from ADC when the spec names none, and a private cluster's private endpoint", async () => {
    const ctx = context({ workers: { source: 'static' }, loadBalancers: { transport: 'local' } });
    const grant = await gkeClusterAccess(
      { cluster: { gke: { name: 'private', location: 'europe-west1' } } },
      ctx,
    );
    expect(grant.endpoint).toBe('https://10.8.0.2');
  });

  it('says which cluster is missing (not retried) and retries one still provisioning', async () => {
    const missing = await discoverGkeCluster(
      adc(),
      { project: PROJECT, location: 'europe-west1', name: 'nope' },
      { apiEndpoint: containerEndpoint() },
    ).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(SourceError);
    expect(missing).toMatchObject({ retryable: false });
    expect((missing as Error).message).toMatch(
      /GKE cluster projects\/lbsync-gke-unit\/locations\/europe-west1\/clusters\/nope not found/,
    );
    const provisioning = await discoverGkeCluster(
      adc(),
      { project: PROJECT, location: 'europe-west1-b', name: 'new' },
      { apiEndpoint: containerEndpoint() },
    ).catch((e: unknown) => e);
    expect(provisioning).toMatchObject({ name: 'SourceError', retryable: true });
    expect((provisioning as Error).message).toMatch(/no API endpoint yet \(status PROVISIONING\)/);
  });

  it('signs in to a given endpoint with the same identity, and refuses other clouds’ clusters', async () => {
    const ctx = context(migSpec);
    const grant = await gkeClusterAccess({ endpoint: { url: k8s.url, caPem: k8s.caPem } }, ctx);
    expect(grant.endpoint).toBe(k8s.url);
    expect(await statusWith((await grant.tokenProvider()).token)).toBe(200);
    const aks = await gkeClusterAccess(
      { cluster: { aks: { resourceGroup: 'rg', name: 'x' } } },
      ctx,
    ).catch((e: unknown) => e);
    expect(aks).toBeInstanceOf(SpecError);
  });

  it('fails retryable when the metadata server does not hand out a token', async () => {
    identity.fail(1, 403);
    const err = await gkeTokenProvider(adc())().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect(err).toMatchObject({ retryable: true });
    expect((err as Error).message).toMatch(/cannot get a Google access token for GKE/);
  });
});
