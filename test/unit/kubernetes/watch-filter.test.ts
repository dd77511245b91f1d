import type { V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { LBSYNC_FINALIZER } from '../../../adapters/kubernetes/services.js';
import {
  canonicalJson,
  nodeEventMatters,
  serviceEventMatters,
} from '../../../adapters/kubernetes/watch-filter.js';
import { loadServices, named } from '../../helpers/kubernetes-fixtures.js';
import { makeNode, tweakExclude, tweakHeartbeat, tweakToBeDeleted } from './node-tweaks.js';

const O = { loadBalancerClass: 'lbsync.io/haproxy' } as const;
const web = named(loadServices('services.yaml'), 'default/web');
const svc = (...tweaks: ((s: V1Service) => void)[]): V1Service => {
  const s = structuredClone(web);
  for (const t of tweaks) t(s);
  return s;
};
const status = (ip: string) => (s: V1Service) => {
  s.status = { loadBalancer: { ingress: [{ ip, ipMode: 'Proxy' }] } };
};
const finalizers =
  (...f: string[]) =>
  (s: V1Service) => {
    s.metadata = { ...s.metadata, finalizers: f };
  };
const annotate = (k: string, v: string) => (s: V1Service) => {
  s.metadata = { ...s.metadata, annotations: { ...s.metadata?.annotations, [k]: v } };
};
const bump = (s: V1Service) => {
  s.metadata = { ...s.metadata, resourceVersion: String(Number(s.metadata?.resourceVersion) + 1) };
};
const otherClass = (s: V1Service) => {
  s.spec = { ...s.spec, loadBalancerClass: 'example.com/other' };
};

describe('nodeEventMatters', () => {
  it.each([
    ['a heartbeat', makeNode(), makeNode(tweakHeartbeat), false],
    ['the exclude label', makeNode(), makeNode(tweakExclude('true')), true],
    ["the autoscaler's taint", makeNode(), makeNode(tweakToBeDeleted), true],
  ])('an update: %s -> %s', (_name, old, next, expected) => {
    expect(nodeEventMatters({ old, next }, O)).toBe(expected);
  });

  it('counts a node that joins or leaves, unless it was excluded anyway', () => {
    expect(nodeEventMatters({ old: undefined, next: makeNode() }, O)).toBe(true);
    expect(nodeEventMatters({ old: makeNode(), next: undefined }, O)).toBe(true);
    expect(nodeEventMatters({ old: undefined, next: makeNode(tweakExclude('')) }, O)).toBe(false);
    expect(nodeEventMatters({ old: makeNode(tweakExclude('')), next: undefined }, O)).toBe(false);
  });
});

describe('serviceEventMatters', () => {
  const rows: [string, V1Service | undefined, V1Service | undefined, boolean][] = [
    ['a new Service of our class', undefined, svc(), true],
    ['a Service of our class deleted', svc(), undefined, true],
    ['a Service of another class added', undefined, svc(otherClass, finalizers()), false],
    [
      'another class, changed',
      svc(otherClass, finalizers()),
      svc(otherClass, finalizers(), annotate('lbsync.io/mode', 'http')),
      false,
    ],
    ['moved to another class (cleanup due)', svc(), svc(otherClass), true],
    ['moved into our class', svc(otherClass, finalizers()), svc(finalizers()), true],
    ['lbsync wrote the status', svc(), svc(status('10.0.0.10'), bump), false],
    [
      'lbsync added its finalizer',
      svc(finalizers()),
      svc(finalizers(LBSYNC_FINALIZER), bump),
      false,
    ],
    ['lbsync finalizer removed', svc(), svc(finalizers(), bump), true],
    ['another finalizer added', svc(), svc(finalizers(LBSYNC_FINALIZER, 'example.com/x')), true],
    [
      'being deleted',
      svc(),
      svc((s) => {
        s.metadata = { ...s.metadata, deletionTimestamp: new Date('2026-12-01T00:00:00Z') };
      }),
      true,
    ],
    [
      'a port changed',
      svc(),
      svc((s) => {
        s.spec = { ...s.spec, ports: [{ port: 81, nodePort: 30081, protocol: 'TCP' }] };
      }),
      true,
    ],
    ['an lbsync.io/ annotation', svc(), svc(annotate('lbsync.io/timeout-server', '60s')), true],
    ['an unrelated annotation', svc(), svc(annotate('example.com/owner', 'team-a')), false],
    [
      'a label',
      svc(),
      svc((s) => {
        s.metadata = { ...s.metadata, labels: { team: 'a' } };
      }),
      false,
    ],
  ];
  it.each(rows)('%s', (_name, old, next, expected) => {
    expect(serviceEventMatters({ old, next }, O)).toBe(expected);
  });

  it('reads a list answer and a watch event of the same Service as equal', () => {
    // Prepare: the same spec with keys in another order and an unset field spelt out.
    const raw = svc();
    const model = svc((s) => {
      const { ports, type, ...rest } = s.spec ?? {};
      s.spec = { externalIPs: undefined, ports, type, ...rest };
    });
    // Assess
    expect(canonicalJson(model.spec)).toBe(canonicalJson(raw.spec));
    expect(serviceEventMatters({ old: model, next: raw }, O)).toBe(false);
  });
});
