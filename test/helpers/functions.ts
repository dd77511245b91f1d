import type { AwsClients } from '../../adapters/aws/clients.js';
import {
  type AwsHandlerResult,
  awsTriggerDeps,
  createAwsHandler,
  type LambdaContextLike,
} from '../../adapters/aws/entry.js';
import { buildRuntime } from '../../adapters/runtime.js';
import type { Spec } from '../../adapters/spec.js';
import type { Logger } from '../../core/log.js';
import type { Backoff } from '../../core/retry.js';
import type { RunResult } from '../../core/trigger.js';

/**
 * The AWS Lambda handler for `spec`, built exactly as functions/aws.ts
 * builds it (registry factories, trigger deps, lifecycle and reporter
 * ports), with the test's clients, logger and short polls.
 */
export async function awsHandlerFor(
  spec: Spec,
  o: {
    readonly clients: AwsClients;
    readonly logger: Logger;
    readonly poll?: Backoff;
    readonly now?: () => number;
  },
): Promise<(event: unknown, context?: LambdaContextLike) => Promise<RunResult>> {
  const { AWS_FORCE_HINT } = await import('../../adapters/aws/entry.js');
  const rt = await buildRuntime({
    spec,
    logger: o.logger,
    forceHint: AWS_FORCE_HINT,
    tuning: { aws: { clients: o.clients, poll: o.poll ?? { initialMs: 40, maxMs: 200 } } },
    ...(o.now !== undefined ? { now: o.now } : {}),
  });
  const handle = createAwsHandler(awsTriggerDeps(rt), o.logger);
  return async (event, context) => runResultOf(await handle(event, context));
}

/** The run's result from a Lambda answer; a function URL's HTTP answer here is a test bug. */
export function runResultOf(answer: AwsHandlerResult): RunResult {
  if ('statusCode' in answer) {
    throw new Error(`expected a run result, got a function URL answer ${answer.statusCode}`);
  }
  return answer;
}
