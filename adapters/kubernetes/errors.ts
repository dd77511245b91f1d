import { LbsyncError, type LbsyncErrorOptions, SourceError } from '../../core/errors.js';

/*
 * How Kubernetes API failures map to lbsync's retry semantics. Throttling
 * (429), 5xx, 410 Expired, timeouts and dropped connections are worth
 * another attempt;
 * 401/403 (credentials, RBAC), 404, 409 after our own retries, 422 and TLS
 * trust failures are facts a retry will not change. A 403 names the verb,
 * the resource and the exact RBAC rule lbsync is missing.
 */

/** What a call tried to do, for messages and RBAC hints. */
export interface ApiCall {
  readonly verb: 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';
  /** Plural resource, with `/subresource` when there is one (`services/status`). */
  readonly resource: string;
  readonly namespace?: string;
  readonly name?: string;
}

/** A write to the cluster API (status, finalizer, event) failed. */
export class KubernetesApiError extends LbsyncError {
  /** HTTP status, when the API answered. */
  public readonly status?: number;
  /** The Status `reason` (Forbidden, Conflict, NotFound, TooManyRequests, ...), when known. */
  public readonly reason?: string;
  public readonly call: ApiCall;

  public constructor(
    message: string,
    call: ApiCall,
    options: LbsyncErrorOptions & { readonly status?: number; readonly reason?: string } = {},
  ) {
    super(message, options);
    this.name = 'KubernetesApiError';
    this.call = call;
    if (options.status !== undefined) this.status = options.status;
    if (options.reason !== undefined) this.reason = options.reason;
  }
}

interface ApiExceptionShape {
  readonly code?: unknown;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  readonly name?: unknown;
  readonly type?: unknown;
  readonly errno?: unknown;
}

/** The HTTP status of a client-node ApiException, if `err` is one. */
export function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as ApiExceptionShape).code;
  return typeof code === 'number' && code >= 100 && code < 600 ? code : undefined;
}

/** The meta/v1 Status the API answered with (client-node keeps it as a string). */
export function statusBody(err: unknown): { message?: string; reason?: string } | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const body = (err as ApiExceptionShape).body;
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return body === '' ? undefined : { message: body.slice(0, 300) };
    }
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const s = parsed as { kind?: unknown; message?: unknown; reason?: unknown };
  return {
    ...(typeof s.message === 'string' ? { message: s.message } : {}),
    ...(typeof s.reason === 'string' ? { reason: s.reason } : {}),
  };
}

/** Retry-After of a 429/503 in milliseconds (delta-seconds or HTTP date), if given. */
export function retryAfterMs(err: unknown, now = Date.now()): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const headers = (err as ApiExceptionShape).headers ?? {};
  const v = headers['retry-after'] ?? headers['Retry-After'];
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

// Certificate problems mean a wrong CA or endpoint: retrying will not fix them.
const TLS_CODES = /^(ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_SSL_)/;

/** True for network-level failures (refused, reset, timed out) that a retry may get past. */
export function isNetworkError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null || httpStatus(err) !== undefined) return false;
  const e = err as ApiExceptionShape & { code?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (TLS_CODES.test(code)) return false;
  return e.name === 'FetchError' || e.name === 'AbortError' || e.type === 'system' || code !== '';
}

/** True when another attempt later could succeed. */
export function isRetryableKubernetesError(err: unknown): boolean {
  if (err instanceof LbsyncError) return err.retryable;
  const status = httpStatus(err);
  // 410 is a list snapshot or watch that expired: a fresh list succeeds.
  if (status !== undefined)
    return status === 408 || status === 410 || status === 429 || status >= 500;
  return isNetworkError(err);
}

/** `list services at the cluster scope`, `patch services/status "web" in namespace "shop"`. */
export function describeCall(c: ApiCall): string {
  const name = c.name === undefined ? '' : ` "${c.name}"`;
  const scope =
    c.namespace === undefined ? ' at the cluster scope' : ` in namespace "${c.namespace}"`;
  return `${c.verb} ${c.resource}${name}${scope}`;
}

/** The RBAC rule that would allow the call. */
export function missingRule(c: ApiCall): string {
  return `{apiGroups: [""], resources: ["${c.resource}"], verbs: ["${c.verb}"]}`;
}

/** A one-line reason: status, Status reason and message, or the network error. */
export function describeKubernetesError(err: unknown): string {
  const status = httpStatus(err);
  const body = statusBody(err);
  if (status !== undefined) {
    return [String(status), body?.reason, body?.message].filter((p) => p !== undefined).join(' ');
  }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code)
      ? `${code} ${err.message}`
      : err.message;
  }
  return String(err);
}

/** The message for a failed call, with an RBAC hint on 403 and a credentials hint on 401. */
export function failureMessage(c: ApiCall, err: unknown, attempts: number): string {
  const status = httpStatus(err);
  const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
  const base = `Kubernetes API: ${describeCall(c)} failed${tries}: ${describeKubernetesError(err)}`;
  if (status === 403)
    return `${base}. lbsync's identity lacks the RBAC permission to ${c.verb} ${c.resource}; grant it a (Cluster)Role rule ${missingRule(c)}`;
  if (status === 401)
    return `${base}. The cluster refused lbsync's credentials (missing, expired or not mapped to a user); check the token provider or kubeconfig user`;
  return base;
}

/** Wrap a failure: SourceError for reads (lists), KubernetesApiError for writes. */
export function kubernetesError(c: ApiCall, err: unknown, attempts: number): LbsyncError {
  if (err instanceof LbsyncError) return err;
  const message = failureMessage(c, err, attempts);
  const retryable = isRetryableKubernetesError(err);
  if (c.verb === 'list' || c.verb === 'get' || c.verb === 'watch') {
    return new SourceError(message, { cause: err, retryable });
  }
  const status = httpStatus(err);
  const reason = statusBody(err)?.reason;
  return new KubernetesApiError(message, c, {
    cause: err,
    retryable,
    ...(status === undefined ? {} : { status }),
    ...(reason === undefined ? {} : { reason }),
  });
}
