import type { SyncCoalescer } from './coalescer.js';
import { LbsyncError } from './errors.js';
import { bindOnce, type Logger } from './log.js';
import type { SyncRequest } from './model.js';
import type { Drainer, DrainResult } from './ports.js';
import { deadlineSignal } from './retry.js';
import { Run } from './run.js';
import type { SyncDeps, SyncReport } from './sync.js';

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
    return invalidResult(trigger.reason);
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

/** The result of an input that is not a valid request: never retried. */
export function invalidResult(reason: string): RunResult {
  return {
    ok: false,
    outcome: 'invalid',
    retryable: false,
    error: { message: reason, type: 'TriggerParseError', retryable: false },
  };
}

export { SyncCoalescer } from './coalescer.js';
export {
  isManualRequest,
  type ManualRequestBody,
  manualTrigger,
  parseManualRequest,
} from './manual.js';
