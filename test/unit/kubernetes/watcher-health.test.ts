import { describe, expect, it } from 'vitest';
import type { ListWatchPhase, ListWatchStats } from '../../../adapters/kubernetes/list-watch.js';
import {
  DEFAULT_LIVENESS,
  judgeHealth,
  restartMayFix,
  type SendStreak,
} from '../../../adapters/kubernetes/watcher-health.js';

// judgeHealth is the whole rule behind /readyz and /healthz; the e2e test
// (test/e2e/watch-health.test.ts) drives it through a real watcher.

const NOW = 1_000_000;
const BOUNDS = { stallAfterMs: 60_000, failedSends: 3 };

function stats(phase: ListWatchPhase, lastProgressAt = NOW): ListWatchStats {
  return {
    lists: 1,
    watches: 1,
    events: 0,
    relistsAfterGone: 0,
    failures: 0,
    resourceVersion: '1',
    watching: phase === 'watching',
    phase,
    lastProgressAt,
  };
}

const noFailures: SendStreak = { failedInRow: 0, since: undefined, last: undefined };

function both(phase: ListWatchPhase, lastProgressAt = NOW) {
  return { nodes: stats(phase, lastProgressAt), services: stats(phase, lastProgressAt) };
}

describe('judgeHealth', () => {
  it('is ready while both watches run, and while one reopens from the same resourceVersion', () => {
    expect(judgeHealth(both('watching'), noFailures, NOW, BOUNDS).ready).toBe(true);
    const reopening = { nodes: stats('watching'), services: stats('reopening') };
    expect(judgeHealth(reopening, noFailures, NOW, BOUNDS).ready).toBe(true);
  });

  it('is not ready while either resource lists, opens its watch or backs off', () => {
    for (const phase of ['listing', 'opening', 'backoff'] as const) {
      const h = judgeHealth(
        { nodes: stats('watching'), services: stats(phase) },
        noFailures,
        NOW,
        BOUNDS,
      );
      expect(h.ready, phase).toBe(false);
      expect(h.live, phase).toBe(true);
    }
  });

  it('stays live with an open watch however long the cluster is quiet', () => {
    const h = judgeHealth(
      both('watching', NOW - 10 * BOUNDS.stallAfterMs),
      noFailures,
      NOW,
      BOUNDS,
    );
    expect(h).toMatchObject({ ready: true, live: true, problems: [] });
  });

  it('fails liveness once a resource without a watch made no progress past the bound, naming it', () => {
    const stuck = {
      nodes: stats('watching'),
      services: stats('listing', NOW - BOUNDS.stallAfterMs - 1),
    };
    const h = judgeHealth(stuck, noFailures, NOW, BOUNDS);
    expect(h.live).toBe(false);
    expect(h.problems).toEqual([
      `services: no list, watch or event for ${BOUNDS.stallAfterMs + 1} ms (listing)`,
    ]);
    const atBound = {
      nodes: stats('watching'),
      services: stats('listing', NOW - BOUNDS.stallAfterMs),
    };
    expect(judgeHealth(atBound, noFailures, NOW, BOUNDS).live).toBe(true);
  });

  it('does not fail liveness for a stopped watcher', () => {
    expect(judgeHealth(both('stopped', 0), noFailures, NOW, BOUNDS).live).toBe(true);
  });

  it('fails liveness on enough failed sends that have lasted past the bound, not on fewer or newer ones', () => {
    const last = { delivered: false, retry: true, status: 0, detail: 'connect ECONNREFUSED' };
    const old = NOW - BOUNDS.stallAfterMs - 1;
    const streak = (failedInRow: number, since: number): SendStreak => ({
      failedInRow,
      since,
      last,
    });
    expect(judgeHealth(both('watching'), streak(3, old), NOW, BOUNDS)).toMatchObject({
      live: false,
      sends: { failedInRow: 3, last: 'connect ECONNREFUSED' },
    });
    expect(judgeHealth(both('watching'), streak(2, old), NOW, BOUNDS).live).toBe(true);
    expect(judgeHealth(both('watching'), streak(5, NOW - 1_000), NOW, BOUNDS).live).toBe(true);
  });

  it('uses 5 minutes and 3 requests by default', () => {
    expect(DEFAULT_LIVENESS).toEqual({ stallAfterMs: 300_000, failedSends: 3 });
  });
});

describe('restartMayFix', () => {
  it('counts no answer and refused credentials, never an answer from the function', () => {
    const d = (delivered: boolean, status: number) => ({
      delivered,
      retry: false,
      status,
      detail: '',
    });
    expect(restartMayFix(d(false, 0))).toBe(true);
    expect(restartMayFix(d(false, 401))).toBe(true);
    expect(restartMayFix(d(false, 403))).toBe(true);
    for (const status of [422, 429, 500, 503])
      expect(restartMayFix(d(false, status)), String(status)).toBe(false);
    expect(restartMayFix(d(true, 200))).toBe(false);
  });
});
