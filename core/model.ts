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
  /**
   * The id Kubernetes gives this machine in `Node.spec.providerID`
   * (`aws:///<zone>/<instance-id>`, the Azure VM or VMSS VM resource id,
   * `gce://<project>/<zone>/<name>`), set by cloud sources so the cluster's
   * nodes can be matched to the group's members.
   */
  readonly providerId?: string;
}

/** Per-service health check: an HTTP GET on each node (kube-proxy, or a Service's healthCheckNodePort). */
export interface HealthCheckDef {
  readonly port: number;
  readonly path: string;
  readonly interval: string;
  readonly rise: number;
  readonly fall: number;
}

/** Where a service definition came from. */
export type ServiceOrigin =
  | { readonly kind: 'spec' }
  | {
      readonly kind: 'kubernetes';
      readonly namespace: string;
      readonly name: string;
      readonly uid: string;
      /** The Service port (number) this frontend serves. */
      readonly port: number;
    };

/**
 * One frontend + backend pair on the LB: a `services:` entry of the spec, or
 * one TCP port of a Kubernetes Service of type LoadBalancer. Every string has
 * been validated before it reaches the template.
 */
export interface ServiceDef {
  /** Unique, HAProxy-safe (`fe_<name>` / `be_<name>`): `[a-z0-9]([a-z0-9-]*[a-z0-9])?`, at most 63. */
  readonly name: string;
  /** Listen address as HAProxy reads it: `:<port>`, `<ipv4>:<port>` or `[<ipv6>]:<port>`. */
  readonly bind: string;
  /** Port every worker answers on for this service. */
  readonly nodePort: number;
  readonly mode: 'tcp' | 'http';
  readonly proxyProtocol: 'none' | 'v1' | 'v2';
  /** null: no health check (the server is always considered up). */
  readonly healthCheck: HealthCheckDef | null;
  /** Overrides of the profile for this service only (Kubernetes annotations, sessionAffinity). */
  readonly balance?: 'roundrobin' | 'leastconn' | 'source' | 'first';
  readonly timeouts?: {
    readonly connect?: string;
    readonly client?: string;
    readonly server?: string;
    readonly tunnel?: string;
  };
  /** Client CIDRs allowed to connect (Kubernetes `loadBalancerSourceRanges`); absent: everyone. */
  readonly sourceRanges?: readonly string[];
  readonly origin: ServiceOrigin;
}

/** One LB VM a transport can reach. */
export interface LbTarget {
  /** Stable id (instance id, VM resource name, local name); appears in results and logs. */
  readonly id: string;
  /** The address clients reach the LB at, when the transport knows it (Service status). */
  readonly address?: string;
}

/** Why a sync runs. Every trigger means only "this group may have changed". */
export type SyncReason = 'event' | 'schedule' | 'manual';

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

// The apply script's outcomes and result line belong to the LB-side contract.
export type { ApplyOutcome, ApplyResult } from './apply-contract.js';
