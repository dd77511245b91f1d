import type { Clock } from '../../core/debounce.js';

/**
 * A clock that moves only when the test says so: timers armed through it
 * (debounce windows, retry and reconnect backoffs) fire in order inside
 * `advance`. Tests then synchronise on counts (waitFor), never on elapsed
 * wall-clock time.
 */
export class ManualClock implements Clock {
  private t = 1_000_000;
  private seq = 0;
  private readonly timers: { at: number; seq: number; fn: () => void }[] = [];

  /** The clock's time (ms). */
  public now(): number {
    return this.t;
  }

  /** Arm a timer `ms` from now. */
  public after(ms: number, fn: () => void): () => void {
    const timer = { at: this.t + ms, seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      const i = this.timers.indexOf(timer);
      if (i >= 0) this.timers.splice(i, 1);
    };
  }

  /** Timers that would fire within `ms` from now. */
  public dueWithin(ms: number): number {
    return this.timers.filter((x) => x.at <= this.t + ms).length;
  }

  /** Move time on by `ms`, firing every timer that falls due, earliest first. */
  public advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = this.timers
        .filter((x) => x.at <= end)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (next === undefined) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }
}
