import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../../core/log.js';
import type { Connection } from './connect.js';
import { type ApiCall, httpStatus } from './errors.js';
import { DEFAULT_RETRY, type RetryPolicy, withRetries } from './retry.js';

/*
 * A whole list of Nodes or Services with the resourceVersion a watch resumes
 * from: paginated (`limit`/`continue`, all pages one snapshot), each page
 * retried under the client's policy (429, 5xx, a 401 once with a fresh
 * token), and a 410 on a stale continue token restarting the list, as
 * client.ts lists for the function.
 */

/** Options for `listResource`. */
export interface ListOptions {
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  /** Page size (default 500). */
  readonly pageSize?: number;
  readonly retry?: Partial<RetryPolicy>;
  /** Restarts after an expired continue token (default 3). */
  readonly maxRestarts?: number;
}

/** Every item of `resource` and the list's resourceVersion. */
export async function listResource<T extends KubernetesObject>(
  conn: Connection,
  resource: 'nodes' | 'services',
  o: ListOptions,
): Promise<{ readonly items: T[]; readonly resourceVersion: string }> {
  const call: ApiCall = { verb: 'list', resource };
  const limit = o.pageSize ?? 500;
  for (let restart = 0; ; restart++) {
    const items: T[] = [];
    let cont: string | undefined;
    let rv = '';
    try {
      do {
        const from = cont;
        const params = { limit, ...(from === undefined ? {} : { _continue: from }) };
        const page = await withRetries(
          call,
          {
            policy: { ...DEFAULT_RETRY, ...o.retry },
            logger: o.logger,
            ...(o.signal !== undefined ? { signal: o.signal } : {}),
            refreshCredentials: () => conn.refreshCredentials(),
            passThrough: (e) => from !== undefined && httpStatus(e) === 410,
          },
          (): Promise<{
            items: KubernetesObject[];
            metadata?: { resourceVersion?: string; _continue?: string };
          }> =>
            resource === 'nodes'
              ? conn.core.listNode(params, conn.options(o.signal))
              : conn.core.listServiceForAllNamespaces(params, conn.options(o.signal)),
        );
        items.push(...(page.items as T[]));
        rv = page.metadata?.resourceVersion ?? rv;
        cont = page.metadata?._continue === '' ? undefined : page.metadata?._continue;
      } while (cont !== undefined);
      return { items, resourceVersion: rv };
    } catch (err) {
      if (httpStatus(err) !== 410 || restart >= (o.maxRestarts ?? 3)) throw err;
      o.logger.warn(
        { resource, restart: restart + 1 },
        'kubernetes: continue token expired (410), listing again',
      );
    }
  }
}
