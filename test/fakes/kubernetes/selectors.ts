/*
 * labelSelector and fieldSelector as the apiserver parses them, the common
 * forms: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)` for
 * labels; `path=v`, `path!=v` for fields (only the fields a resource
 * declares, otherwise 400 as upstream).
 */

/** A parsed selector: true when an object matches. */
export type Matcher = (obj: Record<string, unknown>) => boolean;

/** A selector the apiserver would refuse (400). */
export class SelectorError extends Error {
  public constructor(message: string) {
    super(message);
    this.name = 'SelectorError';
  }
}

function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of s) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  if (cur.trim() !== '') parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

/** Parse a labelSelector. */
export function labelMatcher(selector: string | null): Matcher {
  if (selector === null || selector.trim() === '') return () => true;
  const reqs = splitTopLevel(selector).map((r): ((labels: Record<string, string>) => boolean) => {
    let m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(r);
    if (m !== null) {
      const [, key = '', op, list = ''] = m;
      const values = new Set(list.split(',').map((v) => v.trim()));
      return op === 'in'
        ? (l) => l[key] !== undefined && values.has(l[key])
        : (l) => l[key] === undefined || !values.has(l[key]);
    }
    m = /^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$/.exec(r);
    if (m !== null) {
      const [, key = '', op, value] = m;
      return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
    }
    m = /^(!?)([\w./-]+)$/.exec(r);
    if (m !== null) {
      const [, not, key = ''] = m;
      return not === '!' ? (l) => !(key in l) : (l) => key in l;
    }
    throw new SelectorError(`unable to parse requirement: ${r}`);
  });
  return (obj) => {
    const labels = ((obj.metadata as { labels?: Record<string, string> } | undefined)?.labels ??
      {}) as Record<string, string>;
    return reqs.every((req) => req(labels));
  };
}

function fieldValue(obj: Record<string, unknown>, path: string): string {
  let cur: unknown = obj;
  for (const p of path.split('.')) {
    cur = typeof cur === 'object' && cur !== null ? (cur as Record<string, unknown>)[p] : undefined;
  }
  return cur === undefined || cur === null ? '' : String(cur);
}

/** Parse a fieldSelector over the fields `supported` (dotted paths). */
export function fieldMatcher(
  selector: string | null,
  supported: readonly string[],
  resource: string,
): Matcher {
  if (selector === null || selector.trim() === '') return () => true;
  const reqs = splitTopLevel(selector).map((r) => {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(r);
    if (m === null) throw new SelectorError(`invalid selector: '${r}'; can't understand '${r}'`);
    const [, path = '', op, value = ''] = m;
    if (!supported.includes(path))
      throw new SelectorError(`field label not supported: ${path} (${resource})`);
    return op === '!='
      ? (o: Record<string, unknown>) => fieldValue(o, path) !== value
      : (o: Record<string, unknown>) => fieldValue(o, path) === value;
  });
  return (obj) => reqs.every((req) => req(obj));
}
