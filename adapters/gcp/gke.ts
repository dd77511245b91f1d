import { type AuthClient, GoogleAuth } from 'google-auth-library';
import { errorMessage, SourceError, SpecError } from '../../core/errors.js';
import type { ProviderContext } from '../../core/provider.js';
import { tuningOf } from './factory.js';
import type { MetadataTransportSpec, MigSourceSpec } from './provider.js';

/*
 * How the GCP function reaches a GKE cluster with its own identity: an
 * OAuth access token from Application Default Credentials (on Cloud
 * Functions and Cloud Run, the metadata server's token for the function's
 * service account), which GKE accepts as a bearer token and maps to the
 * account's email for RBAC, as gke-gcloud-auth-plugin does. Discovery is
 * `GET https://container.googleapis.com/v1/projects/<p>/locations/<l>/clusters/<c>`
 * through the same authenticated client: the endpoint and
 * masterAuth.clusterCaCertificate.
 *
 * Types from other folders are structural: cloud folders never import the
 * Kubernetes adapter (adapters/kubernetes/factory.ts `ClusterAccess`).
 */

/** The scope GKE's API server and the Container API accept. */
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
/** The public Container API. */
export const CONTAINER_API = 'https://container.googleapis.com';
// google-auth-library renews a token 5 minutes before its expiry; when the
// client does not say when that is, ask it again after a minute.
const UNKNOWN_EXPIRY_MS = 60_000;

/** A bearer token and when lbsync should ask again (epoch ms). */
export interface GkeTokenGrant {
  readonly token: string;
  readonly expiresAt: number;
}

/**
 * Application Default Credentials for GKE (the function's service account on
 * Cloud Functions). A known project spares ADC its project lookups.
 */
export function gkeAuth(projectId?: string): GoogleAuth {
  return new GoogleAuth({
    scopes: [CLOUD_PLATFORM_SCOPE],
    ...(projectId !== undefined ? { projectId } : {}),
  });
}

async function clientOf(auth: GoogleAuth | AuthClient): Promise<AuthClient> {
  return auth instanceof GoogleAuth ? ((await auth.getClient()) as AuthClient) : auth;
}

/** Access tokens from `auth` (the client caches and renews them). */
export function gkeTokenProvider(
  auth: GoogleAuth | AuthClient,
): (signal?: AbortSignal) => Promise<GkeTokenGrant> {
  return async () => {
    let token: string | null | undefined;
    let client: AuthClient;
    try {
      client = await clientOf(auth);
      ({ token } = await client.getAccessToken());
    } catch (err) {
      // Usually the metadata server: not answering yet, or throttling.
      throw new SourceError(`cannot get a Google access token for GKE: ${errorMessage(err)}`, {
        cause: err,
        retryable: true,
      });
    }
    if (token === null || token === undefined || token === '') {
      throw new SourceError('Application Default Credentials returned no access token for GKE', {
        retryable: true,
      });
    }
    const expiry = client.credentials.expiry_date;
    return {
      token,
      expiresAt: typeof expiry === 'number' ? expiry : Date.now() + UNKNOWN_EXPIRY_MS,
    };
  };
}

/** The cluster's API server URL and CA. */
export interface GkeClusterEndpoint {
  readonly endpoint: string;
  readonly caPem: string;
}

interface GkeCluster {
  readonly status?: string;
  readonly endpoint?: string;
  readonly privateClusterConfig?: { readonly privateEndpoint?: string };
  readonly masterAuth?: { readonly clusterCaCertificate?: string };
}

/**
 * clusters.get: the endpoint (the private endpoint when the cluster has no
 * other) and the cluster CA. `endpoint` is an address, or an address:port
 * (the fake's); the API server is https on it.
 */
export async function discoverGkeCluster(
  auth: GoogleAuth | AuthClient,
  ref: { readonly project: string; readonly location: string; readonly name: string },
  o: { readonly apiEndpoint?: string; readonly signal?: AbortSignal } = {},
): Promise<GkeClusterEndpoint> {
  const what = `GKE cluster projects/${ref.project}/locations/${ref.location}/clusters/${ref.name}`;
  const base = (o.apiEndpoint ?? CONTAINER_API).replace(/\/+$/, '');
  const url = `${base}/v1/projects/${encodeURIComponent(ref.project)}/locations/${encodeURIComponent(ref.location)}/clusters/${encodeURIComponent(ref.name)}`;
  let cluster: GkeCluster;
  try {
    const client = await clientOf(auth);
    const res = await client.request<GkeCluster>({
      url,
      method: 'GET',
      timeout: 30_000,
      ...(o.signal !== undefined ? { signal: o.signal } : {}),
    });
    cluster = res.data;
  } catch (err) {
    const status = (err as { status?: number; response?: { status?: number } }).response?.status;
    throw new SourceError(
      status === 404
        ? `${what} not found: check kubernetes.cluster.gke (project, location, name)`
        : `reading ${what} failed: ${errorMessage(err)}`,
      {
        cause: err,
        retryable: status === undefined || status === 408 || status === 429 || status >= 500,
      },
    );
  }
  const endpoint = cluster.endpoint || cluster.privateClusterConfig?.privateEndpoint;
  const ca = cluster.masterAuth?.clusterCaCertificate;
  if (endpoint === undefined || endpoint === '' || ca === undefined || ca === '') {
    throw new SourceError(
      `${what} has no API endpoint yet (status ${cluster.status ?? 'unknown'})`,
      {
        retryable: cluster.status === 'PROVISIONING' || cluster.status === 'RECONCILING',
      },
    );
  }
  return {
    endpoint: `https://${endpoint}`,
    caPem: Buffer.from(ca, 'base64').toString('utf8'),
  };
}

/** `kubernetes.cluster`, `kubernetes.endpoint` as the Kubernetes adapter asks for them (structural). */
export interface ClusterRequest {
  readonly cluster?: {
    readonly gke?: { readonly name: string; readonly location: string; readonly project?: string };
    readonly eks?: unknown;
    readonly aks?: unknown;
  };
  readonly endpoint?: { readonly url: string; readonly caPem: string };
}

/** What the Kubernetes adapter connects with (structural: its `ClusterAccessGrant`). */
export interface ClusterGrant {
  readonly endpoint: string;
  readonly caPem: string;
  readonly tokenProvider: (signal?: AbortSignal) => Promise<GkeTokenGrant>;
}

/** The cluster's project as the spec names it: its own, else the workers' (gcp-mig), the LBs'. */
function specProjectOf(
  gke: { readonly project?: string } | undefined,
  ctx: Pick<ProviderContext, 'spec'>,
): string | undefined {
  const workers = ctx.spec.workers as Partial<MigSourceSpec>;
  const lbs = ctx.spec.loadBalancers as Partial<MetadataTransportSpec>;
  return (
    gke?.project ??
    (workers.source === 'gcp-mig' ? workers.project : undefined) ??
    (lbs.transport === 'gcp-metadata' ? lbs.project : undefined)
  );
}

/** The project ADC knows (the metadata server's), for a spec that names none. */
async function adcProjectOf(auth: GoogleAuth | AuthClient): Promise<string> {
  try {
    const found = auth instanceof GoogleAuth ? await auth.getProjectId() : auth.projectId;
    if (found) return found;
  } catch {
    // fall through to the spec error
  }
  throw new SpecError('spec', [
    'kubernetes.cluster.gke.project: required when neither the workers nor the LBs name a project and Application Default Credentials know none',
  ]);
}

/**
 * The GCP function's way into `kubernetes.cluster.gke` (discovered once per
 * runtime, so per cold start) or into `kubernetes.endpoint` (the spec's URL
 * and CA), with access tokens from Application Default Credentials.
 * `tuning.gcp.containerEndpoint` / LBSYNC_GCP_CONTAINER_ENDPOINT point
 * discovery elsewhere (tests, private service connect).
 */
export async function gkeClusterAccess(
  request: ClusterRequest,
  ctx: ProviderContext,
  signal?: AbortSignal,
): Promise<ClusterGrant> {
  const project = specProjectOf(request.cluster?.gke, ctx);
  const auth = gkeAuth(project);
  const tokenProvider = gkeTokenProvider(auth);
  if (request.endpoint !== undefined) {
    return { endpoint: request.endpoint.url, caPem: request.endpoint.caPem, tokenProvider };
  }
  const gke = request.cluster?.gke;
  if (gke === undefined) {
    throw new SpecError('spec', [
      `kubernetes.cluster: the GCP function signs in to GKE clusters only (got ${Object.keys(request.cluster ?? {}).join(', ')})`,
    ]);
  }
  const apiEndpoint =
    tuningOf(ctx).containerEndpoint ?? (ctx.env.LBSYNC_GCP_CONTAINER_ENDPOINT || undefined);
  const found = await discoverGkeCluster(
    auth,
    { project: project ?? (await adcProjectOf(auth)), location: gke.location, name: gke.name },
    {
      ...(apiEndpoint !== undefined ? { apiEndpoint } : {}),
      ...(signal !== undefined ? { signal } : {}),
    },
  );
  return { ...found, tokenProvider };
}
