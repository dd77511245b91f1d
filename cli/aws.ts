/*
 * `lbsync resync --cloud aws`.
 *
 * resyncAws(options):
 *   --function <name|arn>  the deployed lbsync function (required)
 *   --region <region>      its region (default: AWS_REGION / the SDK's chain)
 *   --dry-run              resolve, render and plan only; print the plan per LB
 *   --force                apply even when a guard refuses (empty or shrunken worker set)
 *   Invokes the function synchronously (RequestResponse) with
 *   {"lbsync":"resync","force":…,"dryRun":…} and returns its JSON result
 *   (per-LB outcomes). A function error becomes an AwsCliError.
 *
 * It uses the standard SDK configuration: credentials chain, AWS_REGION,
 * AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_LAMBDA. `lbsync status` reads the LBs
 * of any spec through its own transport (cli/lb-status.ts).
 */
import { InvokeCommand, type InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import { describeAwsError, isRetryableAwsError } from '../adapters/aws/errors.js';
import { LbsyncError } from '../core/errors.js';

/** Options of `lbsync resync --cloud aws`. */
export interface AwsResyncOptions {
  readonly function: string;
  readonly region?: string;
  readonly dryRun?: boolean;
  readonly force?: boolean;
}

/** The CLI could not invoke the function, or the function failed. */
export class AwsCliError extends LbsyncError {
  public constructor(message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, options);
    this.name = 'AwsCliError';
  }
}

/** Invoke the deployed function synchronously and return its result (per-LB outcomes). */
export async function resyncAws(options: AwsResyncOptions): Promise<unknown> {
  const client = new LambdaClient(options.region !== undefined ? { region: options.region } : {});
  try {
    const body = {
      lbsync: 'resync',
      force: options.force === true,
      dryRun: options.dryRun === true,
    };
    let res: InvokeCommandOutput;
    try {
      res = await client.send(
        new InvokeCommand({
          FunctionName: options.function,
          InvocationType: 'RequestResponse',
          Payload: new TextEncoder().encode(JSON.stringify(body)),
        }),
      );
    } catch (err) {
      throw new AwsCliError(`invoking ${options.function} failed: ${describeAwsError(err)}`, {
        cause: err,
        retryable: isRetryableAwsError(err),
      });
    }
    const text = res.Payload === undefined ? 'null' : new TextDecoder().decode(res.Payload);
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch {
      payload = text;
    }
    if (res.FunctionError !== undefined) {
      const p = (payload ?? {}) as { errorType?: string; errorMessage?: string };
      throw new AwsCliError(
        `${options.function} failed (${res.FunctionError}): ${p.errorType ?? 'Error'}: ${p.errorMessage ?? text}`,
        { retryable: true },
      );
    }
    return payload;
  } finally {
    client.destroy();
  }
}
