import { isIP } from 'node:net';
import type { SmpSchema } from './patch.js';
import type { KubeObject } from './store.js';

/*
 * The core/v1 resources the fake serves, with the defaulting and validation
 * the apiserver applies to the fields lbsync and kubectl touch: Services get
 * a clusterIP, nodePorts and healthCheckNodePort allocated, their status
 * ingress is validated (ipMode needs an ip), and fields upstream makes
 * immutable stay so. `smp` lists the merging lists (patchStrategy=merge tags).
 */

/** One field error, as in a 422 Status's causes. */
export interface Cause {
  readonly field: string;
  readonly message: string;
  readonly reason?: string;
}

/** What defaulting may need to know about the rest of the cluster. */
export interface Cluster {
  /** Every nodePort (and healthCheckNodePort) in use, except by `exceptKey`. */
  usedNodePorts(exceptKey?: string): Set<number>;
  nextClusterIP(): string;
}

/** A resource the fake serves under /api/v1. */
export interface ResourceDef {
  readonly name: string;
  readonly singularName: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  readonly subresources: readonly string[];
  readonly smp: SmpSchema;
  /** Paths a fieldSelector may use. */
  readonly fields: readonly string[];
  /** Fill defaults on create (mutates), and return what is invalid. */
  readonly create?: (obj: KubeObject, cluster: Cluster, key: string) => Cause[];
  /** Check an update (old -> next, both full objects); may fill defaults on next. */
  readonly update?: (old: KubeObject, next: KubeObject, cluster: Cluster, key: string) => Cause[];
}

const META_SMP: SmpSchema = {
  'metadata.finalizers': {},
  'metadata.ownerReferences': { mergeKey: 'uid' },
};

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};
const arr = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);

function allocate(used: Set<number>): number {
  for (let p = 30000; p <= 32767; p++) if (!used.has(p)) return p;
  throw new Error('no nodePort left');
}

function defaultService(s: KubeObject, cluster: Cluster, key: string, old?: KubeObject): Cause[] {
  const spec = obj(s.spec);
  s.spec = spec;
  spec.type ??= 'ClusterIP';
  spec.sessionAffinity ??= 'None';
  const causes: Cause[] = [];
  const type = spec.type as string;
  if (!['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'].includes(type))
    causes.push({
      field: 'spec.type',
      message: `Unsupported value: "${type}"`,
      reason: 'FieldValueNotSupported',
    });
  if (type !== 'ExternalName') {
    spec.clusterIP ??= obj(old?.spec).clusterIP ?? cluster.nextClusterIP();
    spec.clusterIPs ??= [spec.clusterIP];
    spec.ipFamilies ??= ['IPv4'];
    spec.ipFamilyPolicy ??= 'SingleStack';
    spec.internalTrafficPolicy ??= 'Cluster';
  }
  const external = type === 'NodePort' || type === 'LoadBalancer';
  if (external) spec.externalTrafficPolicy ??= 'Cluster';
  if (type === 'LoadBalancer') spec.allocateLoadBalancerNodePorts ??= true;
  if (type !== 'LoadBalancer' && spec.loadBalancerClass !== undefined)
    causes.push({
      field: 'spec.loadBalancerClass',
      message: "Forbidden: may only be used when `type` is 'LoadBalancer'",
      reason: 'FieldValueForbidden',
    });
  const used = cluster.usedNodePorts(key);
  const ports = arr(spec.ports);
  if (ports.length === 0 && type !== 'ExternalName')
    causes.push({ field: 'spec.ports', message: 'Required value', reason: 'FieldValueRequired' });
  ports.forEach((p, i) => {
    p.protocol ??= 'TCP';
    p.targetPort ??= p.port;
    const port = p.port;
    if (typeof port !== 'number' || port < 1 || port > 65535)
      causes.push({
        field: `spec.ports[${i}].port`,
        message: `Invalid value: ${String(port)}: must be between 1 and 65535, inclusive`,
      });
    if (!['TCP', 'UDP', 'SCTP'].includes(p.protocol as string))
      causes.push({
        field: `spec.ports[${i}].protocol`,
        message: `Unsupported value: "${String(p.protocol)}"`,
        reason: 'FieldValueNotSupported',
      });
    if (external) {
      if (p.nodePort === undefined) {
        p.nodePort = allocate(used);
      } else if (typeof p.nodePort !== 'number' || p.nodePort < 30000 || p.nodePort > 32767) {
        causes.push({
          field: `spec.ports[${i}].nodePort`,
          message: `Invalid value: ${String(p.nodePort)}: provided port is not in the valid range. The range of valid ports is 30000-32767`,
        });
      } else if (used.has(p.nodePort)) {
        causes.push({
          field: `spec.ports[${i}].nodePort`,
          message: `Invalid value: ${p.nodePort}: provided port is already allocated`,
        });
      }
      used.add(p.nodePort as number);
    } else delete p.nodePort;
  });
  if (type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local') {
    spec.healthCheckNodePort ??= allocate(used);
  } else if (spec.healthCheckNodePort !== undefined) {
    delete spec.healthCheckNodePort;
  }
  return [...causes, ...validateIngress(s)];
}

function validateIngress(s: KubeObject): Cause[] {
  const ingress = arr(obj(obj(s.status).loadBalancer).ingress);
  const causes: Cause[] = [];
  ingress.forEach((ing, i) => {
    const f = `status.loadBalancer.ingress[${i}]`;
    if (ing.ip !== undefined && isIP(String(ing.ip)) === 0)
      causes.push({
        field: `${f}.ip`,
        message: `Invalid value: "${String(ing.ip)}": must be a valid IP address`,
      });
    if (ing.ip === undefined && ing.ipMode !== undefined)
      causes.push({
        field: `${f}.ipMode`,
        message: 'Forbidden: may not be specified when `ip` is not set',
        reason: 'FieldValueForbidden',
      });
    else if (ing.ip !== undefined && ing.ipMode === undefined) ing.ipMode = 'VIP';
    if (ing.ipMode !== undefined && !['VIP', 'Proxy'].includes(String(ing.ipMode)))
      causes.push({
        field: `${f}.ipMode`,
        message: `Unsupported value: "${String(ing.ipMode)}": supported values: "Proxy", "VIP"`,
        reason: 'FieldValueNotSupported',
      });
  });
  return causes;
}

function immutable(old: unknown, next: unknown, field: string, message: string): Cause[] {
  return old !== undefined && JSON.stringify(old) !== JSON.stringify(next)
    ? [{ field, message: `Invalid value: ${JSON.stringify(next ?? null)}: ${message}` }]
    : [];
}

/** Nodes, Services, Events and Namespaces, by resource name. */
export const RESOURCES: ReadonlyMap<string, ResourceDef> = new Map<string, ResourceDef>([
  [
    'nodes',
    {
      name: 'nodes',
      singularName: 'node',
      kind: 'Node',
      namespaced: false,
      shortNames: ['no'],
      subresources: ['status'],
      smp: {
        ...META_SMP,
        'status.conditions': { mergeKey: 'type' },
        'status.addresses': { mergeKey: 'type' },
      },
      fields: ['metadata.name', 'spec.unschedulable'],
      update: (old, next) =>
        obj(old.spec).providerID === undefined || obj(old.spec).providerID === ''
          ? []
          : immutable(
              obj(old.spec).providerID,
              obj(next.spec).providerID,
              'spec.providerID',
              'node updates may not change providerID except from "" to valid',
            ),
    },
  ],
  [
    'services',
    {
      name: 'services',
      singularName: 'service',
      kind: 'Service',
      namespaced: true,
      shortNames: ['svc'],
      subresources: ['status'],
      smp: {
        ...META_SMP,
        'spec.ports': { mergeKey: 'port' },
        'status.conditions': { mergeKey: 'type' },
      },
      fields: ['metadata.name', 'metadata.namespace'],
      create: (s, cluster, key) => defaultService(s, cluster, key),
      update: (old, next, cluster, key) => [
        ...immutable(
          obj(old.spec).loadBalancerClass,
          obj(next.spec).loadBalancerClass,
          'spec.loadBalancerClass',
          'may not change once set',
        ),
        ...immutable(
          obj(old.spec).clusterIP,
          obj(next.spec).clusterIP ?? obj(old.spec).clusterIP,
          'spec.clusterIP',
          'field is immutable',
        ),
        ...defaultService(next, cluster, key, old),
      ],
    },
  ],
  [
    'events',
    {
      name: 'events',
      singularName: 'event',
      kind: 'Event',
      namespaced: true,
      shortNames: ['ev'],
      subresources: [],
      smp: META_SMP,
      fields: [
        'metadata.name',
        'metadata.namespace',
        'involvedObject.kind',
        'involvedObject.name',
        'involvedObject.namespace',
        'involvedObject.uid',
        'reason',
        'type',
        'source',
        'reportingComponent',
      ],
      create: (e) => {
        const causes: Cause[] = [];
        const io = obj(e.involvedObject);
        if (io.name === undefined)
          causes.push({
            field: 'involvedObject.name',
            message: 'Required value',
            reason: 'FieldValueRequired',
          });
        if (io.namespace !== undefined && io.namespace !== e.metadata.namespace)
          causes.push({
            field: 'involvedObject.namespace',
            message: `Invalid value: "${String(io.namespace)}": does not match event.namespace`,
          });
        if (e.type !== undefined && !['Normal', 'Warning'].includes(String(e.type)))
          causes.push({
            field: 'type',
            message: `Unsupported value: "${String(e.type)}": supported values: "Normal", "Warning"`,
            reason: 'FieldValueNotSupported',
          });
        return causes;
      },
    },
  ],
  [
    'namespaces',
    {
      name: 'namespaces',
      singularName: 'namespace',
      kind: 'Namespace',
      namespaced: false,
      shortNames: ['ns'],
      subresources: ['status'],
      smp: META_SMP,
      fields: ['metadata.name', 'status.phase'],
      create: (n) => {
        n.spec = { finalizers: ['kubernetes'], ...obj(n.spec) };
        n.status = { phase: 'Active' };
        n.metadata.labels = {
          'kubernetes.io/metadata.name': n.metadata.name,
          ...n.metadata.labels,
        };
        return [];
      },
    },
  ],
]);
