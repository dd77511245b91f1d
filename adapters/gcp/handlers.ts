import { parseManualRequest, settle } from '../../core/entry.js';
import { errorMessage, isRetryable, LbsyncError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { SyncRequest } from '../../core/model.js';
import type { Spec } from '../../core/spec.js';
import { runSync, type SyncDeps, type SyncReport } from '../../core/sync.js';
import { asRecord, decideAuditLogEvent } from './event.js';

/*
 * What the two GCP entry points do, free of the Functions Framework so
 * functions/gcp.ts stays glue: the CloudEvent handler decides and syncs; the
 * HTTP handler checks the request and maps the report to a status code.
 */

/** What every invocation needs; built once per cold start. */
export interface GcpRuntime {
  readonly spec: Spec;
  readonly deps: SyncDeps;
  readonly logger: Logger;
}

/**
 * Handle an Eventarc audit-log CloudEvent: ignore (logged) what does not
 * concern a configured MIG, else run a level-triggered sync. Throws when a
 * retry could help, so the platform redelivers; returns the report otherwise.
 */
export async function handleAuditLogEvent(
  event: unknown,
  rt: GcpRuntime,
): Promise<SyncReport | null> {
  const decision = decideAuditLogEvent(event, rt.spec);
  // The platform types the event; a null or primitive one must still only be ignored.
  const id = asRecord(event)?.id;
  const eventId = typeof id === 'string' ? id : undefined;
  if (decision.action === 'ignore') {
    rt.logger.info({ stage: 'trigger', eventId, reason: decision.reason }, 'event ignored');
    return null;
  }
  rt.logger.info(
    { stage: 'trigger', eventId, method: decision.method, group: decision.request.group },
    'event accepted',
  );
  return settle(await runSync(decision.request, rt.deps));
}

/** The parts of an HTTP request the resync handler reads. */
export interface ResyncHttpRequest {
  readonly method: string;
  readonly body: unknown;
  header(name: string): string | undefined;
}

/** Status code and JSON body to answer. */
export interface ResyncHttpAnswer {
  readonly status: number;
  readonly body: unknown;
}

/**
 * Handle a manual or scheduled resync: POST, a bearer token (the platform
 * verified it; a request without one is refused here too), a body
 * `{"lbsync":"resync","force":false,"dryRun":false}`. Answers the report:
 * 200 all fine, 503 a retry could help, 502 some LB failed for good.
 */
export async function handleResyncRequest(
  req: ResyncHttpRequest,
  runtime: () => Promise<GcpRuntime>,
): Promise<ResyncHttpAnswer> {
  if (req.method !== 'POST') return { status: 405, body: { error: 'use POST' } };
  if (!/^Bearer \S+$/.test(req.header('authorization') ?? '')) {
    return {
      status: 401,
      body: { error: 'an identity token (Authorization: Bearer) is required' },
    };
  }
  let rt: GcpRuntime;
  try {
    rt = await runtime();
  } catch (err) {
    return { status: 500, body: { error: errorMessage(err) } };
  }
  let request: SyncRequest;
  try {
    request = parseManualRequest(req.body);
  } catch (err) {
    return { status: 400, body: { error: errorMessage(err) } };
  }
  // Cloud Scheduler identifies itself; its runs are the periodic safety net.
  if (/Google-Cloud-Scheduler/i.test(req.header('user-agent') ?? '')) {
    request = { ...request, reason: 'schedule' };
  }
  try {
    const report = await runSync(request, rt.deps);
    return { status: report.ok ? 200 : report.retryable ? 503 : 502, body: report };
  } catch (err) {
    rt.logger.error(
      { stage: 'report', error: errorMessage(err), retryable: isRetryable(err) },
      'resync failed',
    );
    return {
      status: isRetryable(err) ? 503 : 500,
      body: { error: errorMessage(err), type: err instanceof LbsyncError ? err.name : 'Error' },
    };
  }
}
