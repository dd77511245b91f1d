import { randomUUID } from 'node:crypto';
import type { TokenCredential } from '@azure/core-auth';
import { DefaultAzureCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AKS_SERVER_SCOPE,
  aksClusterAccess,
  aksTokenProvider,
  discoverAksCluster,
} from '../../../adapters/azure/aks.js';
import { type AzureClients, createAzureClients } from '../../../adapters/azure/clients.js';
import { SourceError, SpecError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/log.js';
import type { ProviderContext } from '../../../core/provider.js';
import { AKS_AUDIENCE, ARM_AUDIENCE, FakeManagedIdentity } from '../../fakes/azure/entra.js';
import { FakeArm } from '../../fakes/azure/fake-arm.js';
import { FakeKubernetes } from '../../fakes/kubernetes/fake-kubernetes.js';
import { listNodesStatus } from '../../helpers/cluster-auth.js';

// This file owns ports 18011 (fake ARM), 18012 (managed identity endpoint), 18013 (Kubernetes API).
const SUB = '00000000-0000-4000-8000-0000000034a1';

describe('AKS sign-in: Entra tokens from the managed identity, discovery through ARM', () => {
  let arm: FakeArm;
  let mi: FakeManagedIdentity;
  let k8s: FakeKubernetes;
  let credential: TokenCredential;
  let clients: AzureClients;
  const saved = { ...process.env };

  beforeAll(async () => {
    [arm, mi, k8s] = await Promise.all([
      FakeArm.start({ port: 18011 }),
      FakeManagedIdentity.start(18012),
      FakeKubernetes.start({ port: 18013 }),
    ]);
    // What App Service sets for a Function App with a system-assigned identity.
    Object.assign(process.env, mi.env);
    credential = new DefaultAzureCredential();
    // ARM clients with a custom endpoint ask for that endpoint's scope; the others for ARM's.
    arm.acceptToken = (t) =>
      mi.validate(t, ARM_AUDIENCE) !== null || mi.validate(t, arm.url) !== null;
    clients = createAzureClients({ credential, endpoint: arm.url, ca: arm.caPem, maxRetries: 0 });
    arm.managedClusters.add({
      subscriptionId: SUB,
      resourceGroup: 'rg-aks',
      name: 'prod',
      server: k8s.url,
      caPem: k8s.caPem,
    });
    arm.managedClusters.add({
      subscriptionId: SUB,
      resourceGroup: 'rg-aks',
      name: 'local-accounts',
      server: k8s.url,
      caPem: k8s.caPem,
      aad: false,
    });
    arm.managedClusters.add({
      subscriptionId: SUB,
      resourceGroup: 'rg-aks',
      name: 'private',
      server: 'https://private-abc.privatelink.westeurope.azmk8s.io:443',
      privateFqdn: 'private-abc.privatelink.westeurope.azmk8s.io',
      privateCluster: true,
      caPem: k8s.caPem,
    });
    k8s.setAuthenticator(mi.aksAuthenticator(['lbsync:syncers']));
    k8s.grant({ group: 'lbsync:syncers' }, [
      { apiGroups: [''], resources: ['nodes'], verbs: ['list'] },
    ]);
    k8s.objects.addNode({ name: 'aks-node-1', internalIP: '10.224.0.4' });
  });

  afterAll(async () => {
    process.env = saved;
    await Promise.all([arm?.stop(), mi?.stop(), k8s?.stop()]);
  });

  const context = (spec: Record<string, unknown>): ProviderContext => ({
    spec: spec as unknown as ProviderContext['spec'],
    env: {},
    logger: silentLogger(),
    scripts: async () => ({ apply: '', drain: '' }),
    tuning: { azure: { clients } },
    onClose: () => {},
  });
  const vmssSpec = {
    workers: { source: 'azure-vmss', subscriptionId: SUB, scaleSets: [] },
    loadBalancers: { transport: 'azure-run-command', vms: [] },
  };

  /** The HTTP status the cluster answers a node list made with `token`. */
  const statusWith = (token: string): Promise<number> => listNodesStatus(k8s, token);

  it('asks the managed identity endpoint for the AKS server application, and the cluster accepts the token', async () => {
    // Act
    const grant = await aksTokenProvider(credential)();

    // Assess
    expect(mi.requests.at(-1)).toEqual({ resource: AKS_AUDIENCE, status: 200 });
    expect(grant.expiresAt).toBeGreaterThan(Date.now() + 23 * 3_600_000);
    expect(await statusWith(grant.token)).toBe(200);
    expect(AKS_SERVER_SCOPE).toBe(`${AKS_AUDIENCE}/.default`);
  });

  it('refuses an Entra token for another audience (ARM)', async () => {
    const armToken = await credential.getToken(`${ARM_AUDIENCE}/.default`);
    expect(await statusWith(armToken?.token ?? '')).toBe(401);
  });

  it('discovers the API server from the managed cluster and its CA from the user kubeconfig', async () => {
    // Act
    const grant = await aksClusterAccess(
      { cluster: { aks: { resourceGroup: 'rg-aks', name: 'prod' } } },
      context(vmssSpec),
    );

    // Assess: the subscription came from the workers; the token is a fresh AKS one.
    expect(grant.endpoint).toBe(k8s.url);
    expect(grant.caPem).toBe(k8s.caPem);
    const paths = arm.requests.map((r) => `${r.method} ${r.path}`);
    expect(paths).toEqual(
      expect.arrayContaining([
        `GET /subscriptions/${SUB}/resourcegroups/rg-aks/providers/microsoft.containerservice/managedclusters/prod`,
        `POST /subscriptions/${SUB}/resourcegroups/rg-aks/providers/microsoft.containerservice/managedclusters/prod/listclusterusercredential`,
      ]),
    );
    expect(await statusWith((await grant.tokenProvider()).token)).toBe(200);
  });

  it("uses a private cluster's private FQDN", async () => {
    const found = await discoverAksCluster(
      await clients.containerService(SUB),
      'rg-aks',
      'private',
    );
    expect(found.endpoint).toBe('https://private-abc.privatelink.westeurope.azmk8s.io:443');
  });

  it('says which cluster is missing, and that a cluster without Entra integration cannot be used; neither is retried', async () => {
    const ctx = context(vmssSpec);
    const missing = await aksClusterAccess(
      { cluster: { aks: { resourceGroup: 'rg-aks', name: 'nope' } } },
      ctx,
    ).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(SourceError);
    expect(missing).toMatchObject({ retryable: false });
    expect((missing as Error).message).toMatch(/AKS cluster rg-aks\/nope not found/);
    const local = await aksClusterAccess(
      { cluster: { aks: { resourceGroup: 'rg-aks', name: 'local-accounts' } } },
      ctx,
    ).catch((e: unknown) => e);
    expect(local).toMatchObject({ name: 'SourceError', retryable: false });
    expect((local as Error).message).toMatch(/no Microsoft Entra ID integration/);
  });

  it('signs in to a given endpoint with the same identity, and refuses other clouds’ clusters', async () => {
    const ctx = context(vmssSpec);
    const grant = await aksClusterAccess({ endpoint: { url: k8s.url, caPem: k8s.caPem } }, ctx);
    expect(grant.endpoint).toBe(k8s.url);
    expect(await statusWith((await grant.tokenProvider()).token)).toBe(200);
    const eks = await aksClusterAccess({ cluster: { eks: { name: 'x' } } }, ctx).catch(
      (e: unknown) => e,
    );
    expect(eks).toBeInstanceOf(SpecError);
  });

  it('fails retryable when the managed identity endpoint does not answer with a token', async () => {
    mi.fail(1, 403);
    // MSAL caches tokens per identity across credential objects: ask as another (user-assigned) one.
    const fresh = new DefaultAzureCredential({ managedIdentityClientId: randomUUID() });
    const err = await aksTokenProvider(fresh)().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect(err).toMatchObject({ retryable: true });
    expect((err as Error).message).toMatch(/cannot get a Microsoft Entra token for AKS/);
  });

  // Last: the identity's cached AKS token stays expired for the rest of the file.
  it('refuses an AKS token that expired, though the credential still holds it', async () => {
    const t = await aksTokenProvider(credential)();
    mi.expireIssued(AKS_AUDIENCE);
    expect(await statusWith(t.token)).toBe(401);
    expect((await aksTokenProvider(credential)()).token).toBe(t.token);
  });
});
