import type { AwsHandlerResult, LambdaContextLike } from '../adapters/aws/entry.js';
import type { FunctionOverrides } from '../adapters/runtime.js';
import { coldStart, initFailure } from '../core/cold-start.js';

/*
 * The AWS Lambda entry point: glue. The spec comes from LBSYNC_SPEC /
 * LBSYNC_SPEC_FILE, SDK clients from the standard configuration chain. The
 * pipeline (zod, yaml, handlebars, pino, the SDK clients) loads on the first
 * invocation, so importing the module costs little (bench/aws.ts measures it).
 */
type Handle = (event: unknown, context?: LambdaContextLike) => Promise<AwsHandlerResult>;
let overrides: FunctionOverrides = {};
const entry = coldStart(() => buildAwsHandler(overrides.env));

/** Replace how the runtime is built (tests point the clients at the fakes); resets the cold start. */
export function configureAwsFunction(o: FunctionOverrides): void {
  overrides = o;
  entry.reset();
}

/** The handler, built on first use; exported for the cold-start benchmark. */
export const readyAwsHandler = (): Promise<Handle> => entry.get();

/** A fresh handler from `env` (the packaging test starts the shipped bundle with it). */
export async function buildAwsHandler(env: NodeJS.ProcessEnv = process.env): Promise<Handle> {
  const [{ buildFunctionRuntime }, aws] = await Promise.all([
    import('../adapters/runtime.js'),
    import('../adapters/aws/entry.js'),
  ]);
  const rt = await buildFunctionRuntime(
    'aws',
    aws.AWS_FORCE_HINT,
    { ...overrides, env },
    aws.eksClusterAccess,
  );
  return aws.createAwsHandler(aws.awsTriggerDeps(rt), rt.logger);
}

/** Lambda handler for Auto Scaling events, schedules and manual resync requests. */
export async function handler(
  event: unknown,
  context?: LambdaContextLike,
): Promise<AwsHandlerResult> {
  const handle = await entry.get().catch((err: unknown) => initFailure(err, 'aws'));
  return typeof handle === 'function' ? handle(event, context) : handle;
}
