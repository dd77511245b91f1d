import {
  applyArgs,
  applyScriptOptions,
  drainArgs,
  parseApplyResult,
  parseDrainResult,
  STATUS_FLAG,
} from './apply-contract.js';
import { applyCommand, type OutputLimits, type PayloadDelivery, scriptCommand } from './command.js';
import { TransportError } from './errors.js';
import type { Logger } from './log.js';
import type { ApplyResult, LbTarget, LiveState } from './model.js';
import type { Payload } from './payload.js';
import type { Drainer, DrainResult, Transport } from './ports.js';
import type { LbApplySpec } from './spec.js';

/*
 * One transport for every "run a shell script on the VM" service (SSM Run
 * Command, Azure Run Command): the service-specific part is a RemoteShell
 * with two methods, run a command and stage a payload. Everything the
 * services share lives here once: the apply/status/drain commands, the
 * inline-or-staged decision, the staging cache, and reading the result line.
 */

/** What one command ended with on the LB. */
export interface ShellOutcome {
  readonly stdout: string;
  readonly stderr: string;
  /** How the service saw it end, for error messages (`command 1a2b Success, exit 0`). */
  readonly detail: string;
}

/** Options of one `RemoteShell.run`. */
export interface RunOptions {
  /** What the command is for (`status`, `apply generation 17`, `drain i-0abc`): logs, comments, errors. */
  readonly purpose: string;
  /** How long the command may run on the LB. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** A service that runs shell text on an LB VM. */
export interface RemoteShell {
  /** The LB VMs this shell reaches. */
  targets(signal?: AbortSignal): Promise<readonly LbTarget[]>;
  /** Run `command` on `target` to completion. Throws a TransportError when it cannot tell. */
  run(target: LbTarget, command: string, options: RunOptions): Promise<ShellOutcome>;
  /** Whether the deployment configured somewhere to stage large payloads. */
  readonly canStage: boolean;
  /** Store `text` where the LB can download it over HTTPS; returns a short-lived URL. */
  stage(key: string, text: string, signal?: AbortSignal): Promise<string>;
  /** Bytes of one command this service accepts inline. */
  readonly inlineLimitBytes: number;
  /** How the service counts a command's size (SSM counts its serialized parameters). */
  commandBytes(command: string): number;
  /** Output the service returns, so the wrapper keeps the result line inside it. */
  readonly limits: OutputLimits;
  /** The spec field that enables staging, for the "too large" error. */
  readonly stagingHint: string;
}

/** Options for `RemoteScriptTransport`. */
export interface RemoteScriptOptions {
  readonly lbApply: LbApplySpec;
  /** The spec's runtime socket (drain acts there); null: drains report `absent`. */
  readonly runtimeSocket: string | null;
  readonly applyScript: string;
  readonly drainScript: string;
  readonly logger?: Logger;
  /** How long an apply or status command may run; default 120 s. */
  readonly commandTimeoutMs?: number;
  /** Staged payloads remembered per instance (one per generation+sha); default 8. */
  readonly stagingCacheSize?: number;
}

/**
 * Pushes through a RemoteShell: one command per LB carrying the apply script
 * and the payload (inline when the command fits the service's limit, else a
 * staged copy the LB downloads; the script still checks the sha256).
 */
export class RemoteScriptTransport implements Transport, Drainer {
  private readonly staged = new Map<string, Promise<string>>();

  public constructor(
    private readonly shell: RemoteShell,
    private readonly o: RemoteScriptOptions,
  ) {}

  /** The LB VMs the shell reaches. */
  public targets(signal?: AbortSignal): Promise<readonly LbTarget[]> {
    return this.shell.targets(signal);
  }

  /** Run the apply script's `--status` on the LB. */
  public async status(target: LbTarget, signal?: AbortSignal): Promise<LiveState> {
    const command = scriptCommand(
      this.o.applyScript,
      [...this.args(), STATUS_FLAG],
      this.shell.limits,
    );
    const r = await this.exec(target, command, 'status', signal);
    if (r.result !== 'status') {
      throw new TransportError(
        `${target.id}: status returned ${r.result}${r.message ? `: ${r.message}` : ''}`,
        { retryable: r.result === 'busy' },
      );
    }
    return { generation: r.generation, sha256: r.sha256, servers: r.servers };
  }

  /** Deliver the payload and run the apply contract; resolves with the script's result line. */
  public async apply(
    target: LbTarget,
    payload: Payload,
    signal?: AbortSignal,
  ): Promise<ApplyResult> {
    const args = this.args();
    let delivery: PayloadDelivery = { kind: 'inline', text: payload.text };
    let command = applyCommand(this.o.applyScript, args, delivery, this.shell.limits);
    if (this.shell.commandBytes(command) > this.shell.inlineLimitBytes) {
      const url = await this.stage(payload, this.shell.commandBytes(command), signal);
      delivery = { kind: 'url', url, timeoutSeconds: 120 };
      command = applyCommand(this.o.applyScript, args, delivery, this.shell.limits);
    }
    this.o.logger?.debug(
      {
        stage: 'deliver',
        lb: target.id,
        delivery: delivery.kind,
        commandBytes: Buffer.byteLength(command),
      },
      `sending the payload ${delivery.kind}`,
    );
    return this.exec(target, command, `apply generation ${payload.generation}`, signal);
  }

  /**
   * Drain `server` on the LB through the runtime socket: new connections stop
   * at once; resolves when its sessions reach zero or after `seconds`.
   */
  public async drain(
    target: LbTarget,
    server: string,
    seconds: number,
    signal?: AbortSignal,
  ): Promise<DrainResult> {
    const socket = this.o.runtimeSocket;
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
    const command = scriptCommand(
      this.o.drainScript,
      // Sessions held by old workers after a recent reload count too (master socket).
      drainArgs({
        socket,
        masterSocket: this.o.lbApply.masterSocket,
        server,
        timeoutSeconds: seconds,
      }),
      this.shell.limits,
    );
    const purpose = `drain ${server}`;
    const out = await this.shell.run(target, command, {
      purpose,
      timeoutMs: (seconds + 30) * 1000,
      ...(signal !== undefined ? { signal } : {}),
    });
    return parseDrainResult(out.stdout, target.id, out.stderr);
  }

  /** The apply script's arguments: the spec's lbApply and its runtime socket. */
  private args(): readonly string[] {
    return applyArgs(
      applyScriptOptions({ lbApply: this.o.lbApply, runtimeSocket: this.o.runtimeSocket }),
    );
  }

  private async exec(
    target: LbTarget,
    command: string,
    purpose: string,
    signal?: AbortSignal,
  ): Promise<ApplyResult> {
    const out = await this.shell.run(target, command, {
      purpose,
      timeoutMs: this.o.commandTimeoutMs ?? 120_000,
      ...(signal !== undefined ? { signal } : {}),
    });
    try {
      return parseApplyResult(out.stdout);
    } catch (err) {
      // The script always prints one; without it the command died on the
      // way (agent restart, output lost), so what the LB runs is unknown
      // and the next run finds out.
      throw new TransportError(
        `${target.id}: the ${purpose} command ended (${out.detail}) without a result line, so the LB's state is unknown${out.stderr ? `; stderr: ${out.stderr.slice(-500).trim()}` : ''}`,
        { cause: err, retryable: true },
      );
    }
  }

  /** Stage once per generation+sha (every LB shares it); remembers the last few. */
  private stage(payload: Payload, bytes: number, signal?: AbortSignal): Promise<string> {
    if (!this.shell.canStage) {
      return Promise.reject(
        new TransportError(
          `payload of ${Buffer.byteLength(payload.text)} bytes does not fit in one Run Command (${bytes} bytes with the script, limit ${this.shell.inlineLimitBytes}); set ${this.shell.stagingHint} to stage it`,
          { retryable: false },
        ),
      );
    }
    const key = `${payload.generation}-${payload.sha256}`;
    let p = this.staged.get(key);
    if (p === undefined) {
      p = this.shell.stage(key, payload.text, signal);
      this.staged.set(key, p);
      p.catch(() => this.staged.delete(key));
      // A warm instance must not grow without bound.
      while (this.staged.size > (this.o.stagingCacheSize ?? 8)) {
        const oldest = this.staged.keys().next().value;
        if (oldest === undefined) break;
        this.staged.delete(oldest);
      }
    }
    return p;
  }
}
