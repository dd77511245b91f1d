import { errorMessage, isRetryable, LbsyncError } from './errors.js';
import type { Logger } from './log.js';
import type { ApplyOutcome, ApplyResult, LbTarget, LiveState, SyncRequest } from './model.js';
import { encodePayload } from './payload.js';
import { type LbPlan, planLb } from './plan.js';
import type { Transport, WorkerSource } from './ports.js';
import { canonicalWorkers, renderConfig, type Template } from './render.js';
import type { Spec } from './spec.js';

/** Everything one sync needs; built once per cold start by an entry point. */
export interface SyncDeps {
  readonly spec: Spec;
  readonly template: Template;
  readonly source: WorkerSource;
  readonly transport: Transport;
  readonly logger: Logger;
  /** Clock for the generation; injectable so tests can replay old generations. */
  readonly now?: () => number;
}

/** What happened on one LB. */
export interface LbResult {
  readonly lb: string;
  /** The apply script's result, or what lbsync decided before pushing. */
  readonly outcome: ApplyOutcome | 'planned' | 'refused' | 'error';
  readonly ok: boolean;
  readonly retryable: boolean;
  readonly plan: LbPlan | null;
  readonly apply?: ApplyResult;
  readonly message?: string;
  readonly ms: number;
}

/** The summary every entry point reports (log line, event, HTTP body, exit code). */
export interface SyncReport {
  readonly name: string;
  readonly cloud: string;
  readonly reason: SyncRequest['reason'];
  readonly group?: string;
  readonly generation: number;
  readonly sha256: string;
  readonly workers: { readonly serving: number; readonly draining: number };
  readonly servers: number;
  readonly payloadBytes: number;
  readonly dryRun: boolean;
  readonly forced: boolean;
  /** True when every LB ended applied, unchanged, stale (or planned, in a dry run). */
  readonly ok: boolean;
  /** True when some LB failed in a way a retry could fix. */
  readonly retryable: boolean;
  readonly results: readonly LbResult[];
  readonly ms: number;
}

const GOOD: ReadonlySet<LbResult['outcome']> = new Set([
  'applied',
  'unchanged',
  'stale',
  'planned',
]);
const RETRYABLE_OUTCOMES: ReadonlySet<LbResult['outcome']> = new Set(['busy']);

/**
 * Run the pipeline once: resolve → render → (per LB, in parallel) status →
 * plan → push → report. Resolution and rendering errors throw (typed); per-LB
 * failures are captured in the report so one LB never blocks another.
 */
export async function runSync(request: SyncRequest, deps: SyncDeps): Promise<SyncReport> {
  const started = performance.now();
  const now = deps.now ?? Date.now;
  const { spec } = deps;
  // Generation = when resolution started: a later resolution always sees a
  // membership at least as new, so "newer generation wins" is safe on the LB.
  const generation = now();
  const log = deps.logger.child({
    cloud: spec.cloud,
    ...(request.group !== undefined ? { group: request.group } : {}),
    generation,
    ...(request.eventId !== undefined ? { eventId: request.eventId } : {}),
  });
  const dryRun = request.dryRun === true;
  const force = request.force === true;

  let t = performance.now();
  const raw = await deps.source.resolve();
  const workers = canonicalWorkers(raw);
  const serving = workers.filter((w) => w.state === 'serving').length;
  log.info(
    {
      stage: 'resolve',
      reason: request.reason,
      serving,
      draining: workers.length - serving,
      ms: ms(t),
    },
    'resolved workers',
  );

  t = performance.now();
  const desired = renderConfig(spec, workers, deps.template);
  const payload = encodePayload(desired.text, generation, desired.servers);
  log.info(
    {
      stage: 'render',
      sha256: desired.sha256,
      servers: desired.servers,
      configBytes: Buffer.byteLength(desired.text),
      payloadBytes: payload.text.length,
      ms: ms(t),
    },
    'rendered config',
  );

  const targets = await deps.transport.targets();
  const results = await Promise.all(
    targets.map((target) =>
      syncOne(target, {
        deps,
        log: log.child({ lb: target.id }),
        desired,
        workers,
        payload,
        dryRun,
        force,
      }),
    ),
  );

  const ok = results.length > 0 && results.every((r) => r.ok);
  const report: SyncReport = {
    name: spec.name,
    cloud: spec.cloud,
    reason: request.reason,
    ...(request.group !== undefined ? { group: request.group } : {}),
    generation,
    sha256: desired.sha256,
    workers: { serving, draining: workers.length - serving },
    servers: desired.servers,
    payloadBytes: payload.text.length,
    dryRun,
    forced: force,
    ok,
    retryable: results.some((r) => !r.ok && r.retryable),
    results,
    ms: ms(started),
  };
  const summary = results.map((r) => `${r.lb}=${r.outcome}`).join(' ');
  (ok ? log.info.bind(log) : log.error.bind(log))(
    {
      stage: 'report',
      ok,
      retryable: report.retryable,
      lbs: results.length,
      outcomes: Object.fromEntries(results.map((r) => [r.lb, r.outcome])),
      ms: report.ms,
    },
    targets.length === 0 ? 'no LB targets found' : `sync finished: ${summary}`,
  );
  return report;
}

interface OneContext {
  readonly deps: SyncDeps;
  readonly log: Logger;
  readonly desired: ReturnType<typeof renderConfig>;
  readonly workers: ReturnType<typeof canonicalWorkers>;
  readonly payload: ReturnType<typeof encodePayload>;
  readonly dryRun: boolean;
  readonly force: boolean;
}

async function syncOne(target: LbTarget, c: OneContext): Promise<LbResult> {
  const started = performance.now();
  let plan: LbPlan | null = null;
  try {
    const live: LiveState = await c.deps.transport.status(target);
    plan = planLb({
      desired: c.desired,
      workers: c.workers,
      live,
      guards: c.deps.spec.guards,
      serviceCount: c.deps.spec.services.length,
      force: c.force,
    });
    c.log.info(
      {
        stage: 'plan',
        action: plan.action,
        reason: plan.reason,
        liveGeneration: live.generation,
        liveServers: plan.liveServers,
        desiredServers: plan.desiredServers,
        added: plan.added?.length,
        removed: plan.removed?.length,
        draining: plan.draining.length,
      },
      `plan: ${plan.action} (${plan.reason})`,
    );
    if (plan.action === 'refuse') {
      return done({
        lb: target.id,
        outcome: 'refused',
        ok: false,
        retryable: false,
        plan,
        message: plan.reason,
      });
    }
    if (c.dryRun) {
      return done({ lb: target.id, outcome: 'planned', ok: true, retryable: false, plan });
    }
    // A noop plan still goes through the script when the LB's recorded
    // generation lags, so it learns the newer generation; otherwise skip the push.
    if (plan.action === 'noop' && live.generation >= c.payload.generation) {
      return done({ lb: target.id, outcome: 'unchanged', ok: true, retryable: false, plan });
    }
    const apply = await c.deps.transport.apply(target, c.payload);
    const ok = GOOD.has(apply.result);
    const r = done({
      lb: target.id,
      outcome: apply.result,
      ok,
      retryable: RETRYABLE_OUTCOMES.has(apply.result),
      plan,
      apply,
      ...(apply.message !== undefined ? { message: apply.message } : {}),
    });
    (ok ? c.log.info.bind(c.log) : c.log.error.bind(c.log))(
      {
        stage: 'push',
        result: apply.result,
        applyMs: apply.ms,
        ms: r.ms,
        ...(apply.message ? { message: apply.message } : {}),
      },
      `push: ${apply.result}`,
    );
    return r;
  } catch (err) {
    const retryable = isRetryable(err);
    c.log.error(
      {
        stage: 'push',
        error: errorMessage(err),
        errorType: err instanceof LbsyncError ? err.name : 'Error',
        retryable,
      },
      'LB sync failed',
    );
    return done({
      lb: target.id,
      outcome: 'error',
      ok: false,
      retryable,
      plan,
      message: errorMessage(err),
    });
  }

  function done(r: Omit<LbResult, 'ms'>): LbResult {
    return { ...r, ms: ms(started) };
  }
}

function ms(since: number): number {
  return Math.round(performance.now() - since);
}
