import {
  CompleteLifecycleActionCommand,
  DescribeLifecycleHooksCommand,
} from '@aws-sdk/client-auto-scaling';
import { settle } from '../../core/entry.js';
import { errorMessage, isRetryable, LbsyncError, TriggerParseError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { SyncRequest } from '../../core/model.js';
import type { Template } from '../../core/render.js';
import type { Spec } from '../../core/spec.js';
import { runSync, type SyncReport } from '../../core/sync.js';
import type { AwsClients } from './clients.js';
import type { DrainResult } from './drain.js';
import { awsErrorCode, describeAwsError, isRetryableAwsError } from './errors.js';
import { type LifecycleAction, parseAwsEvent } from './events.js';
import { detailTypeOf, publishSummary, type RunSummary } from './report.js';
import { AsgSource } from './source.js';
import { SsmTransport, type SsmTransportOptions } from './transport.js';

/** The part of the Lambda context lbsync reads. */
export interface LambdaContextLike {
  readonly awsRequestId?: string;
  getRemainingTimeInMillis?(): number;
}

/** Everything the handler needs; built once per cold start. */
export interface AwsHandlerDeps {
  readonly spec: Spec;
  readonly template: Template;
  readonly clients: AwsClients;
  readonly logger: Logger;
  readonly applyScript: string;
  readonly drainScript: string;
  /** Transport tuning (poll delays, inline limit); tests shorten the polls. */
  readonly transport?: Pick<
    SsmTransportOptions,
    'inlineLimitBytes' | 'pollInitialMs' | 'pollMaxMs'
  >;
  readonly now?: () => number;
}

/** What an invocation returns (Lambda's response payload; the CLI prints it). */
export interface AwsHandlerResult {
  readonly ok: boolean;
  readonly detailType?: string;
  readonly ignored?: string;
  readonly report?: SyncReport;
  readonly error?: RunSummary['error'];
  readonly lifecycle?: RunSummary['lifecycle'];
}

/** Seconds kept free before the hook's heartbeat and the Lambda deadline. */
const DRAIN_MARGIN_SECONDS = 10;

/**
 * Build the Lambda handler: parse → (drain) → sync → (complete lifecycle
 * action) → report. Retryable failures throw so Lambda/EventBridge retry;
 * permanent ones are logged, published and returned.
 */
export function createAwsHandler(
  deps: AwsHandlerDeps,
): (event: unknown, context?: LambdaContextLike) => Promise<AwsHandlerResult> {
  const { spec, clients } = deps;
  const aws = spec.workers.aws;
  const lb = spec.loadBalancers.aws;
  if (aws === undefined || lb === undefined) {
    throw new LbsyncError('the spec has no workers.aws / loadBalancers.aws section', {
      retryable: false,
    });
  }
  const baseLog = deps.logger.child({ cloud: 'aws' });
  const source = new AsgSource({
    autoScaling: clients.autoScaling,
    ec2: clients.ec2,
    groups: aws.autoScalingGroups,
    logger: baseLog,
  });
  const transport = new SsmTransport({
    ssm: clients.ssm,
    ec2: clients.ec2,
    s3: clients.s3,
    lb,
    lbApply: spec.lbApply,
    runtimeSocket: spec.runtimeSocket,
    applyScript: deps.applyScript,
    drainScript: deps.drainScript,
    logger: baseLog,
    ...deps.transport,
  });

  async function sync(request: SyncRequest, src: AsgSource, log: Logger): Promise<RunSummary> {
    try {
      const report = await runSync(request, {
        spec,
        template: deps.template,
        source: src,
        transport,
        logger: log,
        ...(deps.now !== undefined ? { now: deps.now } : {}),
      });
      return { report };
    } catch (err) {
      const retryable = isRetryable(err);
      const type = err instanceof Error ? err.name : 'Error';
      log.error(
        { stage: 'report', ok: false, retryable, errorType: type, error: errorMessage(err) },
        'sync failed before reaching the LBs',
      );
      return { error: { message: errorMessage(err), type, retryable } };
    }
  }

  async function finish(
    summary: RunSummary,
    log: Logger,
    retryReason?: string,
  ): Promise<AwsHandlerResult> {
    await publishSummary(clients.eventBridge, lb?.reportBus ?? null, summary, log);
    const detailType = detailTypeOf(summary);
    if (summary.error?.retryable === true) {
      throw new LbsyncError(`lbsync: ${summary.error.message}`, { retryable: true });
    }
    if (retryReason !== undefined) {
      throw new LbsyncError(`lbsync: ${retryReason}`, { retryable: true });
    }
    if (summary.report !== undefined) settle(summary.report);
    return {
      ok: summary.report?.ok === true && summary.error === undefined,
      detailType,
      ...summary,
    };
  }

  async function complete(
    action: LifecycleAction,
    log: Logger,
    why: string,
  ): Promise<{ readonly completed: string | null; readonly retryReason?: string }> {
    try {
      await clients.autoScaling.send(
        new CompleteLifecycleActionCommand({
          AutoScalingGroupName: action.group,
          LifecycleHookName: action.hook,
          LifecycleActionToken: action.token,
          InstanceId: action.instanceId,
          LifecycleActionResult: 'CONTINUE',
        }),
      );
      log.info(
        { stage: 'lifecycle', instance: action.instanceId, hook: action.hook, result: 'CONTINUE' },
        `lifecycle action completed: ${why}`,
      );
      return { completed: 'CONTINUE' };
    } catch (err) {
      // A duplicate event, or one whose action already completed or timed
      // out: nothing waits on us any more.
      const level = awsErrorCode(err) === 'ValidationError' ? 'warn' : 'error';
      const retryable = level === 'error' && isRetryableAwsError(err);
      log[level](
        {
          stage: 'lifecycle',
          instance: action.instanceId,
          hook: action.hook,
          error: describeAwsError(err),
        },
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

  async function drainSeconds(
    action: LifecycleAction,
    context: LambdaContextLike | undefined,
    log: Logger,
  ): Promise<number> {
    let seconds = spec.drain.seconds;
    try {
      const res = await clients.autoScaling.send(
        new DescribeLifecycleHooksCommand({
          AutoScalingGroupName: action.group,
          LifecycleHookNames: [action.hook],
        }),
      );
      const heartbeat = res.LifecycleHooks?.[0]?.HeartbeatTimeout;
      if (heartbeat !== undefined) seconds = Math.min(seconds, heartbeat - DRAIN_MARGIN_SECONDS);
    } catch (err) {
      log.warn(
        { stage: 'lifecycle', error: describeAwsError(err) },
        'could not read the hook heartbeat; using drain.seconds',
      );
    }
    const remaining = context?.getRemainingTimeInMillis?.();
    if (remaining !== undefined)
      seconds = Math.min(seconds, Math.floor(remaining / 1000) - 2 * DRAIN_MARGIN_SECONDS);
    return Math.max(0, seconds);
  }

  async function terminate(
    action: LifecycleAction,
    request: SyncRequest,
    context: LambdaContextLike | undefined,
    log: Logger,
  ): Promise<AwsHandlerResult> {
    // Level-triggered: the group's current state, not the event, decides
    // whether anything drains. A warm-pool instance (origin WarmPool) never
    // served; a late or duplicate event may name an instance now InService.
    let members: Awaited<ReturnType<AsgSource['members']>>;
    try {
      members = await source.members();
    } catch (err) {
      log.error(
        {
          stage: 'lifecycle',
          instance: action.instanceId,
          error: errorMessage(err),
          retryable: isRetryable(err),
        },
        'cannot read the group; the terminate lifecycle action stays pending until a retry or the heartbeat timeout',
      );
      return finish(
        { error: { message: errorMessage(err), type: 'SourceError', retryable: isRetryable(err) } },
        log,
      );
    }
    const member = members.find((m) => m.id === action.instanceId && m.group === action.group);
    const drains: { lb: string; result: string; sessions: number }[] = [];
    let note: string | undefined;
    if (member?.role === 'draining') {
      const seconds = await drainSeconds(action, context, log);
      const targets = await transport.targets().catch((err: unknown) => {
        log.error(
          { stage: 'drain', error: errorMessage(err) },
          'cannot list LB targets for the drain',
        );
        return [];
      });
      const results = await Promise.all(
        targets.map(
          async (
            t,
          ): Promise<DrainResult | { result: 'error'; sessions: number; message: string }> => {
            try {
              return await transport.drain(t, action.instanceId, seconds);
            } catch (err) {
              return { result: 'error', sessions: -1, message: errorMessage(err) };
            }
          },
        ),
      );
      results.forEach((r, i) => {
        const lbId = targets[i]?.id ?? '?';
        drains.push({ lb: lbId, result: r.result, sessions: r.sessions });
        const bad = r.result === 'error' || r.result === 'failed' || r.result === 'timeout';
        log[bad ? 'warn' : 'info'](
          {
            stage: 'drain',
            lb: lbId,
            instance: action.instanceId,
            result: r.result,
            sessions: r.sessions,
            seconds,
            ...('message' in r && r.message ? { message: r.message } : {}),
          },
          bad ? `drain ended ${r.result}; continuing the termination anyway` : `drain ${r.result}`,
        );
      });
    } else {
      note = `instance is ${member === undefined ? 'not a group member' : member.lifecycleState} (origin ${action.origin ?? '?'}, destination ${action.destination ?? '?'}): nothing to drain`;
      log.info({ stage: 'drain', instance: action.instanceId }, note);
    }
    const summary = await sync(request, source, log);
    const { completed, retryReason } = await complete(action, log, note ?? 'drained');
    return finish(
      {
        ...summary,
        lifecycle: {
          transition: 'terminate',
          instanceId: action.instanceId,
          completed,
          drain: drains,
          ...(note !== undefined ? { note } : {}),
        },
      },
      log,
      retryReason,
    );
  }

  async function launch(
    action: LifecycleAction,
    request: SyncRequest,
    log: Logger,
  ): Promise<AwsHandlerResult> {
    const summary = await sync(request, source.admitting([action.instanceId]), log);
    const failed =
      summary.error ??
      (summary.report !== undefined && !summary.report.ok ? summary.report : undefined);
    const retryable = summary.error?.retryable === true || summary.report?.retryable === true;
    let completed: string | null = null;
    let retryReason: string | undefined;
    if (failed !== undefined && retryable) {
      log.error(
        { stage: 'lifecycle', instance: action.instanceId, hook: action.hook },
        'launch lifecycle action left pending: the LBs could not be updated yet; the retry completes it, or the hook default result applies at heartbeat timeout',
      );
    } else {
      if (failed !== undefined) {
        log.error(
          { stage: 'lifecycle', instance: action.instanceId, hook: action.hook },
          'the LBs refused the new worker set (see the report); continuing the launch so the instance is not killed, the next resync adds it',
        );
      }
      const done = await complete(action, log, 'worker added to the LBs');
      completed = done.completed;
      retryReason = done.retryReason;
    }
    return finish(
      { ...summary, lifecycle: { transition: 'launch', instanceId: action.instanceId, completed } },
      log,
      retryReason,
    );
  }

  return async function handle(
    event: unknown,
    context?: LambdaContextLike,
  ): Promise<AwsHandlerResult> {
    let trigger: ReturnType<typeof parseAwsEvent>;
    try {
      trigger = parseAwsEvent(event, aws.autoScalingGroups);
    } catch (err) {
      if (!(err instanceof TriggerParseError)) throw err;
      baseLog.warn({ stage: 'trigger', error: err.message }, 'ignored a malformed request');
      return { ok: false, ignored: err.message };
    }
    if (trigger.kind === 'ignore') {
      baseLog.info(
        {
          stage: 'trigger',
          ignored: trigger.reason,
          ...(trigger.eventId !== undefined ? { eventId: trigger.eventId } : {}),
        },
        `ignored: ${trigger.reason}`,
      );
      return { ok: true, ignored: trigger.reason };
    }
    const r = trigger.request;
    const log = baseLog.child({
      ...(r.group !== undefined ? { group: r.group } : {}),
      ...(r.eventId !== undefined ? { eventId: r.eventId } : {}),
      ...(context?.awsRequestId !== undefined ? { requestId: context.awsRequestId } : {}),
    });
    log.info(
      {
        stage: 'trigger',
        kind: trigger.kind,
        detailType: trigger.detailType,
        reason: r.reason,
        ...(trigger.kind === 'lifecycle'
          ? {
              instance: trigger.action.instanceId,
              origin: trigger.action.origin,
              destination: trigger.action.destination,
            }
          : {}),
      },
      `trigger: ${trigger.detailType}`,
    );
    if (trigger.kind === 'sync') return finish(await sync(r, source, log), log);
    return trigger.action.transition === 'launch'
      ? launch(trigger.action, r, log)
      : terminate(trigger.action, r, context, log);
  };
}
