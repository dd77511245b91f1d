/*
 * `lbsync resync --cloud azure` and `lbsync status --cloud azure`.
 *
 * resyncAzure(options):
 *   --url <function-url>   the deployed `lbsync` HTTP function, e.g.
 *                          https://<app>.azurewebsites.net/api/lbsync (required)
 *   --key <key>            its function key (default: LBSYNC_FUNCTION_KEY); sent as
 *                          the `x-functions-key` header
 *   --dry-run              resolve, render and plan only; print the plan per LB
 *   --force                apply even when a guard refuses (empty or shrunken worker set)
 *   POSTs {"lbsync":"resync","force":…,"dryRun":…} and returns the function's JSON
 *   report (per-LB outcomes), also when some LB failed.
 *
 * statusAzure(spec):
 *   Runs the apply script's `--status` on every LB VM of the spec with Run
 *   Command, through ARM with this machine's credentials (DefaultAzureCredential:
 *   environment, managed identity, `az login`, ...). LBSYNC_AZURE_ENDPOINT,
 *   LBSYNC_AZURE_CA_FILE and LBSYNC_AZURE_ACCESS_TOKEN override the endpoint, add a
 *   trusted CA, or supply a fixed bearer token. Each status is one Run Command
 *   (about 20 s on Azure); LBs are queried in parallel.
 */
import { readFileSync } from 'node:fs';
import {
  type AzureClientOptions,
  createAzureClients,
  staticTokenCredential,
} from '../adapters/azure/clients.js';
import { type AzureTransportTuning, azureAdaptersFromSpec } from '../adapters/azure/from-spec.js';
import { loadApplyScript } from '../core/entry.js';
import { LbsyncError } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import type { Spec } from '../core/spec.js';
import { postResync } from './http-resync.js';
import { type LbStatus, readLbStatuses } from './lb-status.js';

/** Options of `lbsync resync --cloud azure`. */
export interface AzureResyncOptions {
  readonly url: string;
  readonly key?: string;
  readonly dryRun?: boolean;
  readonly force?: boolean;
}

/** One LB's live state, as `lbsync status` prints it. */
export type AzureLbStatus = LbStatus;

/** The CLI could not reach the function, or the function failed without a report. */
export class AzureCliError extends LbsyncError {
  public constructor(message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, options);
    this.name = 'AzureCliError';
  }
}

/** Call the deployed HTTP function and return its JSON report (per-LB outcomes). */
export async function resyncAzure(options: AzureResyncOptions): Promise<unknown> {
  const key = options.key ?? process.env.LBSYNC_FUNCTION_KEY;
  return postResync({
    url: options.url,
    headers: key !== undefined && key !== '' ? { 'x-functions-key': key } : {},
    force: options.force === true,
    dryRun: options.dryRun === true,
    // Two Run Commands per LB take ~40 s on Azure; the HTTP front end allows 230 s.
    timeoutMs: 240_000,
    hint: (status) =>
      status === 401 ? ' (wrong or missing function key: --key or LBSYNC_FUNCTION_KEY)' : '',
    makeError: (message, o) => new AzureCliError(message, o),
  });
}

/** Client options from LBSYNC_AZURE_* (all optional; DefaultAzureCredential otherwise). */
export function azureClientOptionsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): AzureClientOptions {
  return {
    ...(env.LBSYNC_AZURE_ACCESS_TOKEN
      ? { credential: staticTokenCredential(env.LBSYNC_AZURE_ACCESS_TOKEN) }
      : {}),
    ...(env.LBSYNC_AZURE_ENDPOINT ? { endpoint: env.LBSYNC_AZURE_ENDPOINT } : {}),
    ...(env.LBSYNC_AZURE_CA_FILE ? { ca: readFileSync(env.LBSYNC_AZURE_CA_FILE, 'utf8') } : {}),
  };
}

/** Live generation, sha256 and server count of every LB in the spec. */
export async function statusAzure(
  spec: Spec,
  clientOptions: AzureClientOptions = azureClientOptionsFromEnv(),
  tuning: AzureTransportTuning = {},
): Promise<readonly AzureLbStatus[]> {
  const clients = createAzureClients(clientOptions);
  const { transport } = azureAdaptersFromSpec(
    spec,
    clients,
    await loadApplyScript(),
    silentLogger(),
    tuning,
  );
  return readLbStatuses(transport);
}
