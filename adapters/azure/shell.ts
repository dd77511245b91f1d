import { isIP } from 'node:net';
import type { RunCommandResult } from '@azure/arm-compute';
import {
  BlobSASPermissions,
  generateBlobSASQueryParameters,
  SASProtocol,
} from '@azure/storage-blob';
import type { OutputLimits } from '../../core/command.js';
import { TransportError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { LbTarget } from '../../core/model.js';
import type { RemoteShell, RunOptions, ShellOutcome } from '../../core/remote-script.js';
import { DeadlineError, deadlineSignal, retry } from '../../core/retry.js';
import type { AzureClients } from './clients.js';
import {
  azureErrorCode,
  azureStatus,
  describeAzureError,
  isRetryableAzureError,
} from './errors.js';
import { LbAddressBook } from './lb-addresses.js';
import type { RunCommandTransportSpec } from './provider.js';

/**
 * Largest Run Command script lbsync sends inline, in bytes. The service's own
 * limit is undocumented (a "256 KB" figure circulates, unconfirmed), so lbsync
 * stays at a quarter of it. The apply script (packed) takes ~15 KB of it; see
 * docs/azure.md for how many workers x services fit (measured by a test).
 * Above it, the payload is staged in Blob storage and the LB downloads it.
 */
export const DEFAULT_INLINE_LIMIT_BYTES = 64 * 1024;

/** Run Command returns only the last 4,096 bytes of each stream. */
export const RUN_COMMAND_LIMITS: OutputLimits = {
  stderrTail: 1500,
  stdoutTail: 1500,
  curlTail: 1000,
};

/** Options for `RunCommandShell`. */
export interface RunCommandShellOptions {
  readonly clients: AzureClients;
  /** Subscription of the LB VMs. */
  readonly subscriptionId: string;
  readonly lb: RunCommandTransportSpec;
  readonly logger?: Logger;
  readonly inlineLimitBytes?: number;
  /** Poll interval of the long-running operation; default 2 s (the service takes ~20 s). */
  readonly pollMs?: number;
  /** Attempts while the VM runs another command (409) or ARM throttles (429); default 6. */
  readonly busyAttempts?: number;
  /** First backoff after a 409 without Retry-After; doubles, capped at 30 s. Default 5 s. */
  readonly busyBackoffMs?: number;
  /**
   * Look up each LB VM's private IP through ARM (Service status publishes
   * it); default false, since only a kubernetes section without
   * kubernetes.ingress needs it and it costs two ARM reads per VM.
   */
  readonly resolveAddresses?: boolean;
}

/** A resolved LB target with where its Run Command goes. */
interface AzureLbTarget extends LbTarget {
  readonly resourceGroup: string;
  readonly vmName: string;
  readonly scaleSet?: string;
}

/**
 * The action Run Command (`RunShellScript`) as a RemoteShell: the
 * long-running operation to completion, bounded waits while the VM runs
 * another command (409) or ARM throttles (429, honouring Retry-After);
 * payloads too large for the script go to Blob storage behind a read-only
 * SAS signed with a user delegation key (no storage account key needed).
 */
export class RunCommandShell implements RemoteShell {
  public readonly limits = RUN_COMMAND_LIMITS;
  public readonly stagingHint = 'loadBalancers.staging.containerUrl';
  public readonly inlineLimitBytes: number;
  private readonly byId: ReadonlyMap<string, AzureLbTarget>;
  private readonly addressBook: LbAddressBook | undefined;

  public constructor(private readonly o: RunCommandShellOptions) {
    this.inlineLimitBytes = o.inlineLimitBytes ?? DEFAULT_INLINE_LIMIT_BYTES;
    const m = new Map<string, AzureLbTarget>();
    for (const vm of o.lb.vms) {
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
    this.addressBook = o.resolveAddresses
      ? new LbAddressBook({
          clients: o.clients,
          subscriptionId: o.subscriptionId,
          logger: o.logger,
        })
      : undefined;
  }

  /** Whether a blob container is configured for large payloads. */
  public get canStage(): boolean {
    return this.o.lb.staging !== undefined;
  }

  /**
   * The LB VMs named in the spec, sorted by id; with `resolveAddresses`, each
   * with its private IP when ARM gave it (a failed lookup leaves it out).
   */
  public async targets(signal?: AbortSignal): Promise<readonly LbTarget[]> {
    const sorted = [...this.byId.values()].sort((a, b) => a.id.localeCompare(b.id));
    if (this.addressBook === undefined) return sorted;
    const addresses = await this.addressBook.addressesOf(sorted, signal);
    return sorted.map((t) => {
      const address = addresses.get(t.id);
      return address === undefined ? t : { ...t, address };
    });
  }

  /** Run Command counts the script text itself. */
  public commandBytes(command: string): number {
    return Buffer.byteLength(command);
  }

  /** One Run Command to completion, with bounded waits for 409/429. */
  public async run(target: LbTarget, command: string, o: RunOptions): Promise<ShellOutcome> {
    const t = this.byId.get(target.id);
    if (t === undefined) {
      throw new TransportError(`unknown LB target ${target.id}`, { retryable: false });
    }
    const signal = deadlineSignal(Date.now() + o.timeoutMs, o.signal) as AbortSignal;
    const compute = this.o.clients.compute(this.o.subscriptionId);
    const input = { commandId: 'RunShellScript', script: [command] };
    const opts = { updateIntervalInMs: this.o.pollMs ?? 2000, abortSignal: signal };
    const backoff = this.o.busyBackoffMs ?? 5000;
    try {
      const result: RunCommandResult = await retry(
        () =>
          t.scaleSet !== undefined
            ? compute.virtualMachineScaleSetVMs.runCommand(
                t.resourceGroup,
                t.scaleSet,
                t.vmName,
                input,
                opts,
              )
            : compute.virtualMachines.runCommand(t.resourceGroup, t.vmName, input, opts),
        {
          attempts: this.o.busyAttempts ?? 6,
          backoff: { initialMs: backoff, maxMs: 30_000, jitter: 0 },
          retryable: (err) => azureStatus(err) === 409 || azureStatus(err) === 429,
          retryAfterMs,
          maxWaitMs: 30_000,
          signal,
          what: `run command on ${t.id}`,
          onRetry: (err, attempt, waitMs) =>
            this.o.logger?.warn(
              {
                stage: 'deliver',
                lb: t.id,
                status: azureStatus(err),
                code: azureErrorCode(err),
                attempt,
                waitMs,
              },
              azureStatus(err) === 409
                ? 'LB VM is running another command; waiting'
                : 'throttled; waiting',
            ),
        },
      );
      const message = (result.value ?? []).map((s) => s.message ?? '').join('\n');
      const { stdout, stderr } = splitRunCommandMessage(message);
      if (stderr.trim() !== '') {
        this.o.logger?.debug(
          { stage: 'deliver', lb: t.id, stderr: stderr.slice(-1000) },
          'run command stderr',
        );
      }
      return { stdout, stderr, detail: `run command ${o.purpose} succeeded` };
    } catch (err) {
      if (err instanceof DeadlineError || signal.aborted) {
        throw new TransportError(`${t.id}: run command did not finish within ${o.timeoutMs} ms`, {
          cause: err,
          retryable: true,
        });
      }
      throw new TransportError(`${t.id}: run command failed: ${describeAzureError(err)}`, {
        cause: err,
        retryable: isRetryableAzureError(err),
      });
    }
  }

  /** Upload the payload and hand out a read-only SAS URL (user delegation key). */
  public async stage(key: string, text: string): Promise<string> {
    const staging = this.o.lb.staging;
    if (staging === undefined)
      throw new TransportError('no staging container', { retryable: false });
    const { accountUrl, accountName, container } = splitContainerUrl(staging.containerUrl);
    const blobName = `payloads/${key}.txt`;
    try {
      const service = this.o.clients.blobService(accountUrl);
      const blob = service.getContainerClient(container).getBlockBlobClient(blobName);
      const body = Buffer.from(text, 'utf8');
      await blob.uploadData(body, { blobHTTPHeaders: { blobContentType: 'text/plain' } });
      const startsOn = new Date(Date.now() - 5 * 60_000);
      const expiresOn = new Date(Date.now() + staging.sasMinutes * 60_000);
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
      this.o.logger?.debug(
        { stage: 'deliver', blob: `${container}/${blobName}`, bytes: body.length },
        'staged payload',
      );
      return `${blob.url}?${sas}`;
    } catch (err) {
      throw new TransportError(
        `staging the payload in ${staging.containerUrl} failed: ${describeAzureError(err)}`,
        { cause: err, retryable: isRetryableAzureError(err) },
      );
    }
  }
}

/**
 * Split Run Command's message into the two streams. RunShellScript on Linux
 * reports `Enable succeeded: \n[stdout]\n...\n[stderr]\n...`.
 */
export function splitRunCommandMessage(message: string): {
  readonly stdout: string;
  readonly stderr: string;
} {
  const o = message.indexOf('[stdout]\n');
  const e = message.lastIndexOf('\n[stderr]\n');
  if (o < 0) return { stdout: message, stderr: '' };
  const stdout = message.slice(o + '[stdout]\n'.length, e > o ? e : undefined);
  const stderr = e > o ? message.slice(e + '\n[stderr]\n'.length) : '';
  return { stdout, stderr };
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
