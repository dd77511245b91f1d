import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { listPage, queryMatcher } from './listing.js';
import { type Json, jsonPatch, mergePatch, PatchError, strategicMerge } from './patch.js';
import { type Cause, type Cluster, RESOURCES, type ResourceDef } from './resources.js';
import type { Matcher } from './selectors.js';
import * as S from './status.js';
import { ApiFailure } from './status.js';
import { type KubeObject, type Store, storageKey } from './store.js';

export { ApiFailure };

/*
 * The REST semantics of /api/v1 resources: list (see listing.ts), get, create, update (PUT, optimistic concurrency), the
 * three PATCH types, DELETE (finalizers hold an object, with a
 * deletionTimestamp, until they are gone). `/status` changes only status;
 * the main resource never changes status. No-op writes keep the
 * resourceVersion, as upstream.
 */

/** RFC 3339 at second precision, as metav1.Time marshals. */
export function rfc3339(ms = Date.now()): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const META_FROM_SERVER = [
  'uid',
  'name',
  'namespace',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'generateName',
] as const;

/** Serves the REST verbs over one Store. */
export class ResourceApi {
  private nextIp = 10;

  public constructor(private readonly store: Store) {}

  /** Defaulting's view of the cluster. */
  public readonly cluster: Cluster = {
    usedNodePorts: (exceptKey) => {
      const used = new Set<number>();
      for (const { key, object } of this.store.list('services')) {
        if (key === exceptKey) continue;
        const spec = (object.spec ?? {}) as {
          ports?: { nodePort?: number }[];
          healthCheckNodePort?: number;
        };
        for (const p of spec.ports ?? []) if (p.nodePort !== undefined) used.add(p.nodePort);
        if (spec.healthCheckNodePort !== undefined) used.add(spec.healthCheckNodePort);
      }
      return used;
    },
    nextClusterIP: () => {
      const n = this.nextIp++;
      return `10.96.${Math.floor(n / 250)}.${n % 250}`;
    },
  };

  private typed(def: ResourceDef, o: KubeObject): KubeObject {
    return { kind: def.kind, apiVersion: 'v1', ...o };
  }

  /** Label and field selectors of a query (400 on a bad one). */
  public matcher(def: ResourceDef, q: URLSearchParams): Matcher {
    return queryMatcher(def, q);
  }

  /** GET on a collection (not a watch). */
  public list(def: ResourceDef, namespace: string | undefined, q: URLSearchParams): unknown {
    return listPage(this.store, def, namespace, q);
  }

  private current(def: ResourceDef, namespace: string | undefined, name: string): KubeObject {
    const o = this.store.get(def.name, storageKey(namespace, name));
    if (o === undefined) throw new ApiFailure(S.notFound(def.name, name));
    return o;
  }

  /** GET on one object (or its status subresource, which is the same object). */
  public get(def: ResourceDef, namespace: string | undefined, name: string): KubeObject {
    return this.typed(def, this.current(def, namespace, name));
  }

  /** POST on a collection. `keepStatus` is for test helpers seeding a status. */
  public create(
    def: ResourceDef,
    namespace: string | undefined,
    body: unknown,
    keepStatus = false,
  ): KubeObject {
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new ApiFailure(S.badRequest('the body of the request must be an object'));
    const o = structuredClone(body) as KubeObject;
    if (o.kind !== undefined && o.kind !== def.kind)
      throw new ApiFailure(
        S.badRequest(
          `the kind in the data (${String(o.kind)}) does not match the URL (${def.kind})`,
        ),
      );
    o.metadata = { ...(o.metadata ?? {}) } as KubeObject['metadata'];
    const meta = o.metadata;
    if (def.namespaced) {
      if (meta.namespace !== undefined && meta.namespace !== namespace)
        throw new ApiFailure(
          S.badRequest(
            'the namespace of the provided object does not match the namespace sent on the request',
          ),
        );
      meta.namespace = namespace;
      if (this.store.get('namespaces', namespace ?? '') === undefined)
        throw new ApiFailure(S.notFound('namespaces', namespace ?? ''));
    } else delete meta.namespace;
    if ((meta.name ?? '') === '' && meta.generateName !== undefined)
      meta.name = `${meta.generateName}${randomUUID().slice(0, 5)}`;
    if ((meta.name ?? '') === '')
      throw new ApiFailure(
        S.invalid(def.kind, '', [
          {
            field: 'metadata.name',
            message: 'Required value: name or generateName is required',
            reason: 'FieldValueRequired',
          },
        ]),
      );
    const key = storageKey(meta.namespace, meta.name);
    if (this.store.get(def.name, key) !== undefined)
      throw new ApiFailure(S.alreadyExists(def.name, meta.name));
    meta.uid = randomUUID();
    meta.creationTimestamp = rfc3339();
    delete meta.deletionTimestamp;
    if (def.name === 'services' && !keepStatus) o.status = { loadBalancer: {} };
    delete o.kind;
    delete o.apiVersion;
    this.check(def, meta.name, def.create?.(o, this.cluster, key) ?? []);
    return this.typed(def, this.store.create(def.name, key, o));
  }

  private check(def: ResourceDef, name: string, causes: readonly Cause[]): void {
    if (causes.length > 0) throw new ApiFailure(S.invalid(def.kind, name, causes));
  }

  /** PUT on an object or its status. A missing or stale resourceVersion is refused. */
  public update(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    sub: string | undefined,
    body: unknown,
  ): KubeObject {
    const cur = this.current(def, namespace, name);
    const given = body as Partial<KubeObject> | null;
    const rv = given?.metadata?.resourceVersion;
    if (given?.metadata?.name !== undefined && given.metadata.name !== name)
      throw new ApiFailure(
        S.badRequest(
          `the name of the object (${given.metadata.name}) does not match the name on the URL (${name})`,
        ),
      );
    if (rv === undefined || rv === '')
      throw new ApiFailure(
        S.invalid(def.kind, name, [
          {
            field: 'metadata.resourceVersion',
            message: 'Invalid value: 0x0: must be specified for an update',
          },
        ]),
      );
    if (rv !== cur.metadata.resourceVersion) throw new ApiFailure(S.conflict(def.name, name));
    return this.commit(def, cur, sub, structuredClone(given) as KubeObject);
  }

  /** PATCH with one of the three patch content types. */
  public patch(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    sub: string | undefined,
    contentType: string,
    body: unknown,
  ): KubeObject {
    const cur = this.current(def, namespace, name);
    const type = contentType.split(';')[0]?.trim() ?? '';
    let patched: Json;
    try {
      if (type === 'application/merge-patch+json')
        patched = mergePatch(cur as unknown as Json, body as Json);
      else if (type === 'application/strategic-merge-patch+json')
        patched = strategicMerge(cur as unknown as Json, body as Json, def.smp);
      else if (type === 'application/json-patch+json')
        patched = jsonPatch(cur as unknown as Json, body);
      else throw new ApiFailure(S.unsupportedMediaType(type));
    } catch (err) {
      if (!(err instanceof PatchError)) throw err;
      throw new ApiFailure(
        err.code === 400
          ? S.badRequest(err.message)
          : S.invalid(def.kind, name, [{ field: 'patch', message: err.message }]),
      );
    }
    const next = patched as unknown as KubeObject;
    if (typeof next !== 'object' || next === null || typeof next.metadata !== 'object')
      throw new ApiFailure(S.badRequest('the patch removed the object'));
    const rv = next.metadata.resourceVersion;
    if (rv !== undefined && rv !== cur.metadata.resourceVersion)
      throw new ApiFailure(S.conflict(def.name, name));
    return this.commit(def, cur, sub, next);
  }

  /** Test helpers' write: `mutate` a copy, then store it whole (spec and status). */
  public mutate(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    mutate: (o: KubeObject) => void,
  ): KubeObject {
    const cur = this.current(def, namespace, name);
    const next = structuredClone(cur);
    mutate(next);
    return this.commit(def, cur, '*', next);
  }

  /** Apply an update (already resolved to a full object) with the status/main split and finalizer rules. */
  private commit(
    def: ResourceDef,
    cur: KubeObject,
    sub: string | undefined,
    given: KubeObject,
  ): KubeObject {
    const name = cur.metadata.name;
    const next: KubeObject =
      sub === '*'
        ? { ...given, metadata: { ...given.metadata } }
        : sub === 'status'
          ? { ...structuredClone(cur), status: given.status }
          : {
              ...given,
              metadata: { ...given.metadata },
              ...(cur.status === undefined ? {} : { status: structuredClone(cur.status) }),
            };
    if (sub === undefined && cur.status === undefined) delete next.status;
    delete next.kind;
    delete next.apiVersion;
    for (const k of META_FROM_SERVER) {
      const meta = next.metadata as Record<string, unknown>;
      if (cur.metadata[k] === undefined) delete meta[k];
      else meta[k] = cur.metadata[k];
    }
    next.metadata.resourceVersion = cur.metadata.resourceVersion;
    const finalizers = next.metadata.finalizers ?? [];
    if (finalizers.length === 0) delete next.metadata.finalizers;
    if (
      cur.metadata.deletionTimestamp !== undefined &&
      finalizers.some((f) => !(cur.metadata.finalizers ?? []).includes(f))
    )
      throw new ApiFailure(
        S.invalid(def.kind, name, [
          {
            field: 'metadata.finalizers',
            message: 'Forbidden: no new finalizers can be added if the object is being deleted',
            reason: 'FieldValueForbidden',
          },
        ]),
      );
    const key = storageKey(cur.metadata.namespace, name);
    this.check(def, name, def.update?.(cur, next, this.cluster, key) ?? []);
    if (cur.metadata.deletionTimestamp !== undefined && finalizers.length === 0) {
      return this.typed(def, this.store.delete(def.name, key) ?? next);
    }
    if (isDeepStrictEqual(next, cur)) return this.typed(def, cur);
    return this.typed(def, this.store.update(def.name, key, next));
  }

  /** DELETE: gone now, or marked with a deletionTimestamp while finalizers remain. */
  public delete(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    body: unknown,
  ): unknown {
    const cur = this.current(def, namespace, name);
    const pre = (body as { preconditions?: { uid?: string; resourceVersion?: string } } | null)
      ?.preconditions;
    if (
      (pre?.uid !== undefined && pre.uid !== cur.metadata.uid) ||
      (pre?.resourceVersion !== undefined && pre.resourceVersion !== cur.metadata.resourceVersion)
    )
      throw new ApiFailure(S.conflict(def.name, name));
    const key = storageKey(cur.metadata.namespace, name);
    if ((cur.metadata.finalizers ?? []).length > 0) {
      if (cur.metadata.deletionTimestamp !== undefined) return this.typed(def, cur);
      const marked = structuredClone(cur);
      marked.metadata.deletionTimestamp = rfc3339();
      marked.metadata.deletionGracePeriodSeconds = 0;
      return this.typed(def, this.store.update(def.name, key, marked));
    }
    const gone = this.store.delete(def.name, key) ?? cur;
    if (def.name === 'services') return this.typed(def, gone);
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name, kind: def.name, uid: cur.metadata.uid },
    };
  }
}

/** The resource definition for a /api/v1 resource name, if the fake serves it. */
export function resourceDef(name: string): ResourceDef | undefined {
  return RESOURCES.get(name);
}
