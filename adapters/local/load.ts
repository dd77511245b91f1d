import { request } from 'node:http';

/** One completed request of a load loop. */
export interface LoadSample {
  /** When the request was sent (ms epoch); decides which config it saw. */
  readonly startedAt: number;
  /** When it completed. */
  readonly at: number;
  readonly worker: string | null;
  readonly error: string | null;
}

/** A running, bounded load loop. */
export interface LoadLoop {
  /** Samples so far (completed requests, in completion order). */
  readonly samples: readonly LoadSample[];
  /** Stop early and wait for in-flight requests. */
  stop(): Promise<LoadSummary>;
  /** Resolves when the loop ends by itself (count or time bound reached) or is stopped. */
  readonly done: Promise<LoadSummary>;
}

/** Totals of a load loop. */
export interface LoadSummary {
  readonly requests: number;
  readonly failed: number;
  readonly byWorker: Readonly<Record<string, number>>;
  readonly errors: readonly string[];
}

/** Options for `startLoad`; both bounds are mandatory so a loop always ends. */
export interface LoadOptions {
  readonly host: string;
  readonly port: number;
  readonly concurrency: number;
  readonly maxRequests: number;
  readonly maxMs: number;
  readonly timeoutMs?: number;
}

/**
 * Send GETs from `concurrency` parallel loops until `maxRequests` or `maxMs`,
 * whichever comes first. Each request uses a fresh connection (no keep-alive)
 * so every request is balanced anew and reloads are exercised per request.
 */
export function startLoad(opts: LoadOptions): LoadLoop {
  const samples: LoadSample[] = [];
  const started = Date.now();
  let sent = 0;
  let stopped = false;
  const one = (): Promise<void> =>
    new Promise<void>((resolve) => {
      const startedAt = Date.now();
      const req = request(
        {
          host: opts.host,
          port: opts.port,
          path: '/',
          agent: false,
          timeout: opts.timeoutMs ?? 5000,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            body += c;
          });
          res.on('end', () => {
            const ok = res.statusCode === 200;
            samples.push({
              startedAt,
              at: Date.now(),
              worker: ok ? body.trim() : null,
              error: ok ? null : `HTTP ${res.statusCode}`,
            });
            resolve();
          });
          res.on('error', (e) => {
            samples.push({ startedAt, at: Date.now(), worker: null, error: e.message });
            resolve();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => {
        samples.push({ startedAt, at: Date.now(), worker: null, error: e.message });
        resolve();
      });
      req.end();
    });
  const loop = async (): Promise<void> => {
    while (!stopped && sent < opts.maxRequests && Date.now() - started < opts.maxMs) {
      sent++;
      await one();
    }
  };
  const done = Promise.all(Array.from({ length: opts.concurrency }, loop)).then(() =>
    summarize(samples),
  );
  return {
    samples,
    done,
    stop: async () => {
      stopped = true;
      return done;
    },
  };
}

/** Totals over samples (all of them, or a slice). */
export function summarize(samples: readonly LoadSample[]): LoadSummary {
  const byWorker: Record<string, number> = {};
  const errors: string[] = [];
  for (const s of samples) {
    if (s.worker !== null) byWorker[s.worker] = (byWorker[s.worker] ?? 0) + 1;
    if (s.error !== null) errors.push(s.error);
  }
  return { requests: samples.length, failed: errors.length, byWorker, errors };
}
