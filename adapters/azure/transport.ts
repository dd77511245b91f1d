import { isIP } from 'node:net';
import type { RunCommandResult } from '@azure/arm-compute';
import {
  BlobSASPermissions,
  generateBlobSASQueryParameters,
  SASProtocol,
} from '@azure/storage-blob';
import { applyArgs } from '../../core/entry.js';
import { TransportError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { ApplyResult, LbTarget, LiveState } from '../../core/model.js';
import { type Payload, parseApplyResult } from '../../core/payload.js';
import type { Transport } from '../../core/ports.js';
import type { AzureLbSpec, LbApplySpec } from '../../core/spec.js';
import type { AzureClients } from './clients.js';
import {
  applyCommand,
  type PayloadDelivery,
  scriptCommand,
  splitRunCommandMessage,
} from './command.js';
import {
  azureErrorCode,
  azureStatus,
  describeAzureError,
  isRetryableAzureError,
} from './errors.js';

/**
 * Largest Run Command script lbsync sends inline, in bytes. The service's own
 * limit is undocumented (a "256 KB" figure circulates, unconfirmed), so lbsync
 * stays at a quarter of it. The apply script (packed) takes ~15 KB of it; see
 * docs/azure.md for how many workers x services fit (measured by a test).
 * Above it, the payload is staged in Blob storage and the LB downloads it.
 */
export const DEFAULT_INLINE_LIMIT_BYTES = 64 * 1024;

/** Options for `RunCommandTransport`. */
export interface RunCommandTransportOptions {
  readonly clients: AzureClients;
  /** Subscription of the LB VMs. */
  readonly subscriptionId: string;
  readonly lb: AzureLbSpec;
  readonly lbApply: LbApplySpec;
  readonly applyScript: string;
  readonly logger?: Logger;
  readonly inlineLimitBytes?: number;
  /** Poll interval of the long-running operation; default 2 s (the service takes ~20 s). */
  readonly pollMs?: number;
  /** Attempts while the VM runs another command (409) or ARM throttles (429); default 6. */
  readonly busyAttempts?: number;
  /** First backoff after a 409 without Retry-After; doubles, capped at 30 s. Default 5 s. */
  readonly busyBackoffMs?: number;
  /** Whole-command deadline (POST, waits and polling); default 240 s. */
  readonly commandTimeoutMs?: number;
}

/** A resolved LB target with where its Run Command goes. */
interface AzureLbTarget extends LbTarget {
  readonly resourceGroup: string;
  readonly vmName: string;
  readonly scaleSet?: string;
}

/**
 * Pushes to LB VMs with the action Run Command (`RunShellScript`): one
 * command per LB carrying the apply script and the payload (inline when the
 * script fits the inline limit, else a short-lived read-only SAS URL of a
 * staged blob the LB fetches with curl; the apply script still checks the
 * sha256). Handles the long-running operation, 409 while another command
 * runs, 429 with Retry-After, failed operations and timeouts.
 */
export class RunCommandTransport implements Transport {
  private readonly staged = new Map<string, Promise<string>>();
  private readonly byId: ReadonlyMap<string, AzureLbTarget>;

  public constructor(private readonly options: RunCommandTransportOptions) {
    const m = new Map<string, AzureLbTarget>();
    for (const vm of options.lb.vms) {
      const t: AzureLbTarget =
        vm.scaleSet !== undefined
          ? {
              id: `${vm.scaleSet}_${vm.name}`,
              resourceGroup: vm.resourceGroup,
              vmName: vm.name,
              scaleSet: vm.scaleSet,
            }
          : { id: vm.name, resourceGroup: vm.resourceGroup, vmName: vm.name };
      m.set(t.id, t);
    }
    this.byId = m;
  }

  /** The LB VMs named in the spec, sorted by id. */
  public async targets(): Promise<readonly LbTarget[]> {
    return [...this.byId.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Run the apply script's `--status` on the LB. */
  public async status(target: LbTarget, signal?: AbortSignal): Promise<LiveState> {
    const command = scriptCommand(this.options.applyScript, [
      ...applyArgs(this.options.lbApply),
      '--status',
    ]);
    const r = parseApplyResult(await this.run(this.target(target), command, signal));
    if (r.result !== 'status') {
      throw new TransportError(
        `${target.id}: status returned ${r.result}${r.message ? `: ${r.message}` : ''}`,
        { retryable: r.result === 'busy' },
      );
    }
    return { generation: r.generation, sha256: r.sha256, servers: r.servers };
  }

  /** Deliver the payload and run the apply script; resolves with its result line. */
  public async apply(
    target: LbTarget,
    payload: Payload,
    signal?: AbortSignal,
  ): Promise<ApplyResult> {
    const t = this.target(target);
    const args = applyArgs(this.options.lbApply);
    const limit = this.options.inlineLimitBytes ?? DEFAULT_INLINE_LIMIT_BYTES;
    let command = applyCommand(this.options.applyScript, args, {
      kind: 'inline',
      text: payload.text,
    });
    let delivery: PayloadDelivery['kind'] = 'inline';
    if (Buffer.byteLength(command) > limit) {
      const staging = this.options.lb.staging;
      if (staging === undefined) {
        throw new TransportError(
          `${t.id}: the Run Command script would be ${Buffer.byteLength(command)} bytes, over the ` +
            `${limit}-byte inline limit; set loadBalancers.azure.staging.containerUrl`,
          { retryable: false },
        );
      }
      const url = await this.stage(payload, staging.containerUrl, staging.sasMinutes);
      command = applyCommand(this.options.applyScript, args, {
        kind: 'url',
        url,
        timeoutSeconds: 120,
      });
      delivery = 'url';
    }
    this.options.logger?.debug(
      { stage: 'push', lb: t.id, delivery, scriptBytes: Buffer.byteLength(command) },
      `sending run command (${delivery})`,
    );
    return parseApplyResult(await this.run(t, command, signal));
  }

  private target(target: LbTarget): AzureLbTarget {
    const t = this.byId.get(target.id);
    if (t === undefined) {
      throw new TransportError(`unknown LB target ${target.id}`, { retryable: false });
    }
    return t;
  }

  /**
   * Upload the payload once per generation+sha (every LB shares it) and hand
   * out a read-only SAS URL signed with a user delegation key, so the
   * function needs no storage account key, only a data-plane role.
   */
  private stage(payload: Payload, containerUrl: string, sasMinutes: number): Promise<string> {
    const key = `${payload.generation}-${payload.sha256}`;
    let p = this.staged.get(key);
    if (p === undefined) {
      p = this.upload(payload, containerUrl, sasMinutes, key);
      this.staged.set(key, p);
      p.catch(() => this.staged.delete(key));
      // Keep only recent payloads: a warm instance must not grow without bound.
      if (this.staged.size > 8) {
        const oldest = this.staged.keys().next().value;
        if (oldest !== undefined) this.staged.delete(oldest);
      }
    }
    return p;
  }

  private async upload(
    payload: Payload,
    containerUrl: string,
    sasMinutes: number,
    key: string,
  ): Promise<string> {
    const { accountUrl, accountName, container } = splitContainerUrl(containerUrl);
    const blobName = `payloads/${key}.txt`;
    try {
      const service = this.options.clients.blobService(accountUrl);
      const blob = service.getContainerClient(container).getBlockBlobClient(blobName);
      const body = Buffer.from(payload.text, 'utf8');
      await blob.uploadData(body, { blobHTTPHeaders: { blobContentType: 'text/plain' } });
      const startsOn = new Date(Date.now() - 5 * 60_000);
      const expiresOn = new Date(Date.now() + sasMinutes * 60_000);
      const delegationKey = await service.getUserDelegationKey(startsOn, expiresOn);
      const sas = generateBlobSASQueryParameters(
        {
          containerName: container,
          blobName,
          permissions: BlobSASPermissions.parse('r'),
          protocol: SASProtocol.Https,
          startsOn,
          expiresOn,
        },
        delegationKey,
        accountName,
      ).toString();
      this.options.logger?.debug(
        { stage: 'push', blob: `${container}/${blobName}`, bytes: body.length, sasMinutes },
        'staged payload',
      );
      return `${blob.url}?${sas}`;
    } catch (err) {
      throw new TransportError(
        `staging the payload in ${containerUrl} failed: ${describeAzureError(err)}`,
        {
          cause: err,
          retryable: isRetryableAzureError(err),
        },
      );
    }
  }

  /** One Run Command to completion, with bounded waits for 409/429; returns stdout. */
  private async run(t: AzureLbTarget, command: string, signal?: AbortSignal): Promise<string> {
    const o = this.options;
    const deadline = AbortSignal.timeout(o.commandTimeoutMs ?? 240_000);
    const abort = signal !== undefined ? AbortSignal.any([signal, deadline]) : deadline;
    const attempts = o.busyAttempts ?? 6;
    let backoff = o.busyBackoffMs ?? 5000;
    const compute = o.clients.compute(o.subscriptionId);
    const input = { commandId: 'RunShellScript', script: [command] };
    const opts = { updateIntervalInMs: o.pollMs ?? 2000, abortSignal: abort };
    for (let attempt = 1; ; attempt++) {
      try {
        const result: RunCommandResult =
          t.scaleSet !== undefined
            ? await compute.virtualMachineScaleSetVMs.runCommand(
                t.resourceGroup,
                t.scaleSet,
                t.vmName,
                input,
                opts,
              )
            : await compute.virtualMachines.runCommand(t.resourceGroup, t.vmName, input, opts);
        const message = (result.value ?? []).map((s) => s.message ?? '').join('\n');
        const { stdout, stderr } = splitRunCommandMessage(message);
        if (stderr.trim() !== '') {
          o.logger?.debug(
            { stage: 'push', lb: t.id, stderr: stderr.slice(-1000) },
            'run command stderr',
          );
        }
        return stdout;
      } catch (err) {
        if (deadline.aborted) {
          throw new TransportError(
            `${t.id}: run command did not finish within ${o.commandTimeoutMs ?? 240_000} ms`,
            { cause: err, retryable: true },
          );
        }
        if (signal?.aborted) throw err;
        const status = azureStatus(err);
        const waitable = status === 409 || status === 429;
        if (!waitable || attempt >= attempts) {
          throw new TransportError(`${t.id}: run command failed: ${describeAzureError(err)}`, {
            cause: err,
            retryable: isRetryableAzureError(err),
          });
        }
        const retryAfter = retryAfterMs(err);
        const wait = Math.min(retryAfter ?? backoff, 30_000);
        backoff = Math.min(backoff * 2, 30_000);
        o.logger?.warn(
          {
            stage: 'push',
            lb: t.id,
            status,
            code: azureErrorCode(err),
            attempt,
            waitMs: wait,
          },
          status === 409 ? 'LB VM is running another command; waiting' : 'throttled; waiting',
        );
        try {
          await sleep(wait, abort);
        } catch (e) {
          if (!deadline.aborted) throw e;
          throw new TransportError(
            `${t.id}: run command did not finish within ${o.commandTimeoutMs ?? 240_000} ms`,
            { cause: err, retryable: true },
          );
        }
      }
    }
  }
}

/** Account URL, account name and container of a container URL (public or path-style). */
export function splitContainerUrl(containerUrl: string): {
  readonly accountUrl: string;
  readonly accountName: string;
  readonly container: string;
} {
  const u = new URL(containerUrl);
  const segments = u.pathname.split('/').filter(Boolean);
  // Path-style (an IP or localhost host, like Azurite): /<account>/<container>.
  if (isIP(u.hostname) !== 0 || u.hostname === 'localhost') {
    const [accountName = '', container = ''] = segments;
    return { accountUrl: `${u.origin}/${accountName}`, accountName, container };
  }
  return {
    accountUrl: u.origin,
    accountName: u.hostname.split('.')[0] ?? '',
    container: segments[0] ?? '',
  };
}

function retryAfterMs(err: unknown): number | undefined {
  const headers = (err as { response?: { headers?: { get(name: string): string | undefined } } })
    .response?.headers;
  const v = headers?.get('retry-after');
  if (v === undefined) return undefined;
  const s = Number(v);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
