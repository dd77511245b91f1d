import * as ff from '@google-cloud/functions-framework';
import { createGcpClients, type GcpClientOptions } from '../adapters/gcp/clients.js';
import type { GcpTransportTuning } from '../adapters/gcp/from-spec.js';
import type { GcpRuntime } from '../adapters/gcp/handlers.js';
import type { Logger } from '../core/log.js';
import type { Spec } from '../core/spec.js';

/*
 * GCP entry points (Functions Framework, 2nd gen); only glue:
 *   lbsyncGcpEvent  - CloudEvent: Eventarc Cloud Audit Log events from Compute Engine
 *   lbsyncGcpResync - HTTP: manual resync and Cloud Scheduler, authenticated
 * Deps are built once per cold start from LBSYNC_SPEC / LBSYNC_SPEC_FILE with
 * Application Default Credentials; LBSYNC_GCP_AGENT_TIMEOUT_MS overrides how
 * long to wait for the LB agents (default 120 s).
 *
 * The Compute clients are imported statically; lbsync's pipeline (zod, yaml,
 * handlebars, pino) on the first invocation, so importing the module costs
 * what the clients cost. bench/gcp.ts reports both.
 */

/** What a test or a custom deployment may override before the first call. */
export interface GcpFunctionOverrides {
  readonly spec?: Spec;
  readonly clientOptions?: GcpClientOptions;
  readonly logger?: Logger;
  readonly tuning?: GcpTransportTuning;
  readonly now?: () => number;
}

type Handlers = typeof import('../adapters/gcp/handlers.js');

let overrides: GcpFunctionOverrides = {};
let runtime: Promise<{ readonly rt: GcpRuntime; readonly handlers: Handlers }> | undefined;

/** Replace how deps are built (tests point the clients at the fakes); resets the cached deps. */
export function configureGcpFunction(o: GcpFunctionOverrides): void {
  overrides = o;
  runtime = undefined;
}

async function build(): Promise<{ readonly rt: GcpRuntime; readonly handlers: Handlers }> {
  const [
    { loadSpecFromEnv },
    { createLogger },
    { loadTemplate },
    { gcpAdaptersFromSpec },
    handlers,
  ] = await Promise.all([
    import('../core/entry.js'),
    import('../core/log.js'),
    import('../core/render.js'),
    import('../adapters/gcp/from-spec.js'),
    import('../adapters/gcp/handlers.js'),
  ]);
  const logger = (overrides.logger ?? createLogger()).child({ cloud: 'gcp' });
  const spec = overrides.spec ?? (await loadSpecFromEnv());
  const envTimeout = Number(process.env.LBSYNC_GCP_AGENT_TIMEOUT_MS);
  const tuning: GcpTransportTuning = {
    ...(Number.isFinite(envTimeout) && envTimeout > 0 ? { agentTimeoutMs: envTimeout } : {}),
    ...overrides.tuning,
  };
  const clients = createGcpClients(overrides.clientOptions);
  const { source, transport } = gcpAdaptersFromSpec(spec, clients, logger, tuning);
  const template = await loadTemplate(spec, process.env.LBSYNC_SPEC_FILE);
  const now = overrides.now;
  const deps = { spec, template, source, transport, logger, ...(now ? { now } : {}) };
  return { rt: { spec, logger, deps }, handlers };
}

/** Build (once) everything an invocation needs; exported for the cold-start benchmark. */
export function readyGcpFunction(): Promise<{
  readonly rt: GcpRuntime;
  readonly handlers: Handlers;
}> {
  runtime ??= build().catch((err: unknown) => {
    runtime = undefined; // a bad cold start must not poison the instance forever
    throw err;
  });
  return runtime;
}

/** The CloudEvent entry point; throws when a retry could help (the platform redelivers). */
export async function onGcpAuditLogEvent(event: ff.CloudEvent<unknown>): Promise<void> {
  const { rt, handlers } = await readyGcpFunction();
  await handlers.handleAuditLogEvent(event, rt);
}

/** The HTTP entry point: manual and scheduled resyncs, answered with the report. */
export async function onGcpResyncRequest(req: ff.Request, res: ff.Response): Promise<void> {
  let handlers: Handlers;
  try {
    handlers = (await readyGcpFunction()).handlers;
  } catch (err) {
    res.status(500).json({ error: err instanceof Error ? err.message : String(err) });
    return;
  }
  const answer = await handlers.handleResyncRequest(
    { method: req.method, body: req.body, header: (name) => req.get(name) },
    async () => (await readyGcpFunction()).rt,
  );
  res.status(answer.status).json(answer.body);
}

ff.cloudEvent('lbsyncGcpEvent', onGcpAuditLogEvent);
ff.http('lbsyncGcpResync', onGcpResyncRequest);
