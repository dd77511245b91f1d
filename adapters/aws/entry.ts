import type { Logger } from '../../core/log.js';
import {
  answerOf,
  type RunResult,
  runTrigger,
  SyncFailedError,
  type TriggerDeps,
} from '../../core/trigger.js';
import type { Runtime } from '../runtime.js';
import { awsTrigger } from './events.js';
import { asgSourceOf, awsClientsFor, ssmRegion } from './factory.js';
import {
  type FunctionUrlResponse,
  functionUrlResponse,
  functionUrlTrigger,
  isFunctionUrlEvent,
} from './function-url.js';
import { AsgLifecycle } from './lifecycle.js';
import type { AsgSourceSpec, SsmTransportSpec } from './provider.js';
import { EventBridgeReporter } from './report.js';

/** The function's own identity for `kubernetes.cluster.eks` (handed to buildFunctionRuntime). */
export { eksClusterAccess } from './eks.js';

/** The part of the Lambda context lbsync reads. */
export interface LambdaContextLike {
  readonly awsRequestId?: string;
  getRemainingTimeInMillis?(): number;
}

/**
 * What an invocation returns: the run's result (Lambda's response payload;
 * the CLI prints it), or the HTTP answer to a function URL request.
 */
export type AwsHandlerResult = RunResult | FunctionUrlResponse;

/** How a Lambda caller forces past a guard. */
export const AWS_FORCE_HINT = 'invoke with {"lbsync":"resync","force":true} to apply anyway';

/**
 * The AWS ports on top of a runtime: Auto Scaling lifecycle hooks (when the
 * workers come from aws-asg) and the EventBridge summary (when the LBs are
 * reached through ssm, whose section names the report bus).
 */
export function awsTriggerDeps(rt: Runtime): Runtime {
  const workers = rt.spec.workers as Partial<AsgSourceSpec>;
  const lbs = rt.spec.loadBalancers as Partial<SsmTransportSpec>;
  const ctx = rt.context;
  const lifecycle =
    workers.source === 'aws-asg'
      ? new AsgLifecycle(
          awsClientsFor(ctx, workers.region as string).autoScaling,
          asgSourceOf(workers as AsgSourceSpec, ctx),
          rt.logger,
        )
      : undefined;
  const reporter =
    lbs.transport === 'ssm'
      ? new EventBridgeReporter(
          awsClientsFor(ctx, ssmRegion(lbs as SsmTransportSpec, ctx)).eventBridge,
          lbs.reportBus ?? null,
        )
      : undefined;
  return {
    ...rt,
    ...(lifecycle !== undefined ? { lifecycle } : {}),
    ...(reporter !== undefined ? { reporter } : {}),
  };
}

/**
 * The Lambda handler over trigger deps: event -> trigger -> run -> result.
 * A result the platform should retry becomes a thrown SyncFailedError
 * (Lambda and EventBridge retry failed invocations); anything else returns.
 * A function URL request (the cluster watcher's) gets an HTTP answer instead.
 */
export function createAwsHandler(
  deps: TriggerDeps & { readonly spec: Runtime['spec'] },
  logger: Logger,
): (event: unknown, context?: LambdaContextLike) => Promise<AwsHandlerResult> {
  const workers = deps.spec.workers as Partial<AsgSourceSpec>;
  const groups = workers.source === 'aws-asg' ? (workers.autoScalingGroups ?? []) : [];
  return async (event, context) => {
    const log =
      context?.awsRequestId !== undefined
        ? logger.child({ requestId: context.awsRequestId })
        : logger;
    const remaining = context?.getRemainingTimeInMillis?.();
    const options = remaining !== undefined ? { deadline: Date.now() + remaining } : {};
    if (isFunctionUrlEvent(event)) {
      const t = functionUrlTrigger(event);
      if ('refused' in t) return t.refused;
      return functionUrlResponse(await runTrigger(t.trigger, deps, log, options));
    }
    const result = await runTrigger(awsTrigger(event, groups), deps, log, options);
    if (answerOf(result).retry) throw new SyncFailedError(result);
    return result;
  };
}
