/** Clouds lbsync knows. `local` runs everything on this machine (demo, tests). */
export type Cloud = 'aws' | 'azure' | 'gcp' | 'local';

/**
 * A worker node the LB forwards to. `serving` workers take new connections;
 * `draining` ones keep their config line with weight 0 so in-flight sessions
 * finish while no new ones arrive.
 */
export interface Worker {
  /** Stable cloud id (EC2 instance id, VMSS instance name, MIG instance name); names the HAProxy server. */
  readonly id: string;
  /** Private IPv4 or IPv6 address HAProxy dials. */
  readonly address: string;
  readonly state: 'serving' | 'draining';
  /** Group (ASG, scale set, MIG) the worker belongs to. */
  readonly group?: string;
  readonly zone?: string;
}

/** One LB VM a transport can reach. */
export interface LbTarget {
  /** Stable id (instance id, VM resource name, local name); appears in results and logs. */
  readonly id: string;
}

/** Why a sync runs. Every trigger means only "this group may have changed". */
export type SyncReason = 'event' | 'schedule' | 'manual' | 'lifecycle';

/** What every entry point turns its input into. */
export interface SyncRequest {
  readonly reason: SyncReason;
  /** Group the event named, for logs; resolution always covers every configured group. */
  readonly group?: string;
  /** Skip the guards (manual runs only). */
  readonly force?: boolean;
  /** Resolve, render and plan, but push nothing. */
  readonly dryRun?: boolean;
  /** Provider event id, for log correlation. */
  readonly eventId?: string;
}

/** What an LB reports about its live config. */
export interface LiveState {
  /** Generation last applied; 0 when lbsync never applied there. */
  readonly generation: number;
  /** sha256 of the live config file, or null when absent. */
  readonly sha256: string | null;
  /** Number of `server` lines in the live config. */
  readonly servers: number;
  /** Worker ids in the live config, when the transport can read them cheaply. */
  readonly workerIds?: readonly string[];
  /** The live config text, when the transport can read it cheaply (local). */
  readonly text?: string;
}

/** Results the LB-side apply script can report. */
export type ApplyOutcome =
  | 'applied'
  | 'unchanged'
  | 'stale'
  | 'invalid'
  | 'rejected'
  | 'rolled-back'
  | 'failed'
  | 'busy'
  | 'status';

/** The JSON line the apply script prints last. */
export interface ApplyResult {
  readonly result: ApplyOutcome;
  readonly generation: number;
  readonly sha256: string | null;
  readonly servers: number;
  readonly ms: number;
  readonly message?: string;
}
