import type { ResourceDef } from './resources.js';
import { fieldMatcher, labelMatcher, type Matcher, SelectorError } from './selectors.js';
import * as S from './status.js';
import { CompactedError, type KubeObject, type Store } from './store.js';

/*
 * Lists as kube-apiserver serves them from etcd: items sorted by key, pages of
 * `limit` with a `continue` token that carries the snapshot's resourceVersion
 * and the next key, so every page comes from the same snapshot. A token older
 * than the compaction point is 410 Expired.
 */

function encodeContinue(rv: number, lastKey: string): string {
  return Buffer.from(
    JSON.stringify({ v: 'meta.k8s.io/v1', rv, start: `${lastKey}\u0000` }),
  ).toString('base64');
}

function decodeContinue(token: string): { rv: number; start: string } {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as {
      v?: unknown;
      rv?: unknown;
      start?: unknown;
    };
    if (t.v === 'meta.k8s.io/v1' && typeof t.rv === 'number' && typeof t.start === 'string')
      return { rv: t.rv, start: t.start };
  } catch {
    // fall through
  }
  throw new S.ApiFailure(S.badRequest(`continue key is not valid: ${token}`));
}

/** Label and field selectors of a query (400 on a bad one). */
export function queryMatcher(def: ResourceDef, q: URLSearchParams): Matcher {
  try {
    const labels = labelMatcher(q.get('labelSelector'));
    const fields = fieldMatcher(q.get('fieldSelector'), def.fields, def.name);
    return (o) => labels(o) && fields(o);
  } catch (err) {
    if (err instanceof SelectorError) throw new S.ApiFailure(S.badRequest(err.message));
    throw err;
  }
}

/** One page of a list: a consistent snapshot at the first page's resourceVersion. */
export function listPage(
  store: Store,
  def: ResourceDef,
  namespace: string | undefined,
  q: URLSearchParams,
): unknown {
  const match = queryMatcher(def, q);
  const limit = Number(q.get('limit') ?? '0');
  const token = q.get('continue');
  const from = token === null || token === '' ? undefined : decodeContinue(token);
  const rv = from?.rv ?? store.resourceVersion;
  let all: { key: string; object: KubeObject }[];
  try {
    // Only the page is copied: a 5,000-node list in pages of 500 would otherwise copy 50,000 nodes.
    all = store.list(def.name, rv, { clone: false });
  } catch (err) {
    if (err instanceof CompactedError) throw new S.ApiFailure(S.continueExpired());
    throw err;
  }
  const items = all.filter(
    ({ key, object }) =>
      (from === undefined || key >= from.start) &&
      (namespace === undefined || object.metadata.namespace === namespace) &&
      match(object as unknown as Record<string, unknown>),
  );
  const page = limit > 0 ? items.slice(0, limit) : items;
  const last = page[page.length - 1];
  const more = page.length < items.length && last !== undefined;
  return {
    kind: `${def.kind}List`,
    apiVersion: 'v1',
    metadata: {
      resourceVersion: String(rv),
      ...(more
        ? {
            continue: encodeContinue(rv, last.key),
            remainingItemCount: items.length - page.length,
          }
        : {}),
    },
    items: page.map(({ object }) => structuredClone(object)),
  };
}
