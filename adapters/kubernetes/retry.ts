import { setTimeout as sleep } from 'node:timers/promises';
import type { LbsyncError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import {
  type ApiCall,
  describeCall,
  describeKubernetesError,
  httpStatus,
  isRetryableKubernetesError,
  kubernetesError,
  retryAfterMs,
} from './errors.js';

/*
 * Bounded retries for one API call: throttling honours Retry-After (a
 * Retry-After beyond our budget fails at once, retryable, rather than sleep
 * past it), 5xx and network errors back off exponentially with jitter, a 401
 * asks the token provider once for a fresh token. The run's deadline (the
 * caller's AbortSignal) stops everything at once. Anything else fails now.
 */

/** How hard one call tries. */
export interface RetryPolicy {
  /** Attempts in all, at least 1 (default 4). */
  readonly attempts: number;
  /** First backoff; doubles each attempt (default 200 ms). */
  readonly baseDelayMs: number;
  /** Largest backoff (default 5 s). */
  readonly maxDelayMs: number;
  /** Longest Retry-After we wait for (default 10 s). */
  readonly maxRetryAfterMs: number;
}

/** The default policy. */
export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 200,
  maxDelayMs: 5_000,
  maxRetryAfterMs: 10_000,
};

/** What a retried call needs from its client. */
export interface RetryContext {
  readonly policy: RetryPolicy;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  /** Forget the cached token after a 401; false when that cannot help. */
  readonly refreshCredentials: () => boolean;
  /** Errors handed back raw for the caller to handle (a 410 mid-list, a 409 to re-read). */
  readonly passThrough?: (err: unknown) => boolean;
}

/** The caller's signal fired: stop, and say so. */
export function abortedError(call: ApiCall, signal: AbortSignal): LbsyncError {
  const err = new Error(`aborted by the caller (${String(signal.reason)})`);
  err.name = 'AbortError';
  return kubernetesError(call, err, 1);
}

// A function, so the compiler does not carry the first check's narrowing past an await.
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function backoff(p: RetryPolicy, attempt: number): number {
  const d = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** (attempt - 1));
  return d / 2 + Math.random() * (d / 2);
}

/** Run `fn` under the policy; failures come back as SourceError (reads) or KubernetesApiError. */
export async function withRetries<T>(
  call: ApiCall,
  ctx: RetryContext,
  fn: () => Promise<T>,
): Promise<T> {
  let refreshed = false;
  for (let attempt = 1; ; attempt++) {
    if (isAborted(ctx.signal)) throw abortedError(call, ctx.signal as AbortSignal);
    try {
      return await fn();
    } catch (err) {
      if (isAborted(ctx.signal)) throw abortedError(call, ctx.signal as AbortSignal);
      if (ctx.passThrough?.(err) === true) throw err;
      if (httpStatus(err) === 401 && !refreshed && ctx.refreshCredentials()) {
        refreshed = true;
        ctx.logger.warn(
          { call: describeCall(call) },
          'kubernetes: token refused (401), asking the token provider again',
        );
        attempt--;
        continue;
      }
      if (!isRetryableKubernetesError(err) || attempt >= ctx.policy.attempts) {
        throw kubernetesError(call, err, attempt);
      }
      const after = retryAfterMs(err);
      if (after !== undefined && after > ctx.policy.maxRetryAfterMs)
        throw kubernetesError(call, err, attempt);
      const waitMs =
        after === undefined
          ? backoff(ctx.policy, attempt)
          : after + Math.random() * Math.min(1000, ctx.policy.baseDelayMs);
      ctx.logger.warn(
        {
          call: describeCall(call),
          attempt,
          waitMs: Math.round(waitMs),
          error: describeKubernetesError(err),
        },
        'kubernetes: call failed, retrying',
      );
      try {
        await sleep(waitMs, undefined, ctx.signal === undefined ? {} : { signal: ctx.signal });
      } catch {
        throw abortedError(call, ctx.signal as AbortSignal);
      }
    }
  }
}
