import {
  type Instance as AsgInstance,
  type AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
} from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { SourceError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Worker } from '../../core/model.js';
import type { WorkerSource } from '../../core/ports.js';
import { sleep } from '../../core/retry.js';
import { describeAwsError, isRetryableAwsError } from './errors.js';

/** DescribeAutoScalingGroups takes at most 50 names per call; MaxRecords is at most 100. */
const ASG_NAMES_PER_CALL = 50;
const ASG_MAX_RECORDS = 100;
/** EC2 filters take up to 200 values; paginate with MaxResults (not allowed with InstanceIds). */
const EC2_IDS_PER_CALL = 200;
const EC2_MAX_RESULTS = 1000;

/** Options for `AsgSource`. */
export interface AsgSourceOptions {
  readonly autoScaling: AutoScalingClient;
  readonly ec2: EC2Client;
  readonly groups: readonly string[];
  readonly logger: Logger;
  /**
   * Instances to serve while still in `Pending:Wait`: the launch lifecycle
   * action names them, and the hook waits for the LB to know them.
   */
  readonly admit?: ReadonlySet<string>;
  /** Tries to see an instance the group lists but EC2 does not know yet (eventual consistency). */
  readonly consistencyTries?: number;
  readonly consistencyDelayMs?: number;
}

/** An ASG member and what lbsync makes of it. */
export interface AsgMember {
  readonly id: string;
  readonly group: string;
  readonly lifecycleState: string;
  readonly health: string;
  readonly zone?: string;
  /** `serving`, `draining`, or null when the LB should not know it. */
  readonly role: Worker['state'] | null;
}

/**
 * Workers from one or more Auto Scaling groups: DescribeAutoScalingGroups
 * (batched, paginated) gives membership and lifecycle state, then
 * DescribeInstances (filtered, paginated) gives private IPs.
 *
 *   InService + Healthy                       serving
 *   Pending:Proceed, admitted Pending:Wait    serving (a launch hook completed / is completing)
 *   Terminating, Terminating:Wait,
 *   EnteringStandby, Detaching,
 *   InService + Unhealthy                     draining (in-flight sessions finish)
 *   anything else (Pending, Standby, Warmed:*, Terminated …)  absent
 */
export class AsgSource implements WorkerSource {
  public constructor(private readonly options: AsgSourceOptions) {}

  /** A copy of this source that also serves `ids` while they wait in `Pending:Wait`. */
  public admitting(ids: readonly string[]): AsgSource {
    return new AsgSource({
      ...this.options,
      admit: new Set([...(this.options.admit ?? []), ...ids]),
    });
  }

  /** Every group member with its lifecycle state and role (no IPs). */
  public async members(signal?: AbortSignal): Promise<readonly AsgMember[]> {
    const out: AsgMember[] = [];
    const groups = [...new Set(this.options.groups)];
    for (let i = 0; i < groups.length; i += ASG_NAMES_PER_CALL) {
      const names = groups.slice(i, i + ASG_NAMES_PER_CALL);
      let token: string | undefined;
      const seen = new Set<string>();
      do {
        const res = await this.call('DescribeAutoScalingGroups', () =>
          this.options.autoScaling.send(
            new DescribeAutoScalingGroupsCommand({
              AutoScalingGroupNames: names,
              MaxRecords: ASG_MAX_RECORDS,
              ...(token !== undefined ? { NextToken: token } : {}),
            }),
            { abortSignal: signal },
          ),
        );
        for (const g of res.AutoScalingGroups ?? []) {
          const group = g.AutoScalingGroupName ?? '';
          seen.add(group);
          for (const inst of g.Instances ?? []) {
            if (inst.InstanceId === undefined) continue;
            out.push(this.member(group, inst));
          }
        }
        token = res.NextToken;
      } while (token !== undefined && token !== '');
      for (const name of names) {
        if (!seen.has(name)) {
          this.options.logger.warn(
            { stage: 'resolve', group: name },
            `Auto Scaling group ${name} not found; it contributes no workers`,
          );
        }
      }
    }
    return out;
  }

  /** Serving and draining workers of every configured group, with private IPs. */
  public async resolve(signal?: AbortSignal): Promise<readonly Worker[]> {
    const members = (await this.members(signal)).filter((m) => m.role !== null);
    const ips = await this.privateIps(
      members.map((m) => m.id),
      signal,
    );
    const workers: Worker[] = [];
    for (const m of members) {
      const address = ips.get(m.id);
      if (address === undefined) {
        this.options.logger.warn(
          { stage: 'resolve', group: m.group, instance: m.id, lifecycleState: m.lifecycleState },
          `instance ${m.id} has no private IP (yet); skipped`,
        );
        continue;
      }
      workers.push({
        id: m.id,
        address,
        state: m.role ?? 'serving',
        group: m.group,
        ...(m.zone !== undefined ? { zone: m.zone } : {}),
        // How EKS (and any cluster on EC2) names the node of this instance.
        providerId: `aws:///${m.zone ?? ''}/${m.id}`,
      });
    }
    return workers;
  }

  /** Private IPs by instance id; ids EC2 never shows (after brief retries) are left out. */
  public async privateIps(
    ids: readonly string[],
    signal?: AbortSignal,
  ): Promise<ReadonlyMap<string, string>> {
    const found = new Map<string, string>();
    let missing = [...new Set(ids)];
    const tries = this.options.consistencyTries ?? 4;
    for (let attempt = 1; attempt <= tries && missing.length > 0; attempt++) {
      if (attempt > 1) {
        await sleep(
          (this.options.consistencyDelayMs ?? 250) * (attempt - 1),
          signal,
          'waiting for EC2',
        );
      }
      const seen = new Set<string>();
      for (let i = 0; i < missing.length; i += EC2_IDS_PER_CALL) {
        const batch = missing.slice(i, i + EC2_IDS_PER_CALL);
        let token: string | undefined;
        do {
          const res = await this.call('DescribeInstances', () =>
            this.options.ec2.send(
              new DescribeInstancesCommand({
                Filters: [{ Name: 'instance-id', Values: batch }],
                MaxResults: EC2_MAX_RESULTS,
                ...(token !== undefined ? { NextToken: token } : {}),
              }),
              { abortSignal: signal },
            ),
          );
          for (const r of res.Reservations ?? []) {
            for (const inst of r.Instances ?? []) {
              if (inst.InstanceId === undefined) continue;
              seen.add(inst.InstanceId);
              if (inst.PrivateIpAddress !== undefined && inst.PrivateIpAddress !== '') {
                found.set(inst.InstanceId, inst.PrivateIpAddress);
              }
            }
          }
          token = res.NextToken;
        } while (token !== undefined && token !== '');
      }
      missing = missing.filter((id) => !seen.has(id));
      if (missing.length > 0) {
        this.options.logger.debug(
          { stage: 'resolve', missing: missing.length, attempt },
          'instances not visible in EC2 yet (eventual consistency)',
        );
      }
    }
    return found;
  }

  private member(group: string, inst: AsgInstance): AsgMember {
    const id = inst.InstanceId ?? '';
    const lifecycleState = inst.LifecycleState ?? 'unknown';
    const health = inst.HealthStatus ?? 'Healthy';
    return {
      id,
      group,
      lifecycleState,
      health,
      ...(inst.AvailabilityZone !== undefined ? { zone: inst.AvailabilityZone } : {}),
      role: roleOf(lifecycleState, health, this.options.admit?.has(id) === true),
    };
  }

  private async call<T>(api: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new SourceError(`${api} failed: ${describeAwsError(err)}`, {
        cause: err,
        retryable: isRetryableAwsError(err),
      });
    }
  }
}

/** What the LB should do with an instance in `state`. Exported for tests. */
export function roleOf(state: string, health: string, admitted: boolean): Worker['state'] | null {
  switch (state) {
    case 'InService':
      // An unhealthy instance is about to be replaced: let its sessions finish.
      return health.toLowerCase() === 'unhealthy' ? 'draining' : 'serving';
    case 'Pending:Proceed':
      return 'serving';
    case 'Pending:Wait':
      return admitted ? 'serving' : null;
    case 'Terminating':
    case 'Terminating:Wait':
    case 'EnteringStandby':
    case 'Detaching':
      return 'draining';
    default:
      return null;
  }
}
