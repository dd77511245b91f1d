import { isManualRequest, manualTrigger, type Trigger } from '../../core/trigger.js';
import { AZURE_EVENT_TYPES } from './provider.js';
import type { ScaleSetRef } from './source.js';
import { scaleSetGroup } from './source.js';

/*
 * What Azure's triggers mean to lbsync. Every accepted event only says "this
 * scale set may have changed": the handler re-lists everything anyway, so a
 * generous match costs one extra (unchanged) sync while a strict one could
 * miss a change. Shapes: Event Grid resource events (CLOUD-FACTS 2.1), in
 * either delivery schema a subscription can choose, and the Azure Monitor
 * autoscale webhook (2.2).
 *
 * The two Event Grid schemas carry the same resource event under different
 * names (https://learn.microsoft.com/azure/event-grid/cloud-event-schema):
 *   Event Grid schema   eventType  subject  topic   eventTime  id  data
 *   CloudEvents 1.0     type       subject  source  time       id  data  specversion
 */

/** The Event Grid resource event types that can mean membership changed. */
export const HANDLED_EVENT_TYPES: ReadonlySet<string> = new Set(AZURE_EVENT_TYPES);

/** Where events are matched against: the spec's scale sets and LB VMs. */
export interface EventScope {
  readonly subscriptionId: string;
  readonly scaleSets: readonly ScaleSetRef[];
  /** LB VMs (resource group + name): their own events, e.g. our Run Commands, are never triggers. */
  readonly lbVms: readonly { readonly resourceGroup: string; readonly name: string }[];
}

/** The verdict on one event: sync for a group, or ignore with a reason. */
export type EventVerdict =
  | { readonly kind: 'sync'; readonly group: string; readonly eventId?: string }
  | { readonly kind: 'ignore'; readonly reason: string; readonly eventId?: string };

/** The Event Grid event fields lbsync reads (the `EventGridEvent` of @azure/functions). */
export interface EventGridEventLike {
  readonly id?: string;
  readonly subject?: string;
  readonly eventType?: string;
  readonly data?: unknown;
}

/** The same event in the CloudEvents 1.0 schema: `type` for `eventType`, `source` for `topic`. */
export interface CloudEventLike {
  readonly id?: string;
  readonly subject?: string;
  readonly type?: string;
  readonly source?: string;
  readonly specversion?: string;
  readonly data?: unknown;
}

/**
 * The event type in either schema: `eventType` (Event Grid schema), else
 * `type` (CloudEvents 1.0). Undefined when neither is a string.
 */
export function eventGridEventType(event: EventGridEventLike & CloudEventLike): string | undefined {
  if (typeof event.eventType === 'string') return event.eventType;
  if (event.eventType === undefined && typeof event.type === 'string') return event.type;
  return undefined;
}

/**
 * Decide whether an Event Grid event, in the Event Grid or the CloudEvents
 * 1.0 schema, concerns a configured scale set: its
 * subject is the scale set, one of its (Uniform) VMs or anything under them,
 * or (Flexible, whose VMs are plain `virtualMachines`) a VM in a resource
 * group that holds a configured Flexible scale set. Events about the LB VMs
 * themselves and about Run Commands are ignored, or our own pushes would
 * trigger syncs forever.
 */
export function classifyEventGridEvent(event: unknown, scope: EventScope): EventVerdict {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    return { kind: 'ignore', reason: 'not an Event Grid event object' };
  }
  const e = event as EventGridEventLike & CloudEventLike;
  const eventId = typeof e.id === 'string' ? e.id : undefined;
  const withId = eventId !== undefined ? { eventId } : {};
  const type = eventGridEventType(e);
  if (type === undefined || !HANDLED_EVENT_TYPES.has(type)) {
    return {
      kind: 'ignore',
      reason: `event type ${type ?? 'missing (neither eventType nor type)'} is not handled`,
      ...withId,
    };
  }
  if (typeof e.subject !== 'string') {
    return { kind: 'ignore', reason: 'event has no subject', ...withId };
  }
  const operation =
    typeof e.data === 'object' && e.data !== null
      ? (e.data as { operationName?: unknown }).operationName
      : undefined;
  if (typeof operation === 'string' && /\/runcommands?\/(action|write|delete)$/i.test(operation)) {
    return { kind: 'ignore', reason: `operation ${operation} is a run command`, ...withId };
  }
  const subject = e.subject.toLowerCase();
  const sub = `/subscriptions/${scope.subscriptionId.toLowerCase()}/resourcegroups/`;
  if (!subject.startsWith(sub)) {
    return { kind: 'ignore', reason: 'subject is outside the configured subscription', ...withId };
  }
  for (const lb of scope.lbVms) {
    const vm = `${sub}${lb.resourceGroup.toLowerCase()}/providers/microsoft.compute/virtualmachines/${lb.name.toLowerCase()}`;
    if (subject === vm || subject.startsWith(`${vm}/`)) {
      return { kind: 'ignore', reason: 'subject is an LB VM', ...withId };
    }
  }
  for (const ss of scope.scaleSets) {
    const rg = `${sub}${ss.resourceGroup.toLowerCase()}/providers/`;
    const vmss = `${rg}microsoft.compute/virtualmachinescalesets/${ss.name.toLowerCase()}`;
    if (subject === vmss || subject.startsWith(`${vmss}/`)) {
      return { kind: 'sync', group: scaleSetGroup(ss), ...withId };
    }
    if (
      ss.orchestration === 'flexible' &&
      subject.startsWith(`${rg}microsoft.compute/virtualmachines/`)
    ) {
      return { kind: 'sync', group: scaleSetGroup(ss), ...withId };
    }
  }
  return { kind: 'ignore', reason: 'subject is not a configured scale set or its VMs', ...withId };
}

/** An Azure Monitor autoscale notification, reduced to what lbsync uses. */
export interface AutoscaleNotification {
  readonly operation: 'Scale Out' | 'Scale In';
  readonly group: string;
  readonly oldCapacity?: number;
  readonly newCapacity?: number;
}

/** True when `body` has the autoscale webhook's shape (operation + context.resourceType). */
export function isAutoscaleNotification(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const b = body as { operation?: unknown; context?: unknown };
  return (
    (b.operation === 'Scale Out' || b.operation === 'Scale In') &&
    typeof b.context === 'object' &&
    b.context !== null
  );
}

/**
 * Read an autoscale webhook payload; `ignore` when it is not about one of the
 * configured scale sets (other autoscale settings may share the webhook).
 */
export function classifyAutoscaleNotification(
  body: unknown,
  scope: EventScope,
): { readonly kind: 'sync'; readonly notification: AutoscaleNotification } | EventVerdict {
  if (!isAutoscaleNotification(body)) {
    return { kind: 'ignore', reason: 'not an autoscale notification' };
  }
  const b = body as {
    operation: 'Scale Out' | 'Scale In';
    context: Record<string, unknown>;
  };
  const c = b.context;
  const resourceType = String(c.resourceType ?? '').toLowerCase();
  if (resourceType !== 'microsoft.compute/virtualmachinescalesets') {
    return { kind: 'ignore', reason: `autoscale of ${resourceType || 'an unknown type'}` };
  }
  const rg = String(c.resourceGroupName ?? '').toLowerCase();
  const name = String(c.resourceName ?? '').toLowerCase();
  const sub = String(c.subscriptionId ?? '').toLowerCase();
  if (sub !== '' && sub !== scope.subscriptionId.toLowerCase()) {
    return { kind: 'ignore', reason: 'autoscale in another subscription' };
  }
  const ss = scope.scaleSets.find(
    (s) => s.resourceGroup.toLowerCase() === rg && s.name.toLowerCase() === name,
  );
  if (ss === undefined) {
    return { kind: 'ignore', reason: `scale set ${rg}/${name} is not configured` };
  }
  const capacity = (v: unknown): number | undefined => {
    const n = typeof v === 'string' || typeof v === 'number' ? Number(v) : Number.NaN;
    return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
  };
  const oldCapacity = capacity(c.oldCapacity);
  const newCapacity = capacity(c.newCapacity);
  return {
    kind: 'sync',
    notification: {
      operation: b.operation,
      group: scaleSetGroup(ss),
      ...(oldCapacity !== undefined ? { oldCapacity } : {}),
      ...(newCapacity !== undefined ? { newCapacity } : {}),
    },
  };
}

/** An Event Grid event (or a queued copy) as a core trigger. */
export function eventGridTrigger(event: unknown, scope: EventScope): Trigger {
  const verdict = classifyEventGridEvent(event, scope);
  if (verdict.kind !== 'sync') return verdict;
  const type = (event as { eventType?: unknown }).eventType;
  return {
    kind: 'sync',
    detail: typeof type === 'string' ? type : 'Event Grid event',
    request: {
      reason: 'event',
      group: verdict.group,
      ...(verdict.eventId !== undefined ? { eventId: verdict.eventId } : {}),
    },
  };
}

/**
 * An HTTP body as a core trigger: the autoscale webhook (a settle trigger:
 * it fires when scaling starts, so the run re-checks until the scale set
 * serves the new capacity), or a manual resync body.
 */
export function httpTrigger(body: unknown, scope: EventScope): Trigger {
  if (!isAutoscaleNotification(body)) {
    if (!isManualRequest(body)) {
      return {
        kind: 'invalid',
        reason:
          'expected {"lbsync":"resync","force":false,"dryRun":false} or an autoscale notification',
      };
    }
    return manualTrigger(body);
  }
  const verdict = classifyAutoscaleNotification(body, scope);
  if (verdict.kind !== 'sync' || !('notification' in verdict)) {
    return { kind: 'ignore', reason: 'reason' in verdict ? verdict.reason : 'not handled' };
  }
  const n = verdict.notification;
  return {
    kind: 'sync',
    detail: `autoscale ${n.operation}`,
    request: { reason: 'event', group: n.group },
    settle: { group: n.group, ...(n.newCapacity !== undefined ? { capacity: n.newCapacity } : {}) },
  };
}
