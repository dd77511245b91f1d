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
import { readFile } from 'node:fs/promises';
import { GoogleAuth } from 'google-auth-library';
import { errorMessage, LbsyncError } from '../core/errors.js';
import type { ResyncTarget } from '../core/resync.js';
import { httpResyncTarget, postResync } from './http-resync.js';

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

/** Options of the watcher's GCP target. */
export interface GcpWatchTargetOptions {
  /** The lbsyncGcpResync function URL. */
  readonly url: string;
  /** The token audience (default: the URL's origin, as Cloud Run expects). */
  readonly audience?: string;
  /**
   * Read the identity token from this file on every request (a token minted
   * elsewhere, e.g. `gcloud auth print-identity-token`); default: mint one
   * from Application Default Credentials, which on GKE with Workload Identity
   * is the metadata server speaking for the watcher's Google service account.
   */
  readonly idTokenFile?: string;
}

/** The `lbsync watch --target gcp` ResyncTarget: POST with a Bearer identity token. */
export function gcpWatchTarget(o: GcpWatchTargetOptions): ResyncTarget {
  const audience = o.audience ?? new URL(o.url).origin;
  // One client: it caches the token until shortly before its `exp`.
  let client: Promise<{ getRequestHeaders(url?: string): Promise<Headers> }> | undefined;
  const headers = async (): Promise<Record<string, string>> => {
    if (o.idTokenFile !== undefined) {
      const token = (await readFile(o.idTokenFile, 'utf8')).trim();
      if (token === '') throw new GcpCliError(`${o.idTokenFile} is empty`);
      return { authorization: `Bearer ${token}` };
    }
    client ??= new GoogleAuth().getIdTokenClient(audience).catch((err: unknown) => {
      client = undefined;
      throw err;
    });
    const h = await (await client).getRequestHeaders(o.url);
    const value = h.get('authorization');
    if (value === null)
      throw new GcpCliError('Application Default Credentials gave no identity token');
    return { authorization: value };
  };
  return httpResyncTarget({
    url: o.url,
    description: `gcp identity token (audience ${audience}) -> ${o.url}`,
    headers,
  });
}
