import type { ResyncDelivery } from '../../core/resync.js';
import type { ListWatchPhase, ListWatchStats, WatchedResource } from './list-watch.js';

/*
 * What `lbsync watch` answers on /readyz and /healthz, decided from the
 * watcher's own state (no probe of its own reaches the API or the function).
 *
 * Ready: both resources are listed and their watches run. A relist (after a
 * 410 Gone) or a backoff after a dropped watch is not ready: until it
 * completes the watcher may miss changes. The short gap between a watch the
 * server ended on schedule and the next one, from the same resourceVersion,
 * stays ready: nothing can be missed there.
 *
 * Live: liveness exists so that the kubelet restarts a watcher that only a
 * restart fixes. The watcher already reconnects and retries on its own, so a
 * failure that retrying can outlast is no reason to restart. What a restart
 * does fix is what the process holds: its connections, TLS sessions and DNS
 * answers, a list or watch wedged inside the client, credentials read once at
 * start (the Azure function key from the Secret reaches a running container's
 * environment only through a restart; a kubeconfig token; cached identity
 * tokens). So liveness fails on two stuck states, each only after `stallAfterMs`:
 *
 * - a resource whose watch is not running and that has shown no progress
 *   (a list done, a watch opened, an event or bookmark, a watch ended on
 *   schedule) for that long: the loop cannot follow the cluster. An open
 *   watch counts as progress however quiet the cluster is; one that goes
 *   silent is reopened by the watch's own watchdog, and then counts here.
 * - the last `failedSends` (or more) resync requests in a row never reached
 *   the function (no answer: network, DNS, TLS, timeout) or had its
 *   credentials refused (401/403), the first of them that long ago, with no
 *   answer from the function since.
 *
 * Never a reason: the function answering that its sync failed, or any other
 * answer from it or its platform (429, 5xx). The path to it works; the sync
 * is the function's business (it retries, and its schedule runs), and
 * restarting the watcher would change nothing there. An API server down for
 * everyone also fails liveness after the bound; those restarts are harmless
 * (the kubelet backs them off, and each new start lists and resyncs) and make
 * a watcher that cannot follow the cluster visible as restarts.
 */

/** Bounds of the liveness rule. */
export interface LivenessBounds {
  /** How long a stuck state lasts before liveness fails (default 300000 ms). */
  readonly stallAfterMs: number;
  /** Failed resync requests in a row that count as stuck (default 3). */
  readonly failedSends: number;
}

/** The defaults: 5 minutes, 3 requests. */
export const DEFAULT_LIVENESS: LivenessBounds = { stallAfterMs: 300_000, failedSends: 3 };

/** One resource, as /readyz and /healthz show it. */
export interface ResourceHealth {
  readonly phase: ListWatchPhase;
  readonly ready: boolean;
  /** Milliseconds since its last progress. */
  readonly sinceProgressMs: number;
  readonly relistsAfterGone: number;
  readonly failures: number;
}

/** The resync requests' side of liveness. */
export interface SendHealth {
  /** Requests in a row that did not reach the function or were refused its credentials. */
  readonly failedInRow: number;
  /** Milliseconds since the first of them (0 when none). */
  readonly failingForMs: number;
  readonly last?: string;
}

/** The watcher's health: readiness, liveness and why. */
export interface WatcherHealth {
  readonly ready: boolean;
  readonly live: boolean;
  /** Why it is not live (empty when live). */
  readonly problems: readonly string[];
  readonly resources: Readonly<Record<WatchedResource, ResourceHealth>>;
  readonly sends: SendHealth;
}

/** The failed-send streak the watcher keeps. */
export interface SendStreak {
  readonly failedInRow: number;
  /** Clock time of the streak's first request. */
  readonly since: number | undefined;
  readonly last: ResyncDelivery | undefined;
}

/** True when a restart might fix the path this delivery failed on (see the rule above). */
export function restartMayFix(d: ResyncDelivery): boolean {
  return !d.delivered && (d.status === 0 || d.status === 401 || d.status === 403);
}

const readyPhases: ReadonlySet<ListWatchPhase> = new Set(['watching', 'reopening']);

/** Judge readiness and liveness from the watcher's state at `now`. */
export function judgeHealth(
  resources: Readonly<Record<WatchedResource, ListWatchStats>>,
  sends: SendStreak,
  now: number,
  bounds: LivenessBounds,
): WatcherHealth {
  const problems: string[] = [];
  const judged = {} as Record<WatchedResource, ResourceHealth>;
  for (const r of ['nodes', 'services'] as const) {
    const s = resources[r];
    const sinceProgressMs = Math.max(0, now - s.lastProgressAt);
    judged[r] = {
      phase: s.phase,
      ready: readyPhases.has(s.phase),
      sinceProgressMs,
      relistsAfterGone: s.relistsAfterGone,
      failures: s.failures,
    };
    if (s.phase !== 'watching' && s.phase !== 'stopped' && sinceProgressMs > bounds.stallAfterMs)
      problems.push(`${r}: no list, watch or event for ${sinceProgressMs} ms (${s.phase})`);
  }
  const failingForMs = sends.since === undefined ? 0 : Math.max(0, now - sends.since);
  if (sends.failedInRow >= bounds.failedSends && failingForMs > bounds.stallAfterMs)
    problems.push(
      `resync: ${sends.failedInRow} requests in a row did not reach the function or were refused, for ${failingForMs} ms`,
    );
  return {
    ready: judged.nodes.ready && judged.services.ready,
    live: problems.length === 0,
    problems,
    resources: judged,
    sends: {
      failedInRow: sends.failedInRow,
      failingForMs,
      ...(sends.last !== undefined && sends.failedInRow > 0 ? { last: sends.last.detail } : {}),
    },
  };
}
