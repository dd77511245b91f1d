import {
  DescribeInstancesCommand,
  type DescribeInstancesCommandOutput,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  SendCommandCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { OutputLimits } from '../../core/command.js';
import { TransportError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { LbTarget } from '../../core/model.js';
import type { RemoteShell, RunOptions, ShellOutcome } from '../../core/remote-script.js';
import { type Backoff, DeadlineError, deadlineSignal, poll } from '../../core/retry.js';
import { awsErrorCode, describeAwsError, isRetryableAwsError } from './errors.js';
import type { SsmTransportSpec } from './provider.js';

/**
 * Inline limit for one SendCommand's `commands` text, in bytes. SSM refuses
 * documents over 64 KB, and the resolved parameters travel inside the
 * document, so lbsync keeps a margin below that. Above it, the payload is
 * staged in S3 (`loadBalancers.staging`). Measured with the apply script
 * and random ids (bench/aws.ts): 1,296 workers x 1 service or 458 x 10 fit.
 */
export const DEFAULT_INLINE_LIMIT_BYTES = 48 * 1024;

/**
 * GetCommandInvocation returns only the first 24,000 characters of stdout
 * and 8,000 of stderr; the wrapper keeps the result line inside them.
 */
export const SSM_LIMITS: OutputLimits = { stderrTail: 4000, stdoutTail: 2000, curlTail: 2000 };

/** Options for `SsmShell`. */
export interface SsmShellOptions {
  readonly ssm: SSMClient;
  readonly ec2: EC2Client;
  readonly s3: S3Client;
  readonly lb: SsmTransportSpec;
  readonly logger?: Logger;
  readonly inlineLimitBytes?: number;
  /** Delays between GetCommandInvocation polls; default 50 ms growing to 2 s. */
  readonly poll?: Backoff;
}

/**
 * SSM Run Command (`AWS-RunShellScript`) as a RemoteShell: one SendCommand
 * per LB, then GetCommandInvocation with backoff until it ends; payloads too
 * large to travel inline go to S3 behind a short-lived presigned URL.
 */
export class SsmShell implements RemoteShell {
  public readonly limits = SSM_LIMITS;
  public readonly stagingHint = 'loadBalancers.staging.bucket';
  public readonly inlineLimitBytes: number;

  public constructor(private readonly o: SsmShellOptions) {
    this.inlineLimitBytes = o.inlineLimitBytes ?? DEFAULT_INLINE_LIMIT_BYTES;
  }

  /** Staging is optional: without a bucket the transport says how to enable it. */
  public get canStage(): boolean {
    return this.o.lb.staging !== undefined;
  }

  /**
   * LB instances named by id, plus running instances carrying every configured
   * tag; sorted, each with its private IP when EC2 shows it (Service status
   * publishes it). Tagged instances come with their IP; ids are looked up
   * once more, best effort: a failed lookup only leaves the address out.
   */
  public async targets(signal?: AbortSignal): Promise<readonly LbTarget[]> {
    const addresses = new Map<string, string | undefined>(
      (this.o.lb.instanceIds ?? []).map((id) => [id, undefined]),
    );
    const tags = Object.entries(this.o.lb.tags ?? {});
    if (tags.length > 0) {
      try {
        await this.describe(
          {
            Filters: [
              ...tags.map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] })),
              { Name: 'instance-state-name', Values: ['running'] },
            ],
            MaxResults: 1000,
          },
          addresses,
          signal,
        );
      } catch (err) {
        throw new TransportError(`finding LB instances by tag failed: ${describeAwsError(err)}`, {
          cause: err,
          retryable: isRetryableAwsError(err),
        });
      }
    }
    const unknown = [...addresses].filter(([, ip]) => ip === undefined).map(([id]) => id);
    if (unknown.length > 0) {
      try {
        // MaxResults cannot be combined with InstanceIds; at most 50 ids are configured.
        await this.describe({ InstanceIds: unknown }, addresses, signal, false);
      } catch (err) {
        this.o.logger?.warn(
          { stage: 'push', error: describeAwsError(err) },
          'cannot read the LB instances’ private IPs; Service status waits for the next run',
        );
      }
    }
    return [...addresses.keys()].sort().map((id) => {
      const ip = addresses.get(id);
      return ip === undefined ? { id } : { id, address: ip };
    });
  }

  /** Page through DescribeInstances, recording each instance's private IP (new ids only if `add`). */
  private async describe(
    input: ConstructorParameters<typeof DescribeInstancesCommand>[0],
    into: Map<string, string | undefined>,
    signal: AbortSignal | undefined,
    add = true,
  ): Promise<void> {
    let token: string | undefined;
    do {
      const res: DescribeInstancesCommandOutput = await this.o.ec2.send(
        new DescribeInstancesCommand({
          ...input,
          ...(token !== undefined ? { NextToken: token } : {}),
        }),
        { abortSignal: signal },
      );
      for (const r of res.Reservations ?? []) {
        for (const i of r.Instances ?? []) {
          if (i.InstanceId === undefined || (!add && !into.has(i.InstanceId))) continue;
          into.set(i.InstanceId, i.PrivateIpAddress ?? into.get(i.InstanceId));
        }
      }
      token = res.NextToken;
    } while (token !== undefined && token !== '');
  }

  /** Size of SendCommand's serialized `Parameters` (what SSM's size limits count). */
  public commandBytes(command: string): number {
    return parameterBytes(command, this.o.lb.commandTimeoutSeconds);
  }

  /** Send one command to one instance and wait for it to finish. */
  public async run(target: LbTarget, command: string, o: RunOptions): Promise<ShellOutcome> {
    let commandId: string;
    try {
      const sent = await this.o.ssm.send(
        new SendCommandCommand({
          DocumentName: 'AWS-RunShellScript',
          InstanceIds: [target.id],
          Comment: `lbsync ${o.purpose}`.slice(0, 100),
          TimeoutSeconds: 60,
          Parameters: {
            commands: [command],
            executionTimeout: [String(Math.ceil(o.timeoutMs / 1000))],
          },
        }),
        { abortSignal: o.signal },
      );
      commandId = sent.Command?.CommandId ?? '';
      if (commandId === '') throw new Error('SendCommand returned no CommandId');
    } catch (err) {
      throw sendError(target.id, err);
    }
    return this.wait(target.id, commandId, o);
  }

  private async wait(instanceId: string, commandId: string, o: RunOptions): Promise<ShellOutcome> {
    const signal = deadlineSignal(Date.now() + o.timeoutMs, o.signal);
    let last = 'Pending';
    try {
      const done = await poll(
        async (check) => {
          let inv: GetCommandInvocationCommandOutput;
          try {
            inv = await this.o.ssm.send(
              new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }),
              { abortSignal: signal },
            );
          } catch (err) {
            // Right after SendCommand the invocation may not be visible yet
            // (eventual consistency); throttling is also worth another poll.
            const code = awsErrorCode(err);
            if (code === 'InvocationDoesNotExist' || isRetryableAwsError(err)) {
              if (signal?.aborted) throw new DeadlineError(`polling ${commandId}`, { cause: err });
              this.o.logger?.debug(
                { stage: 'deliver', lb: instanceId, commandId, poll: check, code },
                'invocation not readable yet',
              );
              return undefined;
            }
            throw new TransportError(
              `${instanceId}: GetCommandInvocation for ${commandId} failed: ${describeAwsError(err)}`,
              { cause: err, retryable: false },
            );
          }
          last = inv.Status ?? 'Pending';
          return ['Success', 'Failed', 'Cancelled', 'TimedOut', 'Cancelling'].includes(last)
            ? inv
            : undefined;
        },
        {
          backoff: this.o.poll ?? { initialMs: 50, maxMs: 2000, factor: 1.5 },
          waitFirst: true,
          ...(signal !== undefined ? { signal } : {}),
          what: `command ${commandId}`,
        },
      );
      const inv = done as GetCommandInvocationCommandOutput;
      const status = inv.Status ?? last;
      const detail = `command ${commandId} ${status} (${inv.StatusDetails ?? status}, exit ${inv.ResponseCode ?? -1})`;
      if (status !== 'Success' && status !== 'Failed') {
        // Never ran, or ran out of time: the LB's state is unknown, a retry may work.
        throw new TransportError(`${instanceId}: ${detail}`, { retryable: true });
      }
      return {
        stdout: inv.StandardOutputContent ?? '',
        stderr: inv.StandardErrorContent ?? '',
        detail,
      };
    } catch (err) {
      if (err instanceof DeadlineError) {
        throw new TransportError(
          `${instanceId}: command ${commandId} still ${last} after ${Math.round(o.timeoutMs / 1000)} s`,
          { cause: err, retryable: true },
        );
      }
      throw err;
    }
  }

  /** Upload the payload and hand out a presigned GET URL. */
  public async stage(key: string, text: string, signal?: AbortSignal): Promise<string> {
    const staging = this.o.lb.staging;
    if (staging === undefined) throw new TransportError('no staging bucket', { retryable: false });
    const objectKey = `${staging.prefix}${key}.payload`;
    try {
      await this.o.s3.send(
        new PutObjectCommand({
          Bucket: staging.bucket,
          Key: objectKey,
          Body: text,
          ContentType: 'text/plain',
        }),
        { abortSignal: signal },
      );
      const url = await getSignedUrl(
        this.o.s3,
        new GetObjectCommand({ Bucket: staging.bucket, Key: objectKey }),
        { expiresIn: staging.urlExpiresSeconds },
      );
      this.o.logger?.info(
        {
          stage: 'deliver',
          bucket: staging.bucket,
          key: objectKey,
          bytes: Buffer.byteLength(text),
        },
        'staged payload in S3',
      );
      return url;
    } catch (err) {
      throw new TransportError(
        `staging the payload in s3://${staging.bucket}/${objectKey} failed: ${describeAwsError(err)}`,
        { cause: err, retryable: isRetryableAwsError(err) },
      );
    }
  }
}

/** Size of SendCommand's serialized `Parameters` (what SSM's size limits count). */
export function parameterBytes(command: string, timeoutSeconds: number): number {
  return Buffer.byteLength(
    JSON.stringify({ commands: [command], executionTimeout: [String(timeoutSeconds)] }),
  );
}

function sendError(instanceId: string, err: unknown): TransportError {
  const code = awsErrorCode(err);
  if (code === 'InvalidInstanceId') {
    return new TransportError(
      `${instanceId} is not managed by SSM or its agent is not online (InvalidInstanceId): check that the SSM agent runs and the instance profile allows it (AmazonSSMManagedInstanceCore)`,
      { cause: err, retryable: false },
    );
  }
  if (code === 'MaxDocumentSizeExceeded' || code === 'InvalidParameters') {
    return new TransportError(
      `${instanceId}: SendCommand refused the command size: ${describeAwsError(err)}`,
      { cause: err, retryable: false },
    );
  }
  return new TransportError(`${instanceId}: SendCommand failed: ${describeAwsError(err)}`, {
    cause: err,
    retryable: isRetryableAwsError(err),
  });
}
