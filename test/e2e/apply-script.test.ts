import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HaproxyProcess } from '../../adapters/local/haproxy.js';
import { type LocalLbTarget, LocalTransport } from '../../adapters/local/transport.js';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import { APPLY_EXIT_CODES } from '../../core/apply-contract.js';
import { TransportError } from '../../core/errors.js';
import { loadLbScript } from '../../core/lb-scripts.js';
import type { ApplyResult } from '../../core/model.js';
import { encodePayload, parseApplyResult } from '../../core/payload.js';
import { askWorker } from '../helpers/ask.js';

// Ports 21000-21099 and backends on 127.0.20.x belong to this file.
const FRONT = 21001;
const HELD = 21002;
const BACKEND_PORT = 21010;

// The shipped form (library inlined), written to a file beforeAll: what every transport runs.
let SCRIPT = '';
const FIXTURES = join(import.meta.dirname, '../fixtures/apply');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly result: ApplyResult;
}

describe('lbsync-apply.sh on a real HAProxy', () => {
  let dir: string;
  let haproxy: HaproxyProcess;
  let transport: LocalTransport;
  let target: LocalLbTarget;
  const workers: WorkerServer[] = [];
  const children = new Set<ChildProcess>();
  // Generations are ms timestamps in production; any increasing sequence will do here.
  let generation = 1_000;
  const nextGeneration = (): number => ++generation;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-e2e-apply-'));
    SCRIPT = join(dir, 'lbsync-apply.sh');
    writeFileSync(SCRIPT, await loadLbScript('apply'));
    haproxy = await HaproxyProcess.start({ dir, config: fixture('boot.cfg') });
    for (const n of [1, 2, 3, 4]) {
      workers.push(
        await startWorkerServer({ id: `w${n}`, address: `127.0.20.${n}`, ports: [BACKEND_PORT] }),
      );
    }
    target = {
      id: 'lb-apply',
      configPath: haproxy.configPath,
      stateDir: haproxy.stateDir,
      reload: 'master-socket',
      masterSocket: haproxy.masterSocket,
    };
    transport = new LocalTransport([target], { shell: 'dash' });
  });

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await haproxy?.stop();
    await Promise.all(workers.map((w) => w.close()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Run the script under dash with the LB's paths plus `args`, payload on stdin. */
  function runScript(
    args: readonly string[],
    stdin: string,
    env: NodeJS.ProcessEnv = process.env,
  ): Promise<Run> {
    const base = [
      '--config',
      haproxy.configPath,
      '--state-dir',
      haproxy.stateDir,
      '--master-socket',
      haproxy.masterSocket,
    ];
    return new Promise((resolve, reject) => {
      const child = spawn('dash', [SCRIPT, ...base, ...args], { env });
      children.add(child);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
      });
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
      });
      child.on('error', reject);
      child.on('close', (code) => {
        children.delete(child);
        try {
          resolve({ code, stdout, stderr, result: parseApplyResult(stdout) });
        } catch (err) {
          reject(new Error(`no result line (exit ${code}); stderr: ${stderr}`, { cause: err }));
        }
      });
      child.stdin.on('error', () => {});
      child.stdin.end(stdin);
    });
  }

  const apply = (config: string, gen = nextGeneration(), env?: NodeJS.ProcessEnv): Promise<Run> =>
    runScript(['--reload', 'master-socket'], encodePayload(config, gen, 2).text, env);

  /** Which workers answer `requests` sequential requests through the frontend. */
  async function workersSeen(requests = 12): Promise<string[]> {
    const seen = new Set<string>();
    for (let i = 0; i < requests; i++) {
      seen.add(await askWorker(FRONT));
    }
    return [...seen].sort();
  }

  /** The state an invalid, stale or rejected run must leave exactly as it was. */
  function snapshot(): Record<string, string | boolean> {
    const read = (p: string): string => (existsSync(p) ? readFileSync(p, 'utf8') : '<absent>');
    return {
      live: read(haproxy.configPath),
      generation: read(join(haproxy.stateDir, 'generation')),
      sha256: read(join(haproxy.stateDir, 'sha256')),
      staged: existsSync(`${haproxy.configPath}.lbsync-staged`),
    };
  }

  it('applies a first config through LocalTransport, reloads once and sends traffic to the new backends', async () => {
    // Prepare
    const reloads = await haproxy.reloadCount();
    const config = fixture('two-backends.cfg');
    const gen = nextGeneration();
    // Act
    const r = await transport.apply(target, encodePayload(config, gen, 2));
    // Assess
    expect(r).toMatchObject({
      result: 'applied',
      generation: gen,
      sha256: sha256(config),
      servers: 2,
      via: 'reload',
      added: 2,
      removed: 0,
    });
    // No runtime socket in this LB's configs: the message says why it reloaded.
    expect(r.message).toMatch(/^reloaded: /);
    expect(r.ms).toBeGreaterThanOrEqual(0);
    expect(await haproxy.reloadCount()).toBe(reloads + 1);
    expect(readFileSync(haproxy.configPath, 'utf8')).toBe(config);
    expect(readFileSync(join(haproxy.stateDir, 'generation'), 'utf8')).toBe(`${gen}\n`);
    expect(readFileSync(join(haproxy.stateDir, 'sha256'), 'utf8')).toBe(`${sha256(config)}\n`);
    expect(existsSync(`${haproxy.configPath}.lbsync-staged`)).toBe(false);
    expect(await workersSeen()).toEqual(['w1', 'w2']);
  });

  it('answers unchanged to an identical payload without reloading, and records the newer generation', async () => {
    // Prepare
    const reloads = await haproxy.reloadCount();
    const gen = nextGeneration();
    // Act
    const r = await apply(fixture('two-backends.cfg'), gen);
    // Assess
    expect(r.code).toBe(0);
    expect(r.result.result).toBe('unchanged');
    expect(await haproxy.reloadCount()).toBe(reloads);
    expect(readFileSync(join(haproxy.stateDir, 'generation'), 'utf8')).toBe(`${gen}\n`);
  });

  it('reads the payload from --payload FILE as well as from stdin', async () => {
    // Prepare
    const gen = nextGeneration();
    const file = join(dir, 'payload.txt');
    writeFileSync(file, encodePayload(fixture('two-backends.cfg'), gen, 2).text);
    // Act: stdin carries garbage, so only the file can produce this result.
    const r = await runScript(['--payload', file], 'garbage');
    // Assess
    expect(r.code).toBe(0);
    expect(r.result).toMatchObject({ result: 'unchanged', generation: gen });
  });

  it('prints usage with --help and exits 0', async () => {
    const help = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn('dash', [SCRIPT, '--help']);
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^Usage: lbsync-apply\.sh/);
    expect(help.out).toMatch(/--master-socket PATH/);
    expect(help.out).toMatch(/--runtime-socket PATH/);
    expect(help.out).toMatch(/--removal-timeout S/);
    // The exit codes it documents are the contract's.
    const documented = Object.fromEntries(
      [...help.out.replace(/\n/g, ' ').matchAll(/(\d) ([a-z|-]+)[,.]/g)].flatMap((m) =>
        `${m[2]}`.split('|').map((r) => [r, Number(m[1])]),
      ),
    );
    expect(documented).toEqual(APPLY_EXIT_CODES);
  });

  it('refuses an older generation as stale and leaves the live config byte for byte', async () => {
    // Prepare
    const before = snapshot();
    const reloads = await haproxy.reloadCount();
    // Act
    const r = await apply(fixture('other-backends.cfg'), generation - 10);
    // Assess
    expect(r.code).toBe(0);
    expect(r.result.result).toBe('stale');
    expect(r.result.message).toMatch(/older than the recorded/);
    expect(snapshot()).toEqual(before);
    expect(await haproxy.reloadCount()).toBe(reloads);
    expect(await workersSeen()).toEqual(['w1', 'w2']);
  });

  it('refuses a payload whose sha256 does not match its content as invalid, changing nothing', async () => {
    // Prepare: a valid payload for one config with the sha256 of another.
    const before = snapshot();
    const good = encodePayload(fixture('other-backends.cfg'), nextGeneration(), 2);
    const forged = good.text.replace(good.sha256, sha256('something else'));
    // Act
    const r = await runScript([], forged);
    // Assess
    expect(r.code).toBe(2);
    expect(r.result.result).toBe('invalid');
    expect(r.result.message).toMatch(/sha256 mismatch/);
    expect(snapshot()).toEqual(before);
  });

  describe('malformed and hostile payloads', () => {
    const valid = (): string => encodePayload(fixture('other-backends.cfg'), 5_000_000, 2).text;
    const v2 = (): string =>
      encodePayload(fixture('other-backends.cfg'), 5_000_000, 2, { maxRemovalPercent: 50 }).text;
    const lines = (): string[] => valid().split('\n');
    const withLine = (i: number, line: string): string => {
      const l = lines();
      l[i] = line;
      return l.join('\n');
    };
    const cases: ReadonlyArray<readonly [string, () => string]> = [
      ['an unknown format version', () => withLine(0, 'lbsync=3')],
      ['a command injected into generation', () => withLine(1, 'generation=1;rm -rf /')],
      ['a command substitution in generation', () => withLine(1, 'generation=$(touch PWNED)')],
      [
        'a leading zero in generation (octal in sh arithmetic)',
        () => withLine(1, 'generation=010'),
      ],
      ['a generation beyond 16 digits', () => withLine(1, `generation=${'9'.repeat(17)}`)],
      ['an uppercase sha256', () => withLine(2, `sha256=${sha256('x').toUpperCase()}`)],
      ['a short sha256', () => withLine(2, 'sha256=abc123')],
      ['a negative server count', () => withLine(3, 'servers=-1')],
      ['a missing separator', () => withLine(4, '--')],
      ['headers in another order', () => [lines()[1], lines()[0], ...lines().slice(2)].join('\n')],
      ['a body that is not base64', () => withLine(5, 'not*base64!')],
      [
        'a body that is base64 but not gzip',
        () => withLine(5, Buffer.from('plain').toString('base64')),
      ],
      [
        'a body split over two lines',
        () => withLine(5, `${lines()[5]?.slice(0, 8)}\n${lines()[5]?.slice(8)}`),
      ],
      ['an empty payload', () => ''],
      ['a v2 header without its guard lines', () => withLine(0, 'lbsync=2')],
      [
        'a v2 guard above 100 percent',
        () => v2().replace('max-removal-percent=50', 'max-removal-percent=100.5'),
      ],
      [
        'a v2 guard with three decimals',
        () => v2().replace('max-removal-percent=50', 'max-removal-percent=33.333'),
      ],
      ['a v2 force flag that is not 0 or 1', () => v2().replace('force=0', 'force=yes')],
      ['a truncated header', () => lines().slice(0, 3).join('\n')],
    ];

    it.each(cases)(
      'refuses %s as invalid with exit code 2 and changes nothing',
      async (_name, make) => {
        // Prepare
        const before = snapshot();
        const reloads = await haproxy.reloadCount();
        // Act
        const r = await runScript([], make());
        // Assess
        expect(r.code).toBe(2);
        expect(r.result.result).toBe('invalid');
        expect(r.result.message).toBeTruthy();
        expect(snapshot()).toEqual(before);
        expect(await haproxy.reloadCount()).toBe(reloads);
        expect(existsSync('PWNED')).toBe(false);
        expect(existsSync(join(haproxy.stateDir, 'PWNED'))).toBe(false);
        // Its temp dir went with it.
        expect(readdirSync(join(haproxy.stateDir, 'tmp'))).toEqual([]);
      },
    );

    it('refuses unknown options and reload modes as invalid with exit code 2', async () => {
      const unknown = await runScript(['--frobnicate'], valid());
      const badMode = await runScript(['--reload', 'kill -9'], valid());
      expect([unknown.code, unknown.result.result]).toEqual([2, 'invalid']);
      expect(unknown.result.message).toMatch(/unknown argument: --frobnicate/);
      expect([badMode.code, badMode.result.result]).toEqual([2, 'invalid']);
      expect(badMode.result.message).toMatch(/--reload must be/);
      const badSocket = await runScript(['--runtime-socket', 'x,fork'], valid());
      expect([badSocket.code, badSocket.result.result]).toEqual([2, 'invalid']);
      expect(badSocket.result.message).toMatch(/--runtime-socket must be a plain path/);
      const badTimeout = await runScript(['--removal-timeout', '1.5'], valid());
      expect(badTimeout.result.message).toMatch(/--removal-timeout must be a whole number/);
    });
  });

  it("rejects a config that fails haproxy -c with haproxy's alert, keeps the live config and keeps serving", async () => {
    // Prepare
    const before = snapshot();
    const reloads = await haproxy.reloadCount();
    // Act
    const r = await apply(fixture('invalid.cfg'));
    // Assess
    expect(r.code).toBe(3);
    expect(r.result.result).toBe('rejected');
    expect(r.result.message).toMatch(/\[ALERT\].*unknown keyword 'bogus_directive'/);
    expect(r.stdout.trim().split('\n').at(-1)?.length).toBeLessThanOrEqual(1536);
    expect(snapshot()).toEqual(before);
    expect(await haproxy.reloadCount()).toBe(reloads);
    expect(await workersSeen()).toEqual(['w1', 'w2']);
  });

  it('rolls back when the reload fails (a port held by another listener) and the old config keeps serving', async () => {
    // Prepare: `haproxy -c` never binds, so only the reload notices the held port.
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(HELD, '127.0.0.1', resolve));
    const before = snapshot();
    const reloads = await haproxy.reloadCount();
    try {
      // Act
      const r = await apply(fixture('port-conflict.cfg'));
      // Assess
      expect(r.code).toBe(4);
      expect(r.result.result).toBe('rolled-back');
      expect(r.result.message).toMatch(/failed reload/);
      expect(snapshot()).toEqual(before);
      expect(readFileSync(`${haproxy.configPath}.lbsync-backup`, 'utf8')).toBe(before.live);
      // One failed reload with the new config, one good one with the restored config.
      expect(await haproxy.reloadCount()).toBe(reloads + 2);
      expect(await workersSeen()).toEqual(['w1', 'w2']);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it('serializes concurrent applies through flock: the newest generation wins and nothing is torn', async () => {
    // Prepare: five distinct configs, generations in random start order.
    const reloads = await haproxy.reloadCount();
    const base = fixture('other-backends.cfg');
    const payloads = [1, 2, 3, 4, 5].map((i) =>
      encodePayload(`${base}# variant ${i}\n`, nextGeneration(), 2),
    );
    const newest = payloads.at(-1);
    const order = [2, 4, 0, 3, 1];
    // Act
    const runs = await Promise.all(order.map((i) => runScript([], payloads[i]?.text ?? '')));
    // Assess
    const outcomes = runs.map((r) => r.result.result);
    expect(outcomes.every((o) => o === 'applied' || o === 'stale')).toBe(true);
    expect(runs[order.indexOf(4)]?.result.result).toBe('applied');
    const applied = outcomes.filter((o) => o === 'applied').length;
    expect(await haproxy.reloadCount()).toBe(reloads + applied);
    const live = readFileSync(haproxy.configPath, 'utf8');
    expect(sha256(live)).toBe(newest?.sha256);
    expect(readFileSync(join(haproxy.stateDir, 'generation'), 'utf8')).toBe(
      `${newest?.generation}\n`,
    );
    expect(readFileSync(join(haproxy.stateDir, 'sha256'), 'utf8')).toBe(`${newest?.sha256}\n`);
    expect(existsSync(`${haproxy.configPath}.lbsync-staged`)).toBe(false);
    expect(await workersSeen()).toEqual(['w3', 'w4']);
  });

  it('answers busy with exit code 6 when another apply holds the lock past --lock-timeout', async () => {
    // Prepare: a single process (exec) holds the lock, so killing it releases the lock.
    const holder = spawn('sh', [
      '-c',
      'exec 9>>"$1/lock" && flock 9 && echo locked && exec sleep 30',
      'sh',
      haproxy.stateDir,
    ]);
    children.add(holder);
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    const before = snapshot();
    try {
      // Act
      const r = await runScript(
        ['--lock-timeout', '1'],
        encodePayload(fixture('two-backends.cfg'), nextGeneration(), 2).text,
      );
      // Assess
      expect(r.code).toBe(6);
      expect(r.result.result).toBe('busy');
      expect(snapshot()).toEqual(before);
    } finally {
      holder.kill('SIGKILL');
      children.delete(holder);
    }
  });

  describe('systemd mode (a fake systemctl on PATH)', () => {
    let bin: string;
    let calls: string;
    let failFlag: string;
    let env: NodeJS.ProcessEnv;

    beforeAll(() => {
      // The shim stands in for `systemctl reload haproxy` (whose ExecReload
      // signals the master) by reloading through the master socket.
      bin = join(dir, 'bin');
      mkdirSync(bin, { recursive: true });
      calls = join(dir, 'systemctl.calls');
      failFlag = join(dir, 'systemctl.fail');
      const shim = [
        '#!/bin/sh',
        `echo "$*" >> '${calls}'`,
        `if [ -e '${failFlag}' ]; then echo "Job for haproxy.service failed." >&2; exit 1; fi`,
        'case "$1" in',
        `  reload) printf 'reload\\n' | socat - 'UNIX-CONNECT:${haproxy.masterSocket}' >/dev/null ;;`,
        '  is-active) echo active ;;',
        '  *) exit 1 ;;',
        'esac',
        '',
      ].join('\n');
      writeFileSync(join(bin, 'systemctl'), shim);
      chmodSync(join(bin, 'systemctl'), 0o755);
      env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` };
    });

    it('reloads with systemctl, checks is-active and verifies the reload through the master socket', async () => {
      // Prepare
      rmSync(calls, { force: true });
      const reloads = await haproxy.reloadCount();
      const config = fixture('two-backends.cfg');
      // Act
      const r = await runScript(
        ['--reload', 'systemd'],
        encodePayload(config, nextGeneration(), 2).text,
        env,
      );
      // Assess
      expect(r.code).toBe(0);
      expect(r.result.result).toBe('applied');
      expect(readFileSync(calls, 'utf8')).toBe('reload haproxy\nis-active haproxy\n');
      expect(await haproxy.reloadCount()).toBe(reloads + 1);
      expect(readFileSync(haproxy.configPath, 'utf8')).toBe(config);
      expect(await workersSeen()).toEqual(['w1', 'w2']);
    });

    it('reports failed with exit code 5 when systemctl fails for the change and the rollback, leaving the previous config', async () => {
      // Prepare
      const before = snapshot();
      writeFileSync(failFlag, '');
      try {
        // Act
        const r = await runScript(
          ['--reload', 'systemd'],
          encodePayload(fixture('other-backends.cfg'), nextGeneration(), 2).text,
          env,
        );
        // Assess
        expect(r.code).toBe(5);
        expect(r.result.result).toBe('failed');
        expect(r.result.message).toMatch(
          /systemctl reload haproxy failed.*Job for haproxy.service failed/,
        );
        expect(snapshot()).toEqual(before);
        expect(await workersSeen()).toEqual(['w1', 'w2']);
      } finally {
        rmSync(failFlag, { force: true });
      }
    });
  });

  it('prints the recorded generation, live sha256 and server count with --status, also through LocalTransport', async () => {
    // Prepare
    const live = readFileSync(haproxy.configPath, 'utf8');
    const recorded = Number(readFileSync(join(haproxy.stateDir, 'generation'), 'utf8'));
    const before = snapshot();
    // Act
    const r = await runScript(['--status'], '');
    const state = await transport.status(target);
    // Assess
    expect(r.code).toBe(0);
    expect(r.result).toMatchObject({
      result: 'status',
      generation: recorded,
      sha256: sha256(live),
      servers: 2,
      workers: 2,
    });
    expect(state).toMatchObject({
      generation: recorded,
      sha256: sha256(live),
      servers: 2,
      text: live,
    });
    expect(state.workerIds).toEqual(['w1', 'w2']);
    expect(snapshot()).toEqual(before);
  });
});

describe('LocalTransport', () => {
  const lb: LocalLbTarget = {
    id: 'lb-x',
    configPath: '/nonexistent/haproxy.cfg',
    stateDir: '/nonexistent/state',
    reload: 'auto',
  };
  const payload = encodePayload('global\n', 1, 0);

  it('turns a shell that cannot be spawned into a retryable TransportError', async () => {
    const t = new LocalTransport([lb], { shell: '/nonexistent/sh' });
    const err = await t.apply(lb, payload).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).retryable).toBe(true);
  });

  it('kills a script that outlives timeoutMs and reports a retryable TransportError', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lbsync-transport-'));
    try {
      const script = join(dir, 'hang.sh');
      const pidFile = join(dir, 'pid');
      writeFileSync(script, `echo $$ > '${pidFile}'\nexec sleep 30\n`);
      const t = new LocalTransport([lb], { scriptPath: script, timeoutMs: 200 });
      const err = await t.apply(lb, payload).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransportError);
      expect((err as TransportError).message).toMatch(/timed out after 200 ms/);
      expect((err as TransportError).retryable).toBe(true);
      // It answered because it killed the script, not because the sleep ended.
      const pid = Number(readFileSync(pidFile, 'utf8'));
      expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a target it was not configured with', async () => {
    const t = new LocalTransport([lb]);
    await expect(t.status({ id: 'other' })).rejects.toThrow(/unknown local LB: other/);
  });

  it('reports a script that prints no result line as a permanent TransportError with its stderr', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lbsync-transport-'));
    try {
      const script = join(dir, 'broken.sh');
      writeFileSync(script, 'echo "syntax trouble" >&2; exit 1\n');
      const t = new LocalTransport([lb], { scriptPath: script });
      const err = await t.apply(lb, payload).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransportError);
      expect((err as TransportError).retryable).toBe(false);
      expect((err as TransportError).message).toMatch(
        /exited 1 without a result line: syntax trouble/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
