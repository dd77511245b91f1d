import type { SyncRequest } from '../../core/model.js';
import type { Trigger } from '../../core/trigger.js';
import type { MigSourceSpec } from './provider.js';
import { GCP_AUDIT_LOG_EVENT } from './provider.js';

/*
 * Eventarc delivers Cloud Audit Log entries as CloudEvents of type
 * `google.cloud.audit.log.v1.written`; `data` is the LogEntry, with
 * `protoPayload.{serviceName, methodName, resourceName}` and
 * `operation.{id, first, last}`. Long-running operations log twice (first
 * and last) and both arrive: each only means "this group may have changed",
 * so both trigger a full, level-triggered resync and the second is harmless.
 */

/** The CloudEvent type Eventarc uses for audit logs. */
export const AUDIT_LOG_TYPE = GCP_AUDIT_LOG_EVENT;

/** The parts of a CloudEvent this parser reads. */
export interface AuditLogCloudEvent {
  readonly id?: string;
  readonly type?: string;
  readonly subject?: string;
  readonly data?: unknown;
}

/** What an event means: resync (naming the group when known), or ignore with a reason. */
export type GcpEventDecision =
  | { readonly action: 'sync'; readonly request: SyncRequest; readonly method: string }
  | { readonly action: 'ignore'; readonly reason: string };

const INSTANCE_METHODS = /^(?:v1\.|beta\.)?compute\.instances\.(?:insert|delete|bulkInsert)$/;
const MIG_METHODS =
  /^(?:v1\.|beta\.)?compute\.(?:regionInstanceGroupManagers|instanceGroupManagers)\.(?:resize|recreateInstances|deleteInstances|abandonInstances|createInstances|applyUpdatesToInstances|patch|update)$/;

/**
 * Decide what an audit-log CloudEvent means for this spec. Instance inserts
 * and deletes count when they happen in a zone one of the configured MIGs
 * covers (whether a MIG-made insert names its MIG is not documented, so the
 * zone is the test); MIG operations count when they name a configured MIG.
 * Everything else is ignored. Never throws on arbitrary input, including
 * null, undefined and primitives (the event is typed `unknown` on purpose).
 */
export function decideAuditLogEvent(
  input: unknown,
  workers: { readonly source: string },
): GcpEventDecision {
  if (workers.source !== 'gcp-mig') {
    return { action: 'ignore', reason: 'the workers do not come from gcp-mig' };
  }
  const gcp = workers as MigSourceSpec;
  const event: AuditLogCloudEvent | undefined = asRecord(input);
  if (event === undefined) {
    return {
      action: 'ignore',
      reason: `not a CloudEvent object (${input === null ? 'null' : Array.isArray(input) ? 'a list' : typeof input})`,
    };
  }
  if (event.type !== AUDIT_LOG_TYPE) {
    return {
      action: 'ignore',
      reason: `not an audit log event (type ${str(event.type) || typeof event.type})`,
    };
  }
  const data = asRecord(event.data);
  const proto = asRecord(data?.protoPayload);
  const service = str(proto?.serviceName);
  const method = str(proto?.methodName);
  const resource = str(proto?.resourceName);
  if (service !== 'compute.googleapis.com') {
    return { action: 'ignore', reason: `service ${service || '(none)'} is not Compute Engine` };
  }
  const base = {
    reason: 'event' as const,
    ...(typeof event.id === 'string' && event.id !== '' ? { eventId: event.id } : {}),
  };

  if (MIG_METHODS.test(method)) {
    const m = /^projects\/([^/]+)\/(zones|regions)\/([^/]+)\/instanceGroupManagers\/([^/]+)$/.exec(
      resource,
    );
    if (m === null) return { action: 'ignore', reason: `unexpected MIG resource ${resource}` };
    const [, project, scope, where, name] = m;
    if (project !== gcp.project)
      return { action: 'ignore', reason: `project ${project} is not ours` };
    const group = gcp.groups.find(
      (g) => g.name === name && (scope === 'zones' ? g.zone === where : g.region === where),
    );
    if (group === undefined) {
      return { action: 'ignore', reason: `MIG ${scope}/${where}/${name} is not configured` };
    }
    return { action: 'sync', method, request: { ...base, group: group.name } };
  }

  if (INSTANCE_METHODS.test(method)) {
    const m = /^projects\/([^/]+)\/zones\/([^/]+)\/instances\/([^/]+)$/.exec(
      resource || str(event.subject).replace(/^compute\.googleapis\.com\//, ''),
    );
    if (m === null) return { action: 'ignore', reason: `unexpected instance resource ${resource}` };
    const [, project, zone, instance] = m;
    if (project !== gcp.project)
      return { action: 'ignore', reason: `project ${project} is not ours` };
    const covering = gcp.groups.filter(
      (g) => g.zone === zone || (g.region && zone?.startsWith(`${g.region}-`)),
    );
    if (covering.length === 0) {
      return { action: 'ignore', reason: `zone ${zone} has no configured MIG` };
    }
    // MIG instance names default to <base-instance-name>-<suffix>; name the group when it shows.
    const named = covering.find((g) => instance?.startsWith(`${g.name}-`)) ?? covering[0];
    return {
      action: 'sync',
      method,
      request: { ...base, ...(named !== undefined ? { group: named.name } : {}) },
    };
  }
  return {
    action: 'ignore',
    reason: `method ${method || '(none)'} does not change MIG membership`,
  };
}

/** `v` as a plain object, or undefined for null, lists and primitives. */
export function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** An audit-log CloudEvent as a core trigger. */
export function auditLogTrigger(event: unknown, workers: { readonly source: string }): Trigger {
  const d = decideAuditLogEvent(event, workers);
  if (d.action === 'ignore') {
    const id = asRecord(event)?.id;
    return { kind: 'ignore', reason: d.reason, ...(typeof id === 'string' ? { eventId: id } : {}) };
  }
  return { kind: 'sync', detail: d.method, request: d.request };
}
