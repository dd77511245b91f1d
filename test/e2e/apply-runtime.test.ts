import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadLoop, type LoadSample, startLoad } from '../../adapters/local/load.js';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import { type Spec, validateSpec } from '../../adapters/spec.js';
import {
  type ApplyResult,
  type ApplyScriptOptions,
  applyArgs,
  parseApplyResult,
} from '../../core/apply-contract.js';
import { applyCommand } from '../../core/command.js';
import { loadLbScript } from '../../core/lb-scripts.js';
import type { Worker } from '../../core/model.js';
import { encodePayload, type PayloadOptions } from '../../core/payload.js';
import { loadTemplate, renderConfig, type Template } from '../../core/render.js';
import { LbVm } from '../fakes/lb-vm.js';
import { askWorker } from '../helpers/ask.js';
import { waitFor } from '../helpers/wait.js';

// This file owns ports 28001-28099 and workers on 127.0.28.x / 127.0.29.x.
const FRONT = 28001;
// Worker addresses are ours alone, so NodePort-range ports on them clash with no one.
const NODE_PORT = 30080;
const HEALTH_PORT = 28090;
const POOL = 8;

// A freshly booted LB VM, as cloud-init leaves it: the runtime socket is there.
const BOOT = `global
    log stdout format raw local0 notice
    stats socket /run/haproxy/admin.sock mode 660 level admin
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
`;

// The Run Command wrapper with its default paths, exactly what SSM and Azure carry.
const LB_PATHS: ApplyScriptOptions = {
  configPath: '/etc/haproxy/haproxy.cfg',
  stateDir: '/var/lib/lbsync',
  reload: 'master-socket',
};
const LIMITS = { stderrTail: 4000, stdoutTail: 2000, curlTail: 2000 };

interface Applied {
  readonly code: number;
  readonly result: ApplyResult;
  readonly startedAt: number;
  readonly doneAt: number;
}

describe('lbsync-apply.sh runtime path on a real HAProxy (LB VM)', () => {
  let dir: string;
  let vm: LbVm;
  let script: string;
  let template: Template;
  let generation = 1_000;
  const pool: WorkerServer[] = [];
  const held: Socket[] = [];
  let activeLoad: LoadLoop | null = null;

  const spec = (tuning: Record<string, unknown> = {}): Spec =>
    validateSpec({
      name: 'runtime-e2e',
      cloud: 'local',
      workers: { local: { static: [] } },
      loadBalancers: { local: [{ name: 'lb', configPath: '/x/haproxy.cfg', stateDir: '/x' }] },
      services: [{ name: 'http', bind: `127.0.0.1:${FRONT}`, nodePort: NODE_PORT }],
      healthCheck: { port: HEALTH_PORT, interval: '1s' },
      drain: { seconds: 10 },
      // This machine's FD limit is below what the profiles' maxconn needs.
      tuning: { maxconn: 2000, ...tuning },
    });
  const worker = (n: number, state: Worker['state'] = 'serving'): Worker => ({
    id: `w${n}`,
    address: n <= POOL ? `127.0.28.${n}` : `127.0.29.${n - POOL}`,
    state,
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lbsync-e2e-runtime-'));
    vm = await LbVm.start('runtime-lb', join(dir, 'lb'), BOOT);
    script = await loadLbScript('apply');
    template = await loadTemplate(spec());
    for (let n = 1; n <= POOL; n++) {
      pool.push(
        await startWorkerServer({
          id: `w${n}`,
          address: `127.0.28.${n}`,
          ports: [NODE_PORT],
          healthPort: HEALTH_PORT,
        }),
      );
    }
  });

  afterAll(async () => {
    for (const s of held) s.destroy();
    await vm?.stop();
    await Promise.all(pool.map((w) => w.close()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Push `workers` through the Run Command wrapper inside the VM, as a transport would. */
  async function push(
    workers: readonly Worker[],
    opts: {
      readonly spec?: Spec;
      readonly payload?: PayloadOptions;
      readonly removalTimeoutSeconds?: number;
      /** Edit the rendered text (a custom template's output). */
      readonly edit?: (text: string) => string;
    } = {},
  ): Promise<Applied> {
    const rendered = renderConfig(opts.spec ?? spec(), workers, template);
    const payload = encodePayload(
      opts.edit === undefined ? rendered.text : opts.edit(rendered.text),
      ++generation,
      rendered.servers,
      opts.payload ?? {},
    );
    const args = applyArgs({
      ...LB_PATHS,
      ...(opts.removalTimeoutSeconds !== undefined
        ? { removalTimeoutSeconds: opts.removalTimeoutSeconds }
        : {}),
    });
    const startedAt = Date.now();
    const out = await vm.exec(
      applyCommand(script, args, { kind: 'inline', text: payload.text }, LIMITS),
    );
    const doneAt = Date.now();
    return { code: out.code, result: parseApplyResult(out.stdout), startedAt, doneAt };
  }

  /** Connections open on pool worker `id`. */
  const openOn = (id: string): number => pool.find((w) => w.id === id)?.openConnections() ?? 0;

  /** A long-lived connection through the LB to w1 or w2; which one holds it. */
  async function holdConnection(): Promise<{ sock: Socket; busy: string }> {
    const sock = createConnection({ host: '127.0.0.1', port: FRONT });
    held.push(sock);
    await waitFor(() => openOn('w1') + openOn('w2') > 0, 'the held connection');
    return { sock, busy: openOn('w1') > 0 ? 'w1' : 'w2' };
  }

  /** PID of the current HAProxy worker (the one forked by the latest reload). */
  async function workerPid(): Promise<number> {
    const m = /^(\d+)\s+worker\s+0\s/m.exec(await vm.masterCommand('show proc'));
    if (m?.[1] === undefined) throw new Error('no current worker in show proc');
    return Number(m[1]);
  }

  /** One command on the runtime API socket (the VM's /run/haproxy/admin.sock). */
  function admin(cmd: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const sock = createConnection(join(vm.root, 'run/haproxy/admin.sock'));
      let out = '';
      sock.setTimeout(5000, () => sock.destroy(new Error('admin socket timeout')));
      sock.on('connect', () => sock.end(`${cmd}\n`));
      sock.on('data', (c: Buffer) => {
        out += c.toString();
      });
      sock.on('error', reject);
      sock.on('close', () => resolve(out));
    });
  }

  /** be_http's servers as HAProxy runs them: name -> {addr, weight, admin, checks}. */
  async function runtimeServers(): Promise<
    Map<string, { addr: string; weight: number; admin: number; check: number }>
  > {
    const out = new Map<string, { addr: string; weight: number; admin: number; check: number }>();
    for (const line of (await admin('show servers state be_http')).split('\n')) {
      const f = line.split(' ');
      if (f[1] !== 'be_http' || f.length < 19) continue;
      out.set(`${f[3]}`, {
        addr: `${f[4]}:${f[18]}`,
        weight: Number(f[7]),
        admin: Number(f[6]),
        check: Number(f[13]),
      });
    }
    return out;
  }

  /** be_http's servers as the live file names them: name -> weight. */
  function fileServers(): Map<string, number> {
    const text = readFileSync(vm.configPath, 'utf8');
    const be = text.slice(text.indexOf('backend be_http'));
    return new Map(
      [...be.matchAll(/^ {4}server (\S+) \S+(.*)$/gm)].map((m) => [
        `${m[1]}`,
        / weight 0\b/.test(`${m[2]}`) ? 0 : 1,
      ]),
    );
  }

  /** Which worker answers one fresh request through the LB. */
  const ask = (): Promise<string> => askWorker(FRONT);

  /**
   * Every worker that answered a request started after `since`: our own
   * probes plus the background load's (a probe alone can fall into step
   * with the load and keep meeting the same servers of a round robin).
   * Probes until each serving worker answered (bounded by count), then a few more.
   */
  async function answering(serving: ReadonlySet<string>, since: number): Promise<Set<string>> {
    const seen = new Set<string>();
    const fromLoad = (): void => {
      for (const s of activeLoad?.samples ?? [])
        if (s.startedAt > since && s.worker) seen.add(s.worker);
    };
    for (let i = 0; i < 20 * Math.max(1, serving.size); i++) {
      seen.add(await ask());
      fromLoad();
      if ([...serving].every((w) => seen.has(w))) break;
    }
    for (let i = 0; i < 2 * serving.size; i++) seen.add(await ask());
    fromLoad();
    return seen;
  }

  /** The file, HAProxy and the traffic must all name exactly `workers`. */
  async function expectAgreement(workers: readonly Worker[], since = Date.now()): Promise<void> {
    const want = new Map(workers.map((w) => [w.id, w.state === 'draining' ? 0 : 1]));
    expect(fileServers()).toEqual(want);
    const rt = await runtimeServers();
    expect(new Map([...rt].map(([k, v]) => [k, v.weight]))).toEqual(want);
    for (const w of workers) {
      expect(rt.get(w.id)).toMatchObject({ addr: `${w.address}:${NODE_PORT}`, admin: 0 });
      // Checks configured and enabled (CHK_ST_CONFIGURED | CHK_ST_ENABLED).
      expect((rt.get(w.id)?.check ?? 0) & 6).toBe(6);
    }
    const serving = new Set(workers.filter((w) => w.state === 'serving').map((w) => w.id));
    const seen = await answering(serving, since);
    expect(seen, await admin('show servers state be_http')).toEqual(serving);
  }

  it('applies a first config by reload, then 50 membership changes through the runtime API with no reload and no failed request', async () => {
    // Prepare: a first config (structural: it creates the frontend and backend).
    let current = [worker(1), worker(2), worker(3)];
    const first = await push(current);
    expect(first.result, first.result.message).toMatchObject({
      result: 'applied',
      via: 'reload',
      added: 3,
    });
    await expectAgreement(current);
    const reloads = await vm.reloadCount();
    const servingPid = await workerPid();
    const load = startLoad({
      host: '127.0.0.1',
      port: FRONT,
      concurrency: 3,
      maxRequests: 50_000,
      maxMs: 120_000,
    });
    activeLoad = load;
    const changes: { startedAt: number; doneAt: number; serving: Set<string> }[] = [];
    // A deterministic walk of adds, removals, drains and undrains; every step
    // changes something and at least one worker always serves.
    const steps = ['add', 'add', 'drain', 'remove', 'add', 'undrain', 'remove', 'drain', 'remove'];
    let next = 4;
    const add = (): void => {
      const used = new Set(current.map((w) => w.id));
      while (used.has(`w${next}`)) next = (next % POOL) + 1;
      current = [...current, worker(next)];
      next = (next % POOL) + 1;
    };
    // Act
    for (let i = 0; i < 50; i++) {
      const step = steps[i % steps.length];
      const serving = current.filter((w) => w.state === 'serving');
      const draining = current.filter((w) => w.state === 'draining');
      if (step === 'add' && current.length < 6) add();
      else if (step === 'drain' && serving.length > 1) {
        const victim = serving[i % serving.length]?.id;
        current = current.map((w) => (w.id === victim ? { ...w, state: 'draining' as const } : w));
      } else if (step === 'undrain' && draining.length > 0) {
        current = current.map((w) => ({ ...w, state: 'serving' as const }));
      } else if (draining.length > 0) {
        current = current.filter((w) => w.id !== draining[0]?.id);
      } else if (serving.length > 2) {
        current = current.filter((w) => w.id !== serving[i % serving.length]?.id);
      } else add();
      const r = await push(current);
      // Assess each change
      expect(r.code).toBe(0);
      expect(r.result, r.result.message).toMatchObject({ result: 'applied', via: 'runtime' });
      changes.push({
        startedAt: r.startedAt,
        doneAt: r.doneAt,
        serving: new Set(current.filter((w) => w.state === 'serving').map((w) => w.id)),
      });
      await expectAgreement(current, r.doneAt);
    }
    const summary = await load.stop();
    activeLoad = null;
    // Assess the whole run
    expect(summary.errors).toEqual([]);
    expect(summary.requests).toBeGreaterThan(0);
    expect(await vm.reloadCount()).toBe(reloads);
    // The same worker process served throughout: no new generation was forked.
    expect(await workerPid()).toBe(servingPid);
    // Every request that started after a change went to a worker that change serves
    // (or, when it overlapped the next change, one of the two).
    const offenders = load.samples.filter((s: LoadSample) => {
      const k = changes.findLastIndex((c) => c.doneAt < s.startedAt);
      if (k < 0 || s.worker === null) return false;
      const allowed = new Set(changes[k]?.serving);
      const later = changes[k + 1];
      if (later !== undefined && later.startedAt <= s.at)
        for (const w of later.serving) allowed.add(w);
      return !allowed.has(s.worker);
    });
    expect(offenders).toEqual([]);

    // A reload after the runtime changes comes back to exactly the same servers.
    await vm.masterCommand('reload').catch(() => '');
    await waitFor(
      async () => (await workerPid().catch(() => servingPid)) !== servingPid,
      'the worker of the reload',
    );
    expect(await vm.reloadCount()).toBe(reloads + 1);
    await expectAgreement(current);
  });

  it('reloads for a structural change and says why', async () => {
    // Prepare
    const current = [worker(1), worker(2)];
    await push(current);
    const reloads = await vm.reloadCount();
    // Act
    const r = await push(current, { spec: spec({ timeouts: { client: '45s' } }) });
    // Assess
    expect(r.result).toMatchObject({ result: 'applied', via: 'reload' });
    expect(r.result.message).toMatch(/structural change in defaults/);
    expect(await vm.reloadCount()).toBe(reloads + 1);
    await expectAgreement(current);
  });

  it('adds and removes servers of a balance source backend at runtime, with the ids the file gives them', async () => {
    // Prepare: the template renders hash-type consistent and stable ids for source.
    const source = spec({ balance: 'source' });
    await push([worker(1), worker(2)], { spec: source });
    // Act
    const r = await push([worker(1), worker(2), worker(3)], { spec: source });
    const removed = await push([worker(2), worker(3)], { spec: source });
    // Assess: the consistent-hash ring is built from ids, so HAProxy's must be the file's.
    expect(r.result).toMatchObject({ result: 'applied', via: 'runtime', added: 1 });
    expect(removed.result).toMatchObject({ result: 'applied', via: 'runtime', removed: 1 });
    const fileIds = new Map(
      [...readFileSync(vm.configPath, 'utf8').matchAll(/^ {4}server (\S+) \S+ id (\d+)/gm)].map(
        (m) => [`${m[1]}`, `${m[2]}`],
      ),
    );
    const state = await admin('show servers state be_http');
    const runtimeIds = new Map(
      [...state.matchAll(/^\d+ be_http (\d+) (\S+) /gm)].map((m) => [`${m[2]}`, `${m[1]}`]),
    );
    expect(runtimeIds).toEqual(fileIds);
    expect(fileIds.size).toBe(2);
    // One client address hashes to one worker, which must be a current one.
    const answered = new Set([await ask(), await ask(), await ask()]);
    expect(answered.size).toBe(1);
    expect(['w2', 'w3']).toContain([...answered][0]);
  });

  it('reloads a membership change the runtime API cannot make, and says which feature ruled it out', async () => {
    // Prepare: a static algorithm, as a custom template might render.
    const staticRr = (t: string): string => t.replace('balance roundrobin', 'balance static-rr');
    await push([worker(1), worker(2)], { edit: staticRr });
    // Act
    const r = await push([worker(1), worker(2), worker(3)], { edit: staticRr });
    // Assess
    expect(r.result).toMatchObject({ result: 'applied', via: 'reload', added: 1 });
    expect(r.result.message).toMatch(
      /backend be_http uses balance static-rr .* a static algorithm/,
    );
    // An option add server does not take (but the config file does).
    const initAddr = (t: string): string =>
      t.replace(/(default-server .*)$/m, '$1 init-addr last,libc');
    await push([worker(1), worker(2)], { edit: initAddr });
    const added = await push([worker(1), worker(2), worker(3)], { edit: initAddr });
    expect(added.result).toMatchObject({ result: 'applied', via: 'reload', added: 1 });
    expect(added.result.message).toMatch(
      /be_http\/w3 uses init-addr, which add server in HAProxy 2.6 does not take/,
    );
    // Removing needs no add: that one still goes through the runtime API.
    const removed = await push([worker(1), worker(2)], { edit: initAddr });
    expect(removed.result).toMatchObject({ result: 'applied', via: 'runtime', removed: 1 });
    await expectAgreement([worker(1), worker(2)]);
  });

  it('falls back to a reload when a removed server keeps its sessions past --removal-timeout, and ends applied', async () => {
    // Prepare: w1 and w2 serve; a long-lived connection is open through the LB.
    const current = [worker(1), worker(2)];
    await push(current);
    const { sock, busy } = await holdConnection();
    const reloads = await vm.reloadCount();
    // Act: remove the worker that holds it, with a 1 s bound.
    const rest = current.filter((w) => w.id !== busy);
    const r = await push(rest, { removalTimeoutSeconds: 1 });
    // Assess
    expect(r.result, r.result.message).toMatchObject({
      result: 'applied',
      via: 'reload',
      removed: 1,
    });
    expect(r.result.message).toMatch(
      /runtime path failed \(removed servers still had 1 session\(s\) after 1s\); reloaded instead/,
    );
    expect(await vm.reloadCount()).toBe(reloads + 1);
    await expectAgreement(rest);
    // The old process still carries the held connection (until hard-stop-after).
    expect(sock.destroyed).toBe(false);
    sock.destroy();
  });

  it('lets in-flight requests finish when a worker is drained, then removed, through the runtime path', async () => {
    // Prepare: a slow worker beside w1.
    const slow = await startWorkerServer({
      id: 'w9',
      address: '127.0.29.1',
      ports: [NODE_PORT],
      healthPort: HEALTH_PORT,
      delayMs: 1500,
    });
    try {
      await push([worker(1), worker(9)]);
      const inFlight = async (): Promise<LoadSample[]> => {
        const load = startLoad({
          host: '127.0.0.1',
          port: FRONT,
          concurrency: 2,
          maxRequests: 2,
          maxMs: 10_000,
        });
        await waitFor(() => slow.openConnections() > 0, 'a request in flight on the slow worker');
        await load.done;
        return [...load.samples];
      };
      // Act 1: drain (weight 0) while a request is in flight on it.
      const first = inFlight();
      const drained = await push([worker(1), worker(9, 'draining')]);
      const firstSamples = await first;
      // Assess 1
      expect(drained.result).toMatchObject({ result: 'applied', via: 'runtime', drained: 1 });
      expect(firstSamples.map((s) => s.error)).toEqual([null, null]);
      expect(firstSamples.map((s) => s.worker).sort()).toEqual(['w1', 'w9']);
      expect(await answering(new Set(['w1']), drained.doneAt)).toEqual(new Set(['w1']));
      // Act 2: undrain, put a request in flight, remove it.
      await push([worker(1), worker(9)]);
      const second = inFlight();
      const removed = await push([worker(1)]);
      const secondSamples = await second;
      // Assess 2: the removal waited for the request, which completed.
      expect(removed.result).toMatchObject({ result: 'applied', via: 'runtime', removed: 1 });
      expect(secondSamples.map((s) => s.error)).toEqual([null, null]);
      const slowOne = secondSamples.find((s) => s.worker === 'w9');
      expect(slowOne?.at ?? Infinity).toBeLessThanOrEqual(removed.doneAt);
      await expectAgreement([worker(1)]);
    } finally {
      await slow.close();
    }
  });

  it('refuses on the LB to take more than maxRemovalPercent of its live workers out, unless forced', async () => {
    // Prepare
    const four = [worker(1), worker(2), worker(3), worker(4)];
    await push(four);
    const live = readFileSync(vm.configPath, 'utf8');
    const reloads = await vm.reloadCount();
    const before = await runtimeServers();
    // Act: three of four leave (one removed, two drained).
    const shrunk = [worker(1), worker(2, 'draining'), worker(3, 'draining')];
    const refused = await push(shrunk, { payload: { maxRemovalPercent: 50 } });
    // Assess: nothing changed.
    expect(refused.code).toBe(7);
    expect(refused.result).toMatchObject({ result: 'refused', liveWorkers: 4, leaving: 3 });
    expect(refused.result.message).toMatch(/3 of 4 live workers .*75% > max-removal-percent 50/);
    expect(readFileSync(vm.configPath, 'utf8')).toBe(live);
    expect(await runtimeServers()).toEqual(before);
    expect(await vm.reloadCount()).toBe(reloads);
    // Forced, it applies.
    const forced = await push(shrunk, { payload: { maxRemovalPercent: 50, force: true } });
    expect(forced.result).toMatchObject({ result: 'applied', via: 'runtime' });
    await expectAgreement(shrunk);
  });

  it('leaves nothing behind when an apply is killed mid-way with SIGKILL, and the next apply heals', async () => {
    // Prepare: a held connection makes the removal wait, so the apply is caught mid-way.
    const current = [worker(1), worker(2)];
    await push(current);
    const { sock, busy } = await holdConnection();
    const tmpDir = join(vm.stateDir, 'tmp');
    const pending = push(
      current.filter((w) => w.id !== busy),
      { removalTimeoutSeconds: 60 },
    );
    await waitFor(
      async () => (await runtimeServers()).get(busy)?.admin === 8,
      'the removal to drain',
    );
    const entries = readdirSync(tmpDir);
    expect(entries.some((e) => e.startsWith('apply.'))).toBe(true);
    expect(entries.some((e) => e.startsWith('cmd.'))).toBe(true);
    // Act: SIGKILL the wrapper and the apply (no EXIT trap runs).
    for (const e of entries) process.kill(Number(e.slice(e.indexOf('.') + 1)), 'SIGKILL');
    await pending.catch(() => undefined);
    expect(readdirSync(tmpDir).sort()).toEqual(entries.sort());
    sock.destroy();
    // The next apply (the same change) sweeps the leftovers and heals by a reload.
    const next = await push(current.filter((w) => w.id !== busy));
    // Assess
    expect(next.result).toMatchObject({ result: 'applied', via: 'reload' });
    expect(next.result.message).toMatch(/not the one the last apply recorded/);
    expect(readdirSync(tmpDir)).toEqual([]);
    await expectAgreement(current.filter((w) => w.id !== busy));
  });
});
