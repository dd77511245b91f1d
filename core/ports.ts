import type { Logger } from './log.js';
import type { ApplyResult, LbTarget, LiveState, ServiceDef, Worker } from './model.js';
import type { Payload } from './payload.js';
import type { SyncReport } from './sync.js';

/**
 * Where workers come from. One implementation per cloud (ASG, VMSS, MIG) plus
 * the local one. Always returns the full current membership, never a delta.
 */
export interface WorkerSource {
  /** Every worker of every configured group; draining ones flagged. Empty is a valid answer. */
  resolve(signal?: AbortSignal): Promise<readonly Worker[]>;
  /**
   * A copy that also serves `ids`, machines a launch lifecycle hook holds
   * back until the LBs know them. Sources without lifecycle hooks omit it;
   * decorators forward it.
   */
  admitting?(ids: readonly string[]): WorkerSource;
  /** What the last resolve decided and why (excluded or draining nodes), for reports and the CLI. */
  notes?(): readonly DiscoveryNote[];
}

/** One decision a source made: a node left out or drained, a Service refused, and the rule why. */
export interface DiscoveryNote {
  readonly kind: 'node' | 'service';
  /** Node name, or `namespace/name` of a Service. */
  readonly name: string;
  readonly verdict: 'serving' | 'draining' | 'excluded' | 'accepted' | 'refused' | 'warning';
  /** The rule (`exclude-label`, `to-be-deleted-taint`, `PortConflict`, ...). */
  readonly rule: string;
  readonly detail: string;
}

/**
 * How a payload reaches an LB VM and how its result comes back (SSM Run
 * Command, Azure Run Command, GCP metadata + agent, a local subprocess).
 */
export interface Transport {
  /** The LB VMs this transport pushes to. */
  targets(signal?: AbortSignal): Promise<readonly LbTarget[]>;
  /** What is live on one LB right now. */
  status(target: LbTarget, signal?: AbortSignal): Promise<LiveState>;
  /** Run the apply contract on one LB; resolves with the script's result line. */
  apply(target: LbTarget, payload: Payload, signal?: AbortSignal): Promise<ApplyResult>;
}

/** What templates/lbsync-drain.sh reports for one LB (the LB-side contract). */
export type { DrainResult } from './apply-contract.js';

import type { DrainResult } from './apply-contract.js';

/**
 * Drains one server on an LB before its machine goes (lifecycle hooks): new
 * connections stop at once, in-flight sessions finish or a deadline passes.
 */
export interface Drainer {
  drain(
    target: LbTarget,
    server: string,
    seconds: number,
    signal?: AbortSignal,
  ): Promise<DrainResult>;
}

/** Services to serve besides the spec's static ones (Kubernetes Services of type LoadBalancer). */
export interface ServiceSource {
  /** The current set, validated; refusals are the source's to report. */
  resolve(signal?: AbortSignal): Promise<readonly ServiceDef[]>;
  /** What the last resolve accepted and refused, and why. */
  notes?(): readonly DiscoveryNote[];
}

/** Told the outcome of every sync (Kubernetes Service status, finalizers, events). */
export interface SyncObserver {
  /** Before the push (never in a dry run): the config that is about to reach the LBs. */
  beforePush?(services: readonly ServiceDef[], logger: Logger, signal?: AbortSignal): Promise<void>;
  /** Must not throw for a failure of its own: it logs it (the LBs are already in step). */
  afterSync(report: SyncReport, logger: Logger, signal?: AbortSignal): Promise<void>;
}
