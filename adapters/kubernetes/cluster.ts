import type { V1Node, V1Service } from '@kubernetes/client-node';
import type { Logger } from '../../core/log.js';
import type { HealthCheckDef, ServiceDef, Worker } from '../../core/model.js';
import type { DiscoveryNote, ServiceSource, WorkerSource } from '../../core/ports.js';
import type { ClusterClient } from './client.js';
import type { EligibilityOptions } from './eligibility.js';
import { type MembershipDecision, matchWorkers, workersFromNodes } from './provider-id.js';
import { type DiscoveredServices, type Reserved, servicesFromCluster } from './services.js';

/*
 * What one run sees of the cluster: one list of Nodes and one of Services,
 * shared by the worker source, the Service source and the status observer
 * of that run. The worker source starts the run's lists (runSync resolves
 * workers first, in the same tick as Services); the others wait for them.
 */

/** The cluster's Nodes and Services at the start of one run. */
export interface ClusterSnapshot {
  readonly nodes: readonly V1Node[];
  readonly services: readonly V1Service[];
}

/** One list of each per run, shared by the run's sources and observer. */
export class ClusterView {
  private current: Promise<ClusterSnapshot> | undefined;

  public constructor(
    public readonly client: ClusterClient,
    private readonly want: { readonly nodes: boolean; readonly services: boolean },
  ) {}

  /** List the cluster again (a new run starts here). */
  public refresh(signal?: AbortSignal): Promise<ClusterSnapshot> {
    const p = Promise.all([
      this.want.nodes ? this.client.listNodes(signal) : Promise.resolve([]),
      this.want.services ? this.client.listServices(signal) : Promise.resolve([]),
    ]).then(([nodes, services]) => ({ nodes, services }));
    this.current = p;
    return p;
  }

  /** This run's snapshot (listed now when no source of the run has listed yet). */
  public latest(signal?: AbortSignal): Promise<ClusterSnapshot> {
    return this.current ?? this.refresh(signal);
  }
}

function nodeNote(d: MembershipDecision): DiscoveryNote {
  return {
    kind: 'node',
    name: d.node ?? d.worker ?? '?',
    verdict: d.verdict,
    rule: d.rule,
    detail:
      d.worker !== undefined && d.node !== undefined
        ? `${d.detail} (worker ${d.worker})`
        : d.detail,
  };
}

/** One log line per node left out or drained, naming the rule (the contract). */
function logDecisions(logger: Logger, decisions: readonly MembershipDecision[]): DiscoveryNote[] {
  const notes = decisions.filter((d) => d.verdict !== 'serving').map(nodeNote);
  for (const n of notes) {
    logger.info(
      { stage: 'resolve', node: n.name, verdict: n.verdict, rule: n.rule, detail: n.detail },
      `node ${n.name} ${n.verdict === 'draining' ? 'drains' : 'is left out'}: ${n.rule}`,
    );
  }
  return notes;
}

/**
 * A cloud group's members intersected with the cluster's Nodes (by
 * providerID, else InternalIP), each node's eligibility applied.
 */
export class ClusterMembershipSource implements WorkerSource {
  private last: DiscoveryNote[] = [];

  public constructor(
    private readonly inner: WorkerSource,
    private readonly view: ClusterView,
    private readonly options: EligibilityOptions,
    private readonly logger: Logger,
  ) {}

  /** Members and Nodes listed in parallel; a failure of either fails the run (retryable or not). */
  public async resolve(signal?: AbortSignal): Promise<readonly Worker[]> {
    const [members, cluster] = await Promise.all([
      this.inner.resolve(signal),
      this.view.refresh(signal),
    ]);
    const m = matchWorkers(members, cluster.nodes, this.options);
    this.last = logDecisions(this.logger, m.decisions);
    return m.workers;
  }

  /** Launch hooks reach the cloud source through the filter. */
  public admitting(ids: readonly string[]): WorkerSource {
    const inner = this.inner.admitting?.(ids) ?? this.inner;
    return new ClusterMembershipSource(inner, this.view, this.options, this.logger);
  }

  /** Nodes left out or drained by the last resolve. */
  public notes(): readonly DiscoveryNote[] {
    return this.last;
  }
}

/** Workers from the cluster alone: each eligible Node at its InternalIP. */
export class ClusterNodeSource implements WorkerSource {
  private last: DiscoveryNote[] = [];

  public constructor(
    private readonly view: ClusterView,
    private readonly options: EligibilityOptions,
    private readonly logger: Logger,
  ) {}

  /** The Nodes, as workers. */
  public async resolve(signal?: AbortSignal): Promise<readonly Worker[]> {
    const cluster = await this.view.refresh(signal);
    const m = workersFromNodes(cluster.nodes, this.options);
    this.last = logDecisions(this.logger, m.decisions);
    return m.workers;
  }

  /** Nodes left out or drained by the last resolve. */
  public notes(): readonly DiscoveryNote[] {
    return this.last;
  }
}

/** Options of `ClusterServiceSource`. */
export interface ClusterServiceOptions {
  readonly loadBalancerClass: string;
  readonly bindAddress?: string;
  readonly defaultHealthCheck: HealthCheckDef | null;
  readonly reserved: Reserved;
}

/** Services of type LoadBalancer of lbsync's class, as frontends. */
export class ClusterServiceSource implements ServiceSource {
  /** What the last resolve decided, for the status observer of the same run. */
  public last: DiscoveredServices | undefined;
  /** Every Service the last resolve listed (refused ones too), for `lbsync status`. */
  public listed: readonly V1Service[] = [];

  public constructor(
    private readonly view: ClusterView,
    private readonly options: ClusterServiceOptions,
    private readonly logger: Logger,
  ) {}

  /** This run's Services as frontends; refusals are logged here and become Events after the run. */
  public async resolve(signal?: AbortSignal): Promise<readonly ServiceDef[]> {
    const cluster = await this.view.latest(signal);
    const d = servicesFromCluster(cluster.services, this.options);
    this.last = d;
    this.listed = cluster.services;
    for (const r of [...d.refused, ...d.warnings]) {
      this.logger.warn(
        {
          stage: 'resolve',
          service: `${r.namespace}/${r.name}`,
          reason: r.reason,
          detail: r.message,
        },
        `service ${r.namespace}/${r.name}: ${r.reason}`,
      );
    }
    return d.services;
  }

  /** Accepted, refused and warned-about Services of the last resolve. */
  public notes(): readonly DiscoveryNote[] {
    const d = this.last;
    if (d === undefined) return [];
    const name = (s: V1Service): string => `${s.metadata?.namespace}/${s.metadata?.name}`;
    return [
      ...d.accepted.map((s) => ({
        kind: 'service' as const,
        name: name(s),
        verdict: 'accepted' as const,
        rule: 'loadBalancerClass',
        detail: `ports ${(s.spec?.ports ?? []).map((p) => p.port).join(', ')}`,
      })),
      ...d.refused.map((r) => ({
        kind: 'service' as const,
        name: `${r.namespace}/${r.name}`,
        verdict: 'refused' as const,
        rule: r.reason,
        detail: r.message,
      })),
      ...d.warnings.map((r) => ({
        kind: 'service' as const,
        name: `${r.namespace}/${r.name}`,
        verdict: 'warning' as const,
        rule: r.reason,
        detail: r.message,
      })),
    ];
  }
}
