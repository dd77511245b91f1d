import type { KubeConfig, V1Node, V1Service } from '@kubernetes/client-node';
import { type BackoffPolicy, type Clock, Debouncer, systemClock } from '../../core/debounce.js';
import { type Logger, silentLogger } from '../../core/log.js';
import type { ResyncDelivery, ResyncTarget } from '../../core/resync.js';
import { connect } from './connect.js';
import { ListWatch, type WatchedResource } from './list-watch.js';
import {
  type Change,
  type ChangeFilterOptions,
  nodeEventMatters,
  serviceEventMatters,
} from './watch-filter.js';
import {
  DEFAULT_LIVENESS,
  judgeHealth,
  type LivenessBounds,
  restartMayFix,
  type SendStreak,
  type WatcherHealth,
} from './watcher-health.js';

/*
 * The cluster-side trigger behind `lbsync watch`: a small process (one
 * replica in the cluster, or anywhere with a kubeconfig) that follows Nodes
 * and Services, keeps the changes that can matter (watch-filter.ts),
 * debounces them, and sends one authenticated resync to the deployed
 * function per burst. It never reads more than get/list/watch on nodes and
 * services, and holds no cloud credentials beyond what reaching the
 * function takes. The function stays level-triggered: it reads the whole
 * cluster itself; the watcher only says "now".
 */

/** Options of `ClusterWatcher.start`. */
export interface ClusterWatcherOptions {
  readonly kubeConfig: KubeConfig;
  readonly target: ResyncTarget;
  readonly filter: ChangeFilterOptions;
  /** Quiet time before a resync (default 1000 ms). */
  readonly debounceMs?: number;
  /** Longest a change waits for its resync in a busy cluster (default 10 x debounceMs). */
  readonly maxWaitMs?: number;
  /** Send one resync once both first lists are in (default true): covers changes while down. */
  readonly resyncOnStart?: boolean;
  /** Ask the function for a dry run (plan only) instead of a sync. */
  readonly dryRun?: boolean;
  /** Attempts per resync when the function or the path to it fails (default 5). */
  readonly sendAttempts?: number;
  /** Backoff between those attempts (default 2 s doubling to 60 s). */
  readonly sendBackoff?: BackoffPolicy;
  /** Per-request timeout of a resync (default 300 s: the function answers after its sync). */
  readonly sendTimeoutMs?: number;
  /** Reconnect backoff of lists and watches (default 1 s doubling to 30 s). */
  readonly reconnect?: BackoffPolicy;
  readonly watchTimeoutSeconds?: number;
  /** When /healthz says stuck (watcher-health.ts; default 300 s, 3 requests). */
  readonly liveness?: Partial<LivenessBounds>;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** Counters, for logs and tests. */
export interface ClusterWatcherStats {
  /** Events and relist differences seen, per resource. */
  readonly seen: Readonly<Record<WatchedResource, number>>;
  /** Those that matter (each pokes the debounce). */
  readonly relevant: number;
  readonly ignored: number;
  /** Resync requests sent (retries included), and those the function ran. */
  readonly sent: number;
  readonly delivered: number;
}

/** Follows the cluster and sends debounced resyncs. */
export class ClusterWatcher {
  public readonly nodes: ListWatch<'nodes'>;
  public readonly services: ListWatch<'services'>;
  private last: ResyncDelivery | undefined;
  private readonly debouncer: Debouncer;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private streak: SendStreak = { failedInRow: 0, since: undefined, last: undefined };
  private readonly reasons: string[] = [];
  private readonly stopSignal = new AbortController();
  private listsIn = 0;
  private counts = { nodes: 0, services: 0, relevant: 0, ignored: 0, sent: 0, delivered: 0 };

  private constructor(private readonly o: ClusterWatcherOptions) {
    this.logger = o.logger ?? silentLogger();
    const clock = o.clock ?? systemClock;
    this.clock = clock;
    const quietMs = o.debounceMs ?? 1000;
    this.debouncer = new Debouncer(() => this.send(), {
      quietMs,
      maxWaitMs: o.maxWaitMs ?? 10 * quietMs,
      attempts: o.sendAttempts ?? 5,
      retry: o.sendBackoff ?? { baseMs: 2000, maxMs: 60_000 },
      clock,
      onGiveUp: (n) =>
        this.logger.error(
          { attempts: n, target: o.target.description, last: this.lastDelivery?.detail },
          'watch: resync not delivered; giving up until the next change (the function schedule still runs)',
        ),
    });
    const conn = connect({ kubeConfig: o.kubeConfig });
    const lw = {
      clock,
      logger: this.logger,
      ...(o.reconnect !== undefined ? { backoff: o.reconnect } : {}),
      ...(o.watchTimeoutSeconds !== undefined
        ? { watchTimeoutSeconds: o.watchTimeoutSeconds }
        : {}),
    };
    const firstList = (): void => {
      if (++this.listsIn === 2 && o.resyncOnStart !== false)
        this.changed('start', 'watcher started');
    };
    this.nodes = new ListWatch('nodes', conn, o.kubeConfig, (c) => this.onNode(c), lw, firstList);
    this.services = new ListWatch(
      'services',
      conn,
      o.kubeConfig,
      (c) => this.onService(c),
      lw,
      firstList,
    );
    this.stopSignal.signal.addEventListener('abort', () => conn.close());
  }

  /** Start watching; resolves at once (the lists and watches run in the background). */
  public static start(o: ClusterWatcherOptions): ClusterWatcher {
    const w = new ClusterWatcher(o);
    w.logger.info(
      {
        target: o.target.description,
        loadBalancerClass: o.filter.loadBalancerClass,
        debounceMs: o.debounceMs ?? 1000,
      },
      'watch: following nodes and services',
    );
    w.nodes.start();
    w.services.start();
    return w;
  }

  /** Counters so far. */
  public get stats(): ClusterWatcherStats {
    const c = this.counts;
    return {
      seen: { nodes: c.nodes, services: c.services },
      relevant: c.relevant,
      ignored: c.ignored,
      sent: c.sent,
      delivered: c.delivered,
    };
  }

  /** The function's last answer, if any. */
  public get lastDelivery(): ResyncDelivery | undefined {
    return this.last;
  }

  /** True while a resync is scheduled, being sent, or owed. */
  public get pending(): boolean {
    return this.debouncer.pending;
  }

  /** True once both resources are listed and watched. */
  public get ready(): boolean {
    return this.nodes.stats.watching && this.services.stats.watching;
  }

  /** Readiness and liveness now, as /readyz and /healthz answer them. */
  public get health(): WatcherHealth {
    return judgeHealth(
      { nodes: this.nodes.stats, services: this.services.stats },
      this.streak,
      this.clock.now(),
      { ...DEFAULT_LIVENESS, ...this.o.liveness },
    );
  }

  /** Stop watching; a resync being sent is abandoned. */
  public stop(): void {
    this.debouncer.stop();
    this.nodes.stop();
    this.services.stop();
    this.stopSignal.abort(new Error('watcher stopped'));
    this.o.target.close?.();
  }

  private onNode(c: Change<V1Node>): void {
    this.counts.nodes++;
    const name = (c.next ?? c.old)?.metadata?.name ?? '?';
    if (nodeEventMatters(c, this.o.filter)) this.changed('node', `node ${name} ${kind(c)}`);
    else this.counts.ignored++;
  }

  private onService(c: Change<V1Service>): void {
    this.counts.services++;
    const s = c.next ?? c.old;
    const name = `${s?.metadata?.namespace ?? ''}/${s?.metadata?.name ?? '?'}`;
    if (serviceEventMatters(c, this.o.filter))
      this.changed('service', `service ${name} ${kind(c)}`);
    else this.counts.ignored++;
  }

  private changed(what: 'node' | 'service' | 'start', reason: string): void {
    if (what !== 'start') this.counts.relevant++;
    // Bounded: the log line names the first few changes of a burst.
    if (this.reasons.length < 10) this.reasons.push(reason);
    this.logger.debug({ reason }, 'watch: change that matters');
    this.debouncer.poke();
  }

  private async send(): Promise<'done' | 'retry'> {
    const reasons = this.reasons.splice(0);
    this.counts.sent++;
    const signal = AbortSignal.any([
      this.stopSignal.signal,
      AbortSignal.timeout(this.o.sendTimeoutMs ?? 300_000),
    ]);
    const d = await this.o.target.send(
      { lbsync: 'resync', force: false, dryRun: this.o.dryRun === true },
      signal,
    );
    this.last = d;
    if (d.delivered) this.counts.delivered++;
    this.streak = restartMayFix(d)
      ? {
          failedInRow: this.streak.failedInRow + 1,
          since: this.streak.since ?? this.clock.now(),
          last: d,
        }
      : { failedInRow: 0, since: undefined, last: d };
    this.logger[d.delivered && !d.retry ? 'info' : 'warn'](
      {
        target: this.o.target.description,
        status: d.status,
        delivered: d.delivered,
        retry: d.retry,
        changes: reasons,
      },
      `watch: resync ${d.delivered ? 'delivered' : 'not delivered'}: ${d.detail}`,
    );
    if (d.retry) this.reasons.push(...reasons.slice(0, 10 - this.reasons.length));
    return d.retry ? 'retry' : 'done';
  }
}

function kind<T>(c: Change<T>): string {
  if (c.old === undefined) return 'added';
  return c.next === undefined ? 'deleted' : 'changed';
}
