import { EKSClient } from '@aws-sdk/client-eks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EKS_TOKEN_LIFETIME_MS,
  EKS_TOKEN_PREFIX,
  eksClusterAccess,
  eksToken,
  stsHost,
} from '../../../adapters/aws/eks.js';
import { SourceError, SpecError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/log.js';
import type { ProviderContext } from '../../../core/provider.js';
import { FakeAws } from '../../fakes/aws/fake-aws.js';
import { FakeKubernetes } from '../../fakes/kubernetes/fake-kubernetes.js';
import { listNodesStatus } from '../../helpers/cluster-auth.js';

// This file owns ports 18001 (fake AWS) and 18002 (fake Kubernetes API).
const REGION = 'eu-west-1';
const KEY = { accessKeyId: 'AKIAEKSUNITTEST0001', secretAccessKey: 'eks-unit-secret' };
const SESSION = {
  accessKeyId: 'ASIAEKSUNITTEST0002',
  secretAccessKey: 'eks-unit-session-secret',
  sessionToken: 'FwoGZXIvYXdzE+session/token==',
};
const ROLE = 'arn:aws:iam::123456789012:role/lbsync-function';
// The EKS client's hash constructor is the SDK's SHA-256, as the function signs with it.
const sha256 = new EKSClient({ region: REGION }).config.sha256;

/** The presigned URL inside a token. */
function urlOf(token: string): URL {
  expect(token.startsWith(EKS_TOKEN_PREFIX)).toBe(true);
  return new URL(Buffer.from(token.slice(EKS_TOKEN_PREFIX.length), 'base64url').toString('utf8'));
}

function context(spec: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): ProviderContext {
  return {
    spec: spec as unknown as ProviderContext['spec'],
    env,
    logger: silentLogger(),
    scripts: async () => ({ apply: '', drain: '' }),
    tuning: {},
    onClose: () => {},
  };
}

describe('the EKS token (aws-iam-authenticator format)', () => {
  it('is k8s-aws-v1. + unpadded base64url of a presigned GetCallerIdentity URL on the regional STS host', async () => {
    // Act
    const signedAt = Date.UTC(2026, 11, 2, 10, 30, 0);
    const grant = await eksToken({
      cluster: 'prod',
      region: REGION,
      credentials: async () => KEY,
      sha256,
      now: () => signedAt,
    });

    // Assess
    const encoded = grant.token.slice(EKS_TOKEN_PREFIX.length);
    expect(encoded).toMatch(/^[A-Za-z0-9_-]+$/);
    const url = urlOf(grant.token);
    expect(url.protocol).toBe('https:');
    expect(url.host).toBe('sts.eu-west-1.amazonaws.com');
    expect(url.pathname).toBe('/');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      Action: 'GetCallerIdentity',
      Version: '2011-06-15',
      'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
      'X-Amz-Credential': `${KEY.accessKeyId}/20261202/eu-west-1/sts/aws4_request`,
      'X-Amz-Date': '20261202T103000Z',
      'X-Amz-Expires': '60',
      'X-Amz-SignedHeaders': 'host;x-k8s-aws-id',
      'X-Amz-Signature': expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    // Valid 15 minutes after X-Amz-Date; lbsync stops using it a minute early.
    expect(grant.expiresAt).toBe(signedAt + EKS_TOKEN_LIFETIME_MS - 60_000);
  });

  it('carries the session token of temporary credentials (a Lambda role) as X-Amz-Security-Token', async () => {
    const grant = await eksToken({
      cluster: 'prod',
      region: REGION,
      credentials: async () => SESSION,
      sha256,
    });
    expect(urlOf(grant.token).searchParams.get('X-Amz-Security-Token')).toBe(SESSION.sessionToken);
  });

  it('names the partition host in China regions', () => {
    expect(stsHost('cn-north-1')).toBe('sts.cn-north-1.amazonaws.com.cn');
    expect(stsHost('us-gov-west-1')).toBe('sts.us-gov-west-1.amazonaws.com');
  });

  it('fails retryable, naming the cluster, when the credential chain yields nothing', async () => {
    const err = await eksToken({
      cluster: 'prod',
      region: REGION,
      credentials: async () => {
        throw Object.assign(new Error('Could not load credentials from any providers'), {
          name: 'CredentialsProviderError',
        });
      },
      sha256,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect(err).toMatchObject({ retryable: true });
    expect((err as Error).message).toMatch(/cannot sign an EKS token for cluster prod/);
  });
});

describe('EKS sign-in through the AWS fake: STS verifies, the cluster maps the role', () => {
  let aws: FakeAws;
  let k8s: FakeKubernetes;
  const saved = { ...process.env };

  beforeAll(async () => {
    aws = await FakeAws.start({ port: 18001 });
    k8s = await FakeKubernetes.start({ port: 18002 });
    aws.sts.addIdentity({
      ...KEY,
      arn: 'arn:aws:sts::123456789012:assumed-role/lbsync-function/lbsync-fn',
      account: '123456789012',
      userId: 'AROAEXAMPLE:lbsync-fn',
    });
    aws.sts.addIdentity({
      ...SESSION,
      arn: 'arn:aws:sts::123456789012:assumed-role/lbsync-function/lambda-session',
      account: '123456789012',
      userId: 'AROAEXAMPLE:lambda-session',
    });
    aws.eks.addCluster({ name: 'prod', endpoint: k8s.url, caPem: k8s.caPem });
    aws.eks.addCluster({ name: 'staging', endpoint: k8s.url, caPem: k8s.caPem });
    aws.eks.addAccessEntry('prod', ROLE, { user: 'lbsync', groups: ['lbsync:syncers'] });
    k8s.setAuthenticator(aws.eks.authenticator('prod'));
    k8s.grant({ group: 'lbsync:syncers' }, [
      { apiGroups: [''], resources: ['nodes'], verbs: ['list'] },
    ]);
    k8s.objects.addNode({ name: 'node-1', internalIP: '10.0.0.1' });
    // The SDK's standard configuration, as in Lambda (there the keys come from the role).
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: aws.url,
      AWS_ACCESS_KEY_ID: KEY.accessKeyId,
      AWS_SECRET_ACCESS_KEY: KEY.secretAccessKey,
      AWS_MAX_ATTEMPTS: '1',
    });
  });

  afterAll(async () => {
    process.env = saved;
    await k8s?.stop();
    await aws?.stop();
  });

  const token = (o: { cluster?: string; key?: typeof KEY | typeof SESSION; now?: () => number }) =>
    eksToken({
      cluster: o.cluster ?? 'prod',
      region: REGION,
      credentials: async () => o.key ?? KEY,
      sha256,
      ...(o.now !== undefined ? { now: o.now } : {}),
    });

  /** The HTTP status the cluster answers a node list made with `token`. */
  const statusWith = (token: string): Promise<number> => listNodesStatus(k8s, token);

  it('accepts a fresh token: STS verified the signature with the cluster header, the role is mapped', async () => {
    expect(await statusWith((await token({})).token)).toBe(200);
    expect(await statusWith((await token({ key: SESSION })).token)).toBe(200);
    expect(aws.sts.calls.slice(-2)).toEqual([
      { accessKeyId: KEY.accessKeyId, clusterId: 'prod', status: 200 },
      { accessKeyId: SESSION.accessKeyId, clusterId: 'prod', status: 200 },
    ]);
  });

  it('refuses a token signed for another cluster: its signature fails at STS', async () => {
    expect(await statusWith((await token({ cluster: 'staging' })).token)).toBe(401);
    expect(aws.sts.calls.at(-1)).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
  });

  it('refuses a token signed more than 15 minutes ago', async () => {
    const old = await token({ now: () => Date.now() - EKS_TOKEN_LIFETIME_MS - 5_000 });
    const before = aws.sts.calls.length;
    expect(await statusWith(old.token)).toBe(401);
    expect(aws.eks.attempts.at(-1)).toMatchObject({
      accepted: false,
      reason: 'X-Amz-Date is expired',
    });
    // The cluster refused it before asking STS; STS would refuse it too.
    expect(aws.sts.calls.length).toBe(before);
  });

  it('refuses a token whose key STS does not know, or whose secret is wrong', async () => {
    const stranger = await token({ key: { accessKeyId: 'AKIASTRANGER', secretAccessKey: 'x' } });
    expect(await statusWith(stranger.token)).toBe(401);
    expect(aws.sts.calls.at(-1)).toMatchObject({ status: 403, code: 'InvalidClientTokenId' });
    const forged = await token({ key: { ...KEY, secretAccessKey: 'guessed' } });
    expect(await statusWith(forged.token)).toBe(401);
    expect(aws.sts.calls.at(-1)).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
  });

  it('refuses a tampered token and one without the cluster header signed', async () => {
    const url = urlOf((await token({})).token);
    url.searchParams.set('X-Amz-Expires', '900');
    const tampered = EKS_TOKEN_PREFIX + Buffer.from(url.toString()).toString('base64url');
    expect(await statusWith(tampered)).toBe(401);
    expect(aws.sts.calls.at(-1)).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
    url.searchParams.set('X-Amz-SignedHeaders', 'host');
    const unbound = EKS_TOKEN_PREFIX + Buffer.from(url.toString()).toString('base64url');
    expect(await statusWith(unbound)).toBe(401);
    expect(aws.eks.attempts.at(-1)?.reason).toBe('x-k8s-aws-id is not signed');
  });

  it('refuses a role without an access entry', async () => {
    aws.sts.addIdentity({
      accessKeyId: 'AKIAUNMAPPED',
      secretAccessKey: 'unmapped',
      arn: 'arn:aws:iam::123456789012:user/someone',
      account: '123456789012',
      userId: 'AIDAEXAMPLE',
    });
    const t = await token({ key: { accessKeyId: 'AKIAUNMAPPED', secretAccessKey: 'unmapped' } });
    expect(await statusWith(t.token)).toBe(401);
    expect(aws.eks.attempts.at(-1)?.reason).toBe(
      'no access entry for arn:aws:iam::123456789012:user/someone',
    );
  });

  it('discovers endpoint and CA with DescribeCluster, in the workers’ region, and signs for that cluster', async () => {
    // Act
    const ctx = context({
      workers: { source: 'aws-asg', region: REGION, autoScalingGroups: ['g'] },
      loadBalancers: { transport: 'ssm' },
    });
    const grant = await eksClusterAccess({ cluster: { eks: { name: 'prod' } } }, ctx);

    // Assess
    expect(grant.endpoint).toBe(k8s.url);
    expect(grant.caPem).toBe(k8s.caPem);
    const minted = await grant.tokenProvider();
    expect(urlOf(minted.token).host).toBe('sts.eu-west-1.amazonaws.com');
    expect(await statusWith(minted.token)).toBe(200);
  });

  it('says which cluster is missing (not retryable) and retries a throttled DescribeCluster', async () => {
    const ctx = context(
      { workers: { source: 'static' }, loadBalancers: { transport: 'local' } },
      {
        AWS_REGION: REGION,
      },
    );
    const missing = await eksClusterAccess({ cluster: { eks: { name: 'nope' } } }, ctx).catch(
      (e: unknown) => e,
    );
    expect(missing).toBeInstanceOf(SourceError);
    expect(missing).toMatchObject({ retryable: false });
    expect((missing as Error).message).toMatch(/EKS cluster nope not found in eu-west-1/);

    aws.fail('DescribeCluster', 'ThrottlingException', 1);
    const throttled = await eksClusterAccess({ cluster: { eks: { name: 'prod' } } }, ctx).catch(
      (e: unknown) => e,
    );
    expect(throttled).toMatchObject({ name: 'SourceError', retryable: true });
  });

  it('refuses clusters of other clouds and an endpoint without a cluster name, as spec errors', async () => {
    const ctx = context(
      { workers: { source: 'static' }, loadBalancers: { transport: 'local' } },
      {
        AWS_REGION: REGION,
      },
    );
    const gke = await eksClusterAccess(
      { cluster: { gke: { name: 'c', location: 'europe-west1' } } },
      ctx,
    ).catch((e: unknown) => e);
    expect(gke).toBeInstanceOf(SpecError);
    expect((gke as Error).message).toMatch(/signs in to EKS clusters only \(got gke\)/);
    const endpoint = await eksClusterAccess(
      { endpoint: { url: k8s.url, caPem: k8s.caPem } },
      ctx,
    ).catch((e: unknown) => e);
    expect(endpoint).toBeInstanceOf(SpecError);
    expect((endpoint as Error).message).toMatch(/use kubernetes.cluster.eks/);
  });
});
