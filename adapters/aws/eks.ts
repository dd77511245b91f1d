import type { DescribeClusterCommandOutput, EKSClient } from '@aws-sdk/client-eks';
import { SignatureV4 } from '@smithy/signature-v4';
import { SourceError, SpecError } from '../../core/errors.js';
import type { ProviderContext } from '../../core/provider.js';
import { describeAwsError, isRetryableAwsError } from './errors.js';
import type { AsgSourceSpec, SsmTransportSpec } from './provider.js';

/*
 * How the AWS function reaches an EKS cluster with its own IAM identity, as
 * `aws eks get-token` and aws-iam-authenticator do: the bearer token is a
 * presigned STS GetCallerIdentity URL with the `x-k8s-aws-id: <cluster>`
 * header signed in, `k8s-aws-v1.` + base64url. EKS replays the URL against
 * STS (adding that header) to learn the caller's ARN, then maps it to a user
 * through the cluster's access entries. The URL is signed here with the SDK's
 * SigV4 signer and the SDK's default credential chain (the Lambda role); no
 * call is made to sign. Endpoint and CA come from DescribeCluster.
 *
 * Types from other folders are structural: cloud folders never import the
 * Kubernetes adapter (adapters/kubernetes/factory.ts `ClusterAccess`).
 */

/** The prefix of every aws-iam-authenticator token. */
export const EKS_TOKEN_PREFIX = 'k8s-aws-v1.';
/** The header that binds a token to one cluster (signed, never sent by the client). */
export const CLUSTER_ID_HEADER = 'x-k8s-aws-id';
/** STS and EKS accept a presigned URL for 15 minutes after its X-Amz-Date. */
export const EKS_TOKEN_LIFETIME_MS = 15 * 60_000;
// What aws-iam-authenticator puts in X-Amz-Expires (EKS reads only X-Amz-Date).
const PRESIGN_EXPIRES_SECONDS = 60;
// aws-iam-authenticator reports a minute less than the lifetime, against clock skew.
const REPORTED_LIFETIME_MS = EKS_TOKEN_LIFETIME_MS - 60_000;

type SignerInit = ConstructorParameters<typeof SignatureV4>[0];

/** What `eksToken` signs with: the SDK's credential provider and hash (an EKSClient's config has both). */
export interface EksTokenOptions {
  /** The EKS cluster name (the value of `x-k8s-aws-id`). */
  readonly cluster: string;
  readonly region: string;
  readonly credentials: SignerInit['credentials'];
  readonly sha256: SignerInit['sha256'];
  /** Clock for X-Amz-Date (tests mint old tokens with it). */
  readonly now?: () => number;
}

/** A bearer token and when lbsync should stop using it (epoch ms). */
export interface EksTokenGrant {
  readonly token: string;
  readonly expiresAt: number;
}

/** The regional STS host the token names (EKS accepts regional and global STS hosts). */
export function stsHost(region: string): string {
  return `sts.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`;
}

// RFC 3986, as SigV4 canonicalises query strings.
const rfc3986 = (v: string): string =>
  encodeURIComponent(v).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );

/** The presigned GetCallerIdentity URL for `o.cluster`, signed now. */
export async function presignedCallerIdentityUrl(o: EksTokenOptions): Promise<string> {
  const host = stsHost(o.region);
  const signer = new SignatureV4({
    credentials: o.credentials,
    region: o.region,
    service: 'sts',
    sha256: o.sha256,
  });
  const signed = await signer.presign(
    {
      method: 'GET',
      protocol: 'https:',
      hostname: host,
      path: '/',
      query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
      headers: { host, [CLUSTER_ID_HEADER]: o.cluster },
    },
    {
      expiresIn: PRESIGN_EXPIRES_SECONDS,
      signingDate: new Date((o.now ?? Date.now)()),
    },
  );
  const query = Object.entries(signed.query ?? {})
    .flatMap(([k, v]) =>
      (Array.isArray(v) ? v : [v]).map((x) => `${rfc3986(k)}=${rfc3986(x ?? '')}`),
    )
    .join('&');
  return `https://${host}/?${query}`;
}

/** An aws-iam-authenticator token for `o.cluster`, valid 15 minutes (reported as 14). */
export async function eksToken(o: EksTokenOptions): Promise<EksTokenGrant> {
  const signedAt = (o.now ?? Date.now)();
  let url: string;
  try {
    url = await presignedCallerIdentityUrl({ ...o, now: () => signedAt });
  } catch (err) {
    // Usually the credential chain: no role, or IMDS/the container endpoint did not answer.
    throw new SourceError(
      `cannot sign an EKS token for cluster ${o.cluster}: ${describeAwsError(err)}`,
      { cause: err, retryable: true },
    );
  }
  return {
    token: EKS_TOKEN_PREFIX + Buffer.from(url, 'utf8').toString('base64url'),
    expiresAt: signedAt + REPORTED_LIFETIME_MS,
  };
}

/** The cluster's API endpoint and CA as DescribeCluster reports them. */
export interface EksClusterEndpoint {
  readonly endpoint: string;
  readonly caPem: string;
}

/** DescribeCluster: the endpoint and CA of an ACTIVE (or updating) cluster. */
export async function describeEksCluster(
  eks: EKSClient,
  name: string,
  signal?: AbortSignal,
): Promise<EksClusterEndpoint> {
  const { DescribeClusterCommand } = await import('@aws-sdk/client-eks');
  let cluster: DescribeClusterCommandOutput['cluster'];
  try {
    const out = await eks.send(
      new DescribeClusterCommand({ name }),
      signal === undefined ? {} : { abortSignal: signal },
    );
    cluster = out.cluster;
  } catch (err) {
    const notFound = (err as { name?: string }).name === 'ResourceNotFoundException';
    throw new SourceError(
      notFound
        ? `EKS cluster ${name} not found in ${await eks.config.region()}: check kubernetes.cluster.eks (name, region)`
        : `EKS DescribeCluster ${name} failed: ${describeAwsError(err)}`,
      { cause: err, retryable: !notFound && isRetryableAwsError(err) },
    );
  }
  const c = cluster ?? {};
  if (c.endpoint === undefined || c.endpoint === '' || !c.certificateAuthority?.data) {
    throw new SourceError(
      `EKS cluster ${name} has no API endpoint yet (status ${c.status ?? 'unknown'})`,
      { retryable: c.status === 'CREATING' || c.status === 'UPDATING' },
    );
  }
  return {
    endpoint: c.endpoint,
    caPem: Buffer.from(c.certificateAuthority.data, 'base64').toString('utf8'),
  };
}

/** `kubernetes.cluster`, `kubernetes.endpoint` as the Kubernetes adapter asks for them (structural). */
export interface ClusterRequest {
  readonly cluster?: {
    readonly eks?: { readonly name: string; readonly region?: string };
    readonly aks?: unknown;
    readonly gke?: unknown;
  };
  readonly endpoint?: { readonly url: string; readonly caPem: string };
}

/** What the Kubernetes adapter connects with (structural: its `ClusterAccessGrant`). */
export interface ClusterGrant {
  readonly endpoint: string;
  readonly caPem: string;
  readonly tokenProvider: (signal?: AbortSignal) => Promise<EksTokenGrant>;
}

/** The cluster's region: its own, else the workers' (aws-asg), the LBs' (ssm), AWS_REGION. */
export function eksRegion(
  eks: { readonly region?: string },
  ctx: Pick<ProviderContext, 'spec' | 'env'>,
): string {
  const workers = ctx.spec.workers as Partial<AsgSourceSpec>;
  const lbs = ctx.spec.loadBalancers as Partial<SsmTransportSpec>;
  const region =
    eks.region ??
    (workers.source === 'aws-asg' ? workers.region : undefined) ??
    (lbs.transport === 'ssm' ? lbs.region : undefined) ??
    ctx.env.AWS_REGION;
  if (region === undefined || region === '') {
    throw new SpecError('spec', [
      'kubernetes.cluster.eks.region: required when neither the workers nor the LBs name a region and AWS_REGION is unset',
    ]);
  }
  return region;
}

const clients = new Map<string, Promise<EKSClient>>();

/** An EKS client for `region` from the SDK's configuration chain, once per process. */
async function eksClientFor(ctx: ProviderContext, region: string): Promise<EKSClient> {
  let c = clients.get(region);
  if (c === undefined) {
    // Loaded only for specs that name an EKS cluster: other functions never pay for it.
    c = import('@aws-sdk/client-eks').then(({ EKSClient }) => new EKSClient({ region }));
    clients.set(region, c);
    ctx.onClose(async () => {
      clients.delete(region);
      (await c)?.destroy();
    });
  }
  return c;
}

/**
 * The AWS function's way into `kubernetes.cluster.eks`: DescribeCluster once
 * (per runtime, so per cold start), then a token provider that signs a fresh
 * aws-iam-authenticator token whenever the cached one nears its end.
 */
export async function eksClusterAccess(
  request: ClusterRequest,
  ctx: ProviderContext,
  signal?: AbortSignal,
): Promise<ClusterGrant> {
  const eks = request.cluster?.eks;
  if (eks === undefined) {
    throw new SpecError('spec', [
      request.cluster !== undefined
        ? `kubernetes.cluster: the AWS function signs in to EKS clusters only (got ${Object.keys(request.cluster).join(', ')})`
        : 'kubernetes.endpoint: an EKS token names its cluster; use kubernetes.cluster.eks (the endpoint and CA are then discovered), or a tokenFile',
    ]);
  }
  const region = eksRegion(eks, ctx);
  const client = await eksClientFor(ctx, region);
  const found = await describeEksCluster(client, eks.name, signal);
  const options: EksTokenOptions = {
    cluster: eks.name,
    region,
    credentials: client.config.credentials,
    sha256: client.config.sha256,
  };
  return { ...found, tokenProvider: () => eksToken(options) };
}
