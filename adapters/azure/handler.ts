import { isManualRequest, parseManualRequest, settle } from '../../core/entry.js';
import { errorMessage, isRetryable, LbsyncError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { SyncRequest, Worker } from '../../core/model.js';
import type { Transport, WorkerSource } from '../../core/ports.js';
import type { Template } from '../../core/render.js';
import type { Spec } from '../../core/spec.js';
import { runSync, type SyncReport } from '../../core/sync.js';
import {
  type AutoscaleNotification,
  classifyAutoscaleNotification,
  classifyEventGridEvent,
  type EventScope,
  isAutoscaleNotification,
} from './events.js';

/** How long to keep re-checking after an autoscale webhook (it fires when scaling starts). */
export interface SettleOptions {
  /** Wait between checks; default 20 s. */
  readonly intervalMs: number;
  /** Checks after the first sync; default 5 (so ~100 s, under the 230 s HTTP limit). */
  readonly maxChecks: number;
}

/** Everything the Azure handlers need; built once per cold start. */
export interface AzureHandlerDeps {
  readonly spec: Spec;
  readonly template: Template;
  readonly source: WorkerSource;
  readonly transport: Transport;
  readonly settle?: SettleOptions;
  readonly now?: () => number;
}

/** What an HTTP handler answers (mapped onto `HttpResponseInit` by the function). */
export interface HttpAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** The three entry points, independent of @azure/functions so they are plain to test. */
export interface AzureHandlers {
  /** Event Grid: sync when the event concerns a configured scale set; throws when a retry could help. */
  eventGrid(event: unknown, logger: Logger): Promise<SyncReport | null>;
  /** HTTP: manual resync (`{"lbsync":"resync",...}`) or the autoscale webhook payload. */
  http(body: unknown, logger: Logger): Promise<HttpAnswer>;
  /** Timer: periodic resync; throws when a retry could help. */
  timer(logger: Logger): Promise<SyncReport>;
}

const DEFAULT_SETTLE: SettleOptions = { intervalMs: 20_000, maxChecks: 5 };

/**
 * Build the Azure entry points. Syncs within one warm instance are
 * coalesced: while one runs, further triggers share a single follow-up sync
 * (level-triggered, so one later resolution covers them all), which keeps a
 * burst of Event Grid events from queueing Run Commands on the LB VMs.
 */
export function createAzureHandlers(deps: AzureHandlerDeps): AzureHandlers {
  const azure = deps.spec.workers.azure;
  const lbs = deps.spec.loadBalancers.azure;
  if (azure === undefined || lbs === undefined) {
    throw new LbsyncError('workers.azure and loadBalancers.azure: required for the Azure path');
  }
  const scope: EventScope = {
    subscriptionId: azure.subscriptionId,
    scaleSets: azure.scaleSets,
    lbVms: lbs.vms.filter((v) => v.scaleSet === undefined),
  };
  const recorder = new RecordingSource(deps.source);
  const coalescer = new SyncCoalescer();
  const sync = (request: SyncRequest, logger: Logger): Promise<SyncReport> =>
    coalescer.run(request, () =>
      runSync(request, {
        spec: deps.spec,
        template: deps.template,
        source: recorder,
        transport: deps.transport,
        logger,
        ...(deps.now !== undefined ? { now: deps.now } : {}),
      }),
    );
  const settleOptions = deps.settle ?? DEFAULT_SETTLE;

  return {
    async eventGrid(event, logger) {
      const verdict = classifyEventGridEvent(event, scope);
      const subject = (event as { subject?: unknown } | null)?.subject;
      logger.info(
        {
          stage: 'trigger',
          source: 'eventGrid',
          verdict: verdict.kind,
          ...(verdict.kind === 'sync' ? { group: verdict.group } : { reason: verdict.reason }),
          ...(verdict.eventId !== undefined ? { eventId: verdict.eventId } : {}),
          subject: typeof subject === 'string' ? subject : undefined,
        },
        verdict.kind === 'sync' ? 'event accepted' : `event ignored: ${verdict.reason}`,
      );
      if (verdict.kind !== 'sync') return null;
      const report = await sync(
        {
          reason: 'event',
          group: verdict.group,
          ...(verdict.eventId !== undefined ? { eventId: verdict.eventId } : {}),
        },
        logger,
      );
      return settle(report);
    },

    async timer(logger) {
      logger.info({ stage: 'trigger', source: 'timer' }, 'scheduled resync');
      return settle(await sync({ reason: 'schedule' }, logger));
    },

    async http(body, logger) {
      try {
        if (isAutoscaleNotification(body)) {
          const verdict = classifyAutoscaleNotification(body, scope);
          if (verdict.kind !== 'sync' || !('notification' in verdict)) {
            const reason = 'reason' in verdict ? verdict.reason : 'not handled';
            logger.info(
              { stage: 'trigger', source: 'autoscale', verdict: 'ignore', reason },
              `autoscale notification ignored: ${reason}`,
            );
            return { status: 200, body: { ignored: reason } };
          }
          const reports = await settleAutoscale(verdict.notification, logger);
          const last = reports[reports.length - 1] as SyncReport;
          return {
            status: last.ok ? 200 : last.retryable ? 503 : 422,
            body: { ok: last.ok, syncs: reports.length, reports },
          };
        }
        if (!isManualRequest(body)) {
          return {
            status: 400,
            body: {
              error:
                'expected {"lbsync":"resync","force":false,"dryRun":false} or an autoscale notification',
            },
          };
        }
        const request = parseManualRequest(body);
        logger.info(
          { stage: 'trigger', source: 'manual', force: request.force, dryRun: request.dryRun },
          'manual resync',
        );
        const report = await sync(request, logger);
        return { status: report.ok ? 200 : report.retryable ? 503 : 422, body: report };
      } catch (err) {
        const retryable = isRetryable(err);
        logger.error(
          {
            stage: 'report',
            error: errorMessage(err),
            errorType: err instanceof LbsyncError ? err.name : 'Error',
            retryable,
          },
          'request failed',
        );
        const status =
          err instanceof LbsyncError && err.name === 'TriggerParseError'
            ? 400
            : retryable
              ? 503
              : 422;
        return { status, body: { error: errorMessage(err), retryable } };
      }
    },
  };

  /**
   * The autoscale webhook fires when scaling *starts*: new VMs may not exist
   * yet and leaving ones may still run. So sync now (harmless, level-
   * triggered), then re-list every `intervalMs`, up to `maxChecks` times, and
   * sync again whenever the membership changed, until the scale set serves
   * `newCapacity` workers. The scheduled resync heals anything slower.
   */
  async function settleAutoscale(
    n: AutoscaleNotification,
    logger: Logger,
  ): Promise<readonly SyncReport[]> {
    logger.info(
      {
        stage: 'trigger',
        source: 'autoscale',
        verdict: 'sync',
        group: n.group,
        operation: n.operation,
        oldCapacity: n.oldCapacity,
        newCapacity: n.newCapacity,
      },
      `autoscale ${n.operation} started`,
    );
    const request: SyncRequest = { reason: 'event', group: n.group };
    const reports: SyncReport[] = [await sync(request, logger)];
    let synced = recorder.last;
    for (let check = 1; check <= settleOptions.maxChecks; check++) {
      if (n.newCapacity !== undefined && servingIn(synced, n.group) === n.newCapacity) break;
      await new Promise((r) => setTimeout(r, settleOptions.intervalMs));
      const now = await recorder.resolve();
      const changed = membershipKey(now) !== membershipKey(synced);
      logger.info(
        {
          stage: 'settle',
          group: n.group,
          check,
          serving: servingIn(now, n.group),
          newCapacity: n.newCapacity,
          changed,
        },
        changed ? 'membership changed; syncing again' : 'membership unchanged',
      );
      if (changed) {
        reports.push(await sync(request, logger));
        synced = recorder.last;
      } else if (n.newCapacity === undefined) {
        break; // No target to wait for: one quiet interval is enough.
      }
    }
    return reports;
  }
}

function servingIn(workers: readonly Worker[], group: string): number {
  return workers.filter((w) => w.group === group && w.state === 'serving').length;
}

function membershipKey(workers: readonly Worker[]): string {
  return workers
    .map((w) => `${w.id}@${w.address}:${w.state}`)
    .sort()
    .join(',');
}

/** A source that remembers its last answer (the autoscale settle loop compares with it). */
class RecordingSource implements WorkerSource {
  public last: readonly Worker[] = [];

  public constructor(private readonly inner: WorkerSource) {}

  public async resolve(signal?: AbortSignal): Promise<readonly Worker[]> {
    const workers = await this.inner.resolve(signal);
    this.last = workers;
    return workers;
  }
}

/**
 * At most one sync at a time per instance. A trigger arriving during a sync
 * waits for one follow-up sync that starts after the current one ends, and
 * every trigger arriving meanwhile shares that follow-up's report. Requests
 * that differ in force/dryRun are not merged with others.
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
