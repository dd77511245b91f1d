import { errorMessage, isRetryable, LbsyncError } from './errors.js';
import { bindOnce, type Logger } from './log.js';
import type {
  ApplyOutcome,
  ApplyResult,
  LbTarget,
  LiveState,
  ServiceDef,
  SyncRequest,
  Worker,
} from './model.js';
import { encodePayload } from './payload.js';
import { checkMinWorkers, type LbPlan, planLb } from './plan.js';
import type {
  DiscoveryNote,
  ServiceSource,
  SyncObserver,
  Transport,
  WorkerSource,
} from './ports.js';
import { type RenderedConfig, renderConfig, servicesOf, type Template } from './render.js';
import type { CoreSpec } from './spec.js';

/*
 * One sync: resolve -> render -> (per LB, in parallel) plan -> push ->
 * report. A little over 300 lines because the pipeline reads top to bottom
 * in one place; its parts (plan, render, payload) live in their own modules.
 */

/** Everything one sync needs; built once per cold start by an entry point. */
export interface SyncDeps {
  readonly spec: CoreSpec;
  readonly template: Template;
  readonly source: WorkerSource;
  readonly transport: Transport;
  /** Services discovered outside the spec (Kubernetes), served beside the static ones. */
  readonly services?: ServiceSource;
  /** Told every report (Kubernetes Service status, finalizers, events). */
  readonly observers?: readonly SyncObserver[];
  /** Bound with the entry point's fields (cloud, group, eventId); runSync adds only `generation`. */
  readonly logger: Logger;
  /** How this entry point's caller forces past a guard, for refusals (default: `use --force`). */
  readonly forceHint?: string;
  /** Clock for the generation; injectable so tests can replay old generations. */
  readonly now?: () => number;
}

/** What happened on one LB. */
export interface LbResult {
  readonly lb: string;
  /** The LB's address, when its transport knows it. */
  readonly address?: string;
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
  /** What the config serves: the spec's services and any discovered ones. */
  readonly services: readonly ServiceDef[];
  /** What the sources decided and why: excluded and draining nodes, refused Services. */
  readonly notes?: readonly DiscoveryNote[];
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
export async function runSync(
  request: SyncRequest,
  deps: SyncDeps,
  signal?: AbortSignal,
): Promise<SyncReport> {
  const started = performance.now();
  const now = deps.now ?? Date.now;
  const { spec } = deps;
  // Generation = when resolution started: a later resolution always sees a
  // membership at least as new, so "newer generation wins" is safe on the LB.
  const generation = now();
  // Entry points bind cloud, group and eventId once; a key bound twice would
  // repeat on every line.
  const log = bindOnce(deps.logger, {
    cloud: spec.cloud,
    ...(request.group !== undefined ? { group: request.group } : {}),
    ...(request.eventId !== undefined ? { eventId: request.eventId } : {}),
    generation,
  });
  const dryRun = request.dryRun === true;
  const force = request.force === true;

  let t = performance.now();
  const [raw, discovered] = await Promise.all([
    deps.source.resolve(signal),
    deps.services?.resolve(signal) ?? Promise.resolve([] as readonly ServiceDef[]),
  ]);
  const services = [...servicesOf(spec), ...discovered];
  const desired = renderConfig(spec, raw, deps.template, services);
  const workers = desired.workers;
  const serving = workers.filter((w) => w.state === 'serving').length;
  log.info(
    {
      stage: 'resolve',
      reason: request.reason,
      serving,
      draining: workers.length - serving,
      services: services.length,
      ms: ms(t),
    },
    'resolved workers',
  );

  t = performance.now();
  // The guard that needs the LB's live config travels with the payload.
  const payload = encodePayload(desired.text, generation, desired.servers, {
    maxRemovalPercent: spec.guards.maxRemovalPercent,
    force,
  });
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

  const notes = [...(deps.source.notes?.() ?? []), ...(deps.services?.notes?.() ?? [])];
  if (!dryRun) {
    for (const o of deps.observers ?? []) await o.beforePush?.(services, log, signal);
  }
  const targets = await deps.transport.targets(signal);
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
        serviceCount: services.length,
        ...(signal !== undefined ? { signal } : {}),
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
    services,
    ...(notes.length > 0 ? { notes } : {}),
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
  for (const o of deps.observers ?? []) await o.afterSync(report, log, signal);
  return report;
}

interface OneContext {
  readonly deps: SyncDeps;
  readonly log: Logger;
  readonly desired: RenderedConfig;
  readonly workers: readonly Worker[];
  readonly payload: ReturnType<typeof encodePayload>;
  readonly dryRun: boolean;
  readonly force: boolean;
  readonly serviceCount: number;
  readonly signal?: AbortSignal;
}

async function syncOne(target: LbTarget, c: OneContext): Promise<LbResult> {
  const started = performance.now();
  let plan: LbPlan | null = null;
  try {
    if (c.dryRun) {
      // A dry run reads the live state to say what would change (the CLI plan).
      const live: LiveState = await c.deps.transport.status(target, c.signal);
      plan = planLb({
        desired: c.desired,
        workers: c.workers,
        live,
        guards: c.deps.spec.guards,
        serviceCount: c.serviceCount,
        force: c.force,
        ...(c.deps.forceHint !== undefined ? { forceHint: c.deps.forceHint } : {}),
      });
      logPlan(c.log, plan, live.generation);
      return plan.action === 'refuse'
        ? done({
            lb: target.id,
            outcome: 'refused',
            ok: false,
            retryable: false,
            plan,
            message: plan.reason,
          })
        : done({ lb: target.id, outcome: 'planned', ok: true, retryable: false, plan });
    }
    // One round trip: minWorkers needs no live state and is checked here;
    // the LB decides the rest alone (stale, unchanged, maxRemovalPercent
    // against its live config, runtime or reload) from the payload.
    const refusal = c.force ? null : checkMinWorkers(c.workers, c.deps.spec.guards);
    if (refusal !== null) {
      plan = refusedPlan(c, `${refusal}; ${c.deps.forceHint ?? 'use --force to apply anyway'}`);
      logPlan(c.log, plan, null);
      return done({
        lb: target.id,
        outcome: 'refused',
        ok: false,
        retryable: false,
        plan,
        message: plan.reason,
      });
    }
    c.log.info(
      {
        stage: 'plan',
        action: 'push',
        reason: 'the LB decides: stale, unchanged, guards.maxRemovalPercent, runtime or reload',
        desiredServers: c.desired.servers,
        draining: c.workers.filter((w) => w.state === 'draining').length,
      },
      'plan: push once; the LB plans against its live config',
    );
    const apply = await c.deps.transport.apply(target, c.payload, c.signal);
    plan = planFromResult(c, apply);
    const ok = GOOD.has(apply.result);
    const message =
      apply.result === 'refused' && apply.message !== undefined
        ? `${apply.message}; ${c.deps.forceHint ?? 'use --force to apply anyway'}`
        : apply.message;
    const r = done({
      lb: target.id,
      outcome: apply.result,
      ok,
      retryable: RETRYABLE_OUTCOMES.has(apply.result),
      plan,
      apply,
      ...(message !== undefined ? { message } : {}),
    });
    (ok ? c.log.info.bind(c.log) : c.log.error.bind(c.log))(
      {
        stage: 'push',
        result: apply.result,
        ...(apply.via !== undefined ? { via: apply.via } : {}),
        ...(apply.added !== undefined
          ? { added: apply.added, removed: apply.removed, drained: apply.drained }
          : {}),
        applyMs: apply.ms,
        ms: r.ms,
        ...(message ? { message } : {}),
      },
      `push: ${apply.result}${apply.via !== undefined ? ` via ${apply.via}` : ''}`,
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
    return {
      ...r,
      ...(target.address !== undefined ? { address: target.address } : {}),
      ms: ms(started),
    };
  }
}

function logPlan(log: Logger, plan: LbPlan, liveGeneration: number | null): void {
  log.info(
    {
      stage: 'plan',
      action: plan.action,
      reason: plan.reason,
      ...(liveGeneration !== null ? { liveGeneration } : {}),
      liveServers: plan.liveServers,
      desiredServers: plan.desiredServers,
      added: plan.added?.length,
      removed: plan.removed?.length,
      draining: plan.draining.length,
    },
    `plan: ${plan.action} (${plan.reason})`,
  );
}

/** The plan of a real sync, as the LB reported it (the LB planned; lbsync pushed once). */
function planFromResult(c: OneContext, apply: ApplyResult): LbPlan {
  const action =
    apply.result === 'applied' ? 'apply' : apply.result === 'refused' ? 'refuse' : 'noop';
  return {
    action,
    reason: apply.message || (apply.via !== undefined ? `applied via ${apply.via}` : apply.result),
    added: null,
    removed: null,
    draining: c.workers.filter((w) => w.state === 'draining').map((w) => w.id),
    liveServers: apply.servers,
    desiredServers: c.desired.servers,
    sectionsChanged: null,
    ...(apply.added !== undefined
      ? {
          changes: { added: apply.added, removed: apply.removed ?? 0, drained: apply.drained ?? 0 },
        }
      : {}),
  };
}

function refusedPlan(c: OneContext, reason: string): LbPlan {
  return {
    action: 'refuse',
    reason,
    added: null,
    removed: null,
    draining: c.workers.filter((w) => w.state === 'draining').map((w) => w.id),
    liveServers: 0,
    desiredServers: c.desired.servers,
    sectionsChanged: null,
  };
}

function ms(since: number): number {
  return Math.round(performance.now() - since);
}
