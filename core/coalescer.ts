import type { SyncRequest } from './model.js';
import type { SyncReport } from './sync.js';

/**
 * At most one sync at a time per instance. A trigger arriving during a sync
 * waits for one follow-up sync that starts after the current one ends, and
 * every trigger arriving meanwhile shares that follow-up's report
 * (level-triggered: one later resolution covers them all). Requests that
 * differ in force/dryRun are not merged with others.
 */
export class SyncCoalescer {
  private tail: Promise<unknown> = Promise.resolve();
  private pending: { readonly key: string; readonly promise: Promise<SyncReport> } | undefined;

  /** Run `fn` after the running sync; a request equivalent to a waiting one shares its report. */
  public run(request: SyncRequest, fn: () => Promise<SyncReport>): Promise<SyncReport> {
    const key = `${request.force === true}/${request.dryRun === true}`;
    if (this.pending !== undefined && this.pending.key === key) return this.pending.promise;
    const promise: Promise<SyncReport> = this.tail
      .catch(() => undefined)
      .then(() => {
        // Once it starts, later triggers must wait for a newer resolution.
        if (this.pending?.promise === promise) this.pending = undefined;
        return fn();
      });
    this.pending = { key, promise };
    this.tail = promise;
    return promise;
  }
}
