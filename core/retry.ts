import { LbsyncError } from './errors.js';

/*
 * The one retry and poll helper every adapter uses. Deadlines are
 * AbortSignals: an entry point makes one from the platform's remaining time
 * (Lambda's getRemainingTimeInMillis, the Azure/GCP function timeout) and
 * every wait below ends when it aborts, so a run never outlives its
 * invocation. Delays grow exponentially with jitter, so many LBs or many
 * instances retrying at once do not move in lockstep.
 */

/** How delays grow: `initialMs`, times `factor` each attempt, capped at `maxMs`, +/- `jitter`. */
export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  /** Default 2. */
  readonly factor?: number;
  /** Fraction of the delay added or removed at random; default 0.2. */
  readonly jitter?: number;
}

/** The run's deadline passed (or its caller gave up) while lbsync was waiting. */
export class DeadlineError extends LbsyncError {
  public constructor(what: string, options: ErrorOptions = {}) {
    super(`${what}: deadline reached`, { ...options, retryable: true });
    this.name = 'DeadlineError';
  }
}

/** Delay before attempt `attempt` (1-based: the wait after the first failure is attempt 1). */
export function backoffDelay(
  attempt: number,
  b: Backoff,
  random: () => number = Math.random,
): number {
  const base = Math.min(b.maxMs, b.initialMs * (b.factor ?? 2) ** Math.max(0, attempt - 1));
  const jitter = b.jitter ?? 0.2;
  return Math.max(0, Math.round(base * (1 - jitter + 2 * jitter * random())));
}

/** Wait `ms`; rejects with a `DeadlineError` as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal, what = 'waiting'): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DeadlineError(what, { cause: signal.reason }));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new DeadlineError(what, { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Options for `retry`. */
export interface RetryOptions {
  /** Total tries, at least 1. */
  readonly attempts: number;
  readonly backoff: Backoff;
  /** Whether a failure is worth another try. */
  readonly retryable: (err: unknown) => boolean;
  /** A wait the service asked for (Retry-After), used instead of the backoff when given. */
  readonly retryAfterMs?: (err: unknown) => number | undefined;
  /** Upper bound on any single wait, Retry-After included; default `backoff.maxMs`. */
  readonly maxWaitMs?: number;
  readonly signal?: AbortSignal;
  /** Called before each wait (logging). */
  readonly onRetry?: (err: unknown, attempt: number, waitMs: number) => void;
  /** Names the operation in a DeadlineError. */
  readonly what?: string;
}

/**
 * Run `fn` until it succeeds, fails with an error `retryable` rejects, runs
 * out of attempts (the last error is rethrown) or the signal aborts.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= o.attempts || !o.retryable(err) || o.signal?.aborted) throw err;
      const asked = o.retryAfterMs?.(err);
      const wait = Math.min(
        o.maxWaitMs ?? o.backoff.maxMs,
        asked ?? backoffDelay(attempt, o.backoff),
      );
      o.onRetry?.(err, attempt, wait);
      await sleep(wait, o.signal, o.what);
    }
  }
}

/** Options for `poll`. */
export interface PollOptions {
  readonly backoff: Backoff;
  /** Give up after this many checks; default unbounded (the signal bounds it). */
  readonly maxChecks?: number;
  readonly signal?: AbortSignal;
  /** Wait before the first check too (a command just sent is never done at once). */
  readonly waitFirst?: boolean;
  readonly what?: string;
}

/**
 * Check `fn` until it returns a value other than `undefined`; waits grow
 * with the backoff. Resolves `undefined` when `maxChecks` run out; rejects
 * with a `DeadlineError` when the signal aborts.
 */
export async function poll<T>(
  fn: (check: number) => Promise<T | undefined>,
  o: PollOptions,
): Promise<T | undefined> {
  const max = o.maxChecks ?? Number.POSITIVE_INFINITY;
  for (let check = 1; check <= max; check++) {
    if (check > 1 || o.waitFirst === true) {
      await sleep(backoffDelay(check, o.backoff), o.signal, o.what);
    }
    const v = await fn(check);
    if (v !== undefined) return v;
  }
  return undefined;
}

/**
 * A signal that aborts at `deadline` (epoch ms), or when `parent` aborts;
 * undefined when there is neither.
 */
export function deadlineSignal(deadline?: number, parent?: AbortSignal): AbortSignal | undefined {
  const timeout =
    deadline === undefined ? undefined : AbortSignal.timeout(Math.max(0, deadline - Date.now()));
  if (timeout === undefined) return parent;
  return parent === undefined ? timeout : AbortSignal.any([parent, timeout]);
}
