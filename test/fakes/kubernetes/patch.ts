/*
 * The three PATCH formats kube-apiserver takes (apply-patch is out of scope):
 * RFC 7386 merge patch, RFC 6902 JSON patch (with `test`), and the strategic
 * merge patch, whose list semantics come from per-field tags in the Go
 * types. `SmpSchema` names the merging lists of the resources the fake
 * serves (finalizers as a set, ports by `port`, conditions by `type`, ...);
 * every other list is atomic and replaced, as upstream.
 */

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** A patch that cannot apply (the apiserver answers 422, or 400 for malformed patches). */
export class PatchError extends Error {
  public constructor(
    message: string,
    public readonly code: 400 | 422 = 422,
  ) {
    super(message);
    this.name = 'PatchError';
  }
}

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T extends Json>(v: T): T {
  return structuredClone(v);
}

/** RFC 7386: objects merge, `null` deletes, everything else (lists too) replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

/** One RFC 6902 operation. */
export interface JsonPatchOp {
  readonly op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  readonly path: string;
  readonly from?: string;
  readonly value?: Json;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`invalid JSON pointer "${path}"`, 400);
  return path
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: Json, tokens: string[], path: string): [Json, string] {
  let cur: Json = doc;
  for (const t of tokens.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(cur)
      ? cur[Number(t)]
      : isObject(cur)
        ? cur[t]
        : undefined;
    if (next === undefined) throw new PatchError(`doc is missing path: "${path}"`);
    cur = next;
  }
  const last = tokens[tokens.length - 1];
  if (last === undefined) throw new PatchError(`cannot operate on the root: "${path}"`);
  return [cur, last];
}

function getAt(doc: Json, path: string): Json {
  let cur: Json = doc;
  for (const t of pointer(path)) {
    const next: Json | undefined = Array.isArray(cur)
      ? cur[Number(t)]
      : isObject(cur)
        ? cur[t]
        : undefined;
    if (next === undefined) throw new PatchError(`doc is missing path: "${path}"`);
    cur = next;
  }
  return cur;
}

function index(arr: Json[], token: string, path: string, forAdd: boolean): number {
  if (forAdd && token === '-') return arr.length;
  const i = /^(0|[1-9][0-9]*)$/.test(token) ? Number(token) : Number.NaN;
  if (!(i >= 0 && i < arr.length + (forAdd ? 1 : 0)))
    throw new PatchError(`Unable to access invalid index: ${token}: "${path}"`);
  return i;
}

function addAt(doc: Json, path: string, value: Json): Json {
  const tokens = pointer(path);
  if (tokens.length === 0) return clone(value);
  const [parent, last] = parentOf(doc, tokens, path);
  if (Array.isArray(parent)) parent.splice(index(parent, last, path, true), 0, clone(value));
  else if (isObject(parent)) parent[last] = clone(value);
  else throw new PatchError(`doc is missing path: "${path}"`);
  return doc;
}

function removeAt(doc: Json, path: string): Json {
  const [parent, last] = parentOf(doc, pointer(path), path);
  if (Array.isArray(parent)) parent.splice(index(parent, last, path, false), 1);
  else if (isObject(parent) && last in parent) delete parent[last];
  else throw new PatchError(`Unable to remove nonexistent key: ${last}: missing value: "${path}"`);
  return doc;
}

/** RFC 6902, applied to a copy. A failing `test` is a 422, as upstream. */
export function jsonPatch(target: Json, ops: unknown): Json {
  if (!Array.isArray(ops)) throw new PatchError('json patch must be a list of operations', 400);
  let doc = clone(target);
  for (const raw of ops as JsonPatchOp[]) {
    const { op, path } = raw;
    if (typeof path !== 'string') throw new PatchError('missing path in json patch operation', 400);
    if (op === 'add') doc = addAt(doc, path, raw.value ?? null);
    else if (op === 'remove') doc = removeAt(doc, path);
    else if (op === 'replace') {
      getAt(doc, path);
      doc = addAt(removeAt(doc, path), path, raw.value ?? null);
    } else if (op === 'move' || op === 'copy') {
      if (typeof raw.from !== 'string') throw new PatchError(`missing from in ${op}`, 400);
      const v = clone(getAt(doc, raw.from));
      if (op === 'move') doc = removeAt(doc, raw.from);
      doc = addAt(doc, path, v);
    } else if (op === 'test') {
      if (JSON.stringify(getAt(doc, path)) !== JSON.stringify(raw.value ?? null))
        throw new PatchError(`testing value ${path} failed: test failed`);
    } else throw new PatchError(`Unexpected kind: ${String(op)}`, 400);
  }
  return doc;
}

/** How a list at a dotted path merges in a strategic merge patch; absent: atomic (replace). */
export type SmpSchema = Readonly<Record<string, { readonly mergeKey?: string }>>;

function keyOf(v: Json, mergeKey: string | undefined): string {
  return mergeKey === undefined ? JSON.stringify(v) : JSON.stringify(isObject(v) ? v[mergeKey] : v);
}

function mergeList(
  original: Json[],
  patch: Json[],
  mergeKey: string | undefined,
  schema: SmpSchema,
  path: string,
): Json[] {
  const out = [...original];
  const pos = new Map(out.map((v, i) => [keyOf(v, mergeKey), i]));
  const deleted = new Set<string>();
  for (const item of patch) {
    if (isObject(item) && item.$patch === 'delete') {
      deleted.add(keyOf(item, mergeKey));
      continue;
    }
    const k = keyOf(item, mergeKey);
    const at = pos.get(k);
    if (at === undefined) {
      pos.set(k, out.length);
      out.push(strategicMerge(null, item, schema, path));
    } else if (mergeKey !== undefined) {
      out[at] = strategicMerge(out[at] ?? null, item, schema, path);
    }
  }
  return out.filter((v) => !deleted.has(keyOf(v, mergeKey)));
}

function reorder(list: Json[], order: Json[], mergeKey: string | undefined): Json[] {
  const rank = new Map(
    order.map((v, i) => [keyOf(v, mergeKey === undefined ? undefined : mergeKey), i]),
  );
  const ranked = list.filter((v) => rank.has(keyOf(v, mergeKey)));
  ranked.sort((a, b) => (rank.get(keyOf(a, mergeKey)) ?? 0) - (rank.get(keyOf(b, mergeKey)) ?? 0));
  return [...ranked, ...list.filter((v) => !rank.has(keyOf(v, mergeKey)))];
}

/**
 * Strategic merge patch: maps merge, `null` deletes, `$patch: replace|delete`
 * on maps, merging lists per `schema` (`$patch: delete` items,
 * `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>`), other lists replace.
 */
export function strategicMerge(original: Json, patch: Json, schema: SmpSchema, path = ''): Json {
  if (!isObject(patch)) return clone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _, ...rest } = patch;
    return clone(rest);
  }
  if (patch.$patch === 'delete') return null;
  const out: JsonObject = isObject(original) ? { ...original } : {};
  const orders: [string, Json[]][] = [];
  for (const [k, v] of Object.entries(patch)) {
    const child = path === '' ? k : `${path}.${k}`;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const drop = new Set((Array.isArray(v) ? v : []).map((x) => JSON.stringify(x)));
      const cur = out[field];
      if (Array.isArray(cur)) out[field] = cur.filter((x) => !drop.has(JSON.stringify(x)));
    } else if (k.startsWith('$setElementOrder/')) {
      orders.push([k.slice('$setElementOrder/'.length), Array.isArray(v) ? v : []]);
    } else if (k === '$retainKeys' || k === '$patch') {
      // $retainKeys only matters for union types lbsync's resources do not use.
    } else if (v === null) {
      delete out[k];
    } else if (Array.isArray(v)) {
      const rule = schema[child];
      const cur = out[k];
      out[k] =
        rule !== undefined && Array.isArray(cur)
          ? mergeList(cur, v, rule.mergeKey, schema, child)
          : rule !== undefined
            ? mergeList([], v, rule.mergeKey, schema, child)
            : clone(v);
    } else {
      out[k] = strategicMerge(out[k] ?? null, v, schema, child);
    }
  }
  for (const [field, order] of orders) {
    const cur = out[field];
    const rule = schema[path === '' ? field : `${path}.${field}`];
    if (Array.isArray(cur)) out[field] = reorder(cur, order, rule?.mergeKey);
  }
  return out;
}
