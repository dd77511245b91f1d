import { createAwsClients } from '../adapters/aws/clients.js';
import type { AwsHandlerResult, LambdaContextLike } from '../adapters/aws/handler.js';

/*
 * The AWS Lambda entry point: only glue. The spec comes from LBSYNC_SPEC /
 * LBSYNC_SPEC_FILE; SDK clients use the standard configuration chain
 * (region from the spec, credentials from the Lambda role, AWS_ENDPOINT_URL*
 * when set). Everything is built once per cold start.
 *
 * The SDK clients are imported statically; lbsync's own pipeline (and with it
 * zod, yaml, handlebars and pino) is imported on the first invocation, so the
 * module's import costs what the SDK clients cost. bench/aws.ts reports both
 * the import time and the time to a ready handler.
 */

type Handle = (event: unknown, context?: LambdaContextLike) => Promise<AwsHandlerResult>;

let ready: Promise<Handle> | undefined;

/** Build the handler from the environment; exported for the cold-start benchmark. */
export async function buildAwsHandler(env: NodeJS.ProcessEnv = process.env): Promise<Handle> {
  const [
    { loadApplyScript, loadDrainScript, loadSpecFromEnv },
    { createLogger },
    { loadTemplate },
    { createAwsHandler },
  ] = await Promise.all([
    import('../core/entry.js'),
    import('../core/log.js'),
    import('../core/render.js'),
    import('../adapters/aws/handler.js'),
  ]);
  const spec = await loadSpecFromEnv(env);
  const [template, applyScript, drainScript] = await Promise.all([
    loadTemplate(spec, env.LBSYNC_SPEC_FILE),
    loadApplyScript(env.LBSYNC_APPLY_SCRIPT),
    loadDrainScript(env.LBSYNC_DRAIN_SCRIPT),
  ]);
  const region = spec.workers.aws?.region ?? env.AWS_REGION ?? 'us-east-1';
  return createAwsHandler({
    spec,
    template,
    clients: createAwsClients({ region }, env),
    logger: createLogger({ base: { cloud: 'aws' } }),
    applyScript,
    drainScript,
  });
}

/** Lambda handler for Auto Scaling events, schedules and manual resync requests. */
export async function handler(
  event: unknown,
  context?: LambdaContextLike,
): Promise<AwsHandlerResult> {
  if (ready === undefined) {
    ready = buildAwsHandler();
    // A failed cold start must not be cached: the next invocation tries again.
    ready.catch(() => {
      ready = undefined;
    });
  }
  let handle: Handle;
  try {
    handle = await ready;
  } catch (err) {
    const e = err as { name?: string; message?: string; retryable?: boolean };
    // A bad spec does not heal by retrying: report it and end the invocation.
    // Anything else (a transient read failure) fails it so Lambda retries.
    if (e.retryable !== false) throw err;
    process.stdout.write(
      `${JSON.stringify({ level: 'error', service: 'lbsync', cloud: 'aws', stage: 'init', errorType: e.name, error: e.message, msg: 'cannot start: fix the spec and redeploy' })}\n`,
    );
    return {
      ok: false,
      error: { message: e.message ?? String(err), type: e.name ?? 'Error', retryable: false },
    };
  }
  return handle(event, context);
}
