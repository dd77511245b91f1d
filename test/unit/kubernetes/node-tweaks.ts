import type { V1Node } from '@kubernetes/client-node';
import { EXCLUDE_LABEL, TO_BE_DELETED_TAINT } from '../../../adapters/kubernetes/eligibility.js';
import { loadNodes } from '../../helpers/kubernetes-fixtures.js';

/*
 * The upstream controller test's node builders (controller_test.go makeNode and
 * tweak*), over a real EKS node fixture instead of an empty object.
 */

export type NodeTweak = (n: V1Node) => void;

const base = loadNodes('node-eks.yaml')[0] as V1Node;

/** A fresh copy of the fixture node with the tweaks applied, in order. */
export function makeNode(...tweaks: NodeTweak[]): V1Node {
  const n = structuredClone(base);
  for (const t of tweaks) t(n);
  return n;
}

export const tweakSetLabel =
  (key: string, value: string): NodeTweak =>
  (n) => {
    n.metadata = { ...n.metadata, labels: { ...n.metadata?.labels, [key]: value } };
  };

export const tweakExclude = (value: string): NodeTweak => tweakSetLabel(EXCLUDE_LABEL, value);

export const tweakAddTaint =
  (key: string, effect = 'NoSchedule', value?: string): NodeTweak =>
  (n) => {
    n.spec = {
      ...n.spec,
      taints: [...(n.spec?.taints ?? []), { key, effect, ...(value ? { value } : {}) }],
    };
  };

/** The cluster autoscaler's taint, with the Unix time it sets as the value. */
export const tweakToBeDeleted: NodeTweak = tweakAddTaint(
  TO_BE_DELETED_TAINT,
  'NoSchedule',
  '1764583452',
);

export const tweakSetCondition =
  (type: string, status: 'True' | 'False' | 'Unknown'): NodeTweak =>
  (n) => {
    const conditions = (n.status?.conditions ?? []).filter((c) => c.type !== type);
    n.status = { ...n.status, conditions: [...conditions, { type, status }] };
  };

export const tweakSetReady = (ready: boolean): NodeTweak =>
  tweakSetCondition('Ready', ready ? 'True' : 'False');

export const tweakUnsetCondition =
  (type: string): NodeTweak =>
  (n) => {
    n.status = {
      ...n.status,
      conditions: (n.status?.conditions ?? []).filter((c) => c.type !== type),
    };
  };

export const tweakDeleted: NodeTweak = (n) => {
  n.metadata = { ...n.metadata, deletionTimestamp: new Date('2026-12-01T10:05:00Z') };
};

export const tweakProviderID =
  (id: string): NodeTweak =>
  (n) => {
    n.spec = { ...n.spec, providerID: id };
  };

export const tweakInternalIp =
  (ip: string): NodeTweak =>
  (n) => {
    const others = (n.status?.addresses ?? []).filter((a) => a.type !== 'InternalIP');
    n.status = { ...n.status, addresses: [{ type: 'InternalIP', address: ip }, ...others] };
  };

/** A kubelet heartbeat: new resourceVersion and condition heartbeat times, nothing else. */
export const tweakHeartbeat: NodeTweak = (n) => {
  n.metadata = { ...n.metadata, resourceVersion: '4812007' };
  n.status = {
    ...n.status,
    conditions: (n.status?.conditions ?? []).map((c) => ({
      ...c,
      lastHeartbeatTime: new Date('2026-12-01T10:09:12Z'),
    })),
  };
};
