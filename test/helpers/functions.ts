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
): Promise<(event: unknown, context?: LambdaContextLike) => Promise<AwsHandlerResult>> {
  const { AWS_FORCE_HINT } = await import('../../adapters/aws/entry.js');
  const rt = await buildRuntime({
    spec,
    logger: o.logger,
    forceHint: AWS_FORCE_HINT,
    tuning: { aws: { clients: o.clients, poll: o.poll ?? { initialMs: 40, maxMs: 200 } } },
    ...(o.now !== undefined ? { now: o.now } : {}),
  });
  return createAwsHandler(awsTriggerDeps(rt), o.logger);
}
