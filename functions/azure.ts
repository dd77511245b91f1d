import { readFile } from 'node:fs/promises';
import {
  app,
  type EventGridEvent,
  type HttpRequest,
  type HttpResponseInit,
  type InvocationContext,
  type Timer,
} from '@azure/functions';
import { createAzureClients, staticTokenCredential } from '../adapters/azure/clients.js';
import type { AzureHandlers } from '../adapters/azure/handler.js';
import { invocationLogger } from '../adapters/azure/log.js';

/*
 * The Azure Functions entry point (v4 programming model): only glue.
 * Environment: LBSYNC_SPEC / LBSYNC_SPEC_FILE (the spec); LBSYNC_SCHEDULE
 * (NCRONTAB, default every 5 minutes); LBSYNC_AZURE_ENDPOINT (ARM endpoint,
 * for sovereign clouds); LBSYNC_AZURE_CA_FILE (extra trusted CA, PEM);
 * LBSYNC_AZURE_ACCESS_TOKEN (a fixed bearer token instead of
 * DefaultAzureCredential, for local runs); LBSYNC_AZURE_SETTLE_INTERVAL_MS /
 * LBSYNC_AZURE_SETTLE_CHECKS (autoscale webhook settle window);
 * LBSYNC_AZURE_POLL_MS, LBSYNC_AZURE_BUSY_BACKOFF_MS and
 * LBSYNC_AZURE_INLINE_LIMIT_BYTES (Run Command tuning); LBSYNC_EVENT_QUEUE
 * (optional: also take Event Grid events from this Storage queue, on the
 * AzureWebJobsStorage account). Everything is built once per cold start.
 */

let ready: Promise<AzureHandlers> | undefined;

function numberEnv(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

async function build(): Promise<AzureHandlers> {
  // The pipeline (zod, yaml, handlebars, pino) loads here, on the first
  // invocation, so importing the function costs little more than the SDKs.
  const [
    { azureAdaptersFromSpec },
    { createAzureHandlers },
    { loadApplyScript, loadSpecFromEnv },
    { createLogger },
    { loadTemplate },
  ] = await Promise.all([
    import('../adapters/azure/from-spec.js'),
    import('../adapters/azure/handler.js'),
    import('../core/entry.js'),
    import('../core/log.js'),
    import('../core/render.js'),
  ]);
  const env = process.env;
  const spec = await loadSpecFromEnv();
  const [template, applyScript, ca] = await Promise.all([
    loadTemplate(spec, env.LBSYNC_SPEC_FILE),
    loadApplyScript(env.LBSYNC_APPLY_SCRIPT),
    env.LBSYNC_AZURE_CA_FILE ? readFile(env.LBSYNC_AZURE_CA_FILE, 'utf8') : undefined,
  ]);
  const clients = createAzureClients({
    ...(env.LBSYNC_AZURE_ACCESS_TOKEN
      ? { credential: staticTokenCredential(env.LBSYNC_AZURE_ACCESS_TOKEN) }
      : {}),
    ...(env.LBSYNC_AZURE_ENDPOINT ? { endpoint: env.LBSYNC_AZURE_ENDPOINT } : {}),
    ...(ca !== undefined ? { ca } : {}),
  });
  const tuning = {
    pollMs: numberEnv('LBSYNC_AZURE_POLL_MS'),
    busyBackoffMs: numberEnv('LBSYNC_AZURE_BUSY_BACKOFF_MS'),
    inlineLimitBytes: numberEnv('LBSYNC_AZURE_INLINE_LIMIT_BYTES'),
  };
  const { source, transport } = azureAdaptersFromSpec(
    spec,
    clients,
    applyScript,
    createLogger({ base: { cloud: 'azure' } }),
    Object.fromEntries(Object.entries(tuning).filter(([, v]) => v !== undefined)),
  );
  const intervalMs = numberEnv('LBSYNC_AZURE_SETTLE_INTERVAL_MS');
  const maxChecks = numberEnv('LBSYNC_AZURE_SETTLE_CHECKS');
  return createAzureHandlers({
    spec,
    template,
    source,
    transport,
    ...(intervalMs !== undefined || maxChecks !== undefined
      ? { settle: { intervalMs: intervalMs ?? 20_000, maxChecks: maxChecks ?? 5 } }
      : {}),
  });
}

function handlers(): Promise<AzureHandlers> {
  if (ready === undefined) {
    ready = build();
    // A failed cold start (bad spec) must not be cached forever.
    ready.catch(() => {
      ready = undefined;
    });
  }
  return ready;
}

/** Forget the cold-start state, so the next invocation rebuilds from the environment. */
export function resetAzureFunction(): void {
  ready = undefined;
}

/** Event Grid trigger: scale set (and Flexible VM) resource events. Throws so Event Grid retries. */
export async function onEventGrid(
  event: EventGridEvent,
  context: InvocationContext,
): Promise<void> {
  const logger = invocationLogger(context, { cloud: 'azure', invocationId: context.invocationId });
  await (await handlers()).eventGrid(event, logger);
}

/** HTTP trigger (function key): manual resync or the autoscale webhook; JSON per-LB results. */
export async function onHttp(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const logger = invocationLogger(context, { cloud: 'azure', invocationId: context.invocationId });
  let body: unknown;
  try {
    body = JSON.parse(await request.text());
  } catch {
    return { status: 400, jsonBody: { error: 'the request body must be JSON' } };
  }
  const answer = await (await handlers()).http(body, logger);
  return { status: answer.status, jsonBody: answer.body };
}

/**
 * Storage queue trigger: Event Grid events delivered to a queue (one per
 * message) instead of to the webhook, so a sync may outlast Event Grid's 30 s
 * response window (two Run Commands take ~40 s). Throws so the message is retried.
 */
export async function onQueuedEvent(message: unknown, context: InvocationContext): Promise<void> {
  const logger = invocationLogger(context, { cloud: 'azure', invocationId: context.invocationId });
  let event = message;
  if (typeof message === 'string') {
    try {
      event = JSON.parse(message);
    } catch {
      event = message;
    }
  }
  const h = await handlers();
  for (const e of Array.isArray(event) ? event : [event]) await h.eventGrid(e, logger);
}

/** Timer trigger: the periodic resync that heals missed events. */
export async function onTimer(_timer: Timer, context: InvocationContext): Promise<void> {
  const logger = invocationLogger(context, { cloud: 'azure', invocationId: context.invocationId });
  await (await handlers()).timer(logger);
}

app.eventGrid('lbsyncEvents', { handler: onEventGrid });
app.http('lbsync', { methods: ['POST'], authLevel: 'function', route: 'lbsync', handler: onHttp });
if (process.env.LBSYNC_EVENT_QUEUE) {
  app.storageQueue('lbsyncQueuedEvents', {
    queueName: process.env.LBSYNC_EVENT_QUEUE,
    connection: 'AzureWebJobsStorage',
    handler: onQueuedEvent,
  });
}
app.timer('lbsyncSchedule', {
  schedule: process.env.LBSYNC_SCHEDULE ?? '0 */5 * * * *',
  handler: onTimer,
});
