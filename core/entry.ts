import { LbsyncError, SpecError, TriggerParseError } from './errors.js';
import { lbScriptPath, shippedLbScript } from './lb-scripts.js';
import type { SyncRequest } from './model.js';
import { loadSpec, parseSpec, type Spec } from './spec.js';
import type { SyncReport } from './sync.js';

/*
 * Helpers every entry point (functions/*, cli) shares, so the glue in
 * functions/<cloud>.ts stays a few lines.
 */

/** Path of the LB-side apply script shipped by every transport. */
export const APPLY_SCRIPT_PATH = lbScriptPath('apply');

/**
 * The apply script's shipped (self-contained) text, read once per process;
 * `path` overrides the checkout's copy (its library is read from `lib/` beside it).
 */
export function loadApplyScript(path: string = APPLY_SCRIPT_PATH): Promise<string> {
  return shippedLbScript(path);
}

/** The drain script's shipped (self-contained) text, read once per process; `path` as for `loadApplyScript`. */
export function loadDrainScript(path: string = lbScriptPath('drain')): Promise<string> {
  return shippedLbScript(path);
}

// Moved to the LB-side contract module; re-exported for old imports.
export { applyArgs } from './apply-contract.js';

/**
 * The spec for a deployed function: `LBSYNC_SPEC` holds the YAML (or JSON)
 * text, or `LBSYNC_SPEC_FILE` names a file. The stacks set one of them.
 */
export async function loadSpecFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<Spec> {
  if (env.LBSYNC_SPEC !== undefined && env.LBSYNC_SPEC.trim() !== '') {
    return parseSpec(env.LBSYNC_SPEC, 'LBSYNC_SPEC');
  }
  if (env.LBSYNC_SPEC_FILE !== undefined && env.LBSYNC_SPEC_FILE !== '') {
    return loadSpec(env.LBSYNC_SPEC_FILE);
  }
  throw new SpecError('environment', [
    'set LBSYNC_SPEC (the spec text) or LBSYNC_SPEC_FILE (a path)',
  ]);
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

/** Thrown by entry points so the platform retries the invocation. */
export class SyncFailedError extends LbsyncError {
  public readonly report: SyncReport;

  public constructor(report: SyncReport) {
    const failed = report.results
      .filter((r) => !r.ok)
      .map((r) => `${r.lb}: ${r.outcome}${r.message ? ` (${r.message})` : ''}`);
    super(`sync failed on ${failed.length} LB(s): ${failed.join('; ') || 'no LB targets'}`, {
      retryable: report.retryable,
    });
    this.name = 'SyncFailedError';
    this.report = report;
  }
}

/**
 * Decide how an invocation ends: return the report when all went well or
 * retrying cannot help (it is logged and reported); throw when a retry could.
 */
export function settle(report: SyncReport): SyncReport {
  if (!report.ok && report.retryable) throw new SyncFailedError(report);
  return report;
}
