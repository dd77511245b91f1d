import type { RunResult } from './trigger.js';

/*
 * What every function entry point does before the pipeline exists. Kept
 * free of heavy imports: a function module imports only this and its SDK
 * clients at load time; the pipeline loads on the first invocation.
 */

/**
 * A cold-start memo: builds on first use, and forgets a failed build so the
 * next invocation tries again (a transient read failure must not poison a
 * warm instance; a bad spec fails the same way each time anyway).
 */
export function coldStart<T>(build: () => Promise<T>): { get(): Promise<T>; reset(): void } {
  let ready: Promise<T> | undefined;
  return {
    get() {
      if (ready === undefined) {
        const p = build();
        ready = p;
        p.catch(() => {
          if (ready === p) ready = undefined;
        });
      }
      return ready;
    },
    reset() {
      ready = undefined;
    },
  };
}

/**
 * The result of an invocation whose cold start failed, logged as one line.
 * A bad spec (`retryable: false`) is answered, not retried: it fails the same
 * way every time. Anything else is retryable.
 */
export function initResult(err: unknown, cloud: string): RunResult {
  const e = (err ?? {}) as { name?: string; message?: string; retryable?: boolean };
  const retryable = e.retryable !== false;
  const message = e.message ?? String(err);
  const type = e.name ?? 'Error';
  process.stdout.write(
    `${JSON.stringify({ level: 'error', service: 'lbsync', cloud, stage: 'init', errorType: type, error: message, retryable, msg: retryable ? 'cannot start; the platform retries' : 'cannot start: fix the spec and redeploy' })}\n`,
  );
  return { ok: false, outcome: 'failed', retryable, error: { message, type, retryable } };
}

/** For platforms that retry failed invocations: rethrow a retryable cold-start error, answer the rest. */
export function initFailure(err: unknown, cloud: string): RunResult {
  const r = initResult(err, cloud);
  if (r.retryable) throw err;
  return r;
}
