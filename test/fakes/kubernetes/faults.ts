/*
 * Opt-in misbehaviour: the next N requests matching a method, path and
 * query get a 429 with Retry-After, a 5xx, a 410, or a dropped connection;
 * or run a hook first (a concurrent writer sneaking in between a client's
 * read and its write).
 */

/** Which requests a fault or hook applies to. */
export interface RequestMatch {
  readonly method?: string;
  /** Matched against the path, without the query. */
  readonly path: RegExp;
  /** Matched against the raw query string (without `?`). */
  readonly query?: RegExp;
}

/** The next `times` matching requests get `status` (or their connection dropped). */
export interface Fault extends RequestMatch {
  readonly status: 410 | 429 | 500 | 502 | 503 | 504 | 'reset';
  readonly times?: number;
  readonly retryAfterSeconds?: number;
}

/** How the server is unreachable: refused (not listening), reset on connect, or never answering. */
export type Outage = 'refuse' | 'reset' | 'hang';

/** A fault or hook with how many more requests it applies to. */
export interface Armed<T> {
  readonly match: RequestMatch;
  left: number;
  readonly value: T;
}

/** True when `m` selects this request. */
export function matches(m: RequestMatch, method: string, path: string, query: string): boolean {
  return (
    (m.method === undefined || m.method === method) &&
    m.path.test(path) &&
    (m.query === undefined || m.query.test(query))
  );
}

/** The next armed entry for this request, used up by one. */
export function take<T>(
  list: Armed<T>[],
  method: string,
  path: string,
  query: string,
): T | undefined {
  const a = list.find((x) => x.left > 0 && matches(x.match, method, path, query));
  if (a === undefined) return undefined;
  a.left--;
  return a.value;
}
