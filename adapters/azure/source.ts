import { SourceError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Worker } from '../../core/model.js';
import type { WorkerSource } from '../../core/ports.js';
import { type AzureClients, primaryOf } from './clients.js';
import { describeAzureError, isRetryableAzureError } from './errors.js';

/** One configured scale set (the azure-vmss source's `scaleSets[]`). */
export interface ScaleSetRef {
  readonly resourceGroup: string;
  readonly name: string;
  readonly orchestration: 'uniform' | 'flexible';
}

/** Options for `VmssSource`. */
export interface VmssSourceOptions {
  readonly subscriptionId: string;
  readonly scaleSets: readonly ScaleSetRef[];
  readonly clients: AzureClients;
  readonly logger?: Logger;
}

interface InstanceStatus {
  readonly name: string;
  /** The VM's ARM id as returned, which is the Kubernetes providerID after `azure://`. */
  readonly id: string;
  readonly serving: boolean;
}

interface StatusLike {
  readonly code?: string;
}

/** The group name a worker of `ss` carries (logs, webhook settle checks). */
export function scaleSetGroup(ss: Pick<ScaleSetRef, 'resourceGroup' | 'name'>): string {
  return `${ss.resourceGroup}/${ss.name}`;
}

/** The ARM resource id of a scale set. */
export function scaleSetId(subscriptionId: string, ss: ScaleSetRef): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${ss.resourceGroup}/providers/Microsoft.Compute/virtualMachineScaleSets/${ss.name}`;
}

/**
 * Workers from VM Scale Sets. Uniform: the scale set's VMs (with instance
 * view, for power state) joined to the scale set's NIC listing on the VM id.
 * Flexible: the resource group's VMs filtered by scale set, joined to the
 * resource group's NICs (two paged lists instead of one GET per VM, which
 * matters at 2,000 workers). Only VMs with provisioning state Succeeded and
 * power state running serve; every list follows `nextLink` (the SDK pages).
 */
export class VmssSource implements WorkerSource {
  public constructor(private readonly options: VmssSourceOptions) {}

  /** Every serving worker of every configured scale set, resolved in parallel. */
  public async resolve(signal?: AbortSignal): Promise<readonly Worker[]> {
    const lists = await Promise.all(
      this.options.scaleSets.map((ss) => this.resolveOne(ss, signal)),
    );
    return lists.flat();
  }

  private async resolveOne(ss: ScaleSetRef, signal?: AbortSignal): Promise<readonly Worker[]> {
    const started = performance.now();
    try {
      const statuses =
        ss.orchestration === 'uniform'
          ? await this.uniformStatuses(ss, signal)
          : await this.flexibleStatuses(ss, signal);
      const nics =
        ss.orchestration === 'uniform'
          ? this.options.clients
              .network(this.options.subscriptionId)
              .networkInterfaces.listVirtualMachineScaleSetNetworkInterfaces(
                ss.resourceGroup,
                ss.name,
                {
                  abortSignal: signal,
                },
              )
          : this.options.clients
              .network(this.options.subscriptionId)
              .networkInterfaces.list(ss.resourceGroup, { abortSignal: signal });
      const workers: Worker[] = [];
      const seen = new Set<string>();
      let skipped = 0;
      for await (const nic of nics) {
        const vmId = nic.virtualMachine?.id?.toLowerCase();
        if (vmId === undefined) continue;
        const status = statuses.get(vmId);
        if (status === undefined) continue; // another scale set's or a standalone VM's NIC
        if (!status.serving) {
          skipped++;
          continue;
        }
        // A VM can have several NICs: the primary one (or the first) carries the worker IP.
        if (seen.has(vmId) && nic.primary !== true) continue;
        const ip = primaryOf(nic.ipConfigurations)?.privateIPAddress;
        if (ip === undefined || ip === '') continue;
        if (seen.has(vmId)) {
          const at = workers.findIndex((w) => w.id === status.name);
          if (at >= 0) workers.splice(at, 1);
        }
        seen.add(vmId);
        workers.push({
          id: status.name,
          address: ip,
          state: 'serving',
          group: scaleSetGroup(ss),
          providerId: `azure://${status.id}`,
        });
      }
      this.options.logger?.debug(
        {
          stage: 'resolve',
          group: scaleSetGroup(ss),
          orchestration: ss.orchestration,
          vms: statuses.size,
          serving: workers.length,
          notServing: skipped,
          ms: Math.round(performance.now() - started),
        },
        'listed scale set',
      );
      return workers;
    } catch (err) {
      throw new SourceError(
        `listing scale set ${scaleSetGroup(ss)} (${ss.orchestration}) failed: ${describeAzureError(err)}`,
        { cause: err, retryable: isRetryableAzureError(err) },
      );
    }
  }

  private async uniformStatuses(
    ss: ScaleSetRef,
    signal?: AbortSignal,
  ): Promise<Map<string, InstanceStatus>> {
    const out = new Map<string, InstanceStatus>();
    const vms = this.options.clients
      .compute(this.options.subscriptionId)
      .virtualMachineScaleSetVMs.list(ss.resourceGroup, ss.name, {
        expand: 'instanceView',
        abortSignal: signal,
      });
    for await (const vm of vms) {
      if (vm.id === undefined) continue;
      out.set(vm.id.toLowerCase(), {
        name: vm.name ?? `${ss.name}_${vm.instanceId}`,
        id: vm.id,
        serving: isServing(vm.provisioningState, vm.instanceView?.statuses),
      });
    }
    return out;
  }

  private async flexibleStatuses(
    ss: ScaleSetRef,
    signal?: AbortSignal,
  ): Promise<Map<string, InstanceStatus>> {
    const out = new Map<string, InstanceStatus>();
    const id = scaleSetId(this.options.subscriptionId, ss);
    const vms = this.options.clients
      .compute(this.options.subscriptionId)
      .virtualMachines.list(ss.resourceGroup, {
        filter: `'virtualMachineScaleSet/id' eq '${id}'`,
        expand: 'instanceView',
        abortSignal: signal,
      });
    for await (const vm of vms) {
      // The filter is the API's; checking again keeps a lax server from leaking VMs in.
      if (
        vm.id === undefined ||
        vm.virtualMachineScaleSet?.id?.toLowerCase() !== id.toLowerCase()
      ) {
        continue;
      }
      out.set(vm.id.toLowerCase(), {
        name: vm.name ?? vm.id.split('/').pop() ?? vm.id,
        id: vm.id,
        serving: isServing(vm.provisioningState, vm.instanceView?.statuses),
      });
    }
    return out;
  }
}

/**
 * Serving = provisioned successfully and powered on. A VM being created,
 * updated, deleted or stopped does not get new connections; the instance
 * view's PowerState is authoritative when present.
 */
function isServing(
  provisioningState: string | undefined,
  statuses: readonly StatusLike[] | undefined,
): boolean {
  if (provisioningState !== undefined && provisioningState !== 'Succeeded') return false;
  const power = statuses?.find((s) => s.code?.startsWith('PowerState/'))?.code;
  if (power !== undefined) return power === 'PowerState/running';
  const prov = statuses?.find((s) => s.code?.startsWith('ProvisioningState/'))?.code;
  return prov === undefined || prov === 'ProvisioningState/succeeded';
}
