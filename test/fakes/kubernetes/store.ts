/*
 * The fake's etcd: every object of every resource, one global
 * resourceVersion counter, and a change log since the last compaction. The
 * log gives lists with `continue` a consistent snapshot (as etcd does) and
 * lets watches resume from a resourceVersion; a resourceVersion older than
 * the compaction point is gone (410), as on a real cluster.
 */

/** ObjectMeta as the fake keeps it. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  generateName?: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  [key: string]: unknown;
}

/** Any object the fake stores (Node, Service, Event, Namespace). */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** One change, as a watch reports it. `prev` is what it replaced (for snapshots). */
export interface Change {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly resource: string;
  readonly key: string;
  readonly object: KubeObject;
  readonly prev?: KubeObject;
}

/** A resourceVersion older than the compaction point. */
export class CompactedError extends Error {
  public constructor(
    public readonly requested: number,
    public readonly oldest: number,
  ) {
    super(`too old resource version: ${requested} (${oldest})`);
    this.name = 'CompactedError';
  }
}

/** Storage key of an object: `namespace/name`, or `name` when cluster-scoped. */
export function storageKey(namespace: string | undefined, name: string): string {
  return namespace === undefined ? name : `${namespace}/${name}`;
}

/** Versioned object storage with a bounded change log. */
export class Store {
  private rv: number;
  private compactedAt: number;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private log: Change[] = [];
  private readonly listeners = new Set<(c: Change) => void>();

  public constructor(
    private readonly historyLimit: number,
    startResourceVersion = 1000,
  ) {
    this.rv = startResourceVersion;
    this.compactedAt = startResourceVersion;
  }

  /** The newest resourceVersion. */
  public get resourceVersion(): number {
    return this.rv;
  }

  /** The oldest resourceVersion lists and watches can still start from. */
  public get oldestResourceVersion(): number {
    return this.compactedAt;
  }

  private table(resource: string): Map<string, KubeObject> {
    let t = this.objects.get(resource);
    if (t === undefined) {
      t = new Map();
      this.objects.set(resource, t);
    }
    return t;
  }

  /** A copy of one object. */
  public get(resource: string, key: string): KubeObject | undefined {
    const o = this.table(resource).get(key);
    return o === undefined ? undefined : structuredClone(o);
  }

  /** Copies of every object (the stored ones with `clone: false`), sorted by key, as of `atRv` (default: now). */
  public list(
    resource: string,
    atRv = this.rv,
    { clone = true }: { readonly clone?: boolean } = {},
  ): { key: string; object: KubeObject }[] {
    if (atRv < this.compactedAt) throw new CompactedError(atRv, this.compactedAt);
    const state = new Map(this.table(resource));
    for (let i = this.log.length - 1; i >= 0; i--) {
      const c = this.log[i];
      if (c === undefined || c.rv <= atRv) break;
      if (c.resource !== resource) continue;
      if (c.prev === undefined) state.delete(c.key);
      else state.set(c.key, c.prev);
    }
    // clone: false hands out the stored objects, for a caller that copies only what it keeps.
    return [...state.keys()].sort().map((key) => {
      const object = state.get(key) as KubeObject;
      return { key, object: clone ? structuredClone(object) : object };
    });
  }

  /** Store a new object; stamps the next resourceVersion. */
  public create(resource: string, key: string, obj: KubeObject): KubeObject {
    return this.write(resource, key, obj, 'ADDED');
  }

  /** Replace an object; stamps the next resourceVersion. */
  public update(resource: string, key: string, obj: KubeObject): KubeObject {
    return this.write(resource, key, obj, 'MODIFIED');
  }

  /** Remove an object; the DELETED change carries it with a new resourceVersion. */
  public delete(resource: string, key: string): KubeObject | undefined {
    const cur = this.table(resource).get(key);
    if (cur === undefined) return undefined;
    return this.write(resource, key, cur, 'DELETED');
  }

  private write(resource: string, key: string, obj: KubeObject, type: Change['type']): KubeObject {
    const t = this.table(resource);
    const prev = t.get(key);
    this.rv++;
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(this.rv);
    if (type === 'DELETED') t.delete(key);
    else t.set(key, stored);
    const change: Change = {
      rv: this.rv,
      type,
      resource,
      key,
      object: stored,
      ...(prev === undefined ? {} : { prev }),
    };
    this.log.push(change);
    if (this.log.length > this.historyLimit) {
      const dropped = this.log.splice(0, this.log.length - this.historyLimit);
      this.compactedAt = dropped[dropped.length - 1]?.rv ?? this.compactedAt;
    }
    for (const l of this.listeners) l(change);
    return structuredClone(stored);
  }

  /** Changes of `resource` after `rv`, oldest first. */
  public changesSince(resource: string, rv: number): Change[] {
    if (rv < this.compactedAt) throw new CompactedError(rv, this.compactedAt);
    return this.log.filter((c) => c.rv > rv && c.resource === resource);
  }

  /** Be told of every change from now on; returns the unsubscribe function. */
  public subscribe(listener: (c: Change) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Forget history up to `rv` (default: all of it), as etcd compaction does. */
  public compact(rv = this.rv): void {
    this.log = this.log.filter((c) => c.rv > rv);
    this.compactedAt = Math.max(this.compactedAt, rv);
  }
}
