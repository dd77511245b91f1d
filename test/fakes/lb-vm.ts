import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';

/**
 * A fake LB "VM" on this machine: a real HAProxy started inside its own mount
 * namespace, where /etc/haproxy, /var/lib/lbsync and /run are bind mounts of
 * directories under `root`. Commands a fake Run Command (or agent) executes
 * enter that namespace with nsenter, so the unmodified command a transport
 * sends — default paths and all — acts on this VM only. Several VMs share the
 * machine without sharing files. Needs root (or unprivileged user namespaces).
 */
export class LbVm {
  private exited = false;

  private constructor(
    public readonly name: string,
    public readonly root: string,
    private readonly child: ChildProcess,
  ) {
    child.once('exit', () => {
      this.exited = true;
    });
  }

  /** Host path of the master CLI socket. */
  public get masterSocket(): string {
    return join(this.root, 'run/haproxy-master.sock');
  }

  /** Host path of the live config. */
  public get configPath(): string {
    return join(this.root, 'etc/haproxy/haproxy.cfg');
  }

  /** Host path of the apply script's state dir. */
  public get stateDir(): string {
    return join(this.root, 'var/lib/lbsync');
  }

  /** PID of the HAProxy master (also the namespace holder). */
  public get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Boot the VM with an initial config (what cloud-init would leave). */
  public static async start(name: string, root: string, config: string): Promise<LbVm> {
    for (const d of ['etc/haproxy', 'var/lib/lbsync', 'run/haproxy'])
      mkdirSync(join(root, d), { recursive: true });
    mkdirSync('/var/lib/lbsync', { recursive: true });
    writeFileSync(join(root, 'etc/haproxy/haproxy.cfg'), config);
    const q = (p: string): string => `'${p.replace(/'/g, `'\\''`)}'`;
    const boot = [
      `mount --bind ${q(join(root, 'etc/haproxy'))} /etc/haproxy`,
      `mount --bind ${q(join(root, 'var/lib/lbsync'))} /var/lib/lbsync`,
      `mount --bind ${q(join(root, 'run'))} /run`,
      'exec haproxy -W -S /run/haproxy-master.sock,level,admin -p /run/haproxy.pid -f /etc/haproxy/haproxy.cfg',
    ].join(' && ');
    const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', boot], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-4000);
    });
    const vm = new LbVm(name, root, child);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (vm.exited) throw new Error(`LB VM ${name} did not boot: ${stderr.trim()}`);
      try {
        const out = await vm.masterCommand('show proc');
        if (/\bworker\b/.test(out)) return vm;
      } catch {
        // socket not up yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await vm.stop();
    throw new Error(`LB VM ${name} did not answer on its master socket: ${stderr.trim()}`);
  }

  /** Run a shell script inside the VM (as a Run Command would), stdin optional. */
  public exec(
    script: string,
    opts: {
      readonly stdin?: string;
      readonly timeoutMs?: number;
      readonly env?: NodeJS.ProcessEnv;
    } = {},
  ): Promise<{ readonly code: number; readonly stdout: string; readonly stderr: string }> {
    return new Promise((resolve) => {
      const p = spawn('nsenter', ['-t', String(this.pid), '-m', 'sh', '-c', script], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...opts.env },
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
      });
      p.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
      });
      const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
      p.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
      p.stdin.on('error', () => {});
      p.stdin.end(opts.stdin ?? '');
    });
  }

  /** Send one command to the master CLI and return its answer. */
  public masterCommand(cmd: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const sock = createConnection(this.masterSocket);
      let out = '';
      sock.setTimeout(5000, () => sock.destroy(new Error('master socket timeout')));
      sock.on('connect', () => sock.end(`${cmd}\n`));
      sock.on('data', (c) => {
        out += c.toString();
      });
      sock.on('error', reject);
      sock.on('close', () => resolve(out));
    });
  }

  /** The master's reload counter. */
  public async reloadCount(): Promise<number> {
    const out = await this.masterCommand('show proc');
    const m = /^\d+\s+master\s+(\d+)/m.exec(out);
    return m?.[1] === undefined ? -1 : Number(m[1]);
  }

  /** Stop HAProxy (and so the namespace); idempotent. */
  public async stop(): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }
}

/** A minimal valid config for a freshly booted LB VM. */
export const BOOT_CONFIG = `global
    log stdout format raw local0 notice
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
`;
