import { errorMessage, isRetryable, LbsyncError } from './errors.js';
import type { Logger } from './log.js';
import type { LbTarget, SyncRequest, Worker } from './model.js';
import type { Drainer, DrainResult, WorkerSource } from './ports.js';
import { sleep } from './retry.js';
import { runSync, type SyncReport } from './sync.js';
import type {
  DrainRecord,
  Lifecycle,
  LifecycleAction,
  RunResult,
  SettleTarget,
  TriggerDeps,
} from './trigger.js';

/*
 * The runs runTrigger dispatches to: one sync, a settle loop, and the two
 * lifecycle flows (launch: serve, then let the machine go on; terminate:
 * drain, sync, then let it go). Every run answers a RunResult; none throws
 * for a failed sync.
 */

/** Seconds kept free before the hook's heartbeat and the invocation's deadline. */
const DRAIN_MARGIN_SECONDS = 10;

/** One run's state: the deps, the bound logger and the deadline. */
export class Run {
  public constructor(
    private readonly deps: TriggerDeps,
    private readonly log: Logger,
    private readonly deadline: number | undefined,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** One sync; an error before any LB result becomes a failed result, not a throw. */
  public async sync(request: SyncRequest, source: WorkerSource): Promise<RunResult> {
    // The run's logger (bound per invocation) replaces the one of the cold start.
    const go = (): Promise<SyncReport> =>
      runSync(request, { ...this.deps, source, logger: this.log }, this.signal);
    try {
      const report = await (this.deps.coalescer?.run(request, go) ?? go());
      return {
        ok: report.ok,
        outcome: report.ok ? 'synced' : 'failed',
        retryable: !report.ok && report.retryable,
        report,
      };
    } catch (err) {
      const retryable = isRetryable(err);
      const type = err instanceof Error ? err.name : 'Error';
      this.log.error(
        { stage: 'report', ok: false, retryable, errorType: type, error: errorMessage(err) },
        'sync failed before reaching the LBs',
      );
      return {
        ok: false,
        outcome: 'failed',
        retryable,
        error: { message: errorMessage(err), type, retryable },
      };
    }
  }

  /**
   * Sync now (harmless, level-triggered), then re-list every interval and
   * sync again whenever the membership changed, until the group serves
   * `capacity` workers or the checks run out. The schedule heals the rest.
   */
  public async settle(request: SyncRequest, target: SettleTarget): Promise<RunResult> {
    const o = this.deps.settle ?? { intervalMs: 20_000, maxChecks: 5 };
    const recorder = new RecordingSource(this.deps.source);
    let result = await this.sync(request, recorder);
    let syncs = 1;
    let synced = recorder.last;
    for (let check = 1; check <= o.maxChecks; check++) {
      if (target.capacity !== undefined && servingIn(synced, target.group) === target.capacity)
        break;
      await sleep(o.intervalMs, this.signal, 'settling');
      const now = await recorder.resolve(this.signal);
      const changed = membershipKey(now) !== membershipKey(synced);
      this.log.info(
        {
          stage: 'settle',
          check,
          serving: servingIn(now, target.group),
          capacity: target.capacity,
          changed,
        },
        changed ? 'membership changed; syncing again' : 'membership unchanged',
      );
      if (changed) {
        result = await this.sync(request, recorder);
        syncs++;
        synced = recorder.last;
      } else if (target.capacity === undefined) {
        break; // No target to wait for: one quiet interval is enough.
      }
    }
    return { ...result, syncs };
  }

  /** Launch hook: serve the new instance on every LB, then let it go into service. */
  public async launch(action: LifecycleAction, request: SyncRequest): Promise<RunResult> {
    const lifecycle = this.requireLifecycle();
    const source =
      action.serves === false
        ? this.deps.source
        : (this.deps.source.admitting?.([action.instanceId]) ?? this.deps.source);
    const result = await this.sync(request, source);
    let completed: string | null = null;
    let retryReason: string | undefined;
    if (!result.ok && result.retryable) {
      this.log.error(
        { stage: 'lifecycle', instance: action.instanceId },
        'launch lifecycle action left pending: the LBs could not be updated yet; the retry completes it, or the hook default result applies at heartbeat timeout',
      );
    } else {
      if (!result.ok) {
        this.log.error(
          { stage: 'lifecycle', instance: action.instanceId },
          'the LBs refused the new worker set (see the report); continuing the launch so the instance is not killed, the next resync adds it',
        );
      }
      ({ completed, retryReason } = await lifecycle.complete(
        action,
        'worker added to the LBs',
        this.log,
        this.signal,
      ));
    }
    return withLifecycle(
      result,
      { transition: 'launch', instanceId: action.instanceId, completed },
      retryReason,
    );
  }

  /**
   * Terminate hook: when the instance served, drain it on every LB (new
   * connections stop, in-flight sessions finish or the time runs out), sync,
   * then let the termination go on. Level-triggered: the group's current
   * state decides, not the event (a warm-pool instance never served; a late
   * event may name an instance back in service).
   */
  public async terminate(action: LifecycleAction, request: SyncRequest): Promise<RunResult> {
    const lifecycle = this.requireLifecycle();
    let verdict: Awaited<ReturnType<Lifecycle['inspect']>>;
    try {
      verdict = await lifecycle.inspect(action, this.signal);
    } catch (err) {
      const retryable = isRetryable(err);
      this.log.error(
        { stage: 'lifecycle', instance: action.instanceId, error: errorMessage(err), retryable },
        'cannot read the group; the terminate lifecycle action stays pending until a retry or the heartbeat timeout',
      );
      return {
        ok: false,
        outcome: 'failed',
        retryable,
        error: { message: errorMessage(err), type: 'SourceError', retryable },
      };
    }
    const drains: DrainRecord[] = [];
    if (verdict.drain)
      drains.push(...(await this.drainEverywhere(action.instanceId, verdict.maxSeconds)));
    else
      this.log.info(
        { stage: 'drain', instance: action.instanceId },
        verdict.note ?? 'nothing to drain',
      );
    const result = await this.sync(request, this.deps.source);
    const { completed, retryReason } = await lifecycle.complete(
      action,
      verdict.note ?? 'drained',
      this.log,
      this.signal,
    );
    return withLifecycle(
      result,
      {
        transition: 'terminate',
        instanceId: action.instanceId,
        completed,
        drain: drains,
        ...(verdict.note !== undefined ? { note: verdict.note } : {}),
      },
      retryReason,
    );
  }

  private async drainEverywhere(server: string, maxSeconds?: number): Promise<DrainRecord[]> {
    const drainer = this.deps.drainer;
    let seconds = Math.min(this.deps.spec.drain.seconds, maxSeconds ?? Number.POSITIVE_INFINITY);
    if (this.deadline !== undefined) {
      const left = Math.floor((this.deadline - Date.now()) / 1000) - 2 * DRAIN_MARGIN_SECONDS;
      seconds = Math.min(seconds, left);
    }
    seconds = Math.max(0, seconds);
    let targets: readonly LbTarget[] = [];
    try {
      targets = drainer === undefined ? [] : await this.deps.transport.targets(this.signal);
    } catch (err) {
      this.log.error(
        { stage: 'drain', error: errorMessage(err) },
        'cannot list LB targets for the drain',
      );
    }
    return Promise.all(
      targets.map(async (t): Promise<DrainRecord> => {
        let r: DrainResult | { result: 'error'; sessions: number; message: string };
        try {
          r = await (drainer as Drainer).drain(t, server, seconds, this.signal);
        } catch (err) {
          r = { result: 'error', sessions: -1, message: errorMessage(err) };
        }
        const bad = r.result === 'error' || r.result === 'failed' || r.result === 'timeout';
        this.log[bad ? 'warn' : 'info'](
          {
            stage: 'drain',
            lb: t.id,
            instance: server,
            result: r.result,
            sessions: r.sessions,
            seconds,
            ...(r.message ? { message: r.message } : {}),
          },
          bad ? `drain ended ${r.result}; continuing the termination anyway` : `drain ${r.result}`,
        );
        return { lb: t.id, result: r.result, sessions: r.sessions };
      }),
    );
  }

  private requireLifecycle(): Lifecycle {
    if (this.deps.lifecycle === undefined) {
      throw new LbsyncError('a lifecycle trigger reached a deployment without lifecycle hooks');
    }
    return this.deps.lifecycle;
  }
}

function withLifecycle(
  result: RunResult,
  lifecycle: NonNullable<RunResult['lifecycle']>,
  retryReason: string | undefined,
): RunResult {
  if (retryReason === undefined) return { ...result, lifecycle };
  return {
    ...result,
    ok: false,
    outcome: 'failed',
    retryable: true,
    lifecycle,
    error: result.error ?? { message: retryReason, type: 'LifecycleError', retryable: true },
  };
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

/** A source that remembers its last answer (the settle loop compares with it). */
class RecordingSource implements WorkerSource {
  public last: readonly Worker[] = [];

  public constructor(private readonly inner: WorkerSource) {}

  public async resolve(signal?: AbortSignal): Promise<readonly Worker[]> {
    const workers = await this.inner.resolve(signal);
    this.last = workers;
    return workers;
  }
}
