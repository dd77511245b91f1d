import type { SyncRequest } from '../../core/model.js';
import {
  type LifecycleAction as CoreLifecycleAction,
  isManualRequest,
  parseManualRequest,
  type Trigger,
} from '../../core/trigger.js';
import { AWS_DETAIL_TYPES } from './provider.js';

/*
 * What a Lambda invocation means to lbsync. Every shape maps to "this group
 * may have changed"; lifecycle actions additionally carry what is needed to
 * complete them. Anything unknown is ignored with a reason, never thrown.
 *
 * Accepted:
 *   aws.autoscaling  EC2 Instance Launch Successful | Launch Unsuccessful |
 *                    Terminate Successful | Terminate Unsuccessful
 *   aws.autoscaling  EC2 Instance-launch Lifecycle Action |
 *                    EC2 Instance-terminate Lifecycle Action
 *   aws.events       Scheduled Event (periodic resync)
 *   a manual body    {"lbsync":"resync","force":false,"dryRun":false}, sent
 *                    directly or as the `detail` of any custom EventBridge event
 */

/** The instance events (the rest of AWS_DETAIL_TYPES are lifecycle actions). */
const INSTANCE_EVENTS: ReadonlySet<string> = new Set(
  AWS_DETAIL_TYPES.filter((t) => !t.endsWith('Lifecycle Action')),
);

/** A lifecycle action to complete after the sync (launch) or the drain (terminate). */
export interface LifecycleAction {
  readonly transition: 'launch' | 'terminate';
  readonly group: string;
  readonly hook: string;
  readonly token: string;
  readonly instanceId: string;
  readonly origin: string | null;
  readonly destination: string | null;
}

/** The parsed meaning of one invocation. */
export type AwsTrigger =
  | { readonly kind: 'sync'; readonly request: SyncRequest; readonly detailType: string }
  | {
      readonly kind: 'lifecycle';
      readonly request: SyncRequest;
      readonly detailType: string;
      readonly action: LifecycleAction;
    }
  | { readonly kind: 'ignore'; readonly reason: string; readonly eventId?: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/**
 * Turn a Lambda event into a trigger. `groups` are the spec's Auto Scaling
 * groups: events naming another group are ignored.
 */
export function parseAwsEvent(event: unknown, groups: readonly string[]): AwsTrigger {
  if (isManualRequest(event)) {
    return { kind: 'sync', request: parseManualRequest(event), detailType: 'manual' };
  }
  if (!isObject(event)) return { kind: 'ignore', reason: 'event is not a JSON object' };
  const source = str(event.source);
  const detailType = str(event['detail-type']);
  const eventId = str(event.id) ?? undefined;
  const idField = eventId !== undefined ? { eventId } : {};
  if (source === null || detailType === null) {
    return {
      kind: 'ignore',
      reason: 'neither an EventBridge event nor a manual resync body',
      ...idField,
    };
  }
  const detail = isObject(event.detail) ? event.detail : {};
  if (isManualRequest(detail)) {
    return { kind: 'sync', request: { ...parseManualRequest(detail), ...idField }, detailType };
  }
  if (source === 'aws.events' && detailType === 'Scheduled Event') {
    return { kind: 'sync', request: { reason: 'schedule', ...idField }, detailType };
  }
  if (source !== 'aws.autoscaling') {
    return { kind: 'ignore', reason: `unknown event ${source} / ${detailType}`, ...idField };
  }
  const group = str(detail.AutoScalingGroupName);
  if (group === null)
    return { kind: 'ignore', reason: `${detailType} without AutoScalingGroupName`, ...idField };
  if (!groups.includes(group)) {
    return { kind: 'ignore', reason: `group ${group} is not in the spec`, ...idField };
  }
  if (INSTANCE_EVENTS.has(detailType)) {
    return { kind: 'sync', request: { reason: 'event', group, ...idField }, detailType };
  }
  if (
    detailType === 'EC2 Instance-launch Lifecycle Action' ||
    detailType === 'EC2 Instance-terminate Lifecycle Action'
  ) {
    const transition = str(detail.LifecycleTransition);
    const expected =
      detailType === 'EC2 Instance-launch Lifecycle Action'
        ? 'autoscaling:EC2_INSTANCE_LAUNCHING'
        : 'autoscaling:EC2_INSTANCE_TERMINATING';
    const hook = str(detail.LifecycleHookName);
    const token = str(detail.LifecycleActionToken);
    const instanceId = str(detail.EC2InstanceId);
    if (transition !== expected || hook === null || token === null || instanceId === null) {
      // autoscaling:TEST_NOTIFICATION and malformed details land here.
      return {
        kind: 'ignore',
        reason: `${detailType} with transition ${transition ?? 'none'} or fields missing`,
        ...idField,
      };
    }
    return {
      kind: 'lifecycle',
      detailType,
      request: { reason: 'event', group, ...idField },
      action: {
        transition: transition === 'autoscaling:EC2_INSTANCE_LAUNCHING' ? 'launch' : 'terminate',
        group,
        hook,
        token,
        instanceId,
        origin: str(detail.Origin),
        destination: str(detail.Destination),
      },
    };
  }
  return { kind: 'ignore', reason: `unhandled Auto Scaling event ${detailType}`, ...idField };
}

/** The AWS lifecycle action as the trigger layer carries it (hook and token in `handle`). */
export function coreAction(a: LifecycleAction): CoreLifecycleAction {
  return {
    transition: a.transition,
    instanceId: a.instanceId,
    group: a.group,
    handle: { hook: a.hook, token: a.token },
    origin: a.origin,
    destination: a.destination,
    // A launch into the warm pool parks the instance stopped: it never serves.
    serves: !(a.transition === 'launch' && a.destination === 'WarmPool'),
  };
}

/** A Lambda event as a core trigger; a malformed manual body is `invalid`, never a throw. */
export function awsTrigger(event: unknown, groups: readonly string[]): Trigger {
  let t: AwsTrigger;
  try {
    t = parseAwsEvent(event, groups);
  } catch (err) {
    return { kind: 'invalid', reason: err instanceof Error ? err.message : String(err) };
  }
  if (t.kind === 'ignore') return t;
  if (t.kind === 'sync') return { kind: 'sync', request: t.request, detail: t.detailType };
  return {
    kind: 'lifecycle',
    request: t.request,
    detail: t.detailType,
    action: coreAction(t.action),
  };
}
