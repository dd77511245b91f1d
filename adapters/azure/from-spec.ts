import { SpecError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Spec } from '../../core/spec.js';
import type { AzureClients } from './clients.js';
import { VmssSource } from './source.js';
import { RunCommandTransport, type RunCommandTransportOptions } from './transport.js';

/** Transport knobs that are not in the spec (timeouts, polling); env or tests set them. */
export type AzureTransportTuning = Pick<
  RunCommandTransportOptions,
  'inlineLimitBytes' | 'pollMs' | 'busyAttempts' | 'busyBackoffMs' | 'commandTimeoutMs'
>;

/** The VMSS source and Run Command transport for a `cloud: azure` spec. */
export function azureAdaptersFromSpec(
  spec: Spec,
  clients: AzureClients,
  applyScript: string,
  logger?: Logger,
  tuning: AzureTransportTuning = {},
): { readonly source: VmssSource; readonly transport: RunCommandTransport } {
  const workers = spec.workers.azure;
  const lbs = spec.loadBalancers.azure;
  if (workers === undefined || lbs === undefined) {
    throw new SpecError('spec', [
      'workers.azure and loadBalancers.azure: required for the Azure path',
    ]);
  }
  return {
    source: new VmssSource({
      subscriptionId: workers.subscriptionId,
      scaleSets: workers.scaleSets,
      clients,
      ...(logger !== undefined ? { logger } : {}),
    }),
    transport: new RunCommandTransport({
      clients,
      subscriptionId: lbs.subscriptionId ?? workers.subscriptionId,
      lb: lbs,
      lbApply: spec.lbApply,
      applyScript,
      ...(logger !== undefined ? { logger } : {}),
      ...tuning,
    }),
  };
}
