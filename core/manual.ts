import { errorMessage, TriggerParseError } from './errors.js';
import type { SyncRequest } from './model.js';
import type { Trigger } from './trigger.js';

/*
 * The manual resync body every cloud's function accepts (Lambda invoke, an
 * HTTP POST, a custom EventBridge event's detail).
 */

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
