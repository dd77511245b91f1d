/*
 * `lbsync resync --cloud gcp` and `lbsync status --cloud gcp`.
 *
 * resyncGcp(options):
 *   --url <function-url>   the deployed lbsyncGcpResync HTTP function (required)
 *   --dry-run              resolve, render and plan only; print the plan per LB
 *   --force                apply even when a guard refuses (empty or shrunken worker set)
 *   --id-token <token>     identity token to send (default: LBSYNC_ID_TOKEN, else one
 *                          minted for the URL from Application Default Credentials,
 *                          e.g. `gcloud auth application-default login` or a service account)
 *   POSTs {"lbsync":"resync","force":…,"dryRun":…} with `Authorization: Bearer <id token>`
 *   and returns the function's JSON report (per-LB outcomes), also when some LB failed.
 *
 * statusGcp(spec):
 *   Reads each LB's live generation, sha256 and server count from the guest
 *   attribute lbsync/status that the LB agent publishes, through the Compute
 *   API with this machine's Application Default Credentials.
 */
import { GoogleAuth } from 'google-auth-library';
import {
  closeGcpClients,
  createGcpClients,
  type GcpClientOptions,
} from '../adapters/gcp/clients.js';
import { gcpAdaptersFromSpec } from '../adapters/gcp/from-spec.js';
import { errorMessage, LbsyncError } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import type { Spec } from '../core/spec.js';
import { postResync } from './http-resync.js';
import { type LbStatus, readLbStatuses } from './lb-status.js';

/** Options of `lbsync resync --cloud gcp`. */
export interface GcpResyncOptions {
  readonly url: string;
  readonly dryRun?: boolean;
  readonly force?: boolean;
  readonly idToken?: string;
}

/** One LB's live state, as `lbsync status` prints it. */
export type GcpLbStatus = LbStatus;

/** The CLI could not reach the function, or the function failed without a report. */
export class GcpCliError extends LbsyncError {
  public constructor(message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, options);
    this.name = 'GcpCliError';
  }
}

async function identityToken(url: string, given?: string): Promise<string> {
  const token = given ?? process.env.LBSYNC_ID_TOKEN;
  if (token !== undefined && token !== '') return token;
  try {
    const client = await new GoogleAuth().getIdTokenClient(new URL(url).origin);
    return await client.idTokenProvider.fetchIdToken(new URL(url).origin);
  } catch (err) {
    throw new GcpCliError(
      `cannot mint an identity token for ${url}: ${errorMessage(err)}; pass --id-token "$(gcloud auth print-identity-token)"`,
      { cause: err },
    );
  }
}

/** Call the deployed HTTP function and return its JSON report (per-LB outcomes). */
export async function resyncGcp(options: GcpResyncOptions): Promise<unknown> {
  const token = await identityToken(options.url, options.idToken);
  return postResync({
    url: options.url,
    headers: { authorization: `Bearer ${token}` },
    force: options.force === true,
    dryRun: options.dryRun === true,
    timeoutMs: 600_000,
    makeError: (message, o) => new GcpCliError(message, o),
  });
}

/** Live generation, sha256 and server count of every LB in the spec. */
export async function statusGcp(
  spec: Spec,
  clientOptions: GcpClientOptions = {},
): Promise<readonly GcpLbStatus[]> {
  const clients = createGcpClients(clientOptions);
  try {
    const { transport } = gcpAdaptersFromSpec(spec, clients, silentLogger(), {
      retry: { attempts: 2, baseMs: 200 },
    });
    return await readLbStatuses(transport);
  } finally {
    await closeGcpClients(clients);
  }
}
