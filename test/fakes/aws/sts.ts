import { createHash, createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { el } from './xml.js';

/*
 * The slice of AWS STS that EKS authentication rests on: GetCallerIdentity
 * called through a presigned URL. EKS replays the URL inside a
 * `k8s-aws-v1.` token against STS, adding the `x-k8s-aws-id` header, and STS
 * answers with the caller's ARN only if the SigV4 signature verifies. This
 * fake verifies it independently of the SDK's signer (its own canonical
 * request, string to sign and HMAC chain, from the SigV4 specification), so
 * a token the SDK signed wrongly is refused here as STS would refuse it.
 *
 * What it checks: algorithm, credential scope (date, the host's region,
 * service `sts`), a known access key (and its session token, when the
 * identity has one), the signed headers as they arrive, the payload hash of
 * the body received, and expiry. A presigned STS URL stops working 15
 * minutes after its X-Amz-Date whatever X-Amz-Expires says (aws-iam-
 * authenticator documents this); the fake refuses it then, and refuses
 * X-Amz-Expires above 900 like the authenticator. Error codes follow STS's
 * Query protocol errors; the exact message texts are the fake's.
 */

/** An IAM principal whose keys STS knows. */
export interface StsIdentity {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Required for temporary credentials (a Lambda role's). */
  readonly sessionToken?: string;
  /** The caller ARN GetCallerIdentity returns (an assumed-role ARN for roles). */
  readonly arn: string;
  readonly account: string;
  readonly userId: string;
}

/** One GetCallerIdentity call as the fake judged it. */
export interface StsCall {
  readonly accessKeyId: string;
  readonly clusterId: string | undefined;
  readonly status: number;
  readonly code?: string;
}

/** What one request to the fake looks like (as FakeAws hands it over). */
export interface StsRequest {
  readonly method: string;
  /** The Host header the client sent (the presigned URL's host). */
  readonly host: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

/** The fake's answer. */
export interface StsAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/** STS and EKS stop accepting a presigned URL this long after its X-Amz-Date. */
export const PRESIGNED_LIFETIME_MS = 15 * 60_000;

const STS_HOST = /^sts(?:\.([a-z]{2}(?:-[a-z]+)+-\d))?\.amazonaws\.com(\.cn)?$/;

/** The region a host names (`sts.amazonaws.com` is us-east-1), or null for a non-STS host. */
export function stsRegionOf(host: string): string | null {
  const m = STS_HOST.exec(host.toLowerCase().replace(/:443$/, ''));
  if (m === null) return null;
  return m[1] ?? 'us-east-1';
}

const hmac = (key: Buffer | string, data: string): Buffer =>
  createHmac('sha256', key).update(data, 'utf8').digest();
const sha256Hex = (data: Buffer | string): string =>
  createHash('sha256').update(data).digest('hex');
const rfc3986 = (v: string): string =>
  encodeURIComponent(v).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );

/** Epoch ms of an `X-Amz-Date` (yyyymmddThhmmssZ), or NaN. */
export function amzDate(v: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v);
  if (m === null) return Number.NaN;
  const n = (i: number): number => Number(m[i]);
  return Date.UTC(n(1), n(2) - 1, n(3), n(4), n(5), n(6));
}

class StsError extends Error {
  public constructor(
    public readonly status: number,
    public readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The STS fake; FakeAws routes presigned `GET /?Action=GetCallerIdentity…` here. */
export class FakeSts {
  /** Every GetCallerIdentity, in order. */
  public readonly calls: StsCall[] = [];
  /** Added to the real clock: a positive offset makes every signed URL older. */
  public clockOffsetMs = 0;
  private readonly identities = new Map<string, StsIdentity>();

  /** STS's clock. */
  public now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  /** Make STS know `identity`'s keys. */
  public addIdentity(identity: StsIdentity): void {
    this.identities.set(identity.accessKeyId, identity);
  }

  /** Forget an access key (its sessions revoked): signatures with it stop verifying. */
  public revoke(accessKeyId: string): void {
    this.identities.delete(accessKeyId);
  }

  /** Answer one request (presigned GetCallerIdentity). */
  public handle(r: StsRequest): StsAnswer {
    const json = String(r.headers.accept ?? '').includes('application/json');
    const requestId = randomUUID();
    const q = r.query;
    const clusterId = headerOf(r.headers, 'x-k8s-aws-id');
    try {
      const identity = this.verify(r);
      if (q.get('Action') !== 'GetCallerIdentity' || q.get('Version') !== '2011-06-15') {
        throw new StsError(400, 'InvalidAction', `Could not find operation ${q.get('Action')}`);
      }
      this.calls.push({ accessKeyId: identity.accessKeyId, clusterId, status: 200 });
      const result = { Account: identity.account, Arn: identity.arn, UserId: identity.userId };
      if (json) {
        return {
          status: 200,
          contentType: 'application/json',
          body: JSON.stringify({
            GetCallerIdentityResponse: {
              GetCallerIdentityResult: result,
              ResponseMetadata: { RequestId: requestId },
            },
          }),
        };
      }
      return {
        status: 200,
        contentType: 'text/xml',
        body: `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>${el('Arn', result.Arn)}${el('UserId', result.UserId)}${el('Account', result.Account)}</GetCallerIdentityResult><ResponseMetadata>${el('RequestId', requestId)}</ResponseMetadata></GetCallerIdentityResponse>`,
      };
    } catch (err) {
      if (!(err instanceof StsError)) throw err;
      const key = (q.get('X-Amz-Credential') ?? '').split('/')[0] ?? '';
      this.calls.push({ accessKeyId: key, clusterId, status: err.status, code: err.code });
      const error = { Type: 'Sender', Code: err.code, Message: err.message };
      return json
        ? {
            status: err.status,
            contentType: 'application/json',
            body: JSON.stringify({ Error: error, RequestId: requestId }),
          }
        : {
            status: err.status,
            contentType: 'text/xml',
            body: `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>${el('Type', 'Sender')}${el('Code', err.code)}${el('Message', err.message)}</Error>${el('RequestId', requestId)}</ErrorResponse>`,
          };
    }
  }

  /** SigV4 query-string authentication, as STS performs it. */
  private verify(r: StsRequest): StsIdentity {
    const q = r.query;
    const region = stsRegionOf(r.host);
    if (region === null) throw new StsError(400, 'InvalidRequest', `${r.host} is not an STS host`);
    if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') {
      throw new StsError(400, 'IncompleteSignature', 'X-Amz-Algorithm must be AWS4-HMAC-SHA256');
    }
    const credential = q.get('X-Amz-Credential') ?? '';
    const [keyId = '', day = '', scopeRegion = '', service = '', terminator = ''] =
      credential.split('/');
    const date = q.get('X-Amz-Date') ?? '';
    const signedHeaders = q.get('X-Amz-SignedHeaders') ?? '';
    const signature = q.get('X-Amz-Signature') ?? '';
    if (terminator !== 'aws4_request' || signature === '' || signedHeaders === '') {
      throw new StsError(400, 'IncompleteSignature', 'the presigned URL lacks signing parameters');
    }
    if (service !== 'sts') {
      throw new StsError(
        403,
        'SignatureDoesNotMatch',
        `Credential should be scoped to correct service: 'sts'`,
      );
    }
    if (scopeRegion !== region) {
      throw new StsError(
        403,
        'SignatureDoesNotMatch',
        `Credential should be scoped to a valid region, not '${scopeRegion}' (${r.host} is ${region})`,
      );
    }
    const signedAt = amzDate(date);
    if (Number.isNaN(signedAt) || !date.startsWith(day)) {
      throw new StsError(
        403,
        'SignatureDoesNotMatch',
        'X-Amz-Date does not match the credential scope',
      );
    }
    const expires = Number(q.get('X-Amz-Expires') ?? '');
    if (!Number.isInteger(expires) || expires < 0 || expires > 900) {
      throw new StsError(
        400,
        'AuthorizationQueryParametersError',
        `X-Amz-Expires ${expires} is not 0-900`,
      );
    }
    if (this.now() > signedAt + PRESIGNED_LIFETIME_MS) {
      throw new StsError(403, 'ExpiredToken', `Request has expired (signed ${date})`);
    }
    if (signedAt > this.now() + PRESIGNED_LIFETIME_MS) {
      throw new StsError(403, 'SignatureDoesNotMatch', `Signature not yet current: ${date}`);
    }
    const identity = this.identities.get(keyId);
    if (identity === undefined) {
      throw new StsError(
        403,
        'InvalidClientTokenId',
        'The security token included in the request is invalid.',
      );
    }
    if ((identity.sessionToken ?? null) !== q.get('X-Amz-Security-Token')) {
      throw new StsError(
        403,
        'InvalidClientTokenId',
        'The security token included in the request is invalid.',
      );
    }
    const names = signedHeaders.split(';');
    if (!names.includes('host') || names.join(';') !== [...names].sort().join(';')) {
      throw new StsError(
        403,
        'SignatureDoesNotMatch',
        'SignedHeaders must be sorted and include host',
      );
    }
    const canonicalHeaders = names
      .map((n) => {
        const v = n === 'host' ? r.host : headerOf(r.headers, n);
        if (v === undefined)
          throw new StsError(403, 'SignatureDoesNotMatch', `signed header ${n} is missing`);
        return `${n}:${v.trim().replace(/\s+/g, ' ')}\n`;
      })
      .join('');
    const canonicalQuery = [...q.entries()]
      .filter(([k]) => k !== 'X-Amz-Signature')
      .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
      .sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : 1) : a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join('&');
    const canonicalRequest = [
      r.method,
      r.path,
      canonicalQuery,
      canonicalHeaders,
      signedHeaders,
      sha256Hex(r.body),
    ].join('\n');
    const scope = `${day}/${scopeRegion}/${service}/aws4_request`;
    const stringToSign = ['AWS4-HMAC-SHA256', date, scope, sha256Hex(canonicalRequest)].join('\n');
    const key = hmac(
      hmac(hmac(hmac(`AWS4${identity.secretAccessKey}`, day), scopeRegion), service),
      'aws4_request',
    );
    const expected = Buffer.from(hmac(key, stringToSign).toString('hex'));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
      throw new StsError(
        403,
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided.',
      );
    }
    return identity;
  }
}

function headerOf(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  name: string,
): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(',') : v;
}
