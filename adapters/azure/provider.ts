import { z } from 'zod';
import { type ProviderDescriptor, sourceSection, transportSection } from '../../core/provider.js';
import { specFields } from '../../core/spec.js';

/*
 * The Azure provider's spec sections and event constants. No SDK here: every
 * function bundle reads this; adapters/azure/factory.ts builds the adapters.
 */

const { safeId } = specFields;

const subscriptionId = z.uuid('must be a subscription id (uuid)');

const scaleSet = z.strictObject({
  resourceGroup: safeId('resource group'),
  name: safeId('scale set name'),
  orchestration: z.enum(['uniform', 'flexible']).default('uniform'),
});

/** `workers: { source: azure-vmss, subscriptionId, scaleSets }`: VM Scale Set instances. */
export const vmssSourceSchema = z.strictObject({
  source: z.literal('azure-vmss'),
  subscriptionId,
  scaleSets: z.array(scaleSet).min(1, 'name at least one scale set').max(50),
});

const lbVm = z.strictObject({
  resourceGroup: safeId('resource group'),
  name: safeId('VM name'),
  /** Set for an LB that is itself a scale set instance. */
  scaleSet: safeId('scale set name').optional(),
});

/** `loadBalancers: { transport: azure-run-command, vms, ... }`: LB VMs reached with Run Command. */
export const runCommandTransportSchema = z.strictObject({
  transport: z.literal('azure-run-command'),
  /** Subscription of the LB VMs; default: the azure-vmss source's (required with any other source). */
  subscriptionId: subscriptionId.optional(),
  vms: z.array(lbVm).min(1, 'name at least one LB VM').max(50),
  /** Blob container for payloads too large to travel inside a Run Command script. */
  staging: z
    .strictObject({
      containerUrl: z
        .url({ protocol: /^https$/, error: 'must be an https URL of a blob container' })
        .refine((u) => new URL(u).pathname.split('/').filter(Boolean).length >= 1, {
          message: 'must name a container, e.g. https://acct.blob.core.windows.net/lbsync',
        }),
      sasMinutes: z.number().int().min(1).max(60).default(15),
    })
    .optional(),
});

/** The azure-vmss source section. */
export type VmssSourceSpec = z.output<typeof vmssSourceSchema>;
/** The azure-run-command transport section. */
export type RunCommandTransportSpec = z.output<typeof runCommandTransportSchema>;

/** The Event Grid event types the Azure function acts on (events.ts; the stack subscribes to them). */
export const AZURE_EVENT_TYPES: readonly string[] = [
  'Microsoft.Resources.ResourceWriteSuccess',
  'Microsoft.Resources.ResourceDeleteSuccess',
  'Microsoft.Resources.ResourceActionSuccess',
];

/** The Azure provider. */
export const azureProvider: ProviderDescriptor = {
  name: 'azure',
  cloud: 'azure',
  sources: { 'azure-vmss': vmssSourceSchema },
  transports: { 'azure-run-command': runCommandTransportSchema },
  packages: ['@azure/*'],
  describe: {
    'azure-vmss': 'instances of VM Scale Sets, Uniform and Flexible (ARM compute + network)',
    'azure-run-command':
      'the action Run Command (RunShellScript) on the LB VMs; large payloads staged in Blob storage',
  },
  // The Run Command transport needs the LB VMs' subscription; only azure-vmss gives a default.
  refine: (spec, ctx) => {
    const lb = spec.loadBalancers as { transport?: unknown; subscriptionId?: unknown } | undefined;
    const workers = spec.workers as { source?: unknown } | undefined;
    if (
      lb?.transport === 'azure-run-command' &&
      lb.subscriptionId === undefined &&
      workers?.source !== 'azure-vmss'
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['loadBalancers', 'subscriptionId'],
        message: 'required when workers.source is not azure-vmss',
      });
    }
  },
  legacy: {
    key: 'azure',
    workers: (old) => ({ source: 'azure-vmss', ...(old as object) }),
    loadBalancers: (old) => ({ transport: 'azure-run-command', ...(old as object) }),
  },
};

/** The spec's azure-vmss workers section, or undefined when the workers come from elsewhere. */
export const vmssSection = (spec: {
  readonly workers: { readonly source: string };
}): VmssSourceSpec | undefined => sourceSection<VmssSourceSpec>(spec, 'azure-vmss');

/** The spec's azure-run-command section, or undefined when the LBs are reached otherwise. */
export const runCommandSection = (spec: {
  readonly loadBalancers: { readonly transport: string };
}): RunCommandTransportSpec | undefined =>
  transportSection<RunCommandTransportSpec>(spec, 'azure-run-command');

/**
 * Whether the Run Command transport looks up the LB VMs' private IPs: only
 * Service status uses them, and only when the spec has a kubernetes section
 * without kubernetes.ingress (which wins when set).
 */
export const lbAddressesNeeded = (spec: Readonly<Record<string, unknown>>): boolean => {
  const k = spec.kubernetes as { readonly ingress?: unknown } | undefined | null;
  return k !== undefined && k !== null && k.ingress === undefined;
};
