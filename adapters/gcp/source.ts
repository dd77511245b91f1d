import { SourceError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Worker } from '../../core/model.js';
import type { WorkerSource } from '../../core/ports.js';
import {
  type GcpClients,
  gcpErrorMessage,
  httpStatusOf,
  isRetryableStatus,
  type RetryOptions,
  withRetries,
} from './clients.js';

/** One managed instance group: zonal (`zone`) or regional (`region`). */
export interface MigRef {
  readonly name: string;
  readonly zone?: string;
  readonly region?: string;
}

/** Options for `MigSource`. */
export interface MigSourceOptions {
  readonly project: string;
  readonly groups: readonly MigRef[];
  readonly clients: GcpClients;
  readonly logger?: Logger;
  /** Instance names per `instances.list` filter; keeps the filter short. */
  readonly batchSize?: number;
  readonly retry?: RetryOptions;
  /** Per-call deadline handed to the client. */
  readonly callTimeoutMs?: number;
}

/** What lbsync does with a managed instance, from its `currentAction` and status. */
export type MemberRole = 'serving' | 'draining' | 'skip';

/**
 * Only a RUNNING instance with no current action serves. Instances the MIG is
 * creating are not up yet and are left out. Every other action (DELETING,
 * ABANDONING, RECREATING, RESTARTING, STOPPING, SUSPENDING, REFRESHING,
 * VERIFYING) drains: the server line stays with weight 0, so sessions in
 * flight finish and no new ones arrive until the instance is back to NONE.
 */
export function memberRole(currentAction: string, instanceStatus: string): MemberRole {
  if (currentAction === 'NONE' || currentAction === '') {
    return instanceStatus === 'RUNNING' ? 'serving' : 'skip';
  }
  if (currentAction === 'CREATING' || currentAction === 'CREATING_WITHOUT_RETRIES') return 'skip';
  return 'draining';
}

interface Member {
  readonly name: string;
  readonly zone: string;
  readonly group: string;
  readonly role: 'serving' | 'draining';
}

/**
 * Workers of several zonal and regional MIGs. `listManagedInstances` gives
 * membership and state; internal IPs come from `instances.list` per zone with
 * a name filter, `batchSize` names per request rather than one `instances.get`
 * per instance. An instance the MIG lists but the zone no longer has (deleted
 * in between) is left out.
 */
export class MigSource implements WorkerSource {
  private readonly batchSize: number;
  private readonly retry: RetryOptions;
  private readonly timeout: number;

  public constructor(private readonly o: MigSourceOptions) {
    this.batchSize = o.batchSize ?? 100;
    this.retry = o.retry ?? { attempts: 4, baseMs: 250 };
    this.timeout = o.callTimeoutMs ?? 30_000;
  }

  /** Every serving and draining worker of every configured MIG. */
  public async resolve(signal?: AbortSignal): Promise<readonly Worker[]> {
    const lists = await Promise.all(this.o.groups.map((g) => this.members(g, signal)));
    const members = lists.flat();
    const ips = await this.addresses(members, signal);
    const workers: Worker[] = [];
    const missing: string[] = [];
    for (const m of members) {
      const address = ips.get(`${m.zone}/${m.name}`);
      if (address === undefined) {
        missing.push(m.name);
        continue;
      }
      workers.push({
        id: m.name,
        address,
        state: m.role,
        group: m.group,
        zone: m.zone,
        // How GKE (and any cluster on GCE) names the node of this instance.
        providerId: `gce://${this.o.project}/${m.zone}/${m.name}`,
      });
    }
    if (missing.length > 0) {
      this.o.logger?.warn(
        { stage: 'resolve', missing: missing.slice(0, 20), count: missing.length },
        'instances listed by a MIG are gone or have no internal IP; left out',
      );
    }
    return workers;
  }

  private async members(g: MigRef, signal?: AbortSignal): Promise<Member[]> {
    const where = g.zone !== undefined ? `zones/${g.zone}` : `regions/${g.region}`;
    const out: Member[] = [];
    try {
      const list = await withRetries(
        async () => {
          const page: { instance: string; action: string; status: string }[] = [];
          const iterable =
            g.zone !== undefined
              ? this.o.clients.zonalGroups.listManagedInstancesAsync(
                  { project: this.o.project, zone: g.zone, instanceGroupManager: g.name },
                  { timeout: this.timeout, autoPaginate: false },
                )
              : this.o.clients.regionalGroups.listManagedInstancesAsync(
                  { project: this.o.project, region: g.region, instanceGroupManager: g.name },
                  { timeout: this.timeout, autoPaginate: false },
                );
          // Bounded: a regional MIG holds at most 2,000 instances.
          for await (const mi of iterable) {
            page.push({
              instance: mi.instance ?? '',
              action: String(mi.currentAction ?? 'NONE'),
              status: String(mi.instanceStatus ?? ''),
            });
            if (page.length > 10_000) break;
          }
          return page;
        },
        this.retry,
        signal,
      );
      for (const mi of list) {
        const m = /\/zones\/([a-z0-9-]+)\/instances\/([a-z0-9-]+)$/.exec(mi.instance);
        if (m?.[1] === undefined || m[2] === undefined) continue;
        const role = memberRole(mi.action, mi.status);
        if (role === 'skip') continue;
        out.push({ name: m[2], zone: m[1], group: g.name, role });
      }
    } catch (err) {
      throw this.sourceError(`listing managed instances of ${where}/${g.name}`, err);
    }
    return out;
  }

  private async addresses(
    members: readonly Member[],
    signal?: AbortSignal,
  ): Promise<Map<string, string>> {
    const byZone = new Map<string, string[]>();
    for (const m of members) {
      const names = byZone.get(m.zone) ?? [];
      names.push(m.name);
      byZone.set(m.zone, names);
    }
    const batches: { zone: string; names: string[] }[] = [];
    for (const [zone, names] of byZone) {
      const unique = [...new Set(names)].sort();
      for (let i = 0; i < unique.length; i += this.batchSize) {
        batches.push({ zone, names: unique.slice(i, i + this.batchSize) });
      }
    }
    const ips = new Map<string, string>();
    // A few batches at a time: 2,000 workers are 20 requests, not 2,000.
    const parallel = 4;
    for (let i = 0; i < batches.length; i += parallel) {
      await Promise.all(
        batches.slice(i, i + parallel).map(async (b) => {
          const filter = b.names.map((n) => `(name = "${n}")`).join(' OR ');
          try {
            const found = await withRetries(
              async () => {
                const got: [string, string][] = [];
                for await (const inst of this.o.clients.instances.listAsync(
                  { project: this.o.project, zone: b.zone, filter, maxResults: 500 },
                  { timeout: this.timeout, autoPaginate: false },
                )) {
                  const ip = inst.networkInterfaces?.[0]?.networkIP;
                  if (inst.name && ip) got.push([inst.name, ip]);
                  if (got.length > b.names.length) break;
                }
                return got;
              },
              this.retry,
              signal,
            );
            for (const [name, ip] of found) ips.set(`${b.zone}/${name}`, ip);
          } catch (err) {
            throw this.sourceError(`listing instances in zones/${b.zone}`, err);
          }
        }),
      );
    }
    return ips;
  }

  private sourceError(what: string, err: unknown): SourceError {
    const status = httpStatusOf(err);
    return new SourceError(
      `${what} in project ${this.o.project} failed${status ? ` (HTTP ${status})` : ''}: ${gcpErrorMessage(err)}`,
      { cause: err, retryable: isRetryableStatus(status) },
    );
  }
}
