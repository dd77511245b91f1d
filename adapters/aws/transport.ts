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
import { applyArgs } from '../../core/entry.js';
import { TransportError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { ApplyResult, LbTarget, LiveState } from '../../core/model.js';
import { type Payload, parseApplyResult } from '../../core/payload.js';
import type { Transport } from '../../core/ports.js';
import type { AwsLbSpec, LbApplySpec } from '../../core/spec.js';
import { applyCommand, type PayloadSource, scriptCommand } from './command.js';
import { type DrainResult, parseDrainResult } from './drain.js';
import { awsErrorCode, describeAwsError, isRetryableAwsError } from './errors.js';

/**
 * Inline limit for one SendCommand's `commands` text, in bytes. SSM refuses
 * documents over 64 KB, and the resolved parameters travel inside the
 * document, so lbsync keeps a margin below that. Above it, the payload is
 * staged in S3 (see `AwsLbSpec.staging`). Measured with the apply script
 * and random ids (bench/aws.ts): 1,296 workers x 1 service or 458 x 10 fit.
 */
export const DEFAULT_INLINE_LIMIT_BYTES = 48 * 1024;

/** Options for `SsmTransport`. */
export interface SsmTransportOptions {
  readonly ssm: SSMClient;
  readonly ec2: EC2Client;
  readonly s3: S3Client;
  readonly lb: AwsLbSpec;
  readonly lbApply: LbApplySpec;
  /** The spec's runtime socket (drain acts there). */
  readonly runtimeSocket: string | null;
  readonly applyScript: string;
  readonly drainScript: string;
  readonly logger: Logger;
  readonly inlineLimitBytes?: number;
  /** First poll delay after SendCommand; doubles up to `pollMaxMs`. */
  readonly pollInitialMs?: number;
  readonly pollMaxMs?: number;
}

/** What one Run Command ended with. */
export interface CommandOutcome {
  readonly commandId: string;
  readonly status: string;
  readonly statusDetails: string;
  readonly responseCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Pushes to LB VMs with SSM Run Command (`AWS-RunShellScript`): one command
 * per LB carrying the apply script and the payload (inline when it fits,
 * else a presigned S3 URL the LB fetches with curl), then polls
 * GetCommandInvocation with backoff until the script's result line is back.
 */
export class SsmTransport implements Transport {
  private readonly staged = new Map<string, Promise<string>>();

  public constructor(private readonly options: SsmTransportOptions) {}

  /** LB instances named by id, plus running instances carrying every configured tag; sorted. */
  public async targets(signal?: AbortSignal): Promise<readonly LbTarget[]> {
    const ids = new Set(this.options.lb.instanceIds ?? []);
    const tags = Object.entries(this.options.lb.tags ?? {});
    if (tags.length > 0) {
      let token: string | undefined;
      do {
        let res: DescribeInstancesCommandOutput;
        try {
          res = await this.options.ec2.send(
            new DescribeInstancesCommand({
              Filters: [
                ...tags.map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] })),
                { Name: 'instance-state-name', Values: ['running'] },
              ],
              MaxResults: 1000,
              ...(token !== undefined ? { NextToken: token } : {}),
            }),
            { abortSignal: signal },
          );
        } catch (err) {
          throw new TransportError(`finding LB instances by tag failed: ${describeAwsError(err)}`, {
            cause: err,
            retryable: isRetryableAwsError(err),
          });
        }
        for (const r of res.Reservations ?? []) {
          for (const i of r.Instances ?? []) if (i.InstanceId !== undefined) ids.add(i.InstanceId);
        }
        token = res.NextToken;
      } while (token !== undefined && token !== '');
    }
    return [...ids].sort().map((id) => ({ id }));
  }

  /** Run the apply script's `--status` on the LB. */
  public async status(target: LbTarget, signal?: AbortSignal): Promise<LiveState> {
    const out = await this.run(
      target.id,
      scriptCommand(this.options.applyScript, [...applyArgs(this.options.lbApply), '--status']),
      'lbsync status',
      signal,
    );
    const r = this.result(target.id, out);
    if (r.result !== 'status') {
      throw new TransportError(
        `${target.id}: status returned ${r.result}${r.message ? `: ${r.message}` : ''}`,
        {
          retryable: r.result === 'busy',
        },
      );
    }
    return { generation: r.generation, sha256: r.sha256, servers: r.servers };
  }

  /** Carry the payload to the LB and run the apply contract there. */
  public async apply(
    target: LbTarget,
    payload: Payload,
    signal?: AbortSignal,
  ): Promise<ApplyResult> {
    const args = applyArgs(this.options.lbApply);
    const limit = this.options.inlineLimitBytes ?? DEFAULT_INLINE_LIMIT_BYTES;
    let command = applyCommand(this.options.applyScript, args, {
      kind: 'inline',
      text: payload.text,
    });
    let how = 'inline';
    if (parameterBytes(command, this.options.lb.commandTimeoutSeconds) > limit) {
      const url = await this.stage(payload, signal);
      const source: PayloadSource = { kind: 'url', url, timeoutSeconds: 60 };
      command = applyCommand(this.options.applyScript, args, source);
      how = 'staged';
    }
    this.options.logger.debug(
      {
        stage: 'deliver',
        lb: target.id,
        generation: payload.generation,
        delivery: how,
        commandBytes: Buffer.byteLength(command),
      },
      `sending payload ${how}`,
    );
    const out = await this.run(
      target.id,
      command,
      `lbsync apply generation ${payload.generation}`,
      signal,
    );
    return this.result(target.id, out);
  }

  /**
   * Drain `server` on the LB through the runtime socket: new connections
   * stop at once, the call returns when its sessions reach zero or after
   * `seconds`.
   */
  public async drain(
    target: LbTarget,
    server: string,
    seconds: number,
    signal?: AbortSignal,
  ): Promise<DrainResult> {
    const socket = this.options.runtimeSocket;
    if (socket === null) {
      return {
        result: 'absent',
        server,
        backends: 0,
        sessions: 0,
        ms: 0,
        message: 'no runtimeSocket in the spec',
      };
    }
    const out = await this.run(
      target.id,
      scriptCommand(this.options.drainScript, [
        '--socket',
        socket,
        // Sessions held by old workers after a recent reload count too.
        '--master-socket',
        this.options.lbApply.masterSocket,
        '--server',
        server,
        '--timeout',
        String(seconds),
      ]),
      `lbsync drain ${server}`,
      signal,
      (seconds + 30) * 1000,
    );
    return parseDrainResult(out.stdout, target.id, out.stderr);
  }

  /** Upload the payload once per generation and hand out a presigned GET URL. */
  private stage(payload: Payload, signal?: AbortSignal): Promise<string> {
    const staging = this.options.lb.staging;
    const bytes = Buffer.byteLength(payload.text);
    if (staging === undefined) {
      return Promise.reject(
        new TransportError(
          `payload of ${bytes} bytes does not fit in one Run Command (limit ${this.options.inlineLimitBytes ?? DEFAULT_INLINE_LIMIT_BYTES} bytes with the script); set loadBalancers.aws.staging.bucket to stage it in S3`,
          { retryable: false },
        ),
      );
    }
    const key = `${staging.prefix}${payload.generation}-${payload.sha256}.payload`;
    let p = this.staged.get(key);
    if (p === undefined) {
      p = (async () => {
        try {
          await this.options.s3.send(
            new PutObjectCommand({
              Bucket: staging.bucket,
              Key: key,
              Body: payload.text,
              ContentType: 'text/plain',
            }),
            { abortSignal: signal },
          );
          const url = await getSignedUrl(
            this.options.s3,
            new GetObjectCommand({ Bucket: staging.bucket, Key: key }),
            { expiresIn: staging.urlExpiresSeconds },
          );
          this.options.logger.info(
            {
              stage: 'deliver',
              generation: payload.generation,
              bucket: staging.bucket,
              key,
              bytes,
            },
            'staged payload in S3',
          );
          return url;
        } catch (err) {
          this.staged.delete(key);
          throw new TransportError(
            `staging the payload in s3://${staging.bucket}/${key} failed: ${describeAwsError(err)}`,
            {
              cause: err,
              retryable: isRetryableAwsError(err),
            },
          );
        }
      })();
      this.staged.set(key, p);
    }
    return p;
  }

  private result(lb: string, out: CommandOutcome): ApplyResult {
    try {
      return parseApplyResult(out.stdout);
    } catch (err) {
      throw new TransportError(
        `${lb}: command ${out.commandId} ended ${out.status} (${out.statusDetails}, exit ${out.responseCode}) without a result line${out.stderr ? `; stderr: ${out.stderr.slice(-500).trim()}` : ''}`,
        { cause: err, retryable: false },
      );
    }
  }

  /** Send one command to one instance and wait for it to finish. */
  public async run(
    instanceId: string,
    command: string,
    comment: string,
    signal?: AbortSignal,
    timeoutMs: number = this.options.lb.commandTimeoutSeconds * 1000,
  ): Promise<CommandOutcome> {
    let commandId: string;
    try {
      const sent = await this.options.ssm.send(
        new SendCommandCommand({
          DocumentName: 'AWS-RunShellScript',
          InstanceIds: [instanceId],
          Comment: comment.slice(0, 100),
          TimeoutSeconds: 60,
          Parameters: {
            commands: [command],
            executionTimeout: [String(Math.ceil(timeoutMs / 1000))],
          },
        }),
        { abortSignal: signal },
      );
      commandId = sent.Command?.CommandId ?? '';
      if (commandId === '') throw new Error('SendCommand returned no CommandId');
    } catch (err) {
      throw sendError(instanceId, err);
    }
    return this.wait(instanceId, commandId, timeoutMs, signal);
  }

  private async wait(
    instanceId: string,
    commandId: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<CommandOutcome> {
    const deadline = Date.now() + timeoutMs;
    let delay = this.options.pollInitialMs ?? 50;
    const maxDelay = this.options.pollMaxMs ?? 2000;
    let last = 'Pending';
    for (let poll = 1; ; poll++) {
      await sleep(delay, signal);
      delay = Math.min(maxDelay, Math.round(delay * 1.5));
      let inv: GetCommandInvocationCommandOutput;
      try {
        inv = await this.options.ssm.send(
          new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }),
          { abortSignal: signal },
        );
      } catch (err) {
        // Right after SendCommand the invocation may not be visible yet
        // (eventual consistency); throttling is also worth another poll.
        const code = awsErrorCode(err);
        if (
          (code === 'InvocationDoesNotExist' || isRetryableAwsError(err)) &&
          Date.now() < deadline
        ) {
          this.options.logger.debug(
            { stage: 'deliver', lb: instanceId, commandId, poll, code },
            'invocation not readable yet',
          );
          continue;
        }
        throw new TransportError(
          `${instanceId}: GetCommandInvocation for ${commandId} failed: ${describeAwsError(err)}`,
          {
            cause: err,
            retryable: isRetryableAwsError(err) || code === 'InvocationDoesNotExist',
          },
        );
      }
      last = inv.Status ?? 'Pending';
      if (['Success', 'Failed', 'Cancelled', 'TimedOut', 'Cancelling'].includes(last)) {
        const outcome: CommandOutcome = {
          commandId,
          status: last,
          statusDetails: inv.StatusDetails ?? last,
          responseCode: inv.ResponseCode ?? -1,
          stdout: inv.StandardOutputContent ?? '',
          stderr: inv.StandardErrorContent ?? '',
        };
        if (last === 'Success' || last === 'Failed') return outcome;
        // Never ran, or ran out of time: the LB's state is unknown, a retry may work.
        throw new TransportError(
          `${instanceId}: command ${commandId} ${last} (${outcome.statusDetails})`,
          {
            retryable: true,
          },
        );
      }
      if (Date.now() >= deadline) {
        throw new TransportError(
          `${instanceId}: command ${commandId} still ${last} after ${Math.round(timeoutMs / 1000)} s`,
          { retryable: true },
        );
      }
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
      {
        cause: err,
        retryable: false,
      },
    );
  }
  return new TransportError(`${instanceId}: SendCommand failed: ${describeAwsError(err)}`, {
    cause: err,
    retryable: isRetryableAwsError(err),
  });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
