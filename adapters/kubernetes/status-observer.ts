import type { V1Service } from '@kubernetes/client-node';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { ServiceDef } from '../../core/model.js';
import type { SyncObserver } from '../../core/ports.js';
import type { SyncReport } from '../../core/sync.js';
import type { ClusterClient, ServiceRef } from './client.js';
import type { ClusterServiceSource } from './cluster.js';
import { LBSYNC_FINALIZER } from './services.js';
import type { IngressSpec } from './spec.js';
import { ingressEqual, ingressFor } from './status.js';

/*
 * What lbsync tells the cluster after each run, as the upstream service
 * controller does: its finalizer on every Service it serves, the LB
 * addresses in status.loadBalancer.ingress (ipMode Proxy) once every LB
 * serves the Service, Events (EnsuringLoadBalancer, EnsuredLoadBalancer,
 * SyncLoadBalancerFailed), and, for a deleted Service, the finalizer removed
 * only after every LB stopped serving it. A failure here is logged, never
 * thrown: the LBs are already in step, and the next run tries again.
 */

/** Options of `ServiceStatusObserver`. */
export interface StatusObserverOptions {
  /** Explicit ingress (spec `kubernetes.ingress`); else the LBs' addresses from the transport. */
  readonly ingress?: readonly IngressSpec[];
}

const refOf = (s: V1Service): ServiceRef => ({
  namespace: s.metadata?.namespace ?? 'default',
  name: s.metadata?.name ?? '',
  uid: s.metadata?.uid ?? '',
  ...(s.metadata?.resourceVersion !== undefined
    ? { resourceVersion: s.metadata.resourceVersion }
    : {}),
});
const keyOf = (s: V1Service): string => `${s.metadata?.namespace}/${s.metadata?.name}`;

/** Patches Service status, finalizers and Events after each run. */
export class ServiceStatusObserver implements SyncObserver {
  /** The last Warning message per Service uid, so a repeated refusal is one Event, not one a run. */
  private readonly warned = new Map<string, string>();

  public constructor(
    private readonly client: ClusterClient,
    private readonly services: ClusterServiceSource,
    private readonly o: StatusObserverOptions,
  ) {}

  /** EnsuringLoadBalancer for Services whose frontends are about to change on the LBs. */
  public async beforePush(
    _services: readonly ServiceDef[],
    log: Logger,
    signal?: AbortSignal,
  ): Promise<void> {
    const d = this.services.last;
    if (d === undefined) return;
    for (const s of d.accepted) {
      if ((s.status?.loadBalancer?.ingress ?? []).length > 0) continue;
      await this.event(s, 'Normal', 'EnsuringLoadBalancer', 'Ensuring load balancer', log, signal);
    }
  }

  /** Finalizers, status, cleanup and Events for the run that just ended. */
  public async afterSync(report: SyncReport, log: Logger, signal?: AbortSignal): Promise<void> {
    const d = this.services.last;
    if (d === undefined || report.dryRun) return;
    for (const s of d.needFinalizer) {
      await this.safely(log, `add the finalizer to ${keyOf(s)}`, () =>
        this.client.addFinalizer(refOf(s).namespace, refOf(s).name, LBSYNC_FINALIZER, signal),
      );
    }
    for (const r of [...d.refused, ...d.warnings]) {
      const svc = { metadata: { namespace: r.namespace, name: r.name, uid: r.uid } } as V1Service;
      await this.warnOnce(svc, `${r.reason}: ${r.message}`, log, signal);
    }
    if (!report.ok) {
      const why = report.results
        .filter((x) => !x.ok)
        .map((x) => `${x.lb}: ${x.outcome}${x.message ? ` (${x.message})` : ''}`)
        .join('; ');
      for (const s of d.accepted)
        await this.warnOnce(s, `SyncLoadBalancerFailed: ${why}`, log, signal);
      return;
    }
    const ingress = this.ingress(report, log);
    for (const s of d.accepted) {
      this.warned.delete(s.metadata?.uid ?? '');
      if (ingress === undefined || ingressEqual(s.status?.loadBalancer?.ingress, ingress)) continue;
      const ok = await this.safely(log, `patch the status of ${keyOf(s)}`, () =>
        this.client.patchServiceStatus(refOf(s).namespace, refOf(s).name, ingress, signal),
      );
      if (ok) {
        log.info(
          { stage: 'status', service: keyOf(s), ingress: ingress.map((i) => i.ip ?? i.hostname) },
          `service ${keyOf(s)}: status.loadBalancer.ingress set`,
        );
        const n = report.results.length;
        await this.event(
          s,
          'Normal',
          'EnsuredLoadBalancer',
          `Ensured load balancer on ${n} LB(s)`,
          log,
          signal,
        );
      }
    }
    // Every LB now runs a config without the deleted Services' frontends.
    for (const s of d.cleanup) {
      await this.safely(log, `remove the finalizer from ${keyOf(s)}`, () =>
        this.client.removeFinalizer(refOf(s).namespace, refOf(s).name, LBSYNC_FINALIZER, signal),
      );
      log.info(
        { stage: 'status', service: keyOf(s) },
        `service ${keyOf(s)}: frontends removed, finalizer released`,
      );
    }
  }

  private ingress(report: SyncReport, log: Logger): ReturnType<typeof ingressFor> | undefined {
    if (this.o.ingress !== undefined) return ingressFor(this.o.ingress);
    const addresses = report.results.map((r) => r.address).filter((a) => a !== undefined);
    if (addresses.length < report.results.length || addresses.length === 0) {
      log.warn(
        { stage: 'status' },
        "Service status held back: an LB's address could not be read (the transport logged why); it is published once every LB's is known, or set kubernetes.ingress",
      );
      return undefined;
    }
    return ingressFor(addresses);
  }

  private async warnOnce(
    s: V1Service,
    message: string,
    log: Logger,
    signal?: AbortSignal,
  ): Promise<void> {
    const uid = s.metadata?.uid ?? keyOf(s);
    if (this.warned.get(uid) === message) return;
    const [reason = 'SyncLoadBalancerFailed', ...rest] = message.split(': ');
    if (await this.event(s, 'Warning', reason, rest.join(': ') || message, log, signal)) {
      this.warned.set(uid, message);
    }
  }

  private event(
    s: V1Service,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    log: Logger,
    signal?: AbortSignal,
  ): Promise<boolean> {
    return this.safely(log, `record ${reason} on ${keyOf(s)}`, () =>
      this.client.createEvent(refOf(s), type, reason, message, signal),
    );
  }

  private async safely(log: Logger, what: string, fn: () => Promise<unknown>): Promise<boolean> {
    try {
      await fn();
      return true;
    } catch (err) {
      log.warn(
        { stage: 'status', error: errorMessage(err) },
        `cannot ${what}; the next run tries again`,
      );
      return false;
    }
  }
}
