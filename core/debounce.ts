/*
 * Turning a burst of changes into one action, for the cluster watcher: a
 * trailing debounce (the action runs once the changes have been quiet for
 * `quietMs`) with a ceiling (`maxWaitMs` after the first change it runs
 * anyway, so a cluster that never stops changing still gets resynced), run
 * single-flight (a change arriving while the action runs opens a new window
 * after it), and retried with bounded backoff when the action says so.
 *
 * Written here rather than taken from lodash.debounce because the watcher
 * needs the async single-flight and the retries, and because time comes from
 * an injected Clock: tests drive it by hand and never wait on the wall clock.
 */

/** Where time comes from: the system's, or a test's hand-driven one. */
export interface Clock {
  now(): number;
  /** Run `fn` after `ms`; the returned function cancels it. */
  after(ms: number, fn: () => void): () => void;
}

/** The system clock (setTimeout). */
export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

/** Bounded exponential backoff: base, 2x base, ... up to max. */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

/** The delay before attempt `n + 1` after `n` failures (n >= 1). */
export function backoffDelay(p: BackoffPolicy, failures: number): number {
  return Math.min(p.maxMs, p.baseMs * 2 ** Math.max(0, failures - 1));
}

/** What the action reports: done, or worth another attempt. */
export type ActionOutcome = 'done' | 'retry';

/** Options for `Debouncer`. */
export interface DebounceOptions {
  /** Quiet time before the action runs (the watcher's default: 1 s). */
  readonly quietMs: number;
  /** Longest a change waits for its action, however busy (default 10 x quietMs). */
  readonly maxWaitMs?: number;
  /** Attempts per window when the action says `retry` (default 5), with this backoff. */
  readonly attempts?: number;
  readonly retry?: BackoffPolicy;
  readonly clock?: Clock;
  /** Told when a window's attempts ran out; the next change opens a new window. */
  readonly onGiveUp?: (attempts: number) => void;
}

/** Counters, for logs and tests. */
export interface DebounceStats {
  /** Changes reported with `poke()`. */
  readonly pokes: number;
  /** Times the action ran (retries included). */
  readonly runs: number;
  /** Windows given up after their attempts ran out. */
  readonly givenUp: number;
}

/** Runs an async action once per burst of `poke()` calls. */
export class Debouncer {
  private readonly clock: Clock;
  private cancel: (() => void) | undefined;
  private windowStart: number | undefined;
  private running = false;
  private dirty = false;
  private failures = 0;
  private stopped = false;
  private counts = { pokes: 0, runs: 0, givenUp: 0 };

  public constructor(
    private readonly action: () => Promise<ActionOutcome>,
    private readonly o: DebounceOptions,
  ) {
    this.clock = o.clock ?? systemClock;
  }

  /** Counters so far. */
  public get stats(): DebounceStats {
    return { ...this.counts };
  }

  /** True while a run is scheduled, running, or owed after the running one. */
  public get pending(): boolean {
    return this.cancel !== undefined || this.running || this.dirty;
  }

  /** Something changed: run the action once things are quiet. */
  public poke(): void {
    if (this.stopped) return;
    this.counts.pokes++;
    if (this.running) this.dirty = true;
    else this.schedule();
  }

  private schedule(): void {
    // A change during a retry's backoff starts a fresh window: the action is
    // level-triggered, one run covers both.
    this.failures = 0;
    const now = this.clock.now();
    this.windowStart ??= now;
    const ceiling = this.windowStart + (this.o.maxWaitMs ?? 10 * this.o.quietMs);
    this.arm(Math.max(0, Math.min(now + this.o.quietMs, ceiling) - now));
  }

  /** Cancel what is scheduled; a running action finishes but nothing follows it. */
  public stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.cancel = undefined;
    this.dirty = false;
  }

  private arm(ms: number): void {
    this.cancel?.();
    this.cancel = this.clock.after(ms, () => {
      this.cancel = undefined;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    this.windowStart = undefined;
    this.running = true;
    this.counts.runs++;
    let outcome: ActionOutcome;
    try {
      outcome = await this.action();
    } catch {
      outcome = 'retry';
    } finally {
      this.running = false;
    }
    if (this.stopped) return;
    if (this.dirty) {
      // Changes arrived meanwhile: a new window covers them (and any retry).
      this.dirty = false;
      this.schedule();
      return;
    }
    if (outcome === 'done') {
      this.failures = 0;
      return;
    }
    this.failures++;
    if (this.failures >= (this.o.attempts ?? 5)) {
      this.counts.givenUp++;
      this.o.onGiveUp?.(this.failures);
      this.failures = 0;
      return;
    }
    this.arm(backoffDelay(this.o.retry ?? { baseMs: 1000, maxMs: 30_000 }, this.failures));
  }
}
