import * as ff from '@google-cloud/functions-framework';
import { type GcpEntry, gcpFunctionHandlers } from '../adapters/gcp/entry.js';
import type { FunctionOverrides } from '../adapters/runtime.js';
import { coldStart } from '../core/cold-start.js';
import type { Logger } from '../core/log.js';

/*
 * GCP entry points (Functions Framework, 2nd gen): glue.
 *   lbsyncGcpEvent  - CloudEvent: Eventarc Cloud Audit Log events from Compute Engine
 *   lbsyncGcpResync - HTTP: manual resync and Cloud Scheduler, authenticated
 * Built once per cold start from LBSYNC_SPEC / LBSYNC_SPEC_FILE with
 * Application Default Credentials (LBSYNC_GCP_* knobs: docs/gcp.md).
 */
let overrides: FunctionOverrides = {};
const entry = coldStart(async (): Promise<{ readonly gcp: GcpEntry; readonly log: Logger }> => {
  const [{ buildFunctionRuntime }, gcp] = await Promise.all([
    import('../adapters/runtime.js'),
    import('../adapters/gcp/entry.js'),
  ]);
  const rt = await buildFunctionRuntime('gcp', gcp.GCP_FORCE_HINT, overrides, gcp.gkeClusterAccess);
  return { gcp: gcp.createGcpEntry(rt), log: rt.logger };
});

/** Replace how the runtime is built (tests point the clients at the fakes); resets the cold start. */
export function configureGcpFunction(o: FunctionOverrides): void {
  overrides = o;
  entry.reset();
}

/** The handlers, exported for tests and the cold-start benchmark; registered below. */
export const { onEvent: onGcpAuditLogEvent, onHttp: onGcpResyncRequest } = gcpFunctionHandlers(
  entry.get,
);
/** Build the runtime now (cold-start benchmark). */
export const readyGcpFunction = entry.get;

ff.cloudEvent('lbsyncGcpEvent', onGcpAuditLogEvent);
ff.http('lbsyncGcpResync', onGcpResyncRequest);
