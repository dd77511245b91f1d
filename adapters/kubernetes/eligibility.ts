import type { V1Node } from '@kubernetes/client-node';

/*
 * Which nodes may take load-balancer traffic, decided exactly as the upstream
 * service controller decides it. Read from k8s.io/cloud-provider
 * controllers/service/controller.go at commit 46666112f47d004d76fb91406104f94e6a504b2f
 * (2026-06-12):
 *
 *   stableNodeSetPredicates = { nodeNotDeletedPredicate, nodeIncludedPredicate,
 *                               nodeUnTaintedPredicate }      // used by ensureLoadBalancer
 *
 *   func nodeIncludedPredicate(node *v1.Node) bool {
 *     v, hasExcludeBalancerLabel := node.Labels[v1.LabelNodeExcludeBalancers]
 *     if hasExcludeBalancerLabel {
 *       v, err := strconv.ParseBool(v)
 *       if err != nil { return false }
 *       return !v
 *     }
 *     return !hasExcludeBalancerLabel
 *   }
 *   func nodeUnTaintedPredicate(node) bool  // false if any taint.Key == "ToBeDeletedByClusterAutoscaler"
 *   func nodeNotDeletedPredicate(node) bool // node.DeletionTimestamp.IsZero()
 *
 * nodeReadyPredicate survives only in allNodePredicates, which no sync path
 * uses since StableLoadBalancerNodeSet went GA (the gate was removed in 1.32):
 * readiness no longer decides; the LB's health check does.
 *
 * The exclude label: the issue says its value is "parsed as a boolean". That is
 * true only since cloud-provider commit e0d9f9a (Kubernetes 1.34), and only
 * half the story: a value Go's strconv.ParseBool rejects — the empty string
 * most people set, "yes", "no", "on" — EXCLUDES the node, like "true" does.
 * Only "0", "f", "F", "false", "FALSE", "False" keep it in. Before 1.34 the
 * label excluded on presence alone, whatever its value; we follow current
 * upstream (the controller's Test_respectsPredicates rows are our table test).
 *
 * lbsync's one deliberate difference: upstream drops a ToBeDeletedByClusterAutoscaler
 * node outright (its own comment admits connections then "do not connection
 * drain"); lbsync keeps it with weight 0 as `draining`, so in-flight sessions
 * finish before the autoscaler deletes the VM.
 */

/** The label that takes a node out of external load balancers (v1.LabelNodeExcludeBalancers). */
export const EXCLUDE_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';
/** The taint the cluster autoscaler sets before it deletes a node. */
export const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

/** What lbsync does with a node. */
export type NodeVerdict = 'serving' | 'draining' | 'excluded';

/** Which rule decided; stable identifiers for logs and tests. */
export type EligibilityRule =
  | 'eligible'
  | 'eligibility-off'
  | 'deletion-timestamp'
  | 'exclude-label'
  | 'to-be-deleted-taint';

/** A node's verdict and the rule behind it. */
export interface NodeEligibility {
  readonly verdict: NodeVerdict;
  readonly rule: EligibilityRule;
  /** One human line for the log, e.g. `label node.kubernetes.io/exclude-...="true"`. */
  readonly detail: string;
}

/** The spec's switches (`kubernetes.nodeEligibility`, `kubernetes.ignoreExcludeLabel`). */
export interface EligibilityOptions {
  /** false: every node serves (no label, taint or deletion rule applies). Default true. */
  readonly nodeEligibility?: boolean;
  /** true: the exclude label is ignored, as MetalLB's switch does. Default false. */
  readonly ignoreExcludeLabel?: boolean;
}

const ELIGIBLE: NodeEligibility = { verdict: 'serving', rule: 'eligible', detail: 'eligible' };

/**
 * Go's strconv.ParseBool, which upstream applies to the exclude label's value:
 * undefined for anything it would reject.
 */
export function parseGoBool(value: string): boolean | undefined {
  switch (value) {
    case '1':
    case 't':
    case 'T':
    case 'true':
    case 'TRUE':
    case 'True':
      return true;
    case '0':
    case 'f':
    case 'F':
    case 'false':
    case 'FALSE':
    case 'False':
      return false;
    default:
      return undefined;
  }
}

/** upstream nodeIncludedPredicate: false when the exclude label is present and not a Go "false". */
export function nodeIncluded(node: V1Node): boolean {
  const labels = node.metadata?.labels ?? {};
  if (!Object.hasOwn(labels, EXCLUDE_LABEL)) return true;
  // ParseBool error => excluded; true => excluded; false => included.
  return parseGoBool(labels[EXCLUDE_LABEL] ?? '') === false;
}

/** Decide one node: deletion first, then the exclude label, then the autoscaler's taint. */
export function nodeEligibility(node: V1Node, options: EligibilityOptions = {}): NodeEligibility {
  if (options.nodeEligibility === false) {
    return {
      verdict: 'serving',
      rule: 'eligibility-off',
      detail: 'kubernetes.nodeEligibility is false',
    };
  }
  // Precedence among the three upstream predicates is ours to choose (upstream
  // ANDs them); the strongest verdict wins, so a node both labelled and
  // tainted is excluded, not drained.
  if (node.metadata?.deletionTimestamp != null) {
    return { verdict: 'excluded', rule: 'deletion-timestamp', detail: 'node is being deleted' };
  }
  if (!options.ignoreExcludeLabel && !nodeIncluded(node)) {
    const value = node.metadata?.labels?.[EXCLUDE_LABEL] ?? '';
    return {
      verdict: 'excluded',
      rule: 'exclude-label',
      detail: `label ${EXCLUDE_LABEL}=${JSON.stringify(value)}`,
    };
  }
  const taint = (node.spec?.taints ?? []).find((t) => t.key === TO_BE_DELETED_TAINT);
  if (taint !== undefined) {
    return {
      verdict: 'draining',
      rule: 'to-be-deleted-taint',
      detail: `taint ${TO_BE_DELETED_TAINT}:${taint.effect} (cluster autoscaler scale-in)`,
    };
  }
  return ELIGIBLE;
}

/** The node's InternalIP addresses, in the order the kubelet reported them. */
export function internalIps(node: V1Node): readonly string[] {
  return (node.status?.addresses ?? [])
    .filter((a) => a.type === 'InternalIP')
    .map((a) => a.address);
}

/**
 * The node-update filter for a watcher: true when a Node update can change
 * what lbsync renders, false for heartbeats and unrelated edits.
 *
 * Upstream shouldSyncUpdatedNode (same commit) syncs on exactly two things: a
 * flip of nodeIncludedPredicate, and any change of spec.providerID. Deletion,
 * readiness and the ToBeDeleted taint do not trigger it (the taint is left for
 * the next sync "to not connection drain"). lbsync additionally reacts to:
 *   - the ToBeDeleted taint and deletionTimestamp, because they change the
 *     verdict here (draining / excluded) and drain is the point of the taint;
 *   - the InternalIP set, because HAProxy dials node addresses, where a cloud
 *     LB targets instances.
 * Readiness does not matter, as upstream: it decides nothing, the health check does.
 */
export function nodeChangeMatters(
  oldNode: V1Node,
  newNode: V1Node,
  options: EligibilityOptions = {},
): boolean {
  if (nodeEligibility(oldNode, options).verdict !== nodeEligibility(newNode, options).verdict) {
    return true;
  }
  if ((oldNode.spec?.providerID ?? '') !== (newNode.spec?.providerID ?? '')) return true;
  const a = internalIps(oldNode);
  const b = internalIps(newNode);
  return a.length !== b.length || a.some((ip, i) => ip !== b[i]);
}
