import { PatchStrategy, type V1Service } from '@kubernetes/client-node';
import type { Logger } from '../../core/log.js';
import type { Connection } from './connect.js';
import { type ApiCall, describeCall, httpStatus, KubernetesApiError } from './errors.js';

/*
 * lbsync's finalizer on a Service, changed with optimistic concurrency: read
 * the Service, write the new finalizer list in a merge patch that carries the
 * resourceVersion read (the API answers 409 if anyone wrote since), and on
 * 409 read again, a bounded number of times. Only the finalizer list is sent,
 * so no other field can be clobbered; other controllers' finalizers survive.
 */

/** What editing finalizers needs from the client. */
export interface FinalizerContext {
  readonly conn: Connection;
  readonly logger: Logger;
  /** Read-modify-write rounds under conflicts. */
  readonly attempts: number;
  readonly signal: AbortSignal | undefined;
  /** The client's retried call; `passThrough` errors come back raw. */
  retry<T>(
    call: ApiCall,
    fn: () => Promise<T>,
    passThrough?: (err: unknown) => boolean,
  ): Promise<T>;
}

/** Apply `edit` to the finalizers (null: nothing to change); null when the Service is gone and `allowGone`. */
export async function editFinalizers(
  ctx: FinalizerContext,
  namespace: string,
  name: string,
  edit: (current: string[]) => string[] | null,
  allowGone: boolean,
): Promise<V1Service | null> {
  const call: ApiCall = { verb: 'patch', resource: 'services', namespace, name };
  const attempts = ctx.attempts;
  const isConflict = (err: unknown): boolean => httpStatus(err) === 409;
  const isGone = (err: unknown): boolean => allowGone && httpStatus(err) === 404;
  for (let attempt = 1; ; attempt++) {
    let svc: V1Service;
    try {
      svc = await ctx.retry(
        { verb: 'get', resource: 'services', namespace, name },
        () =>
          ctx.conn.core.readNamespacedService({ namespace, name }, ctx.conn.options(ctx.signal)),
        isGone,
      );
    } catch (err) {
      if (isGone(err)) return null;
      throw err;
    }
    const next = edit([...(svc.metadata?.finalizers ?? [])]);
    if (next === null) return svc;
    if (
      svc.metadata?.deletionTimestamp !== undefined &&
      next.length > (svc.metadata.finalizers ?? []).length
    ) {
      throw new KubernetesApiError(
        `Kubernetes API: ${describeCall(call)}: the Service is being deleted; a finalizer cannot be added any more`,
        call,
        { retryable: false },
      );
    }
    const body = {
      metadata: {
        resourceVersion: svc.metadata?.resourceVersion,
        finalizers: next.length === 0 ? null : next,
      },
    };
    try {
      return await ctx.retry(
        call,
        () =>
          ctx.conn.core.patchNamespacedService(
            { namespace, name, body },
            ctx.conn.options(ctx.signal, PatchStrategy.MergePatch),
          ),
        (err) => isConflict(err) || isGone(err),
      );
    } catch (err) {
      if (isGone(err)) return null;
      if (!isConflict(err)) throw err;
      if (attempt >= attempts) {
        throw new KubernetesApiError(
          `Kubernetes API: ${describeCall(call)} failed after ${attempt} attempts: the Service kept changing under us (409 Conflict)`,
          call,
          { cause: err, retryable: true, status: 409, reason: 'Conflict' },
        );
      }
      ctx.logger.info(
        { call: describeCall(call), attempt },
        'kubernetes: Service changed since read (409), re-reading',
      );
    }
  }
}
