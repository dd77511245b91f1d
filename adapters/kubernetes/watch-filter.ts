import type { V1Node, V1Service } from '@kubernetes/client-node';
import { type EligibilityOptions, nodeChangeMatters, nodeEligibility } from './eligibility.js';
import { LBSYNC_FINALIZER, SOURCE_RANGES_ANNOTATION } from './services.js';

/*
 * Which cluster changes are worth a resync, for the watcher. A Node or
 * Service event only says "this may have changed"; the function then reads
 * everything again (level-triggered), so these filters only decide whether
 * to wake it, and they err on the side of waking it.
 *
 * Nodes: an update counts when upstream's node-update filter (plus lbsync's
 * additions, eligibility.ts nodeChangeMatters) says so; a node that comes or
 * goes counts unless it was excluded anyway. Heartbeats never count.
 *
 * Services: only those of lbsync's loadBalancerClass (before or after the
 * change) or carrying lbsync's finalizer, and only what servicesFromCluster
 * reads: the spec, the `lbsync.io/` and source-range annotations, the
 * deletion timestamp and the finalizers. Never `status`: lbsync writes it
 * itself after each sync, and waking the function for its own write would
 * loop. For the same reason lbsync adding its own finalizer does not count
 * (the sync that added it already ran); any other finalizer change does,
 * lbsync's finalizer removed included.
 */

/** What the filters need from the spec's `kubernetes` section. */
export interface ChangeFilterOptions extends EligibilityOptions {
  readonly loadBalancerClass: string;
}

/** A change between two versions of an object; undefined: it did not exist. */
export interface Change<T> {
  readonly old: T | undefined;
  readonly next: T | undefined;
}

/** True when a Node event can change what lbsync renders. */
export function nodeEventMatters(c: Change<V1Node>, o: ChangeFilterOptions): boolean {
  if (c.old !== undefined && c.next !== undefined) return nodeChangeMatters(c.old, c.next, o);
  const node = c.next ?? c.old;
  return node !== undefined && nodeEligibility(node, o).verdict !== 'excluded';
}

function ours(s: V1Service | undefined, o: ChangeFilterOptions): boolean {
  return s?.spec?.type === 'LoadBalancer' && s.spec.loadBalancerClass === o.loadBalancerClass;
}

function finalized(s: V1Service | undefined): boolean {
  return s?.metadata?.finalizers?.includes(LBSYNC_FINALIZER) ?? false;
}

function readAnnotations(s: V1Service): Record<string, string> {
  const all = s.metadata?.annotations ?? {};
  return Object.fromEntries(
    Object.entries(all).filter(
      ([k]) => k.startsWith('lbsync.io/') || k === SOURCE_RANGES_ANNOTATION,
    ),
  );
}

/**
 * JSON with sorted keys: a list answer (client-node models, keys in model
 * order) and a watch event (raw JSON, keys in the server's order) compare
 * equal when they say the same.
 */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x) && !(x instanceof Date)
      ? Object.fromEntries(
          Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : x,
  );
}

/** True when a Service event can change what lbsync renders or must clean up. */
export function serviceEventMatters(c: Change<V1Service>, o: ChangeFilterOptions): boolean {
  const relevant = [c.old, c.next].some((s) => ours(s, o) || finalized(s));
  if (!relevant) return false;
  if (c.old === undefined || c.next === undefined) return true;
  const { old, next } = c;
  if (canonicalJson(old.spec) !== canonicalJson(next.spec)) return true;
  if (canonicalJson(readAnnotations(old)) !== canonicalJson(readAnnotations(next))) return true;
  if ((old.metadata?.deletionTimestamp != null) !== (next.metadata?.deletionTimestamp != null)) {
    return true;
  }
  const others = (s: V1Service): string =>
    canonicalJson((s.metadata?.finalizers ?? []).filter((f) => f !== LBSYNC_FINALIZER));
  if (others(old) !== others(next)) return true;
  return finalized(old) && !finalized(next);
}
