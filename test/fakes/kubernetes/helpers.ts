import { type ResourceApi, resourceDef, rfc3339 } from './handlers.js';
import {
  type NodeInit,
  nodeObject,
  readyCondition,
  type ServiceInit,
  serviceObject,
  type Taint,
} from './objects.js';
import type { ResourceDef } from './resources.js';
import type { KubeObject, Store } from './store.js';
import type { Watches } from './watch.js';

/*
 * How tests seed and change the fake cluster: through the same validation
 * and storage as API writes, so every change bumps the resourceVersion and
 * reaches open watches, as a kubelet's or a user's change would.
 */

function def(name: string): ResourceDef {
  const d = resourceDef(name);
  if (d === undefined) throw new Error(`no resource ${name}`);
  return d;
}

type Spec = { taints?: Taint[]; [k: string]: unknown };
type Status = { conditions?: Record<string, string>[]; [k: string]: unknown };

/** Cluster state as tests see and change it. */
export class ClusterObjects {
  public constructor(
    private readonly api: ResourceApi,
    private readonly store: Store,
    private readonly watches: Watches,
  ) {}

  /** Add a namespace (no-op if it exists). */
  public addNamespace(name: string): void {
    if (this.store.get('namespaces', name) === undefined)
      this.api.create(def('namespaces'), undefined, { metadata: { name } });
  }

  /** Register a node, as its kubelet would. */
  public addNode(init: NodeInit): KubeObject {
    return this.api.create(def('nodes'), undefined, nodeObject(init), true);
  }

  /** A copy of a node, or undefined. */
  public node(name: string): KubeObject | undefined {
    return this.store.get('nodes', name);
  }

  /** Copies of every node, by name. */
  public nodes(): KubeObject[] {
    return this.store.list('nodes').map((e) => e.object);
  }

  /** Change a node in place (spec, status and metadata alike): one MODIFIED event. */
  public updateNode(name: string, mutate: (node: KubeObject) => void): KubeObject {
    return this.api.mutate(def('nodes'), undefined, name, mutate);
  }

  /** Set (or with null, remove) a label. */
  public labelNode(name: string, key: string, value: string | null): KubeObject {
    return this.updateNode(name, (n) => {
      const labels = { ...n.metadata.labels };
      if (value === null) delete labels[key];
      else labels[key] = value;
      n.metadata.labels = labels;
    });
  }

  /** Add a taint (replacing one with the same key and effect). */
  public taintNode(name: string, taint: Taint): KubeObject {
    return this.updateNode(name, (n) => {
      const spec = (n.spec ?? {}) as Spec;
      const rest = (spec.taints ?? []).filter(
        (t) => !(t.key === taint.key && t.effect === taint.effect),
      );
      n.spec = { ...spec, taints: [...rest, { ...taint }] };
    });
  }

  /** Remove every taint with `key`. */
  public untaintNode(name: string, key: string): KubeObject {
    return this.updateNode(name, (n) => {
      const spec = (n.spec ?? {}) as Spec;
      const taints = (spec.taints ?? []).filter((t) => t.key !== key);
      const { taints: _, ...rest } = spec;
      n.spec = taints.length === 0 ? rest : { ...rest, taints };
    });
  }

  /** Set the Ready condition. */
  public setNodeReady(name: string, ready: boolean | 'Unknown'): KubeObject {
    return this.updateNode(name, (n) => {
      const status = (n.status ?? {}) as Status;
      const others = (status.conditions ?? []).filter((c) => c.type !== 'Ready');
      n.status = { ...status, conditions: [...others, readyCondition(ready)] };
    });
  }

  /** Bump the Ready condition's heartbeat only: a change that matters to no load balancer. */
  public heartbeat(name: string): KubeObject {
    return this.updateNode(name, (n) => {
      for (const c of ((n.status ?? {}) as Status).conditions ?? []) {
        c.lastHeartbeatTime = rfc3339(
          Math.max(Date.now(), Date.parse(c.lastHeartbeatTime ?? '') + 1000),
        );
      }
    });
  }

  /** Delete a node (finalizers, if any, hold it with a deletionTimestamp). */
  public deleteNode(name: string): void {
    this.api.delete(def('nodes'), undefined, name, undefined);
  }

  /** Create a Service (its namespace too), with defaults allocated as the apiserver would. */
  public addService(init: ServiceInit): KubeObject {
    const ns = init.namespace ?? 'default';
    this.addNamespace(ns);
    return this.api.create(def('services'), ns, serviceObject(init), true);
  }

  /** A copy of a Service, or undefined. */
  public service(namespace: string, name: string): KubeObject | undefined {
    return this.store.get('services', `${namespace}/${name}`);
  }

  /** Copies of every Service, by namespace/name. */
  public services(): KubeObject[] {
    return this.store.list('services').map((e) => e.object);
  }

  /** Change a Service in place: one MODIFIED event. */
  public updateService(
    namespace: string,
    name: string,
    mutate: (svc: KubeObject) => void,
  ): KubeObject {
    return this.api.mutate(def('services'), namespace, name, mutate);
  }

  /** Delete a Service as `kubectl delete` would: finalizers hold it until removed. */
  public deleteService(namespace: string, name: string): void {
    this.api.delete(def('services'), namespace, name, undefined);
  }

  /** Events (all, or of one namespace), oldest first. */
  public events(namespace?: string): KubeObject[] {
    return this.store
      .list('events')
      .map((e) => e.object)
      .filter((e) => namespace === undefined || e.metadata.namespace === namespace)
      .sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion));
  }

  /** Watches currently open. */
  public get openWatches(): number {
    return this.watches.open;
  }
}
