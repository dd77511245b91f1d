import type { CoreV1Event } from '@kubernetes/client-node';

/*
 * core/v1 Events on a Service, shaped as client-go's recorder writes them
 * (what `kubectl describe service` shows): the object, a reason, a message
 * cut to 1 KiB, source and reporting component `lbsync`, first/last
 * timestamps and a count.
 */

/** The Service an Event is about. */
export interface ServiceRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
}

/** Events' component name, as `kubectl describe` shows it ("From"). */
export const REPORTING_COMPONENT = 'lbsync';
const MAX_EVENT_MESSAGE = 1024;

/** The Event body for one occurrence; `seq` keeps names of two events in one millisecond apart. */
export function serviceEvent(
  ref: ServiceRef,
  type: 'Normal' | 'Warning',
  reason: string,
  message: string,
  o: { readonly instance: string; readonly seq: bigint },
): CoreV1Event {
  const now = new Date();
  // Upstream's recorder names events `<object>.<unix nanos in hex>`; the sequence keeps two in one millisecond apart.
  const nanos = BigInt(now.getTime()) * 1_000_000n + (o.seq % 1_000_000n);
  return {
    metadata: { name: `${ref.name}.${nanos.toString(16)}`, namespace: ref.namespace },
    involvedObject: {
      apiVersion: 'v1',
      kind: 'Service',
      namespace: ref.namespace,
      name: ref.name,
      ...(ref.uid === undefined ? {} : { uid: ref.uid }),
      ...(ref.resourceVersion === undefined ? {} : { resourceVersion: ref.resourceVersion }),
    },
    type,
    reason,
    message:
      message.length > MAX_EVENT_MESSAGE
        ? `${message.slice(0, MAX_EVENT_MESSAGE - 3)}...`
        : message,
    source: { component: REPORTING_COMPONENT },
    reportingComponent: REPORTING_COMPONENT,
    reportingInstance: o.instance,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}
