import type { ApplyScriptOptions } from '../../core/apply-contract.js';
import { TransportError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { ApplyResult, LbTarget, LiveState } from '../../core/model.js';
import { type Payload, parseApplyResult } from '../../core/payload.js';
import type { Transport } from '../../core/ports.js';
import { DeadlineError, deadlineSignal, poll as pollUntil } from '../../core/retry.js';
import {
  type GcpClients,
  gcpErrorMessage,
  httpStatusOf,
  isRetryableStatus,
  type RetryOptions,
  withRetries,
} from './clients.js';
import { layoutPayload, type MetadataItem, manifestGeneration, mergeMetadata } from './metadata.js';

/** An LB VM: a Compute instance running lbsync-gcp-agent.sh. */
export interface GcpLbInstance {
  readonly name: string;
  readonly zone: string;
}

/** Options for `MetadataTransport`. */
export interface MetadataTransportOptions {
  readonly project: string;
  readonly instances: readonly GcpLbInstance[];
  readonly clients: GcpClients;
  /** Where and how the apply script acts on the LB (spec `lbApply`, `runtimeSocket`); travels in the manifest. */
  readonly apply: ApplyScriptOptions;
  /** How long to wait for the agent's result in guest attributes. */
  readonly agentTimeoutMs?: number;
  /** How often to read the guest attributes while waiting. */
  readonly pollMs?: number;
  /** setMetadata tries when the fingerprint is stale (412). */
  readonly fingerprintAttempts?: number;
  readonly retry?: RetryOptions;
  /** Chunk size (bytes); at most 256 KiB. */
  readonly chunkBytes?: number;
  readonly logger?: Logger;
}

/** Guest attribute namespace/keys the agent writes. */
export const GUEST_RESULT = 'lbsync/result';
/** The live state the agent publishes after every apply and at start. */
export const GUEST_STATUS = 'lbsync/status';

/**
 * Carries a payload to an LB VM through its instance metadata: setMetadata
 * with the current fingerprint (412: re-read and retry), wait for the zone
 * operation, then wait up to `agentTimeoutMs` for the agent's result line in
 * the VM's guest attributes. The payload stays in metadata, so an agent that
 * is down applies it when it comes back; a timeout is reported, not retried.
 */
export class MetadataTransport implements Transport {
  private readonly retry: RetryOptions;
  /** networkIP per LB instance, from every instances.get this transport made. */
  private readonly addresses = new Map<string, string>();

  public constructor(private readonly o: MetadataTransportOptions) {
    this.retry = o.retry ?? { attempts: 4, baseMs: 250 };
  }

  /**
   * The configured LB instances, each with its internal IP (Service status
   * publishes it). The IP comes from the instances.get every apply makes;
   * an instance not read yet is read once here, best effort: a failed read
   * only leaves the address out.
   */
  public async targets(): Promise<readonly LbTarget[]> {
    await Promise.all(
      this.o.instances
        .filter((i) => !this.addresses.has(i.name))
        .map(async (i) => {
          try {
            const [inst] = await this.o.clients.instances.get({
              project: this.o.project,
              zone: i.zone,
              instance: i.name,
            });
            this.remember(i.name, inst);
          } catch (err) {
            this.o.logger?.warn(
              { stage: 'push', lb: i.name, error: gcpErrorMessage(err) },
              'cannot read the LB instance’s internal IP; Service status waits for the next run',
            );
          }
        }),
    );
    return this.o.instances.map((i) => {
      const address = this.addresses.get(i.name);
      return address === undefined ? { id: i.name } : { id: i.name, address };
    });
  }

  private remember(
    name: string,
    inst: { readonly networkInterfaces?: readonly { readonly networkIP?: string | null }[] | null },
  ): void {
    const ip = inst.networkInterfaces?.[0]?.networkIP;
    if (typeof ip === 'string' && ip !== '') this.addresses.set(name, ip);
  }

  /** What the agent last published (`lbsync/status`); a fresh VM reports nothing applied. */
  public async status(target: LbTarget): Promise<LiveState> {
    const raw = await this.guestAttribute(this.instance(target), GUEST_STATUS);
    if (raw === null) return { generation: 0, sha256: null, servers: 0 };
    try {
      const r = parseApplyResult(raw);
      return { generation: r.generation, sha256: r.sha256, servers: r.servers };
    } catch {
      return { generation: 0, sha256: null, servers: 0 };
    }
  }

  /** Write the payload to metadata and wait for the agent's result. */
  public async apply(
    target: LbTarget,
    payload: Payload,
    signal?: AbortSignal,
  ): Promise<ApplyResult> {
    const lb = this.instance(target);
    const started = Date.now();
    const layout = layoutPayload(payload, this.o.apply, this.o.chunkBytes);
    const written = await this.writeMetadata(lb, layout, payload.generation);
    if ('supersededBy' in written) {
      // A newer sync already put its payload there: writing ours would go backwards.
      return {
        result: 'stale',
        generation: payload.generation,
        sha256: payload.sha256,
        servers: payload.servers,
        ms: 0,
        message: `metadata already holds generation ${written.supersededBy}`,
      };
    }
    await this.waitOperation(lb, written.operation, started);
    this.o.logger?.debug(
      { stage: 'deliver', lb: lb.name, chunks: layout.chunks, bytes: layout.bytes },
      'metadata written; waiting for the agent',
    );
    return this.waitForResult(lb, payload.generation, started, signal);
  }

  private instance(target: LbTarget): GcpLbInstance {
    const i = this.o.instances.find((x) => x.name === target.id);
    if (i === undefined) {
      throw new TransportError(`unknown LB instance ${target.id}`, { retryable: false });
    }
    return i;
  }

  private async writeMetadata(
    lb: GcpLbInstance,
    layout: ReturnType<typeof layoutPayload>,
    generation: number,
  ): Promise<{ readonly operation: string } | { readonly supersededBy: number }> {
    const attempts = this.o.fingerprintAttempts ?? 5;
    const ref = { project: this.o.project, zone: lb.zone, instance: lb.name };
    for (let attempt = 1; ; attempt++) {
      try {
        const [inst] = await withRetries(() => this.o.clients.instances.get(ref), this.retry);
        this.remember(lb.name, inst);
        const current: MetadataItem[] = (inst.metadata?.items ?? []).map((it) => ({
          key: it.key ?? '',
          value: it.value ?? '',
        }));
        // Read-check-write under the fingerprint: never replace a newer generation.
        const live = manifestGeneration(current);
        if (live >= generation) return { supersededBy: live };
        const items = mergeMetadata(lb.name, current, layout);
        const [op] = await withRetries(
          () =>
            this.o.clients.instances.setMetadata({
              ...ref,
              metadataResource: {
                fingerprint: inst.metadata?.fingerprint ?? '',
                items: [...items],
              },
            }),
          this.retry,
        );
        const latest = op.latestResponse as { name?: string; status?: unknown } | undefined;
        // Already DONE (the usual case for metadata): no need to wait on it.
        return { operation: String(latest?.status) === 'DONE' ? '' : (latest?.name ?? '') };
      } catch (err) {
        if (err instanceof TransportError) throw err;
        const status = httpStatusOf(err);
        // 412: someone changed the metadata since we read the fingerprint; read again.
        if (status === 412 && attempt < attempts) {
          this.o.logger?.warn(
            { stage: 'deliver', lb: lb.name, attempt },
            'stale metadata fingerprint; retrying',
          );
          continue;
        }
        throw new TransportError(
          `setMetadata on ${lb.name} failed${status ? ` (HTTP ${status})` : ''}${status === 412 ? ` after ${attempts} attempts` : ''}: ${gcpErrorMessage(err)}`,
          { cause: err, retryable: status === 412 || isRetryableStatus(status) },
        );
      }
    }
  }

  private async waitOperation(lb: GcpLbInstance, name: string, started: number): Promise<void> {
    if (name === '') return;
    const deadline = started + (this.o.agentTimeoutMs ?? 120_000);
    // zoneOperations.wait returns when the operation is DONE or after ~2 min.
    for (let i = 0; i < 100 && Date.now() < deadline; i++) {
      let op: {
        status?: unknown;
        error?: { errors?: { message?: string | null }[] | null } | null;
      };
      try {
        [op] = await withRetries(
          () =>
            this.o.clients.zoneOperations.wait({
              project: this.o.project,
              zone: lb.zone,
              operation: name,
            }),
          this.retry,
        );
      } catch (err) {
        const status = httpStatusOf(err);
        throw new TransportError(
          `waiting for ${name} on ${lb.name} failed: ${gcpErrorMessage(err)}`,
          { cause: err, retryable: isRetryableStatus(status) },
        );
      }
      if (String(op.status) === 'DONE') {
        const errors = op.error?.errors ?? [];
        if (errors.length > 0) {
          throw new TransportError(
            `setMetadata on ${lb.name} failed: ${errors.map((e) => e.message).join('; ')}`,
            { retryable: true },
          );
        }
        return;
      }
    }
    throw new TransportError(`setMetadata operation ${name} on ${lb.name} did not finish in time`, {
      retryable: true,
    });
  }

  private async waitForResult(
    lb: GcpLbInstance,
    generation: number,
    started: number,
    signal?: AbortSignal,
  ): Promise<ApplyResult> {
    const timeout = this.o.agentTimeoutMs ?? 120_000;
    const poll = this.o.pollMs ?? 1000;
    let last: ApplyResult | null = null;
    const deadline = deadlineSignal(started + timeout, signal);
    const found = await pollUntil(
      async () => {
        const raw = await this.guestAttribute(lb, GUEST_RESULT).catch(() => null);
        if (raw === null) return undefined;
        try {
          last = parseApplyResult(raw);
        } catch {
          last = null;
          return undefined;
        }
        if (last.generation === generation) return last;
        if (last.generation > generation) {
          // A newer push landed before the agent read ours; the newer one wins.
          return {
            ...last,
            result: 'stale' as const,
            message: `superseded by generation ${last.generation} (${last.result})`,
          };
        }
        return undefined;
      },
      {
        backoff: { initialMs: poll, maxMs: poll, jitter: 0 },
        ...(deadline !== undefined ? { signal: deadline } : {}),
        what: `waiting for the agent on ${lb.name}`,
      },
    ).catch((err: unknown) => {
      if (err instanceof DeadlineError) return undefined;
      throw err;
    });
    if (found !== undefined) return found;
    const seen = last as ApplyResult | null;
    throw new TransportError(
      `the agent on ${lb.name} did not report generation ${generation} within ${Math.round(timeout / 1000)}s` +
        ` (last result: ${seen === null ? 'none' : `${seen.result} of generation ${seen.generation}`});` +
        ' the payload stays in metadata and the agent applies it when it runs',
      { retryable: false },
    );
  }

  private async guestAttribute(lb: GcpLbInstance, key: string): Promise<string | null> {
    try {
      const [ga] = await withRetries(
        () =>
          this.o.clients.instances.getGuestAttributes({
            project: this.o.project,
            zone: lb.zone,
            instance: lb.name,
            variableKey: key,
          }),
        this.retry,
      );
      return ga.variableValue ?? null;
    } catch (err) {
      const status = httpStatusOf(err);
      if (status === 404) return null;
      throw new TransportError(
        `reading guest attribute ${key} of ${lb.name} failed: ${gcpErrorMessage(err)}`,
        { cause: err, retryable: isRetryableStatus(status) },
      );
    }
  }
}
