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
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { InvokeCommand, type InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import { SignatureV4 } from '@smithy/signature-v4';
import { describeAwsError, isRetryableAwsError } from '../adapters/aws/errors.js';
import { errorMessage, LbsyncError } from '../core/errors.js';
import { classifyAnswer, type ResyncTarget, unreachable } from '../core/resync.js';
import { postForDelivery } from './http-resync.js';

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

/** SHA-256 (HMAC with a secret) over node:crypto, in the shape SigV4 signers take. */
class NodeSha256 {
  private hash: Hash | Hmac;

  public constructor(private readonly secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = this.fresh();
  }

  private fresh(): Hash | Hmac {
    if (this.secret === undefined) return createHash('sha256');
    const key =
      typeof this.secret === 'string'
        ? this.secret
        : this.secret instanceof ArrayBuffer
          ? new Uint8Array(this.secret)
          : new Uint8Array(this.secret.buffer, this.secret.byteOffset, this.secret.byteLength);
    return createHmac('sha256', key);
  }

  public update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(
      typeof data === 'string'
        ? data
        : data instanceof ArrayBuffer
          ? new Uint8Array(data)
          : new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
  }

  public async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }

  public reset(): void {
    this.hash = this.fresh();
  }
}

/** The region of a function URL (`<id>.lambda-url.<region>.on.aws`), if it is one. */
export function functionUrlRegion(url: string): string | undefined {
  return /^[a-z0-9]+\.lambda-url\.([a-z0-9-]+)\.on\.aws$/.exec(new URL(url).hostname)?.[1];
}

/** Options of the watcher's AWS targets. */
export interface AwsWatchTargetOptions {
  /** A Lambda function URL with AuthType AWS_IAM; or give `function` to use Invoke. */
  readonly url?: string;
  /** The function name or ARN (Lambda Invoke, RequestResponse). */
  readonly function?: string;
  /** Default: the function URL's region, else the SDK chain (AWS_REGION). */
  readonly region?: string;
}

/**
 * The `lbsync watch --target aws` ResyncTarget. With a function URL: a
 * SigV4-signed POST (service `lambda`), credentials from the SDK's default
 * chain (in EKS: IRSA or Pod Identity, a role allowed only
 * lambda:InvokeFunctionUrl on this function). With a function name: Lambda
 * Invoke, which needs lambda:InvokeFunction instead.
 */
export function awsWatchTarget(o: AwsWatchTargetOptions): ResyncTarget {
  const region = o.region ?? (o.url !== undefined ? functionUrlRegion(o.url) : undefined);
  const client = new LambdaClient(region !== undefined ? { region } : {});
  if (o.url !== undefined) {
    const url = new URL(o.url);
    if (region === undefined) {
      throw new AwsCliError(`cannot tell the region of ${o.url}; pass --region`);
    }
    const signer = new SignatureV4({
      service: 'lambda',
      region,
      credentials: client.config.credentials,
      sha256: NodeSha256,
    });
    return {
      description: `aws function URL (SigV4, IAM) -> ${o.url}`,
      async send(body, signal) {
        const text = JSON.stringify(body);
        let headers: Record<string, string>;
        try {
          const signed = await signer.sign({
            method: 'POST',
            protocol: url.protocol,
            hostname: url.hostname,
            ...(url.port !== '' ? { port: Number(url.port) } : {}),
            path: url.pathname,
            query: Object.fromEntries(url.searchParams),
            headers: { host: url.host, 'content-type': 'application/json' },
            body: text,
          });
          headers = signed.headers;
        } catch (err) {
          return { ...unreachable(url.href, err), detail: `cannot sign: ${errorMessage(err)}` };
        }
        return postForDelivery(url.href, headers, text, signal);
      },
      close: () => client.destroy(),
    };
  }
  const name = o.function;
  if (name === undefined) throw new AwsCliError('the AWS target needs a function URL or name');
  return {
    description: `aws Lambda Invoke -> ${name}`,
    async send(body, signal) {
      let res: InvokeCommandOutput;
      try {
        res = await client.send(
          new InvokeCommand({
            FunctionName: name,
            InvocationType: 'RequestResponse',
            Payload: new TextEncoder().encode(JSON.stringify(body)),
          }),
          signal !== undefined ? { abortSignal: signal } : {},
        );
      } catch (err) {
        return {
          delivered: false,
          retry: isRetryableAwsError(err),
          status:
            (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0,
          detail: `invoking ${name} failed: ${describeAwsError(err)}`,
        };
      }
      const text = res.Payload === undefined ? '' : new TextDecoder().decode(res.Payload);
      let payload: unknown;
      try {
        payload = JSON.parse(text);
      } catch {
        payload = undefined;
      }
      if (res.FunctionError !== undefined) {
        // The handler throws when a retry could help (SyncFailedError).
        const p = (payload ?? {}) as { errorType?: string; errorMessage?: string };
        return {
          delivered: true,
          retry: true,
          status: res.StatusCode ?? 200,
          detail: `${name} failed: ${p.errorType ?? 'Error'}: ${p.errorMessage ?? text.slice(0, 200)}`,
        };
      }
      return classifyAnswer(res.StatusCode ?? 200, payload, text);
    },
    close: () => client.destroy(),
  };
}
