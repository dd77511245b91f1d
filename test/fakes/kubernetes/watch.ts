import type { ServerResponse } from 'node:http';
import type { ResourceDef } from './resources.js';
import type { Matcher } from './selectors.js';
import { tooOldResourceVersion } from './status.js';
import { type Change, CompactedError, type KubeObject, type Store } from './store.js';

/*
 * Watch streams: one chunked 200 response per watch, one JSON event per
 * line. Without a resourceVersion (or "0") the stream starts with the current
 * objects as ADDED; from a resourceVersion it replays the changes since; a
 * compacted one gets a single in-stream ERROR event carrying a 410 Status,
 * then the stream ends, as kube-apiserver does. With a selector, objects that
 * start or stop matching arrive as ADDED / DELETED. Every stream ends at its
 * timeoutSeconds, or when the fake stops.
 */

/** What one watch asks for. */
export interface WatchRequest {
  readonly resource: ResourceDef;
  readonly namespace?: string;
  readonly match: Matcher;
  /** Undefined: start with the current state. */
  readonly fromResourceVersion?: number;
  readonly timeoutMs: number;
  readonly bookmarks: boolean;
}

interface Session {
  readonly req: WatchRequest;
  readonly res: ServerResponse;
  readonly timer: NodeJS.Timeout;
  readonly unsubscribe: () => void;
}

/** The open watch streams of one fake. */
export class Watches {
  private readonly sessions = new Set<Session>();

  public constructor(private readonly store: Store) {}

  /** Open streams. */
  public get open(): number {
    return this.sessions.size;
  }

  private typed(r: ResourceDef, o: KubeObject): KubeObject {
    return { ...o, kind: r.kind, apiVersion: 'v1' };
  }

  private inScope(req: WatchRequest, o: KubeObject | undefined): boolean {
    return (
      o !== undefined &&
      (req.namespace === undefined || o.metadata.namespace === req.namespace) &&
      req.match(o as unknown as Record<string, unknown>)
    );
  }

  private eventFor(req: WatchRequest, c: Change): { type: string; object: KubeObject } | null {
    const now = c.type !== 'DELETED' && this.inScope(req, c.object);
    const before = c.type === 'DELETED' ? this.inScope(req, c.object) : this.inScope(req, c.prev);
    if (c.type === 'DELETED') return before ? { type: 'DELETED', object: c.object } : null;
    if (now && before) return { type: 'MODIFIED', object: c.object };
    if (now) return { type: 'ADDED', object: c.object };
    if (before) return { type: 'DELETED', object: c.object };
    return null;
  }

  /** Serve one watch on `res` until its timeout, the client leaving, or closeAll(). */
  public start(res: ServerResponse, req: WatchRequest): void {
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-cache, private',
    });
    // The apiserver flushes at once: a client's request resolves before the first event.
    res.flushHeaders();
    const write = (type: string, object: unknown): void => {
      res.write(`${JSON.stringify({ type, object })}\n`);
    };
    let backlog: Change[] = [];
    if (req.fromResourceVersion !== undefined) {
      try {
        backlog = this.store.changesSince(req.resource.name, req.fromResourceVersion);
      } catch (err) {
        if (!(err instanceof CompactedError)) throw err;
        write('ERROR', tooOldResourceVersion(err.requested, err.oldest));
        res.end();
        return;
      }
    } else {
      for (const { object } of this.store.list(req.resource.name)) {
        if (this.inScope(req, object)) write('ADDED', this.typed(req.resource, object));
      }
    }
    for (const c of backlog) {
      const e = this.eventFor(req, c);
      if (e !== null) write(e.type, this.typed(req.resource, e.object));
    }
    const unsubscribe = this.store.subscribe((c) => {
      if (c.resource !== req.resource.name) return;
      const e = this.eventFor(req, c);
      if (e !== null) write(e.type, this.typed(req.resource, e.object));
    });
    const session: Session = {
      req,
      res,
      unsubscribe,
      timer: setTimeout(() => this.end(session), req.timeoutMs),
    };
    this.sessions.add(session);
    res.on('close', () => this.end(session));
  }

  private end(s: Session): void {
    if (!this.sessions.delete(s)) return;
    clearTimeout(s.timer);
    s.unsubscribe();
    s.res.end();
  }

  /** Send a BOOKMARK with the current resourceVersion to streams that allow bookmarks. */
  public bookmark(): void {
    for (const s of this.sessions) {
      if (!s.req.bookmarks) continue;
      s.res.write(
        `${JSON.stringify({
          type: 'BOOKMARK',
          object: {
            kind: s.req.resource.kind,
            apiVersion: 'v1',
            metadata: { resourceVersion: String(this.store.resourceVersion) },
          },
        })}\n`,
      );
    }
  }

  /** End every stream now. */
  public closeAll(): void {
    for (const s of [...this.sessions]) this.end(s);
  }
}
