import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { delimiter, join } from 'node:path';

/** Where to look for haproxy besides PATH: Debian installs it in /usr/sbin, often not on a user's PATH. */
const FALLBACK_BINS = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy'];

/** The haproxy binary on PATH or in /usr/sbin, or null when it is not installed. */
export function findHaproxy(): string | null {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  for (const candidate of [...dirs.map((d) => join(d, 'haproxy')), ...FALLBACK_BINS]) {
    try {
      accessSync(candidate, constants.X_OK);
      // X_OK alone also matches a directory named haproxy.
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here; try the next one
    }
  }
  return null;
}

/** Options for `HaproxyProcess.start`. */
export interface HaproxyProcessOptions {
  /** Directory that will hold haproxy.cfg, master.sock and state/. */
  readonly dir: string;
  /** Initial config text (what cloud-init would leave on a fresh LB VM). */
  readonly config: string;
  /** haproxy binary; defaults to `findHaproxy()`. */
  readonly haproxyBin?: string;
}

/** How long `start` waits for the master CLI to list a worker. */
const START_TIMEOUT_MS = 10_000;
/** How long `stop` waits after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 5_000;

/**
 * A real HAProxy in master-worker mode (`-W`) with its master CLI on a unix
 * socket, for the demo and end-to-end tests. The apply script reloads it
 * through that socket exactly as it would on an LB VM.
 */
export class HaproxyProcess {
  /** The live config file the master re-reads on every reload. */
  public readonly configPath: string;
  /** The master CLI socket (`-S …,level,admin`). */
  public readonly masterSocket: string;
  /** State dir for the apply script (lock, recorded generation and sha256). */
  public readonly stateDir: string;

  private exited = false;
  private stderr = '';

  private constructor(
    dir: string,
    private readonly child: ChildProcess,
  ) {
    this.configPath = join(dir, 'haproxy.cfg');
    this.masterSocket = join(dir, 'master.sock');
    this.stateDir = join(dir, 'state');
    child.once('exit', () => {
      this.exited = true;
    });
    child.stderr?.on('data', (c: Buffer) => {
      // Keep only the tail: enough to explain a failed start.
      this.stderr = (this.stderr + c.toString()).slice(-4000);
    });
  }

  /** Write the config, spawn HAProxy and wait until the master CLI lists a worker. */
  public static async start(opts: HaproxyProcessOptions): Promise<HaproxyProcess> {
    const bin = opts.haproxyBin ?? findHaproxy();
    if (bin === null) {
      throw new Error('haproxy is not installed: run `apt-get install -y haproxy socat`');
    }
    mkdirSync(join(opts.dir, 'state'), { recursive: true });
    const configPath = join(opts.dir, 'haproxy.cfg');
    writeFileSync(configPath, opts.config);
    const socket = join(opts.dir, 'master.sock');
    const child = spawn(bin, ['-W', '-S', `${socket},level,admin`, '-f', configPath], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const hp = new HaproxyProcess(opts.dir, child);
    const spawned = new Promise<Error | null>((resolve) => {
      child.once('spawn', () => resolve(null));
      child.once('error', (err) => resolve(err));
    });
    const spawnError = await spawned;
    if (spawnError !== null) throw new Error(`cannot start ${bin}: ${spawnError.message}`);
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (hp.exited) throw new Error(`haproxy exited during start: ${hp.stderr.trim()}`);
      try {
        if (/^\d+\s+worker\s/m.test(await hp.masterCommand('show proc'))) return hp;
      } catch {
        // the socket is not up yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await hp.stop();
    throw new Error(`haproxy did not answer on ${socket}: ${hp.stderr.trim()}`);
  }

  /** Send one command to the master CLI (node:net, no socat) and return its answer. */
  public masterCommand(cmd: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const sock = createConnection(this.masterSocket);
      let out = '';
      sock.setTimeout(5000, () => sock.destroy(new Error('master socket timeout')));
      // The master CLI answers one command and closes when the client half-closes.
      sock.on('connect', () => sock.end(`${cmd}\n`));
      sock.on('data', (c: Buffer) => {
        out += c.toString();
      });
      sock.on('error', reject);
      sock.on('close', (hadError) => {
        if (!hadError) resolve(out);
      });
    });
  }

  /** The master's reload counter from `show proc`. */
  public async reloadCount(): Promise<number> {
    const out = await this.masterCommand('show proc');
    const m = /^\d+\s+master\s+(\d+)/m.exec(out);
    if (m?.[1] === undefined) throw new Error(`unexpected show proc answer: ${out.slice(0, 200)}`);
    return Number(m[1]);
  }

  /** SIGTERM, wait for the exit, SIGKILL after a grace period; idempotent. */
  public async stop(): Promise<void> {
    if (this.child.pid === undefined || this.exited) return;
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
    await gone;
    clearTimeout(t);
  }
}
