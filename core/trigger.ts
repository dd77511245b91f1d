import { errorMessage, isRetryable, LbsyncError, TriggerParseError } from './errors.js';
import { bindOnce, type Logger } from './log.js';
import type { LbTarget, SyncRequest, Worker } from './model.js';
import type { Drainer, DrainResult, WorkerSource } from './ports.js';
import { deadlineSignal, sleep } from './retry.js';
import { runSync, type SyncDeps, type SyncReport } from './sync.js';

/*
 * The one trigger layer. Every entry point (a Lambda, an Azure or GCP
 * function, the CLI) turns its input into a Trigger with its cloud's parser,
 * hands it to runTrigger, and maps the RunResult to its platform with
 * `answerOf`: the same HTTP status and the same retry-or-not everywhere.
 *
 *   trigger ── runTrigger ─┬─ sync ──────────────── runSync ── RunResult ── answerOf
 *                          ├─ lifecycle: inspect → drain → sync → complete
 *                          ├─ settle: sync, then re-check until the group settles
 *                          └─ ignore / invalid
 */

/** A lifecycle hook holding a machine back while lbsync acts (AWS today). */
export interface LifecycleAction {
  readonly transition: 'launch' | 'terminate';
  readonly instanceId: string;
  readonly group: string;
  /** Whatever the cloud needs to complete it (hook name, token). */
  readonly handle: Readonly<Record<string, string>>;
  readonly origin?: string | null;
  readonly destination?: string | null;
  /**
   * Launch only: false when the machine does not go into service once the
   * action completes (an AWS warm pool), so the LBs must not admit it.
   */
  readonly serves?: boolean;
}

/** "The group is scaling to `capacity`": re-check until it serves that many (a webhook that fires at start). */
export interface SettleTarget {
  readonly group: string;
  readonly capacity?: number;
}

/** What an input means to lbsync. Only ever "this group may have changed", never a delta. */
export type Trigger =
  | {
      readonly kind: 'sync';
      readonly request: SyncRequest;
      /** What it was, for logs and reports (`EC2 Instance Launch Successful`, `manual`). */
      readonly detail: string;
      readonly settle?: SettleTarget;
    }
  | {
      readonly kind: 'lifecycle';
      readonly request: SyncRequest;
      readonly detail: string;
      readonly action: LifecycleAction;
    }
  | { readonly kind: 'ignore'; readonly reason: string; readonly eventId?: string }
  /** A request meant for lbsync that is malformed: answered 400, never retried. */
  | { readonly kind: 'invalid'; readonly reason: string };

/** The machine-lifecycle port: what a cloud with lifecycle hooks implements. */
export interface Lifecycle {
  /** What the group says of the instance now: drain it (it served), or why there is nothing to drain. */
  inspect(
    action: LifecycleAction,
    signal?: AbortSignal,
  ): Promise<{ readonly drain: boolean; readonly note?: string; readonly maxSeconds?: number }>;
  /** Let the machine go on; `retryReason` when a retry of the invocation could still complete it. */
  complete(
    action: LifecycleAction,
    why: string,
    logger: Logger,
    signal?: AbortSignal,
  ): Promise<{ readonly completed: string | null; readonly retryReason?: string }>;
}

/** Publishes a run's outcome outside the logs (AWS: an EventBridge summary event). */
export interface Reporter {
  publish(result: RunResult, logger: Logger): Promise<void>;
}

/** Everything runTrigger needs: the sync deps plus the ports a cloud has. */
export interface TriggerDeps extends SyncDeps {
  readonly lifecycle?: Lifecycle;
  readonly drainer?: Drainer;
  readonly reporter?: Reporter;
  /** Serialises syncs within one warm instance; a burst of triggers shares one follow-up. */
  readonly coalescer?: SyncCoalescer;
  /** How a settle trigger re-checks; default every 20 s, 5 times (under Azure's 230 s HTTP limit). */
  readonly settle?: { readonly intervalMs: number; readonly maxChecks: number };
}

/** One drain of a lifecycle run. */
export interface DrainRecord {
  readonly lb: string;
  readonly result: DrainResult['result'] | 'error';
  readonly sessions: number;
}

/**
 * What every entry point answers. `ok`: nothing needs attention (the sync
 * reached every LB, or the input was not for lbsync and `ignored` says why).
 * `retryable`: running the same trigger again could succeed, so the platform
 * should retry. Documented in docs/architecture.md.
 */
export interface RunResult {
  readonly ok: boolean;
  readonly outcome: 'synced' | 'ignored' | 'invalid' | 'failed';
  readonly retryable: boolean;
  readonly detail?: string;
  readonly ignored?: string;
  readonly error?: { readonly message: string; readonly type: string; readonly retryable: boolean };
  /** The (last) sync's report. */
  readonly report?: SyncReport;
  /** Every sync of a settle run, oldest first. */
  readonly syncs?: number;
  readonly lifecycle?: {
    readonly transition: string;
    readonly instanceId: string;
    readonly completed: string | null;
    readonly drain?: readonly DrainRecord[];
    readonly note?: string;
  };
}

/** Options of one run: the platform's deadline (epoch ms) and a signal. */
export interface RunOptions {
  readonly deadline?: number;
  readonly signal?: AbortSignal;
}

/** Seconds kept free before the hook's heartbeat and the invocation's deadline. */
const DRAIN_MARGIN_SECONDS = 10;

/** HTTP status and retry verdict of a result: the same on every cloud. */
export function answerOf(result: RunResult): { readonly status: number; readonly retry: boolean } {
  if (result.outcome === 'invalid') return { status: 400, retry: false };
  if (result.ok) return { status: 200, retry: false };
  // 422: understood, but the sync cannot succeed as is (a guard, a config HAProxy rejects).
  return result.retryable ? { status: 503, retry: true } : { status: 422, retry: false };
}

/** Thrown by entry points whose platform retries only on a failed invocation. */
export class SyncFailedError extends LbsyncError {
  public readonly result: RunResult;

  public constructor(result: RunResult) {
    const failed = (result.report?.results ?? [])
      .filter((r) => !r.ok)
      .map((r) => `${r.lb}: ${r.outcome}${r.message ? ` (${r.message})` : ''}`);
    super(
      `lbsync: ${result.error?.message ?? `sync failed on ${failed.length} LB(s): ${failed.join('; ') || 'no LB targets'}`}`,
      { retryable: result.retryable },
    );
    this.name = 'SyncFailedError';
    this.result = result;
  }
}

/** Return the result, or throw a SyncFailedError when the platform should retry. */
export function settleResult(result: RunResult): RunResult {
  if (answerOf(result).retry) throw new SyncFailedError(result);
  return result;
}

/** Run one trigger to its result. Never throws for a failed sync: the result says so. */
export async function runTrigger(
  trigger: Trigger,
  deps: TriggerDeps,
  logger: Logger,
  options: RunOptions = {},
): Promise<RunResult> {
  logger = bindOnce(logger, { cloud: deps.spec.cloud });
  if (trigger.kind === 'ignore') {
    logger.info(
      {
        stage: 'trigger',
        verdict: 'ignore',
        ignored: trigger.reason,
        ...(trigger.eventId !== undefined ? { eventId: trigger.eventId } : {}),
      },
      'event ignored',
    );
    return { ok: true, outcome: 'ignored', retryable: false, ignored: trigger.reason };
  }
  if (trigger.kind === 'invalid') {
    logger.warn({ stage: 'trigger', verdict: 'invalid', error: trigger.reason }, 'invalid request');
    return invalid(trigger.reason);
  }
  const r = trigger.request;
  const log = bindOnce(logger, {
    ...(r.group !== undefined ? { group: r.group } : {}),
    ...(r.eventId !== undefined ? { eventId: r.eventId } : {}),
  });
  log.info(
    {
      stage: 'trigger',
      verdict: trigger.kind,
      detail: trigger.detail,
      reason: r.reason,
      ...(r.force === true ? { force: true } : {}),
      ...(r.dryRun === true ? { dryRun: true } : {}),
      ...(trigger.kind === 'lifecycle'
        ? {
            instance: trigger.action.instanceId,
            transition: trigger.action.transition,
            origin: trigger.action.origin,
            destination: trigger.action.destination,
          }
        : {}),
    },
    `trigger: ${trigger.detail}`,
  );
  const signal = deadlineSignal(options.deadline, options.signal);
  const run = new Run(deps, log, options.deadline, signal);
  let result: RunResult;
  if (trigger.kind === 'lifecycle') {
    result =
      trigger.action.transition === 'launch'
        ? await run.launch(trigger.action, r)
        : await run.terminate(trigger.action, r);
  } else if (trigger.settle !== undefined) {
    result = await run.settle(r, trigger.settle);
  } else {
    result = await run.sync(r, deps.source);
  }
  result = { ...result, detail: trigger.detail };
  await deps.reporter?.publish(result, log);
  return result;
}

function invalid(reason: string): RunResult {
  return {
    ok: false,
    outcome: 'invalid',
    retryable: false,
    error: { message: reason, type: 'TriggerParseError', retryable: false },
  };
}

/** One run's state: the deps, the bound logger and the deadline. */
class Run {
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

/** A manual resync request body: `{"lbsync":"resync","force":false,"dryRun":false}`. */
export interface ManualRequestBody {
  readonly lbsync: 'resync';
  readonly force?: boolean;
  readonly dryRun?: boolean;
}

/** True when `body` looks like a manual resync request (any other shape is not ours). */
export function isManualRequest(body: unknown): body is ManualRequestBody {
  return (
    typeof body === 'object' &&
    body !== null &&
    !Array.isArray(body) &&
    (body as Record<string, unknown>).lbsync === 'resync'
  );
}

/** Turn a manual resync body into a `SyncRequest`; bad option types are a `TriggerParseError`. */
export function parseManualRequest(body: unknown): SyncRequest {
  if (!isManualRequest(body)) {
    throw new TriggerParseError(
      'expected a body like {"lbsync":"resync","force":false,"dryRun":false}',
    );
  }
  const b = body as unknown as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (!['lbsync', 'force', 'dryRun'].includes(k)) {
      throw new TriggerParseError(`manual resync: unknown field ${JSON.stringify(k)}`);
    }
  }
  for (const k of ['force', 'dryRun'] as const) {
    if (b[k] !== undefined && typeof b[k] !== 'boolean') {
      throw new TriggerParseError(`manual resync: ${k} must be true or false`);
    }
  }
  return { reason: 'manual', force: b.force === true, dryRun: b.dryRun === true };
}

/** A manual body as a trigger: a sync, or `invalid` with the reason (never a throw). */
export function manualTrigger(body: unknown, eventId?: string): Trigger {
  try {
    const request = parseManualRequest(body);
    return {
      kind: 'sync',
      detail: 'manual',
      request: { ...request, ...(eventId !== undefined ? { eventId } : {}) },
    };
  } catch (err) {
    return { kind: 'invalid', reason: errorMessage(err) };
  }
}
