/*
 * `lbsync resync --cloud azure`.
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
 */
import { LbsyncError } from '../core/errors.js';
import { postResync } from './http-resync.js';

/** Options of `lbsync resync --cloud azure`. */
export interface AzureResyncOptions {
  readonly url: string;
  readonly key?: string;
  readonly dryRun?: boolean;
  readonly force?: boolean;
}

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
    // One Run Command per LB takes ~20 s on Azure (a dry run two); the HTTP front end allows 230 s.
    timeoutMs: 240_000,
    hint: (status) =>
      status === 401 ? ' (wrong or missing function key: --key or LBSYNC_FUNCTION_KEY)' : '',
    makeError: (message, o) => new AzureCliError(message, o),
  });
}
