import {
  type AutoScalingClient,
  CompleteLifecycleActionCommand,
  DescribeLifecycleHooksCommand,
} from '@aws-sdk/client-auto-scaling';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Lifecycle, LifecycleAction } from '../../core/trigger.js';
import { awsErrorCode, describeAwsError, isRetryableAwsError } from './errors.js';
import type { AsgSource } from './source.js';

/** Seconds kept free before the hook's heartbeat times out. */
const HEARTBEAT_MARGIN_SECONDS = 10;

/**
 * Auto Scaling lifecycle hooks as the trigger layer's Lifecycle port: what
 * the group says of an instance now, and CompleteLifecycleAction.
 */
export class AsgLifecycle implements Lifecycle {
  public constructor(
    private readonly autoScaling: AutoScalingClient,
    private readonly source: AsgSource,
    private readonly logger: Logger,
  ) {}

  /**
   * Drain when the instance served: the group shows it terminating, or it
   * goes back to the warm pool on scale-in (`Origin: AutoScalingGroup`,
   * `Destination: WarmPool`: the group already lists it `Warmed:Pending:Wait`
   * or not at all, yet it had live sessions until now).
   */
  public async inspect(
    action: LifecycleAction,
    signal?: AbortSignal,
  ): Promise<{ readonly drain: boolean; readonly note?: string; readonly maxSeconds?: number }> {
    const members = await this.source.members(signal);
    const member = members.find((m) => m.id === action.instanceId && m.group === action.group);
    // A late duplicate finds the instance back in service: level-triggered, nothing drains.
    const toWarmPool =
      action.origin === 'AutoScalingGroup' &&
      action.destination === 'WarmPool' &&
      (member === undefined || member.lifecycleState.startsWith('Warmed'));
    if (member?.role !== 'draining' && !toWarmPool) {
      return {
        drain: false,
        note: `instance is ${member === undefined ? 'not a group member' : member.lifecycleState} (origin ${action.origin ?? '?'}, destination ${action.destination ?? '?'}): nothing to drain`,
      };
    }
    const heartbeat = await this.heartbeatSeconds(action, signal);
    return {
      drain: true,
      ...(toWarmPool && member?.role !== 'draining'
        ? { note: 'returning to the warm pool with sessions open: drained like a termination' }
        : {}),
      ...(heartbeat !== undefined ? { maxSeconds: heartbeat - HEARTBEAT_MARGIN_SECONDS } : {}),
    };
  }

  /** CONTINUE the action; a duplicate or expired one is a warning, a throttle is worth a retry. */
  public async complete(
    action: LifecycleAction,
    why: string,
    log: Logger,
    signal?: AbortSignal,
  ): Promise<{ readonly completed: string | null; readonly retryReason?: string }> {
    const hook = action.handle.hook ?? '';
    try {
      await this.autoScaling.send(
        new CompleteLifecycleActionCommand({
          AutoScalingGroupName: action.group,
          LifecycleHookName: hook,
          LifecycleActionToken: action.handle.token,
          InstanceId: action.instanceId,
          LifecycleActionResult: 'CONTINUE',
        }),
        { abortSignal: signal },
      );
      log.info(
        { stage: 'lifecycle', instance: action.instanceId, hook, result: 'CONTINUE' },
        `lifecycle action completed: ${why}`,
      );
      return { completed: 'CONTINUE' };
    } catch (err) {
      // A duplicate event, or one whose action already completed or timed
      // out: nothing waits on us any more.
      const level = awsErrorCode(err) === 'ValidationError' ? 'warn' : 'error';
      const retryable = level === 'error' && isRetryableAwsError(err);
      log[level](
        { stage: 'lifecycle', instance: action.instanceId, hook, error: describeAwsError(err) },
        level === 'warn'
          ? 'lifecycle action not completed: no such action is waiting (duplicate or expired event)'
          : retryable
            ? 'CompleteLifecycleAction failed; failing the invocation so Lambda retries it'
            : 'CompleteLifecycleAction failed; the hook falls back to its default result at heartbeat timeout',
      );
      return retryable
        ? {
            completed: null,
            retryReason: `CompleteLifecycleAction failed: ${describeAwsError(err)}`,
          }
        : { completed: null };
    }
  }

  private async heartbeatSeconds(
    action: LifecycleAction,
    signal?: AbortSignal,
  ): Promise<number | undefined> {
    try {
      const res = await this.autoScaling.send(
        new DescribeLifecycleHooksCommand({
          AutoScalingGroupName: action.group,
          LifecycleHookNames: [action.handle.hook ?? ''],
        }),
        { abortSignal: signal },
      );
      return res.LifecycleHooks?.[0]?.HeartbeatTimeout;
    } catch (err) {
      this.logger.warn(
        { stage: 'lifecycle', error: errorMessage(err) },
        'could not read the hook heartbeat; using drain.seconds',
      );
      return undefined;
    }
  }
}
