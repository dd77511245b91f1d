/*
 * `lbsync resync --cloud aws` and `lbsync status --cloud aws`.
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
 * statusAws(spec):
 *   Reads each LB's live generation, sha256 and server count with the apply
 *   script's --status, over SSM Run Command, from this machine's credentials.
 *
 * Both use the standard SDK configuration: credentials chain, AWS_REGION,
 * AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_LAMBDA, AWS_ENDPOINT_URL_SSM, …
 */
import { InvokeCommand, type InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import { createAwsClients, destroyAwsClients } from '../adapters/aws/clients.js';
import { describeAwsError, isRetryableAwsError } from '../adapters/aws/errors.js';
import { SsmTransport } from '../adapters/aws/transport.js';
import { loadApplyScript, loadDrainScript } from '../core/entry.js';
import { LbsyncError } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import type { Spec } from '../core/spec.js';
import { type LbStatus, readLbStatuses } from './lb-status.js';

/** Options of `lbsync resync --cloud aws`. */
export interface AwsResyncOptions {
  readonly function: string;
  readonly region?: string;
  readonly dryRun?: boolean;
  readonly force?: boolean;
}

/** One LB's live state, as `lbsync status` prints it. */
export type AwsLbStatus = LbStatus;

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

/** Each LB's live generation, sha256 and server count, read over SSM. */
export async function statusAws(spec: Spec): Promise<readonly AwsLbStatus[]> {
  const lb = spec.loadBalancers.aws;
  if (lb === undefined) throw new AwsCliError('the spec has no loadBalancers.aws section');
  const clients = createAwsClients({
    region: spec.workers.aws?.region ?? process.env.AWS_REGION ?? 'us-east-1',
  });
  try {
    const transport = new SsmTransport({
      ssm: clients.ssm,
      ec2: clients.ec2,
      s3: clients.s3,
      lb,
      lbApply: spec.lbApply,
      runtimeSocket: spec.runtimeSocket,
      applyScript: await loadApplyScript(),
      drainScript: await loadDrainScript(),
      logger: silentLogger(),
    });
    return await readLbStatuses(transport);
  } finally {
    destroyAwsClients(clients);
  }
}
