import { applyScriptOptions } from '../../core/apply-contract.js';
import { SpecError } from '../../core/errors.js';
import type { ProviderContext, ProviderFactory } from '../../core/provider.js';
import {
  closeGcpClients,
  createGcpClients,
  type GcpClientOptions,
  type GcpClients,
} from './clients.js';
import type { MetadataTransportSpec, MigSourceSpec } from './provider.js';
import { MigSource } from './source.js';
import { MetadataTransport, type MetadataTransportOptions } from './transport.js';

/** Knobs of the GCP provider that are not in the spec (`tuning.gcp`, or LBSYNC_GCP_* env). */
export type GcpTuning = Pick<
  MetadataTransportOptions,
  'agentTimeoutMs' | 'pollMs' | 'fingerprintAttempts' | 'retry' | 'chunkBytes'
> & {
  /** How the Compute clients are built (tests point them at the fake). */
  readonly clientOptions?: GcpClientOptions;
  /** Base URL of the Container API for GKE discovery (default https://container.googleapis.com). */
  readonly containerEndpoint?: string;
};

const clientsByOptions = new Map<GcpClientOptions | undefined, GcpClients>();

/** `tuning.gcp` over LBSYNC_GCP_AGENT_TIMEOUT_MS. */
export function tuningOf(ctx: ProviderContext): GcpTuning {
  const t = Number(ctx.env.LBSYNC_GCP_AGENT_TIMEOUT_MS);
  return {
    ...(Number.isFinite(t) && t > 0 ? { agentTimeoutMs: t } : {}),
    ...((ctx.tuning.gcp ?? {}) as GcpTuning),
  };
}

/** The Compute clients, once per process per client options (Application Default Credentials by default). */
export function gcpClientsFor(ctx: ProviderContext): GcpClients {
  const options = tuningOf(ctx).clientOptions;
  let c = clientsByOptions.get(options);
  if (c === undefined) {
    const made = createGcpClients(options);
    clientsByOptions.set(options, made);
    ctx.onClose(async () => {
      clientsByOptions.delete(options);
      await closeGcpClients(made);
    });
    c = made;
  }
  return c;
}

/** The MIG source of a gcp-mig section. */
export function migSourceOf(section: MigSourceSpec, ctx: ProviderContext): MigSource {
  const t = tuningOf(ctx);
  return new MigSource({
    project: section.project,
    groups: section.groups,
    clients: gcpClientsFor(ctx),
    logger: ctx.logger,
    ...(t.retry !== undefined ? { retry: t.retry } : {}),
  });
}

/** The metadata transport of a gcp-metadata section. */
export function metadataTransportOf(
  section: MetadataTransportSpec,
  ctx: ProviderContext,
): MetadataTransport {
  const workers = ctx.spec.workers as Partial<MigSourceSpec>;
  const project = section.project ?? (workers.source === 'gcp-mig' ? workers.project : undefined);
  if (project === undefined) {
    throw new SpecError('spec', [
      'loadBalancers.project: required when the workers do not come from gcp-mig',
    ]);
  }
  const { clientOptions: _o, containerEndpoint: _c, ...tuning } = tuningOf(ctx);
  return new MetadataTransport({
    project,
    instances: section.instances,
    clients: gcpClientsFor(ctx),
    apply: applyScriptOptions(ctx.spec),
    logger: ctx.logger,
    ...tuning,
  });
}

/** Builds the gcp-mig source. */
export const createSource: ProviderFactory['createSource'] = async (_name, section, ctx) =>
  migSourceOf(section as MigSourceSpec, ctx);

/** Builds the gcp-metadata transport. */
export const createTransport: ProviderFactory['createTransport'] = async (_name, section, ctx) =>
  metadataTransportOf(section as MetadataTransportSpec, ctx);
