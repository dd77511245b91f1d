import { readFileSync } from 'node:fs';
import { SpecError } from '../../core/errors.js';
import type { ProviderContext, ProviderFactory } from '../../core/provider.js';
import { RemoteScriptTransport } from '../../core/remote-script.js';
import { type AzureClients, createAzureClients, staticTokenCredential } from './clients.js';
import {
  lbAddressesNeeded,
  type RunCommandTransportSpec,
  type VmssSourceSpec,
} from './provider.js';
import { RunCommandShell, type RunCommandShellOptions } from './shell.js';
import { VmssSource } from './source.js';

/** Knobs of the Azure provider that are not in the spec (`tuning.azure`, or LBSYNC_AZURE_* env). */
export type AzureTuning = Pick<
  RunCommandShellOptions,
  'inlineLimitBytes' | 'pollMs' | 'busyAttempts' | 'busyBackoffMs'
> & {
  /** Clients to use instead of building them from the environment. */
  readonly clients?: AzureClients;
  /** Whole-command deadline (POST, waits and polling); default 240 s. */
  readonly commandTimeoutMs?: number;
};

let envClients: AzureClients | undefined;

function numberEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** `tuning.azure` over the LBSYNC_AZURE_* environment. */
export function tuningOf(ctx: ProviderContext): AzureTuning {
  const e = ctx.env;
  const fromEnv = {
    pollMs: numberEnv(e, 'LBSYNC_AZURE_POLL_MS'),
    busyBackoffMs: numberEnv(e, 'LBSYNC_AZURE_BUSY_BACKOFF_MS'),
    inlineLimitBytes: numberEnv(e, 'LBSYNC_AZURE_INLINE_LIMIT_BYTES'),
  };
  return {
    ...Object.fromEntries(Object.entries(fromEnv).filter(([, v]) => v !== undefined)),
    ...((ctx.tuning.azure ?? {}) as AzureTuning),
  };
}

/**
 * The ARM clients, once per process: DefaultAzureCredential, or a fixed
 * token (LBSYNC_AZURE_ACCESS_TOKEN, local runs); LBSYNC_AZURE_ENDPOINT for
 * sovereign clouds; LBSYNC_AZURE_CA_FILE adds a trusted CA.
 */
export function azureClientsFor(ctx: ProviderContext): AzureClients {
  const injected = tuningOf(ctx).clients;
  if (injected !== undefined) return injected;
  const e = ctx.env;
  envClients ??= createAzureClients({
    ...(e.LBSYNC_AZURE_ACCESS_TOKEN
      ? { credential: staticTokenCredential(e.LBSYNC_AZURE_ACCESS_TOKEN) }
      : {}),
    ...(e.LBSYNC_AZURE_ENDPOINT ? { endpoint: e.LBSYNC_AZURE_ENDPOINT } : {}),
    ...(e.LBSYNC_AZURE_CA_FILE ? { ca: readFileSync(e.LBSYNC_AZURE_CA_FILE, 'utf8') } : {}),
  });
  return envClients;
}

/** The VM Scale Set source of an azure-vmss section. */
export function vmssSourceOf(section: VmssSourceSpec, ctx: ProviderContext): VmssSource {
  return new VmssSource({
    subscriptionId: section.subscriptionId,
    scaleSets: section.scaleSets,
    clients: azureClientsFor(ctx),
    logger: ctx.logger,
  });
}

/** The Run Command transport of an azure-run-command section. */
export async function runCommandTransportOf(
  section: RunCommandTransportSpec,
  ctx: ProviderContext,
): Promise<RemoteScriptTransport> {
  const workers = ctx.spec.workers as Partial<VmssSourceSpec>;
  const subscriptionId =
    section.subscriptionId ??
    (workers.source === 'azure-vmss' ? workers.subscriptionId : undefined);
  if (subscriptionId === undefined) {
    throw new SpecError('spec', [
      'loadBalancers.subscriptionId: required when the workers do not come from azure-vmss',
    ]);
  }
  const { clients: _c, commandTimeoutMs, ...shellTuning } = tuningOf(ctx);
  const scripts = await ctx.scripts();
  return new RemoteScriptTransport(
    new RunCommandShell({
      clients: azureClientsFor(ctx),
      subscriptionId,
      lb: section,
      logger: ctx.logger,
      resolveAddresses: lbAddressesNeeded(ctx.spec),
      ...shellTuning,
    }),
    {
      lbApply: ctx.spec.lbApply,
      runtimeSocket: ctx.spec.runtimeSocket,
      applyScript: scripts.apply,
      drainScript: scripts.drain,
      logger: ctx.logger,
      commandTimeoutMs: commandTimeoutMs ?? 240_000,
    },
  );
}

/** Builds the azure-vmss source. */
export const createSource: ProviderFactory['createSource'] = async (_name, section, ctx) =>
  vmssSourceOf(section as VmssSourceSpec, ctx);

/** Builds the azure-run-command transport. */
export const createTransport: ProviderFactory['createTransport'] = async (_name, section, ctx) =>
  runCommandTransportOf(section as RunCommandTransportSpec, ctx);
