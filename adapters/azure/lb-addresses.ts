import { LbsyncError, type LbsyncErrorOptions } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { assertIpAddress } from '../../core/validate.js';
import { type AzureClients, primaryOf } from './clients.js';
import { describeAzureError, isRetryableAzureError } from './errors.js';

/*
 * The LB VMs' private IPs, for Service status (status.loadBalancer.ingress)
 * when the spec gives no kubernetes.ingress. Run Command does not report the
 * address, so it takes two ARM reads per VM: the VM (or scale set VM) for its
 * primary NIC's id, then that NIC for its primary ipConfiguration's
 * privateIPAddress. ARM keeps a NIC's private IP, dynamic or static, until
 * the NIC is deleted or its allocation changes (a deallocated VM keeps it),
 * so a found address is kept for the life of this object, one cold start;
 * a failed lookup is logged and tried again on the next run.
 */

/** One LB VM as the Run Command transport names it. */
export interface LbVmRef {
  /** The target id: the VM name, or `<scaleSet>_<instanceId>`. */
  readonly id: string;
  readonly resourceGroup: string;
  /** VM name, or the instance id of a scale set VM. */
  readonly vmName: string;
  readonly scaleSet?: string;
}

/** Options of `LbAddressBook`. */
export interface LbAddressBookOptions {
  readonly clients: AzureClients;
  /** Subscription of the LB VMs. */
  readonly subscriptionId: string;
  readonly logger?: Logger;
}

/** Reading an LB VM's private IP from ARM failed; only Service status waits for it. */
export class LbAddressError extends LbsyncError {
  public constructor(message: string, options: LbsyncErrorOptions = {}) {
    super(message, options);
    this.name = 'LbAddressError';
  }
}

/** Where a NIC lives, from its ARM id. */
type NicRef =
  | {
      readonly kind: 'nic';
      readonly subscriptionId: string;
      readonly resourceGroup: string;
      readonly name: string;
    }
  | {
      readonly kind: 'scale-set-nic';
      readonly subscriptionId: string;
      readonly resourceGroup: string;
      readonly scaleSet: string;
      readonly instanceId: string;
      readonly name: string;
    };

const NIC_ID =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Network\/networkInterfaces\/([^/]+)$/i;
const SCALE_SET_NIC_ID =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/virtualMachineScaleSets\/([^/]+)\/virtualMachines\/([^/]+)\/networkInterfaces\/([^/]+)$/i;

/** The NIC an ARM id names: a standalone NIC, or a Uniform scale set VM's. */
export function parseNicId(id: string): NicRef | undefined {
  const n = NIC_ID.exec(id);
  if (n !== null) {
    const [, subscriptionId = '', resourceGroup = '', name = ''] = n;
    return { kind: 'nic', subscriptionId, resourceGroup, name };
  }
  const s = SCALE_SET_NIC_ID.exec(id);
  if (s !== null) {
    const [, subscriptionId = '', resourceGroup = '', scaleSet = '', instanceId = '', name = ''] =
      s;
    return { kind: 'scale-set-nic', subscriptionId, resourceGroup, scaleSet, instanceId, name };
  }
  return undefined;
}

/** Each LB VM's private IP, looked up once and kept; best effort. */
export class LbAddressBook {
  private readonly known = new Map<string, string>();

  public constructor(private readonly o: LbAddressBookOptions) {}

  /**
   * The addresses of `vms` by target id. VMs not known yet are looked up in
   * parallel; one that fails is logged (one line naming it and why) and left
   * out. Never throws: the push does not depend on it.
   */
  public async addressesOf(
    vms: readonly LbVmRef[],
    signal?: AbortSignal,
  ): Promise<ReadonlyMap<string, string>> {
    await Promise.all(
      vms
        .filter((vm) => !this.known.has(vm.id))
        .map(async (vm) => {
          try {
            this.known.set(vm.id, await this.lookup(vm, signal));
          } catch (err) {
            this.o.logger?.warn(
              {
                stage: 'push',
                lb: vm.id,
                error: err instanceof LbAddressError ? err.message : describeAzureError(err),
              },
              `cannot read LB VM ${vm.id}'s private IP from ARM; Service status waits for the next run`,
            );
          }
        }),
    );
    return this.known;
  }

  /** VM (or scale set VM) -> primary NIC -> primary ipConfiguration's private IP. */
  private async lookup(vm: LbVmRef, signal?: AbortSignal): Promise<string> {
    const compute = this.o.clients.compute(this.o.subscriptionId);
    const what = vm.scaleSet !== undefined ? 'scale set VM' : 'VM';
    let nics: readonly { readonly id?: string; readonly primary?: boolean }[] | undefined;
    try {
      const got =
        vm.scaleSet !== undefined
          ? await compute.virtualMachineScaleSetVMs.get(vm.resourceGroup, vm.scaleSet, vm.vmName, {
              abortSignal: signal,
            })
          : await compute.virtualMachines.get(vm.resourceGroup, vm.vmName, { abortSignal: signal });
      nics = got.networkProfile?.networkInterfaces;
    } catch (err) {
      throw new LbAddressError(`reading the ${what} failed: ${describeAzureError(err)}`, {
        cause: err,
        retryable: isRetryableAzureError(err),
      });
    }
    const nicId = primaryOf(nics)?.id;
    if (nicId === undefined || nicId === '') {
      throw new LbAddressError(`the ${what} lists no network interface`);
    }
    const ref = parseNicId(nicId);
    if (ref === undefined) {
      throw new LbAddressError(`the ${what}'s network interface id ${nicId} is not a NIC's`);
    }
    const network = this.o.clients.network(ref.subscriptionId);
    let ip: string | undefined;
    try {
      const nic =
        ref.kind === 'nic'
          ? await network.networkInterfaces.get(ref.resourceGroup, ref.name, {
              abortSignal: signal,
            })
          : await network.networkInterfaces.getVirtualMachineScaleSetNetworkInterface(
              ref.resourceGroup,
              ref.scaleSet,
              ref.instanceId,
              ref.name,
              { abortSignal: signal },
            );
      ip = primaryOf(nic.ipConfigurations)?.privateIPAddress;
    } catch (err) {
      throw new LbAddressError(
        `reading network interface ${ref.name} failed: ${describeAzureError(err)}`,
        { cause: err, retryable: isRetryableAzureError(err) },
      );
    }
    if (ip === undefined || ip === '') {
      throw new LbAddressError(`network interface ${ref.name} has no private IP`);
    }
    try {
      return assertIpAddress(ip, `network interface ${ref.name} privateIPAddress`);
    } catch (err) {
      throw new LbAddressError(err instanceof Error ? err.message : String(err), { cause: err });
    }
  }
}
