import { hostname } from 'node:os';
import {
  type CoreV1Event,
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
import {
  type ApiCall,
  describeCall,
  httpStatus,
  KubernetesApiError,
  kubernetesError,
} from './errors.js';
import { DEFAULT_RETRY, type RetryPolicy, withRetries } from './retry.js';

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

/** The Service an Event is about. */
export interface ServiceRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
}

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

/** Events' component name, as `kubectl describe` shows it ("From"). */
export const REPORTING_COMPONENT = 'lbsync';
const MAX_EVENT_MESSAGE = 1024;

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

  /** Read, change the finalizer list, write it back conditioned on the resourceVersion read; re-read on 409. */
  private async editFinalizers(
    namespace: string,
    name: string,
    edit: (current: string[]) => string[] | null,
    signal: AbortSignal | undefined,
    allowGone: boolean,
  ): Promise<V1Service | null> {
    const call: ApiCall = { verb: 'patch', resource: 'services', namespace, name };
    const attempts = this.o.finalizerAttempts ?? 5;
    const isConflict = (err: unknown): boolean => httpStatus(err) === 409;
    const isGone = (err: unknown): boolean => allowGone && httpStatus(err) === 404;
    for (let attempt = 1; ; attempt++) {
      let svc: V1Service;
      try {
        svc = await this.retry(
          { verb: 'get', resource: 'services', namespace, name },
          signal,
          () =>
            this.conn.core.readNamespacedService({ namespace, name }, this.conn.options(signal)),
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
        return await this.retry(
          call,
          signal,
          () =>
            this.conn.core.patchNamespacedService(
              { namespace, name, body },
              this.conn.options(signal, PatchStrategy.MergePatch),
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
        this.logger.info(
          { call: describeCall(call), attempt },
          'kubernetes: Service changed since read (409), re-reading',
        );
      }
    }
  }

  public async addFinalizer(
    namespace: string,
    name: string,
    finalizer: string,
    signal?: AbortSignal,
  ): Promise<V1Service> {
    const svc = await this.editFinalizers(
      namespace,
      name,
      (f) => (f.includes(finalizer) ? null : [...f, finalizer]),
      signal,
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
    return this.editFinalizers(
      namespace,
      name,
      (f) => (f.includes(finalizer) ? f.filter((x) => x !== finalizer) : null),
      signal,
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
    const now = new Date();
    // Upstream's recorder names events `<object>.<unix nanos in hex>`; the sequence keeps two in one millisecond apart.
    const nanos = BigInt(now.getTime()) * 1_000_000n + (this.eventSeq++ % 1_000_000n);
    const body: CoreV1Event = {
      metadata: { name: `${ref.name}.${nanos.toString(16)}`, namespace: ref.namespace },
      involvedObject: {
        apiVersion: 'v1',
        kind: 'Service',
        namespace: ref.namespace,
        name: ref.name,
        ...(ref.uid === undefined ? {} : { uid: ref.uid }),
        ...(ref.resourceVersion === undefined ? {} : { resourceVersion: ref.resourceVersion }),
      },
      type,
      reason,
      message:
        message.length > MAX_EVENT_MESSAGE
          ? `${message.slice(0, MAX_EVENT_MESSAGE - 3)}...`
          : message,
      source: { component: REPORTING_COMPONENT },
      reportingComponent: REPORTING_COMPONENT,
      reportingInstance: this.o.reportingInstance ?? hostname(),
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
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
