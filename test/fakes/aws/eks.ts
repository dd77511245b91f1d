import { request } from 'node:http';
import type { Authenticator, Identity } from '../kubernetes/auth.js';
import { amzDate, PRESIGNED_LIFETIME_MS, stsRegionOf } from './sts.js';

/*
 * The slice of Amazon EKS lbsync's function uses, and EKS's side of
 * authentication:
 *
 *   GET /clusters/<name>   DescribeCluster (REST-JSON, SigV4 service `eks`),
 *                          as @aws-sdk/client-eks calls it
 *   authenticator(name)    what the cluster's API server does with a bearer
 *                          token, for FakeKubernetes.setAuthenticator
 *
 * The authenticator follows aws-iam-authenticator's verifier: the
 * `k8s-aws-v1.` prefix, base64url, an https URL on an STS host with path /,
 * only allowlisted query parameters (each once), Action GetCallerIdentity,
 * X-Amz-SignedHeaders naming x-k8s-aws-id, X-Amz-Expires 0-900, X-Amz-Date
 * less than 15 minutes old. Then, as EKS does, it replays the URL against
 * STS over HTTP (the fake STS of the same FakeAws) with `x-k8s-aws-id: <this
 * cluster>` added, so a token signed for another cluster fails STS's
 * signature check. The caller ARN STS returns (an assumed-role ARN becomes
 * its role ARN) must have an access entry, which gives the Kubernetes user
 * and groups; anything else is refused (401).
 */

/** A cluster DescribeCluster knows. */
export interface FakeEksCluster {
  readonly name: string;
  /** The API server URL (the Kubernetes fake's). */
  endpoint: string;
  /** The cluster CA (PEM). */
  caPem: string;
  status: 'CREATING' | 'ACTIVE' | 'UPDATING' | 'DELETING' | 'FAILED';
  /** IAM principal ARN (user or role) -> Kubernetes identity: the cluster's access entries. */
  readonly accessEntries: Map<string, Identity>;
}

/** One token the authenticator judged. */
export interface EksAuthAttempt {
  readonly cluster: string;
  readonly accepted: boolean;
  readonly reason: string;
}

const PARAMETER_ALLOWLIST = new Set([
  'action',
  'version',
  'x-amz-algorithm',
  'x-amz-credential',
  'x-amz-date',
  'x-amz-expires',
  'x-amz-security-token',
  'x-amz-signature',
  'x-amz-signedheaders',
]);
const MAX_TOKEN_BYTES = 4096;

/** The role ARN behind an assumed-role session ARN (what access entries name). */
export function principalOf(arn: string): string {
  const m = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\/[^/]+$/.exec(arn);
  return m === null ? arn : `arn:${m[1]}:iam::${m[2]}:role/${m[3]}`;
}

/** The EKS fake (owned by FakeAws, which routes DescribeCluster here). */
export class FakeEks {
  /** Every token the authenticators judged, in order. */
  public readonly attempts: EksAuthAttempt[] = [];
  private readonly clusters = new Map<string, FakeEksCluster>();

  public constructor(
    /** The FakeAws base URL, where the fake STS answers. */
    private readonly stsUrl: () => string,
    /** STS's clock (the fake STS's, with its offset). */
    private readonly now: () => number,
  ) {}

  /** Create a cluster (ACTIVE unless told otherwise). */
  public addCluster(c: {
    name: string;
    endpoint: string;
    caPem: string;
    status?: FakeEksCluster['status'];
  }): FakeEksCluster {
    const cluster: FakeEksCluster = {
      name: c.name,
      endpoint: c.endpoint,
      caPem: c.caPem,
      status: c.status ?? 'ACTIVE',
      accessEntries: new Map(),
    };
    this.clusters.set(c.name, cluster);
    return cluster;
  }

  /** A cluster by name. */
  public cluster(name: string): FakeEksCluster {
    const c = this.clusters.get(name);
    if (c === undefined) throw new Error(`no EKS cluster ${name}`);
    return c;
  }

  /** An access entry: `principalArn` signs in as `identity`. */
  public addAccessEntry(cluster: string, principalArn: string, identity: Identity): void {
    this.cluster(cluster).accessEntries.set(principalArn, identity);
  }

  /** DescribeCluster's JSON answer, or null for an unknown cluster. */
  public describe(name: string): unknown {
    const c = this.clusters.get(name);
    if (c === undefined) return null;
    const active = c.status === 'ACTIVE' || c.status === 'UPDATING';
    return {
      cluster: {
        name: c.name,
        arn: `arn:aws:eks:eu-west-1:123456789012:cluster/${c.name}`,
        version: '1.33',
        status: c.status,
        ...(active
          ? {
              endpoint: c.endpoint,
              certificateAuthority: { data: Buffer.from(c.caPem).toString('base64') },
            }
          : {}),
        accessConfig: { authenticationMode: 'API' },
        resourcesVpcConfig: { endpointPublicAccess: true, endpointPrivateAccess: true },
      },
    };
  }

  /** The bearer-token authenticator of cluster `name`'s API server. */
  public authenticator(name: string): Authenticator {
    return async (token) => {
      const verdict = await this.judge(name, token);
      this.attempts.push({
        cluster: name,
        accepted: 'user' in verdict,
        reason: 'user' in verdict ? verdict.user : verdict.reason,
      });
      return 'user' in verdict ? verdict : null;
    };
  }

  private async judge(name: string, token: string): Promise<Identity | { reason: string }> {
    const cluster = this.clusters.get(name);
    if (cluster === undefined) return { reason: 'no such cluster' };
    if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) return { reason: 'token too large' };
    if (!token.startsWith('k8s-aws-v1.')) return { reason: 'not a k8s-aws-v1 token' };
    const encoded = token.slice('k8s-aws-v1.'.length);
    if (!/^[A-Za-z0-9_-]+$/.test(encoded)) return { reason: 'not base64url without padding' };
    let url: URL;
    try {
      url = new URL(Buffer.from(encoded, 'base64url').toString('utf8'));
    } catch {
      return { reason: 'not a URL' };
    }
    if (url.protocol !== 'https:') return { reason: 'not https' };
    if (stsRegionOf(url.host) === null) return { reason: `unexpected host ${url.host}` };
    if (url.pathname !== '/') return { reason: 'unexpected path' };
    const params = new Map<string, string>();
    for (const key of new Set(url.searchParams.keys())) {
      if (!PARAMETER_ALLOWLIST.has(key.toLowerCase()))
        return { reason: `non-allowlisted query parameter ${key}` };
      const values = url.searchParams.getAll(key);
      if (values.length !== 1) return { reason: `query parameter ${key} repeated` };
      params.set(key.toLowerCase(), values[0] ?? '');
    }
    if (params.get('action') !== 'GetCallerIdentity') return { reason: 'unexpected action' };
    if (!(params.get('x-amz-signedheaders') ?? '').split(';').includes('x-k8s-aws-id'))
      return { reason: 'x-k8s-aws-id is not signed' };
    const expires = Number(params.get('x-amz-expires'));
    if (!Number.isInteger(expires) || expires < 0 || expires > 900)
      return { reason: 'invalid X-Amz-Expires' };
    const signedAt = amzDate(params.get('x-amz-date') ?? '');
    if (Number.isNaN(signedAt) || this.now() > signedAt + PRESIGNED_LIFETIME_MS)
      return { reason: 'X-Amz-Date is expired' };
    let sts: { status: number; body: string };
    try {
      sts = await this.replay(url, name);
    } catch (err) {
      // EKS answers 401 when it cannot reach STS, too.
      return { reason: `sts unreachable: ${String(err)}` };
    }
    if (sts.status !== 200) return { reason: `sts getCallerIdentity failed: ${sts.status}` };
    const arn = (
      JSON.parse(sts.body) as {
        GetCallerIdentityResponse?: { GetCallerIdentityResult?: { Arn?: string } };
      }
    ).GetCallerIdentityResponse?.GetCallerIdentityResult?.Arn;
    if (arn === undefined) return { reason: 'no ARN from STS' };
    const identity = cluster.accessEntries.get(principalOf(arn));
    return identity ?? { reason: `no access entry for ${principalOf(arn)}` };
  }

  /** Send the presigned request to the fake STS as EKS sends it to STS: same host, cluster header added. */
  private replay(url: URL, cluster: string): Promise<{ status: number; body: string }> {
    const sts = new URL(this.stsUrl());
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: sts.hostname,
          port: sts.port,
          method: 'GET',
          path: `${url.pathname}${url.search}`,
          headers: { host: url.host, 'x-k8s-aws-id': cluster, accept: 'application/json' },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
  }
}
