import type { ContainerServiceClient } from '@azure/arm-containerservice';
import type { TokenCredential } from '@azure/core-auth';
import { parse } from 'yaml';
import { errorMessage, SourceError, SpecError } from '../../core/errors.js';
import type { ProviderContext } from '../../core/provider.js';
import { azureClientsFor } from './factory.js';
import type { RunCommandTransportSpec, VmssSourceSpec } from './provider.js';

/*
 * How the Azure function reaches an AKS cluster with its own identity: a
 * Microsoft Entra access token for the AKS server application (what
 * kubelogin's `-l msi` and `azurecli` modes fetch), from the same credential
 * the ARM clients use (DefaultAzureCredential: the Function App's managed
 * identity). Discovery reads the managed cluster (its FQDN or private FQDN,
 * and whether Entra integration is on) and the CA from the kubeconfig of
 * listClusterUserCredential, which carries certificate-authority-data.
 * The cluster must use AKS-managed Entra ID integration; local accounts
 * are never used.
 *
 * Types from other folders are structural: cloud folders never import the
 * Kubernetes adapter (adapters/kubernetes/factory.ts `ClusterAccess`).
 */

/** The AKS server application (the same id in every tenant), as a token scope. */
export const AKS_SERVER_SCOPE = '6dae42f8-4368-4678-94ff-3960e28e3630/.default';

/** A bearer token and when it stops working (epoch ms). */
export interface AksTokenGrant {
  readonly token: string;
  readonly expiresAt: number;
}

/** Entra tokens for the AKS server application from `credential` (it caches and renews them). */
export function aksTokenProvider(
  credential: TokenCredential,
): (signal?: AbortSignal) => Promise<AksTokenGrant> {
  return async (signal) => {
    let t: Awaited<ReturnType<TokenCredential['getToken']>>;
    try {
      t = await credential.getToken(
        AKS_SERVER_SCOPE,
        signal === undefined ? {} : { abortSignal: signal },
      );
    } catch (err) {
      // Usually the managed identity endpoint: not there yet, or throttling.
      throw new SourceError(`cannot get a Microsoft Entra token for AKS: ${errorMessage(err)}`, {
        cause: err,
        retryable: true,
      });
    }
    if (t === null) {
      throw new SourceError('the Azure credential returned no token for AKS', { retryable: true });
    }
    return { token: t.token, expiresAt: t.expiresOnTimestamp };
  };
}

/** The cluster's API server URL and CA. */
export interface AksClusterEndpoint {
  readonly endpoint: string;
  readonly caPem: string;
}

interface KubeconfigCluster {
  readonly cluster?: { readonly server?: string; readonly 'certificate-authority-data'?: string };
}

/**
 * The API server of managed cluster `resourceGroup/name`: its private FQDN
 * for a private cluster, else its FQDN, at the URL the cluster's own user
 * kubeconfig names for that host (https://<fqdn>:443), with that
 * kubeconfig's CA.
 */
export async function discoverAksCluster(
  client: ContainerServiceClient,
  resourceGroup: string,
  name: string,
  signal?: AbortSignal,
): Promise<AksClusterEndpoint> {
  const what = `AKS cluster ${resourceGroup}/${name}`;
  const opts = signal === undefined ? {} : { abortSignal: signal };
  let mc: Awaited<ReturnType<ContainerServiceClient['managedClusters']['get']>>;
  let kubeconfigs: Awaited<
    ReturnType<ContainerServiceClient['managedClusters']['listClusterUserCredentials']>
  >['kubeconfigs'];
  try {
    mc = await client.managedClusters.get(resourceGroup, name, opts);
    ({ kubeconfigs } = await client.managedClusters.listClusterUserCredentials(
      resourceGroup,
      name,
      opts,
    ));
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    throw new SourceError(
      status === 404
        ? `${what} not found: check kubernetes.cluster.aks (subscriptionId, resourceGroup, name)`
        : `reading ${what} failed: ${errorMessage(err)}`,
      {
        cause: err,
        retryable: status === undefined || status === 408 || status === 429 || status >= 500,
      },
    );
  }
  if (mc.aadProfile === undefined) {
    throw new SourceError(
      `${what} has no Microsoft Entra ID integration (aadProfile): the function signs in with Entra tokens; enable AKS-managed Entra ID, or give a kubeconfig`,
      { retryable: false },
    );
  }
  const host =
    mc.apiServerAccessProfile?.enablePrivateCluster === true && mc.privateFqdn
      ? mc.privateFqdn
      : (mc.fqdn ?? mc.privateFqdn);
  if (host === undefined || host === '') {
    throw new SourceError(
      `${what} has no API server FQDN yet (provisioning ${mc.provisioningState ?? 'unknown'})`,
      { retryable: true },
    );
  }
  const clusters: KubeconfigCluster[] = [];
  for (const k of kubeconfigs ?? []) {
    if (k.value === undefined) continue;
    const doc = parse(Buffer.from(k.value).toString('utf8')) as {
      clusters?: KubeconfigCluster[];
    } | null;
    clusters.push(...(doc?.clusters ?? []));
  }
  const entry =
    clusters.find((c) => hostOf(c.cluster?.server) === host.toLowerCase()) ?? clusters[0];
  const caData = entry?.cluster?.['certificate-authority-data'];
  if (caData === undefined || caData === '') {
    throw new SourceError(`${what}: its user kubeconfig carries no certificate-authority-data`, {
      retryable: false,
    });
  }
  const server = entry?.cluster?.server;
  return {
    endpoint:
      server !== undefined && hostOf(server) === host.toLowerCase()
        ? server
        : `https://${host}:443`,
    caPem: Buffer.from(caData, 'base64').toString('utf8'),
  };
}

function hostOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/** `kubernetes.cluster`, `kubernetes.endpoint` as the Kubernetes adapter asks for them (structural). */
export interface ClusterRequest {
  readonly cluster?: {
    readonly aks?: {
      readonly resourceGroup: string;
      readonly name: string;
      readonly subscriptionId?: string;
    };
    readonly eks?: unknown;
    readonly gke?: unknown;
  };
  readonly endpoint?: { readonly url: string; readonly caPem: string };
}

/** What the Kubernetes adapter connects with (structural: its `ClusterAccessGrant`). */
export interface ClusterGrant {
  readonly endpoint: string;
  readonly caPem: string;
  readonly tokenProvider: (signal?: AbortSignal) => Promise<AksTokenGrant>;
}

/** The cluster's subscription: its own, else the workers' (azure-vmss), else the LBs'. */
function subscriptionOf(
  aks: { readonly subscriptionId?: string },
  ctx: Pick<ProviderContext, 'spec'>,
): string {
  const workers = ctx.spec.workers as Partial<VmssSourceSpec>;
  const lbs = ctx.spec.loadBalancers as Partial<RunCommandTransportSpec>;
  const sub =
    aks.subscriptionId ??
    (workers.source === 'azure-vmss' ? workers.subscriptionId : undefined) ??
    (lbs.transport === 'azure-run-command' ? lbs.subscriptionId : undefined);
  if (sub === undefined) {
    throw new SpecError('spec', [
      'kubernetes.cluster.aks.subscriptionId: required when neither the workers nor the LBs name a subscription',
    ]);
  }
  return sub;
}

/**
 * The Azure function's way into `kubernetes.cluster.aks` (discovered once per
 * runtime, so per cold start) or into `kubernetes.endpoint` (the spec's URL
 * and CA), with Entra tokens from the function's credential.
 */
export async function aksClusterAccess(
  request: ClusterRequest,
  ctx: ProviderContext,
  signal?: AbortSignal,
): Promise<ClusterGrant> {
  const clients = azureClientsFor(ctx);
  const tokenProvider = aksTokenProvider(clients.credential);
  if (request.endpoint !== undefined) {
    return { endpoint: request.endpoint.url, caPem: request.endpoint.caPem, tokenProvider };
  }
  const aks = request.cluster?.aks;
  if (aks === undefined) {
    throw new SpecError('spec', [
      `kubernetes.cluster: the Azure function signs in to AKS clusters only (got ${Object.keys(request.cluster ?? {}).join(', ')})`,
    ]);
  }
  const client = await clients.containerService(subscriptionOf(aks, ctx));
  const found = await discoverAksCluster(client, aks.resourceGroup, aks.name, signal);
  return { ...found, tokenProvider };
}
