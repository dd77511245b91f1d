/*
 * `lbsync resync --cloud gcp`.
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
 */
import { GoogleAuth } from 'google-auth-library';
import { errorMessage, LbsyncError } from '../core/errors.js';
import { postResync } from './http-resync.js';

/** Options of `lbsync resync --cloud gcp`. */
export interface GcpResyncOptions {
  readonly url: string;
  readonly dryRun?: boolean;
  readonly force?: boolean;
  readonly idToken?: string;
}

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
