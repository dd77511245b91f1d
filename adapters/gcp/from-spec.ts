import { SpecError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Spec } from '../../core/spec.js';
import type { GcpClients } from './clients.js';
import { MigSource } from './source.js';
import { MetadataTransport, type MetadataTransportOptions } from './transport.js';

/** Transport knobs that are not in the spec (timeouts, polling); env or tests set them. */
export type GcpTransportTuning = Pick<
  MetadataTransportOptions,
  'agentTimeoutMs' | 'pollMs' | 'fingerprintAttempts' | 'retry' | 'chunkBytes'
>;

/** The MIG source and metadata transport for a `cloud: gcp` spec. */
export function gcpAdaptersFromSpec(
  spec: Spec,
  clients: GcpClients,
  logger?: Logger,
  tuning: GcpTransportTuning = {},
): { readonly source: MigSource; readonly transport: MetadataTransport } {
  const workers = spec.workers.gcp;
  const lbs = spec.loadBalancers.gcp;
  if (workers === undefined || lbs === undefined) {
    throw new SpecError('spec', ['workers.gcp and loadBalancers.gcp: required for the GCP path']);
  }
  return {
    source: new MigSource({
      project: workers.project,
      groups: workers.groups,
      clients,
      ...(logger !== undefined ? { logger } : {}),
    }),
    transport: new MetadataTransport({
      project: lbs.project ?? workers.project,
      instances: lbs.instances,
      clients,
      apply: spec.lbApply,
      ...(logger !== undefined ? { logger } : {}),
      ...tuning,
    }),
  };
}
