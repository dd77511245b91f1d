import { describe, expect, it } from 'vitest';
import { type ActionOutcome, backoffDelay, Debouncer } from '../../core/debounce.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitFor } from '../helpers/wait.js';

function rig(outcomes: ActionOutcome[] = [], o: { maxWaitMs?: number; attempts?: number } = {}) {
  const clock = new ManualClock();
  let runs = 0;
  let gaveUp = 0;
  let release: (() => void) | undefined;
  const hold = { on: false };
  const d = new Debouncer(
    async () => {
      runs++;
      if (hold.on) await new Promise<void>((r) => (release = r));
      return outcomes.shift() ?? 'done';
    },
    {
      quietMs: 1000,
      retry: { baseMs: 2000, maxMs: 8000 },
      clock,
      onGiveUp: () => gaveUp++,
      ...o,
    },
  );
  return { d, clock, hold, runs: () => runs, gaveUp: () => gaveUp, release: () => release?.() };
}

describe('Debouncer', () => {
  it('runs once after the changes have been quiet for the window', () => {
    const { d, clock, runs } = rig();
    d.poke();
    clock.advance(600);
    d.poke();
    clock.advance(999);
    expect(runs()).toBe(0);
    clock.advance(1);
    expect(runs()).toBe(1);
  });

  it('runs by the ceiling when the changes never stop', () => {
    const { d, clock, runs } = rig([], { maxWaitMs: 3000 });
    for (let i = 0; i < 10; i++) {
      d.poke();
      clock.advance(500);
    }
    expect(runs()).toBe(1);
  });

  it('opens one new window for changes that arrive while it runs', async () => {
    const { d, clock, hold, runs, release } = rig();
    hold.on = true;
    d.poke();
    clock.advance(1000);
    expect(runs()).toBe(1);
    d.poke();
    d.poke();
    hold.on = false;
    release();
    await waitFor(() => d.pending && clock.dueWithin(1000) > 0, 'the follow-up window');
    clock.advance(1000);
    expect(runs()).toBe(2);
    expect(d.stats).toEqual({ pokes: 3, runs: 2, givenUp: 0 });
  });

  it('retries with a bounded backoff, then gives up until the next change', async () => {
    const { d, clock, runs, gaveUp } = rig(['retry', 'retry', 'retry'], { attempts: 3 });
    d.poke();
    clock.advance(1000);
    for (const [wait, n] of [
      [2000, 2],
      [4000, 3],
    ] as const) {
      await waitFor(
        () => clock.dueWithin(wait) === 1 && clock.dueWithin(wait - 1) === 0,
        `backoff ${wait}`,
      );
      clock.advance(wait);
      expect(runs()).toBe(n);
    }
    await waitFor(() => gaveUp() === 1, 'giving up');
    expect(d.pending).toBe(false);
    d.poke();
    clock.advance(1000);
    expect(runs()).toBe(4);
  });

  it('doubles the backoff up to its bound', () => {
    const p = { baseMs: 1000, maxMs: 30_000 };
    expect([1, 2, 3, 5, 6, 9].map((n) => backoffDelay(p, n))).toEqual([
      1000, 2000, 4000, 16000, 30000, 30000,
    ]);
  });
});
