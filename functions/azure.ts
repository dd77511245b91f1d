import { app } from '@azure/functions';
import { type AzureEntry, azureFunctionHandlers } from '../adapters/azure/entry.js';
import type { FunctionOverrides } from '../adapters/runtime.js';
import { coldStart } from '../core/cold-start.js';

/*
 * The Azure Functions entry point (v4 programming model): glue. Environment:
 * LBSYNC_SPEC / LBSYNC_SPEC_FILE, LBSYNC_SCHEDULE (NCRONTAB, default every 5
 * minutes), LBSYNC_EVENT_QUEUE (also take Event Grid events from this Storage
 * queue), and the LBSYNC_AZURE_* knobs adapters/azure reads (docs/azure.md).
 */
let overrides: FunctionOverrides = {};
const entry = coldStart(async (): Promise<AzureEntry> => {
  const [{ buildFunctionRuntime }, azure] = await Promise.all([
    import('../adapters/runtime.js'),
    import('../adapters/azure/entry.js'),
  ]);
  const rt = await buildFunctionRuntime(
    'azure',
    azure.AZURE_FORCE_HINT,
    overrides,
    azure.aksClusterAccess,
  );
  return azure.createAzureEntry(azure.azureTriggerDeps(rt));
});

/** Replace how the runtime is built (tests), and forget the cold start. */
export function configureAzureFunction(o: FunctionOverrides): void {
  overrides = o;
  entry.reset();
}
/** Forget the cold-start state, so the next invocation rebuilds from the environment. */
export const resetAzureFunction = (): void => entry.reset();
/** The handlers, exported for tests; registered below. */
export const { onEventGrid, onHttp, onQueuedEvent, onTimer } = azureFunctionHandlers(entry.get);

const queueName = process.env.LBSYNC_EVENT_QUEUE;
app.eventGrid('lbsyncEvents', { handler: onEventGrid });
app.http('lbsync', { methods: ['POST'], authLevel: 'function', route: 'lbsync', handler: onHttp });
if (queueName) {
  app.storageQueue('lbsyncQueuedEvents', {
    queueName,
    connection: 'AzureWebJobsStorage',
    handler: onQueuedEvent,
  });
}
app.timer('lbsyncSchedule', {
  schedule: process.env.LBSYNC_SCHEDULE ?? '0 */5 * * * *',
  handler: onTimer,
});
