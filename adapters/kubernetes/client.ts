import { hostname } from 'node:os';
import {
  PatchStrategy,
  type V1LoadBalancerIngress,
  type V1Node,
  type V1Service,
} from '@kubernetes/client-node';
import { type Logger, silentLogger } from '../../core/log.js';
import {
  type ClusterConnection,
  type Connection,
  type ConnectOptions,
  connect,
} from './connect.js';
import { type ApiCall, describeCall, httpStatus, kubernetesError } from './errors.js';
import { type ServiceRef, serviceEvent } from './events.js';
import { editFinalizers, type FinalizerContext } from './finalizers.js';
import { DEFAULT_RETRY, type RetryPolicy, withRetries } from './retry.js';

export { REPORTING_COMPONENT, type ServiceRef } from './events.js';

/*
 * The few cluster API calls lbsync makes, each bounded and classified:
 * paginated lists of Nodes and Services (a 410 on a stale continue token
 * restarts the list), Service status, lbsync's finalizer (optimistic
 * concurrency: a merge patch carrying the resourceVersion read, re-read on
 * 409), and Events on Services. RBAC needed: get/list nodes and services,
 * patch services and services/status, create events.
 */

/** One `status.loadBalancer.ingress` entry. */
export type LoadBalancerIngress = Pick<V1LoadBalancerIngress, 'ip' | 'hostname' | 'ipMode'>;

/** The cluster API as lbsync uses it. */
export interface ClusterClient {
  /** Every Node (all pages). */
  listNodes(signal?: AbortSignal): Promise<readonly V1Node[]>;
  /** Every Service in every namespace (all pages). */
  listServices(signal?: AbortSignal): Promise<readonly V1Service[]>;
  /** Set `status.loadBalancer.ingress` (replacing the list) through the status subresource. */
  patchServiceStatus(
    namespace: string,
    name: string,
    ingress: readonly LoadBalancerIngress[],
    signal?: AbortSignal,
  ): Promise<V1Service>;
  /** Add `finalizer` unless present. */
  addFinalizer(
    namespace: string,
    name: string,
    finalizer: string,
    signal?: AbortSignal,
  ): Promise<V1Service>;
  /** Remove `finalizer`; null when the Service is gone (deleted once its last finalizer went). */
  removeFinalizer(
    namespace: string,
    name: string,
    finalizer: string,
    signal?: AbortSignal,
  ): Promise<V1Service | null>;
  /** Record a core/v1 Event on a Service. */
  createEvent(
    ref: ServiceRef,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    signal?: AbortSignal,
  ): Promise<void>;
  /** HTTP requests made so far (retries and pages included). */
  readonly requestCount: number;
  /** Close pooled connections. */
  close(): void;
}

/** Options for `createClusterClient`. */
export interface ClusterClientOptions extends ConnectOptions {
  /** Page size of lists (default 500). */
  readonly pageSize?: number;
  /** Restarts of a list whose continue token expired (default 3). */
  readonly maxListRestarts?: number;
  /** Read-modify-write attempts of a finalizer change under conflicts (default 5). */
  readonly finalizerAttempts?: number;
  readonly retry?: Partial<RetryPolicy>;
  /** Event `reportingInstance` (default: the host name). */
  readonly reportingInstance?: string;
  readonly logger?: Logger;
}

class KubernetesClusterClient implements ClusterClient {
  private readonly policy: RetryPolicy;
  private readonly logger: Logger;
  private eventSeq = 0n;

  public constructor(
    private readonly conn: Connection,
    private readonly o: ClusterClientOptions,
  ) {
    this.policy = { ...DEFAULT_RETRY, ...o.retry };
    this.logger = o.logger ?? silentLogger();
  }

  public get requestCount(): number {
    return this.conn.requests;
  }

  public close(): void {
    this.conn.close();
  }

  private retry<T>(
    call: ApiCall,
    signal: AbortSignal | undefined,
    fn: () => Promise<T>,
    passThrough?: (err: unknown) => boolean,
  ): Promise<T> {
    return withRetries(
      call,
      {
        policy: this.policy,
        logger: this.logger,
        refreshCredentials: () => this.conn.refreshCredentials(),
        ...(signal === undefined ? {} : { signal }),
        ...(passThrough === undefined ? {} : { passThrough }),
      },
      fn,
    );
  }

  private async listAll<T>(
    call: ApiCall,
    signal: AbortSignal | undefined,
    page: (cont: string | undefined) => Promise<{ items: T[]; metadata?: { _continue?: string } }>,
  ): Promise<T[]> {
    const maxRestarts = this.o.maxListRestarts ?? 3;
    for (let restart = 0; ; restart++) {
      const items: T[] = [];
      let cont: string | undefined;
      try {
        do {
          const from = cont;
          const p = await this.retry(
            call,
            signal,
            () => page(from),
            (err) => from !== undefined && httpStatus(err) === 410,
          );
          items.push(...p.items);
          cont = p.metadata?._continue === '' ? undefined : p.metadata?._continue;
        } while (cont !== undefined);
        return items;
      } catch (err) {
        if (httpStatus(err) !== 410) throw err;
        // A raw 410 got past retry() so the list could restart; out of restarts, wrap it like any failure.
        if (restart >= maxRestarts) throw kubernetesError(call, err, restart + 1);
        this.logger.warn(
          { call: describeCall(call), restart: restart + 1, fetched: items.length },
          'kubernetes: list continue token expired (410), restarting the list',
        );
      }
    }
  }

  public listNodes(signal?: AbortSignal): Promise<readonly V1Node[]> {
    const limit = this.o.pageSize ?? 500;
    return this.listAll({ verb: 'list', resource: 'nodes' }, signal, (cont) =>
      this.conn.core.listNode(
        { limit, ...(cont === undefined ? {} : { _continue: cont }) },
        this.conn.options(signal),
      ),
    );
  }

  public listServices(signal?: AbortSignal): Promise<readonly V1Service[]> {
    const limit = this.o.pageSize ?? 500;
    return this.listAll({ verb: 'list', resource: 'services' }, signal, (cont) =>
      this.conn.core.listServiceForAllNamespaces(
        { limit, ...(cont === undefined ? {} : { _continue: cont }) },
        this.conn.options(signal),
      ),
    );
  }

  public patchServiceStatus(
    namespace: string,
    name: string,
    ingress: readonly LoadBalancerIngress[],
    signal?: AbortSignal,
  ): Promise<V1Service> {
    const body = { status: { loadBalancer: { ingress: ingress.map((i) => ({ ...i })) } } };
    return this.retry({ verb: 'patch', resource: 'services/status', namespace, name }, signal, () =>
      this.conn.core.patchNamespacedServiceStatus(
        { namespace, name, body },
        this.conn.options(signal, PatchStrategy.MergePatch),
      ),
    );
  }

  private finalizerContext(signal: AbortSignal | undefined): FinalizerContext {
    return {
      conn: this.conn,
      logger: this.logger,
      attempts: this.o.finalizerAttempts ?? 5,
      signal,
      retry: (call, fn, passThrough) => this.retry(call, signal, fn, passThrough),
    };
  }

  public async addFinalizer(
    namespace: string,
    name: string,
    finalizer: string,
    signal?: AbortSignal,
  ): Promise<V1Service> {
    const svc = await editFinalizers(
      this.finalizerContext(signal),
      namespace,
      name,
      (f) => (f.includes(finalizer) ? null : [...f, finalizer]),
      false,
    );
    // allowGone is false, so a missing Service was thrown as a 404 already.
    return svc as V1Service;
  }

  public removeFinalizer(
    namespace: string,
    name: string,
    finalizer: string,
    signal?: AbortSignal,
  ): Promise<V1Service | null> {
    return editFinalizers(
      this.finalizerContext(signal),
      namespace,
      name,
      (f) => (f.includes(finalizer) ? f.filter((x) => x !== finalizer) : null),
      true,
    );
  }

  public async createEvent(
    ref: ServiceRef,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const body = serviceEvent(ref, type, reason, message, {
      instance: this.o.reportingInstance ?? hostname(),
      seq: this.eventSeq++,
    });
    await this.retry({ verb: 'create', resource: 'events', namespace: ref.namespace }, signal, () =>
      this.conn.core.createNamespacedEvent(
        { namespace: ref.namespace, body },
        this.conn.options(signal),
      ),
    );
  }
}

/** A ClusterClient for `connection` (endpoint + CA + token provider, or a kubeconfig). */
export function createClusterClient(
  connection: ClusterConnection,
  options: ClusterClientOptions = {},
): ClusterClient {
  return new KubernetesClusterClient(connect(connection, options), options);
}
