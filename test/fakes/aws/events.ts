import { eventFixture } from '../../helpers/fixtures.js';
import type { FakeLifecycleAction } from './fake-aws.js';

/** A fixture event (fresh copy) from test/fixtures/events/aws/<name>.json. */
export function fixture(name: string): Record<string, unknown> {
  return eventFixture('aws', name);
}

/** A fixture with its `detail` fields replaced and a fresh event id. */
export function eventFrom(
  name: string,
  detail: Record<string, unknown>,
  id?: string,
): Record<string, unknown> {
  const e = fixture(name);
  return {
    ...e,
    id: id ?? `${name}-${Math.random().toString(16).slice(2)}`,
    detail: { ...(e.detail as Record<string, unknown>), ...detail },
  };
}

/** The EventBridge event Auto Scaling sends for a lifecycle action the fake started. */
export function lifecycleEvent(action: FakeLifecycleAction): Record<string, unknown> {
  const launch = action.transition === 'autoscaling:EC2_INSTANCE_LAUNCHING';
  return eventFrom(launch ? 'launch-lifecycle-action' : 'terminate-lifecycle-action', {
    LifecycleActionToken: action.token,
    AutoScalingGroupName: action.group,
    LifecycleHookName: action.hook,
    EC2InstanceId: action.instanceId,
    LifecycleTransition: action.transition,
    Origin: action.origin,
    Destination: action.destination,
  });
}

/** An instance event (launch/terminate successful …) for a group and instance. */
export function instanceEvent(
  name: string,
  group: string,
  instanceId: string,
): Record<string, unknown> {
  return eventFrom(name, { AutoScalingGroupName: group, EC2InstanceId: instanceId });
}
