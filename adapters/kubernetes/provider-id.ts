import type { V1Node } from '@kubernetes/client-node';
import type { Worker } from '../../core/model.js';
import { SAFE_ID } from '../../core/validate.js';
import {
  type EligibilityOptions,
  type EligibilityRule,
  internalIps,
  type NodeVerdict,
  nodeEligibility,
} from './eligibility.js';

/*
 * `spec.providerID` forms, as each cloud's cloud-controller-manager writes and
 * parses them (read at the commits below):
 *   AWS   kubernetes/cloud-provider-aws 63ec440 pkg/providers/v1/instances.go
 *         MapToAWSInstanceID: `aws:///<zone>/<id>`, `aws:////<id>`, bare `<id>`;
 *         the last path token is the id, sanity-checked `^i-[^/]*$`. Upstream
 *         also takes Fargate's `fargate-…` ids; they are no EC2 instance, never
 *         a group member and have no NodePort to dial, so here they are null.
 *   Azure kubernetes-sigs/cloud-provider-azure 7b31c76 pkg/provider/azure_vmss.go,
 *         azure_standard.go: `azure:///subscriptions/<s>/resourceGroups/<rg>/providers/
 *         Microsoft.Compute/virtualMachineScaleSets/<vmss>/virtualMachines/<n>` (n digits),
 *         or `.../Microsoft.Compute/virtualMachines/<name>` (standalone and VMSS Flex VMs);
 *         ARM ids are case-insensitive and AKS lowercases the resource group.
 *   GCE   kubernetes/cloud-provider-gcp 4e24531 providers/gce/gce_util.go:
 *         `^gce://([^/]+)/([^/]+)/([^/]+)$` = project / zone / instance name.
 * The key drops what does not identify the machine (the AWS zone) and folds
 * case where the cloud does, so a cloud source's form and the node's match.
 */

/** A canonical match key for one machine, e.g. `aws/i-0abc…`, `gce/<project>/<zone>/<name>`. */
export type ProviderKey = string;

// upstream's sanity check of the last path token ("we should not assume anything about the length").
const AWS_ID = /^i-[^/]*$/;
const AZURE_VMSS =
  /^azure:\/\/\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/virtualMachineScaleSets\/([^/]+)\/virtualMachines\/(\d+)$/i;
const AZURE_VM =
  /^azure:\/\/\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/virtualMachines\/([^/]+)$/i;
const GCE = /^gce:\/\/([^/]+)\/([^/]+)\/([^/]+)$/;

/** Parse a providerID into its match key; null for forms lbsync does not know. */
export function providerKey(providerId: string | undefined): ProviderKey | null {
  if (providerId === undefined || providerId === '') return null;
  if (providerId.startsWith('aws://') || AWS_ID.test(providerId)) {
    // As MapToAWSInstanceID: a bare id means aws:////<id>; the URL host is
    // ignored and the id is the last token of the path.
    const rest = providerId.startsWith('aws://')
      ? providerId.slice('aws://'.length)
      : `/${providerId}`;
    const slash = rest.indexOf('/');
    const path = slash < 0 ? '' : rest.slice(slash).replace(/^\/+|\/+$/g, '');
    const id = path.split('/').at(-1) ?? '';
    return id !== '' && AWS_ID.test(id) ? `aws/${id}` : null;
  }
  const vmss = AZURE_VMSS.exec(providerId);
  if (vmss !== null) return `azure/vmss/${vmss.slice(1, 5).join('/')}`.toLowerCase();
  const vm = AZURE_VM.exec(providerId);
  if (vm !== null) return `azure/vm/${vm.slice(1, 4).join('/')}`.toLowerCase();
  const gce = GCE.exec(providerId);
  if (gce !== null) return `gce/${gce[1]}/${gce[2]}/${gce[3]}`;
  return null;
}

/** Why a worker or node is (not) in the result. */
export type MembershipRule =
  | EligibilityRule
  | 'not-a-group-member'
  | 'no-node'
  | 'lifecycle-draining'
  | 'duplicate-provider-id'
  | 'no-internal-ip'
  | 'unsafe-node-name';

/** One line of the membership log: which node/worker, what became of it, and why. */
export interface MembershipDecision {
  readonly node?: string;
  readonly worker?: string;
  readonly verdict: NodeVerdict;
  readonly rule: MembershipRule;
  readonly detail: string;
  /** How the worker and node were paired. */
  readonly matchedBy?: 'provider-id' | 'internal-ip';
}

/** Workers after intersecting with the cluster and applying eligibility. */
export interface Membership {
  /** Serving and draining workers, in the input order. */
  readonly workers: readonly Worker[];
  /** Every node and every unmatched worker, with its verdict and rule. */
  readonly decisions: readonly MembershipDecision[];
  /** Group members with no Node: left out (see matchWorkers). */
  readonly withoutNode: readonly Worker[];
}

/**
 * Worker membership = the cloud group's members ∩ the cluster's nodes, with
 * each node's eligibility applied (excluded: left out; draining: weight 0).
 *
 * Pairing: by providerID key when both sides have one; by InternalIP = worker
 * address when either side has none (a node before its cloud-controller sets
 * providerID, a source that does not report it). A worker and a node with
 * different keys never pair on a shared IP: that is a reused address.
 *
 * Group members with no Node are LEFT OUT. Upstream never sees them (it only
 * lists Nodes), and a VM whose kubelet has not registered has no kube-proxy to
 * answer its NodePort, so sending it traffic only fails. Dropping many at once
 * still meets the plan's guards (minWorkers, maxRemovalPercent) like any removal.
 */
export function matchWorkers(
  workers: readonly Worker[],
  nodes: readonly V1Node[],
  options: EligibilityOptions = {},
): Membership {
  const decisions: MembershipDecision[] = [];
  const sorted = sortByName(nodes);
  const byKey = new Map<ProviderKey, V1Node>();
  const byIp = new Map<string, V1Node>();
  const duplicates = new Set<V1Node>();
  for (const node of sorted) {
    const key = providerKey(node.spec?.providerID);
    if (key !== null) {
      const first = byKey.get(key);
      if (first !== undefined) {
        duplicates.add(node);
        decisions.push({
          node: nodeName(node),
          verdict: 'excluded',
          rule: 'duplicate-provider-id',
          detail: `providerID ${node.spec?.providerID} is also on node ${nodeName(first)}`,
        });
        continue;
      }
      byKey.set(key, node);
    }
    for (const ip of internalIps(node)) if (!byIp.has(ip)) byIp.set(ip, node);
  }

  const paired = new Set<V1Node>();
  const out: Worker[] = [];
  const withoutNode: Worker[] = [];
  for (const worker of workers) {
    const wkey = providerKey(worker.providerId);
    let node = wkey === null ? undefined : byKey.get(wkey);
    let matchedBy: 'provider-id' | 'internal-ip' = 'provider-id';
    if (node === undefined) {
      const candidate = byIp.get(worker.address);
      const nkey = candidate === undefined ? null : providerKey(candidate.spec?.providerID);
      if (candidate !== undefined && (wkey === null || nkey === null)) {
        node = candidate;
        matchedBy = 'internal-ip';
      }
    }
    if (node === undefined || paired.has(node)) {
      withoutNode.push(worker);
      decisions.push({
        worker: worker.id,
        verdict: 'excluded',
        rule: 'no-node',
        detail: `no Node has providerID ${worker.providerId ?? '(none)'} or InternalIP ${worker.address}`,
      });
      continue;
    }
    paired.add(node);
    const e = nodeEligibility(node, options);
    const base = { node: nodeName(node), worker: worker.id, matchedBy };
    if (e.verdict === 'excluded') {
      decisions.push({ ...base, verdict: e.verdict, rule: e.rule, detail: e.detail });
    } else if (e.verdict === 'draining' || worker.state === 'draining') {
      out.push({ ...worker, state: 'draining' });
      const rule = e.verdict === 'draining' ? e.rule : 'lifecycle-draining';
      const detail = e.verdict === 'draining' ? e.detail : 'the cloud group drains this member';
      decisions.push({ ...base, verdict: 'draining', rule, detail });
    } else {
      out.push(worker);
      decisions.push({ ...base, verdict: 'serving', rule: e.rule, detail: e.detail });
    }
  }
  for (const node of sorted) {
    if (paired.has(node) || duplicates.has(node)) continue;
    decisions.push({
      node: nodeName(node),
      verdict: 'excluded',
      rule: 'not-a-group-member',
      detail: 'no member of the configured groups matches this node',
    });
  }
  return { workers: out, decisions, withoutNode };
}

/**
 * Workers from the cluster alone (no cloud group): one per node, id = node
 * name, address = its first InternalIP, eligibility applied. Nodes without an
 * InternalIP, or with a name HAProxy cannot carry, are left out and reported.
 */
export function workersFromNodes(
  nodes: readonly V1Node[],
  options: EligibilityOptions = {},
): Omit<Membership, 'withoutNode'> {
  const workers: Worker[] = [];
  const decisions: MembershipDecision[] = [];
  for (const node of sortByName(nodes)) {
    const name = nodeName(node);
    const address = internalIps(node)[0];
    if (!SAFE_ID.test(name)) {
      const detail = 'node name is not a safe HAProxy server name (at most 128 characters)';
      decisions.push({ node: name, verdict: 'excluded', rule: 'unsafe-node-name', detail });
      continue;
    }
    if (address === undefined) {
      const detail = 'node reports no InternalIP address';
      decisions.push({ node: name, verdict: 'excluded', rule: 'no-internal-ip', detail });
      continue;
    }
    const e = nodeEligibility(node, options);
    decisions.push({
      node: name,
      worker: name,
      verdict: e.verdict,
      rule: e.rule,
      detail: e.detail,
    });
    if (e.verdict === 'excluded') continue;
    const zone = node.metadata?.labels?.['topology.kubernetes.io/zone'];
    const providerId = node.spec?.providerID;
    workers.push({
      id: name,
      address,
      state: e.verdict,
      ...(zone !== undefined ? { zone } : {}),
      ...(providerId !== undefined && providerId !== '' ? { providerId } : {}),
    });
  }
  return { workers, decisions };
}

function nodeName(node: V1Node | undefined): string {
  return node?.metadata?.name ?? '';
}

function sortByName(nodes: readonly V1Node[]): V1Node[] {
  return [...nodes].sort((a, b) =>
    nodeName(a) < nodeName(b) ? -1 : nodeName(a) > nodeName(b) ? 1 : 0,
  );
}
