import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import {
  type ApplyScriptOptions,
  applyArgs,
  parseApplyResult,
  STATUS_FLAG,
} from '../../core/apply-contract.js';
import { errorMessage, TransportError } from '../../core/errors.js';
import { lbScriptPath, shippedLbScript } from '../../core/lb-scripts.js';
import type { ApplyResult, LbTarget, LiveState } from '../../core/model.js';
import { type Payload, sha256Hex } from '../../core/payload.js';
import { workerIdsOf } from '../../core/plan.js';
import type { Transport } from '../../core/ports.js';

/** An LB on this machine: the paths, reload mode and sockets the apply script is given. */
export interface LocalLbTarget extends LbTarget, ApplyScriptOptions {
  readonly id: string;
}

/** Options for `LocalTransport`. */
export interface LocalTransportOptions {
  /** The apply script; defaults to templates/lbsync-apply.sh of this checkout, run in its shipped (inlined) form. */
  readonly scriptPath?: string;
  /** POSIX shell that runs the script (default `sh`). */
  readonly shell?: string;
  /** Kill the script after this long (default 120 s: lock and reload timeouts are 30 s each). */
  readonly timeoutMs?: number;
  /** Environment for the script (default: this process's); tests put a fake systemctl on PATH. */
  readonly env?: NodeJS.ProcessEnv;
}

const DEFAULT_SCRIPT = lbScriptPath('apply');
const DEFAULT_TIMEOUT_MS = 120_000;
/** After SIGTERM, how long the script gets (it defers signals during swap+reload) before SIGKILL. */
const KILL_GRACE_MS = 5_000;

interface ScriptRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs templates/lbsync-apply.sh as a subprocess against LBs on this machine:
 * the same self-contained text (`sh -c <script>`), arguments and payload the
 * cloud transports ship, so local runs exercise the real apply contract.
 */
export class LocalTransport implements Transport {
  private readonly byId: ReadonlyMap<string, LocalLbTarget>;
  private readonly scriptPath: string;
  private readonly shell: string;
  private readonly timeoutMs: number;
  private readonly env: NodeJS.ProcessEnv | undefined;

  public constructor(
    private readonly lbs: readonly LocalLbTarget[],
    options: LocalTransportOptions = {},
  ) {
    const byId = new Map<string, LocalLbTarget>();
    for (const lb of lbs) {
      if (byId.has(lb.id)) {
        throw new TransportError(`duplicate local LB id: ${lb.id}`, { retryable: false });
      }
      byId.set(lb.id, lb);
    }
    this.byId = byId;
    this.scriptPath = options.scriptPath ?? DEFAULT_SCRIPT;
    this.shell = options.shell ?? 'sh';
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.env = options.env;
  }

  /** The configured LBs. */
  public async targets(): Promise<readonly LbTarget[]> {
    return this.lbs;
  }

  /** Run `--status`, plus the live text and worker ids (cheap to read locally). */
  public async status(target: LbTarget, signal?: AbortSignal): Promise<LiveState> {
    const lb = this.lookup(target);
    const r = this.result(lb, await this.run(lb, [STATUS_FLAG], '', signal));
    if (r.result !== 'status') {
      throw new TransportError(`${lb.id}: --status answered ${r.result}: ${r.message ?? ''}`, {
        retryable: false,
      });
    }
    if (r.sha256 === null) return { generation: r.generation, sha256: null, servers: 0 };
    const seen = { generation: r.generation, sha256: r.sha256, servers: r.servers };
    let text: string;
    try {
      text = await readFile(lb.configPath, 'utf8');
    } catch {
      return seen;
    }
    // An apply between the script's read and ours changed the file: the text
    // would not match the sha, so report only what the script saw.
    if (sha256Hex(text) !== r.sha256) return seen;
    return {
      generation: r.generation,
      sha256: r.sha256,
      servers: r.servers,
      text,
      workerIds: workerIdsOf(text),
    };
  }

  /** Run the apply contract with the payload on stdin; resolves with the script's result line. */
  public async apply(
    target: LbTarget,
    payload: Payload,
    signal?: AbortSignal,
  ): Promise<ApplyResult> {
    const lb = this.lookup(target);
    return this.result(lb, await this.run(lb, [], payload.text, signal));
  }

  private lookup(target: LbTarget): LocalLbTarget {
    const lb = this.byId.get(target.id);
    if (lb === undefined) {
      throw new TransportError(`unknown local LB: ${target.id}`, { retryable: false });
    }
    return lb;
  }

  /** Parse the result line; a script that died by signal (not ours) may succeed on a retry. */
  private result(lb: LocalLbTarget, run: ScriptRun): ApplyResult {
    if (run.signal !== null) {
      throw new TransportError(
        `${lb.id}: apply script killed by ${run.signal}: ${tail(run.stderr)}`,
        { retryable: true },
      );
    }
    try {
      return parseApplyResult(run.stdout);
    } catch (err) {
      throw new TransportError(
        `${lb.id}: apply script exited ${run.code} without a result line: ${tail(run.stderr)}`,
        { cause: err, retryable: false },
      );
    }
  }

  private async run(
    lb: LocalLbTarget,
    extra: readonly string[],
    stdin: string,
    signal?: AbortSignal,
  ): Promise<ScriptRun> {
    let script: string;
    try {
      script = await shippedLbScript(this.scriptPath);
    } catch (err) {
      throw new TransportError(`${lb.id}: cannot read ${this.scriptPath}: ${errorMessage(err)}`, {
        cause: err,
        retryable: false,
      });
    }
    const args = ['-c', script, 'lbsync-apply.sh', ...applyArgs(lb), ...extra];
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new TransportError(`${lb.id}: aborted`, { cause: signal.reason, retryable: true }));
        return;
      }
      const child = spawn(this.shell, args, {
        stdio: ['pipe', 'pipe', 'pipe'],
        ...(this.env !== undefined ? { env: this.env } : {}),
      });
      let stdout = '';
      let stderr = '';
      let failure: TransportError | null = null;
      let killTimer: NodeJS.Timeout | undefined;
      const stop = (why: TransportError): void => {
        failure ??= why;
        child.kill('SIGTERM');
        killTimer ??= setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      };
      const timer = setTimeout(
        () =>
          stop(
            new TransportError(`${lb.id}: apply script timed out after ${this.timeoutMs} ms`, {
              retryable: true,
            }),
          ),
        this.timeoutMs,
      );
      const onAbort = (): void =>
        stop(new TransportError(`${lb.id}: aborted`, { cause: signal?.reason, retryable: true }));
      signal?.addEventListener('abort', onAbort, { once: true });
      const settle = (): void => {
        clearTimeout(timer);
        clearTimeout(killTimer);
        signal?.removeEventListener('abort', onAbort);
      };
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
      });
      child.stderr.on('data', (c: Buffer) => {
        stderr = (stderr + c.toString()).slice(-8000);
      });
      child.on('error', (err) => {
        settle();
        reject(
          new TransportError(
            `${lb.id}: cannot run ${this.shell} ${this.scriptPath}: ${errorMessage(err)}`,
            {
              cause: err,
              retryable: true,
            },
          ),
        );
      });
      child.on('close', (code, sig) => {
        settle();
        if (failure !== null) reject(failure);
        else resolve({ code, signal: sig, stdout, stderr });
      });
      // The script may exit before reading stdin (bad usage); EPIPE is not our error then.
      child.stdin.on('error', () => {});
      child.stdin.end(stdin);
    });
  }
}

function tail(text: string): string {
  const t = text.trim();
  return t.length > 500 ? `…${t.slice(-500)}` : t || '(no stderr)';
}
