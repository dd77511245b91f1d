import type { KubeConfig, KubernetesObject, V1Node, V1Service } from '@kubernetes/client-node';
import { Watch } from '@kubernetes/client-node';
import { type BackoffPolicy, backoffDelay, type Clock } from '../../core/debounce.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Connection } from './connect.js';
import { describeKubernetesError, httpStatus } from './errors.js';
import { listResource } from './list-pages.js';
import type { RetryPolicy } from './retry.js';
import type { Change } from './watch-filter.js';

/*
 * One resource kept in step with the cluster the way client-go's reflector
 * does it: list (paginated, a 410 on a stale continue token restarts the
 * list), then watch from the list's resourceVersion with bookmarks. The watch
 * is @kubernetes/client-node's Watch. A 410 Gone, as an HTTP answer or as the
 * in-stream ERROR event the apiserver sends for a compacted resourceVersion,
 * means "list again": the fresh list is compared with what was known, so a
 * change missed while disconnected still comes out as a change. Any other
 * failure reconnects after a bounded backoff; a watch that goes silent past
 * its timeout is abandoned and reopened (half-open connections never end
 * on their own).
 */

/** The resources the watcher follows. */
export type WatchedResource = 'nodes' | 'services';

/** The object type of each resource. */
export interface WatchedTypes {
  readonly nodes: V1Node;
  readonly services: V1Service;
}

const PATHS: Readonly<Record<WatchedResource, string>> = {
  nodes: '/api/v1/nodes',
  services: '/api/v1/services',
};

/** Options for `ListWatch`. */
export interface ListWatchOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Reconnect backoff after a failed list or watch (default 1 s doubling to 30 s). */
  readonly backoff?: BackoffPolicy;
  /** Asked of the server per watch (default 300 s); silence past it plus a minute reopens. */
  readonly watchTimeoutSeconds?: number;
  /** Page size of lists (default 500). */
  readonly pageSize?: number;
  readonly retry?: Partial<RetryPolicy>;
}

/**
 * Where the list-watch loop is: `listing` (the first list, or a relist after
 * a 410), `opening` a watch from a listed resourceVersion, `watching`,
 * `reopening` right after the server ended a watch on schedule (same
 * resourceVersion, nothing missed), waiting in `backoff` after a failure,
 * or `stopped`.
 */
export type ListWatchPhase =
  | 'listing'
  | 'opening'
  | 'watching'
  | 'reopening'
  | 'backoff'
  | 'stopped';

/** Counters, for logs and tests. */
export interface ListWatchStats {
  readonly lists: number;
  readonly watches: number;
  readonly events: number;
  /** Lists done again because the watch's resourceVersion was gone (410). */
  readonly relistsAfterGone: number;
  /** Failed lists or watches (each followed by a backoff). */
  readonly failures: number;
  /** The resourceVersion the next watch starts from; undefined: the next step lists. */
  readonly resourceVersion: string | undefined;
  /** A watch is open. */
  readonly watching: boolean;
  readonly phase: ListWatchPhase;
  /** Clock time of the last sign the API serves us: a list, a watch opened, an event or bookmark, a watch ended on schedule (the start time until then). */
  readonly lastProgressAt: number;
}

const keyOf = (o: KubernetesObject): string =>
  `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

/** Lists and watches one resource, reporting each change to `onChange`. */
export class ListWatch<R extends WatchedResource> {
  private known = new Map<string, WatchedTypes[R]>();
  private rv: string | undefined;
  private listed = false;
  private gen = 0;
  private request: AbortController | undefined;
  private open = false;
  private gone = false;
  private streamError: string | undefined;
  private sawEvent = false;
  private startedAt = 0;
  private failuresInRow = 0;
  private stopped = false;
  private phase: ListWatchPhase = 'listing';
  private lastProgressAt: number;
  private readonly abort = new AbortController();
  private cancelTimer: (() => void) | undefined;
  private cancelWatchdog: (() => void) | undefined;
  private counts = { lists: 0, watches: 0, events: 0, relistsAfterGone: 0, failures: 0 };
  private readonly watch: Watch;

  public constructor(
    public readonly resource: R,
    private readonly conn: Connection,
    kubeConfig: KubeConfig,
    private readonly onChange: (c: Change<WatchedTypes[R]>) => void,
    private readonly o: ListWatchOptions,
    private readonly onFirstList: () => void = () => {},
  ) {
    this.watch = new Watch(kubeConfig);
    this.lastProgressAt = o.clock.now();
  }

  /** Counters so far. */
  public get stats(): ListWatchStats {
    return {
      ...this.counts,
      resourceVersion: this.rv,
      watching: this.open,
      phase: this.phase,
      lastProgressAt: this.lastProgressAt,
    };
  }

  /** Start listing and watching. */
  public start(): void {
    void this.cycle();
  }

  /** Stop: close the watch, cancel lists and timers. */
  public stop(): void {
    this.stopped = true;
    this.phase = 'stopped';
    this.gen++;
    this.abort.abort(new Error('watcher stopped'));
    this.request?.abort();
    this.cancelTimer?.();
    this.cancelWatchdog?.();
  }

  private async cycle(): Promise<void> {
    this.cancelTimer = undefined;
    if (this.stopped) return;
    try {
      if (this.rv === undefined) {
        this.phase = 'listing';
        await this.relist();
        if (this.stopped) return;
        this.phase = 'opening';
      } else if (this.phase === 'backoff') this.phase = 'opening';
      await this.openWatch();
    } catch (err) {
      this.failed(err, 'list');
    }
  }

  private async relist(): Promise<void> {
    const { items, resourceVersion } = await listResource<WatchedTypes[R]>(
      this.conn,
      this.resource,
      {
        logger: this.o.logger,
        signal: this.abort.signal,
        ...(this.o.pageSize !== undefined ? { pageSize: this.o.pageSize } : {}),
        ...(this.o.retry !== undefined ? { retry: this.o.retry } : {}),
      },
    );
    if (this.stopped) return;
    this.counts.lists++;
    this.progressed();
    const fresh = new Map(items.map((i) => [keyOf(i), i] as const));
    if (this.listed) {
      for (const [k, old] of this.known) if (!fresh.has(k)) this.onChange({ old, next: undefined });
      for (const [k, next] of fresh) {
        const old = this.known.get(k);
        if (old?.metadata?.resourceVersion !== next.metadata?.resourceVersion)
          this.onChange({ old, next });
      }
    }
    this.known = fresh;
    this.rv = resourceVersion;
    if (!this.listed) {
      this.listed = true;
      this.onFirstList();
    }
  }

  private async openWatch(): Promise<void> {
    const gen = ++this.gen;
    const timeoutSeconds = this.o.watchTimeoutSeconds ?? 300;
    this.gone = false;
    this.streamError = undefined;
    this.sawEvent = false;
    this.startedAt = this.o.clock.now();
    this.counts.watches++;
    let ended = false;
    const controller = await this.watch.watch(
      PATHS[this.resource],
      { resourceVersion: this.rv, allowWatchBookmarks: true, timeoutSeconds },
      (type: string, obj: unknown) => this.onEvent(gen, type, obj),
      (err: unknown) => {
        ended = true;
        this.onDone(gen, err);
      },
    );
    if (gen !== this.gen || ended) {
      if (gen !== this.gen) controller.abort();
      return;
    }
    this.request = controller;
    this.open = true;
    this.phase = 'watching';
    this.progressed();
    this.failuresInRow = 0;
    this.armWatchdog(gen, timeoutSeconds);
  }

  private armWatchdog(gen: number, timeoutSeconds: number): void {
    this.cancelWatchdog?.();
    this.cancelWatchdog = this.o.clock.after((timeoutSeconds + 60) * 1000, () => {
      if (gen !== this.gen) return;
      this.o.logger.warn(
        { resource: this.resource, timeoutSeconds },
        'kubernetes watch: silent past its timeout, reopening',
      );
      this.request?.abort();
    });
  }

  private onEvent(gen: number, type: string, obj: unknown): void {
    if (gen !== this.gen) return;
    this.counts.events++;
    this.sawEvent = true;
    this.armWatchdog(gen, this.o.watchTimeoutSeconds ?? 300);
    const o = obj as WatchedTypes[R] & { code?: number; message?: string };
    if (type !== 'ERROR') this.progressed();
    if (type === 'ERROR') {
      // A Status: 410 means the resourceVersion was compacted; the stream ends next.
      if (o.code === 410) this.gone = true;
      else this.streamError = `${o.code ?? '?'} ${o.message ?? ''}`.trim();
      return;
    }
    this.rv = o.metadata?.resourceVersion ?? this.rv;
    if (type === 'BOOKMARK') return;
    const key = keyOf(o);
    const old = this.known.get(key);
    if (type === 'DELETED') {
      this.known.delete(key);
      this.onChange({ old: old ?? o, next: undefined });
    } else if (type === 'ADDED' || type === 'MODIFIED') {
      this.known.set(key, o);
      this.onChange({ old, next: o });
    }
  }

  private onDone(gen: number, err: unknown): void {
    if (gen !== this.gen || this.stopped) return;
    this.gen++;
    this.open = false;
    this.request = undefined;
    this.cancelWatchdog?.();
    const status = httpStatus(err) ?? (err as { statusCode?: unknown } | null)?.statusCode;
    if (this.gone || status === 410) {
      this.counts.relistsAfterGone++;
      this.o.logger.info(
        {
          resource: this.resource,
          resourceVersion: this.rv,
          how: this.gone ? 'in-stream' : 'HTTP',
        },
        'kubernetes watch: resourceVersion gone (410), listing again',
      );
      this.rv = undefined;
      this.phase = 'listing';
      setImmediate(() => void this.cycle());
      return;
    }
    if (err !== null && err !== undefined) {
      this.failed(err, 'watch');
      return;
    }
    if (this.streamError !== undefined) {
      this.failed(new Error(this.streamError), 'watch');
      return;
    }
    // A normal end (the server's timeout): reopen at once, unless the watch
    // ended as soon as it began, which would otherwise spin.
    if (!this.sawEvent && this.o.clock.now() - this.startedAt < 1000) {
      this.failed(new Error('the watch ended at once without an event'), 'watch');
      return;
    }
    this.phase = 'reopening';
    this.progressed();
    setImmediate(() => void this.cycle());
  }

  private progressed(): void {
    this.lastProgressAt = this.o.clock.now();
  }

  private failed(err: unknown, what: 'list' | 'watch'): void {
    if (this.stopped) return;
    this.open = false;
    this.phase = 'backoff';
    this.counts.failures++;
    this.failuresInRow++;
    const delay = backoffDelay(
      this.o.backoff ?? { baseMs: 1000, maxMs: 30_000 },
      this.failuresInRow,
    );
    // client-node's Watch reports an HTTP answer as an Error with statusCode.
    const watchStatus = (err as { statusCode?: unknown } | null)?.statusCode;
    this.o.logger.warn(
      {
        resource: this.resource,
        error:
          httpStatus(err) !== undefined
            ? describeKubernetesError(err)
            : `${typeof watchStatus === 'number' ? `${watchStatus} ` : ''}${errorMessage(err)}`,
        retryInMs: delay,
        failuresInRow: this.failuresInRow,
      },
      `kubernetes ${what} failed, reconnecting after a backoff`,
    );
    this.cancelTimer = this.o.clock.after(delay, () => void this.cycle());
  }
}
