import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { LbApplySpec } from './spec.js';

/*
 * The LB-side scripts and their arguments, as every transport ships them.
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

/** Re-exported for callers written before the trigger layer; use core/trigger.ts. */
export { isManualRequest, type ManualRequestBody, parseManualRequest } from './trigger.js';
