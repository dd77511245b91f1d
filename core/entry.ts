import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { LbsyncError, SpecError, TriggerParseError } from './errors.js';
import type { SyncRequest } from './model.js';
import { type LbApplySpec, loadSpec, parseSpec, type Spec } from './spec.js';
import type { SyncReport } from './sync.js';

/*
 * Helpers every entry point (functions/*, cli) shares, so the glue in
 * functions/<cloud>.ts stays a few lines.
 */

/** Path of the LB-side apply script shipped by every transport. */
export const APPLY_SCRIPT_PATH = fileURLToPath(
  new URL('../templates/lbsync-apply.sh', import.meta.url),
);

/** The apply script's text, read once per process. */
export async function loadApplyScript(path: string = APPLY_SCRIPT_PATH): Promise<string> {
  const cached = scriptCache.get(path);
  if (cached !== undefined) return cached;
  const p = readFile(path, 'utf8');
  scriptCache.set(path, p);
  return p;
}
const scriptCache = new Map<string, Promise<string>>();

/** Arguments for lbsync-apply.sh from the spec's `lbApply` (values are schema-validated paths). */
export function applyArgs(a: LbApplySpec): readonly string[] {
  return [
    '--config',
    a.configPath,
    '--state-dir',
    a.stateDir,
    '--reload',
    a.reload,
    '--master-socket',
    a.masterSocket,
  ];
}

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
