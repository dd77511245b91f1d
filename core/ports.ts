import type { ApplyResult, LbTarget, LiveState, Worker } from './model.js';
import type { Payload } from './payload.js';

/**
 * Where workers come from. One implementation per cloud (ASG, VMSS, MIG) plus
 * the local one. Always returns the full current membership, never a delta.
 */
export interface WorkerSource {
  /** Every worker of every configured group; draining ones flagged. Empty is a valid answer. */
  resolve(signal?: AbortSignal): Promise<readonly Worker[]>;
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
