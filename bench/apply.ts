// The apply script against its physical limit, on one local HAProxy:
//   1. reload path vs bare `haproxy -c` + master-socket reload, until the new
//      worker serves, side by side (pairs alternate), for 3x1, 100x1, 2,000x10;
//   2. the runtime path (membership change, no reload) at 100 workers;
//   3. HAProxy processes and their RSS across 100 membership changes with
//      1,000 idle long-lived connections open (runtime path vs reloads);
//   4. payload size and encode time per gzip level.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { HaproxyProcess } from '../adapters/local/haproxy.js';
import { type LocalLbTarget, LocalTransport } from '../adapters/local/transport.js';
import { type Spec, validateSpec } from '../adapters/spec.js';
import type { ApplyResult } from '../core/apply-contract.js';
import type { Worker } from '../core/model.js';
import { encodePayload } from '../core/payload.js';
import { loadTemplate, renderConfig, type Template } from '../core/render.js';
import { fleet, median } from './lib.js';
import type { BenchTable } from './table.js';

// Ports 28000-28999 on 127.0.0.1 and workers on 127.0.29.x belong to this benchmark.
const PROBE_PORT = 28050;
const FRONT_BASE = 28100;
const HOLDER = '127.0.29.1';
const NODE_PORT = 30080;

function spec(services: number, runtimeSocket: string | null): Spec {
  return validateSpec({
    name: 'bench-apply',
    cloud: 'local',
    workers: { local: { static: [] } },
    loadBalancers: { local: [{ name: 'lb', configPath: '/x/haproxy.cfg', stateDir: '/x' }] },
    services: Array.from({ length: services }, (_, i) => ({
      name: `svc-${i}`,
      bind: `127.0.0.1:${FRONT_BASE + i}`,
      nodePort: NODE_PORT + i,
    })),
    healthCheck: { enabled: false },
    tuning: { maxconn: 4000 },
    drain: { seconds: 30 },
    runtimeSocket,
  });
}

/** A frontend answering with the config's generation: "the new worker serves" is observable. */
const probe = (gen: number): string =>
  `\nfrontend bench_probe\n    mode http\n    bind 127.0.0.1:${PROBE_PORT}\n    http-request return status 200 content-type text/plain string gen-${gen}\n`;

function get(port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve(body));
    });
    req.setTimeout(2000, () => req.destroy());
    req.on('error', () => resolve(''));
    req.end();
  });
}

/** Poll the probe until it answers with `gen` (bounded). */
async function servesGeneration(gen: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((await get(PROBE_PORT)) !== `gen-${gen}`) {
    if (Date.now() > deadline) throw new Error(`HAProxy never served generation ${gen}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

function sh(script: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('sh', ['-c', script], (err, _out, stderr) =>
      err ? reject(new Error(`${script}: ${stderr}`)) : resolve(),
    ),
  );
}

const q = (p: string): string => `'${p.replace(/'/g, `'\\''`)}'`;

/** HAProxy processes (master, workers, old workers) and the sum of their RSS in MiB. */
async function haproxyProcesses(hp: HaproxyProcess): Promise<{ count: number; rssMiB: number }> {
  const out = await hp.masterCommand('show proc');
  const pids = [...out.matchAll(/^(\d+)\s+(master|worker)\s/gm)].map((m) => Number(m[1]));
  let kb = 0;
  for (const pid of pids) {
    try {
      kb += Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return { count: pids.length, rssMiB: kb / 1024 };
}

interface Lb {
  readonly hp: HaproxyProcess;
  readonly transport: LocalTransport;
  readonly target: LocalLbTarget;
  readonly runtimeSocket: string;
  gen: number;
}

async function startLb(dir: string): Promise<Lb> {
  const runtimeSocket = join(dir, 'admin.sock');
  const hp = await HaproxyProcess.start({
    dir,
    config: `global\n    stats socket ${runtimeSocket} mode 660 level admin\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n`,
  });
  const target: LocalLbTarget = {
    id: 'lb',
    configPath: hp.configPath,
    stateDir: hp.stateDir,
    reload: 'master-socket',
    masterSocket: hp.masterSocket,
    runtimeSocket,
  };
  return { hp, transport: new LocalTransport([target]), target, runtimeSocket, gen: 1 };
}

async function apply(lb: Lb, text: string, servers: number): Promise<ApplyResult> {
  const r = await lb.transport.apply(lb.target, encodePayload(text, ++lb.gen, servers, {}));
  if (r.result !== 'applied') throw new Error(`bench apply: ${r.result} ${r.message ?? ''}`);
  return r;
}

/** 1. Reload path vs bare, until the new worker serves; pairs alternate which runs first. */
async function reloadVsBare(lb: Lb, template: Template): Promise<BenchTable> {
  const rows: (string | number)[][] = [];
  const targets: { name: string; met: boolean; detail: string }[] = [];
  for (const [n, services, runs] of [
    [3, 1, 7],
    [100, 1, 7],
    [2000, 10, 5],
  ] as const) {
    const s = spec(services, lb.runtimeSocket);
    const bare: number[] = [];
    const script: number[] = [];
    const ratios: number[] = [];
    const config = (r: number, gen: number): { text: string; servers: number } => {
      const out = renderConfig(s, fleet(n, r % 2), template);
      return { text: out.text + probe(gen), servers: out.servers };
    };
    // Warm up at this size (the first apply of a size changes every section).
    const warm = config(0, lb.gen + 1);
    await apply(lb, warm.text, warm.servers);
    for (let r = 0; r < runs; r++) {
      const timeBare = async (): Promise<number> => {
        const gen = ++lb.gen;
        writeFileSync(join(lb.hp.stateDir, 'bare.cfg'), config(r, gen).text);
        const t = performance.now();
        await sh(
          `cp ${q(join(lb.hp.stateDir, 'bare.cfg'))} ${q(lb.hp.configPath)} && haproxy -c -q -f ${q(lb.hp.configPath)} && printf 'reload\\n' | socat - UNIX-CONNECT:${q(lb.hp.masterSocket)} >/dev/null`,
        );
        await servesGeneration(gen);
        return performance.now() - t;
      };
      const timeScript = async (): Promise<number> => {
        const c = config(r, lb.gen + 1);
        const t = performance.now();
        const res = await apply(lb, c.text, c.servers);
        await servesGeneration(res.generation);
        return performance.now() - t;
      };
      let b: number;
      let a: number;
      if (r % 2 === 0) {
        b = await timeBare();
        a = await timeScript();
      } else {
        a = await timeScript();
        b = await timeBare();
      }
      bare.push(b);
      script.push(a);
      ratios.push(a / b);
    }
    const ratio = median(ratios);
    rows.push([
      `${n} x ${services}`,
      n * services,
      median(bare).toFixed(0),
      median(script).toFixed(0),
      ratio.toFixed(2),
    ]);
    targets.push({
      name: `reload path within 2x of bare at ${n} x ${services}`,
      met: ratio <= 2,
      detail: `${ratio.toFixed(2)}x (median of ${runs} pairs)`,
    });
  }
  return {
    id: 'apply-reload-vs-bare',
    title:
      'reload path: lbsync-apply.sh vs bare haproxy -c + master-socket reload, until the new worker serves (median ms; pairs alternate)',
    columns: ['workers x services', 'servers', 'bare ms', 'script ms', 'script / bare'],
    rows,
    targets,
  };
}

/** 2. Runtime path at 100 workers: one worker replaced per change. */
async function runtimePath(lb: Lb, template: Template): Promise<BenchTable> {
  const s = spec(1, lb.runtimeSocket);
  const first = renderConfig(s, fleet(100), template);
  await apply(lb, first.text, first.servers);
  const reloads = await lb.hp.reloadCount();
  const wall: number[] = [];
  const inScript: number[] = [];
  for (let r = 1; r <= 21; r++) {
    const out = renderConfig(s, fleet(100, r), template);
    const t = performance.now();
    const res = await apply(lb, out.text, out.servers);
    wall.push(performance.now() - t);
    if (res.via !== 'runtime') throw new Error(`bench: expected the runtime path: ${res.message}`);
    inScript.push(res.ms);
  }
  const check: number[] = [];
  for (let r = 0; r < 11; r++) {
    const t = performance.now();
    await sh(`haproxy -c -q -f ${q(lb.hp.configPath)}`);
    check.push(performance.now() - t);
  }
  const reloaded = (await lb.hp.reloadCount()) - reloads;
  const w = median(wall);
  return {
    id: 'apply-runtime',
    title:
      'runtime path at 100 workers x 1 service: one worker added and one removed per apply (median of 21)',
    columns: ['what', 'ms'],
    rows: [
      ['apply, spawn to result (wall)', w.toFixed(0)],
      ['apply, as the script reports it (10 ms clock)', median(inScript)],
      ['of which haproxy -c alone (its floor, run serially)', median(check).toFixed(0)],
      ['reloads during the 21 applies', reloaded],
    ],
    targets: [
      {
        name: 'runtime path under 50 ms at 100 workers',
        met: w < 50,
        detail: `${w.toFixed(0)} ms`,
      },
      { name: 'no reload for membership changes', met: reloaded === 0, detail: `${reloaded}` },
    ],
  };
}

/** 3. HAProxy processes and RSS across 100 membership changes with 1,000 idle connections. */
async function idleConnections(lb: Lb, template: Template): Promise<BenchTable> {
  const held: Socket[] = [];
  const accepted: Socket[] = [];
  const holder: Server = createServer((c) => {
    accepted.push(c);
  });
  await new Promise<void>((r) => holder.listen(NODE_PORT, HOLDER, r));
  const rows: (string | number)[][] = [];
  const targets: { name: string; met: boolean; detail: string }[] = [];
  try {
    const s = spec(1, lb.runtimeSocket);
    const base = fleet(20);
    const withHolder = (k: number, drop: number): Worker[] => [
      { id: 'holder', address: HOLDER, state: 'serving' },
      ...base.filter((_, i) => i !== drop),
      ...fleet(1, 1000 + k),
    ];
    // Only the holder answers, so weight the fake workers out: idle
    // connections must land on it. A first config, then 1,000 connections.
    const render = (k: number, drop: number): { text: string; servers: number } => {
      const out = renderConfig(s, withHolder(k, drop), template);
      return {
        text: out.text.replace(/^(\s+server i-\S+ \S+)$/gm, '$1 weight 0'),
        servers: out.servers,
      };
    };
    const c0 = render(0, 0);
    await apply(lb, c0.text, c0.servers);
    for (let i = 0; i < 1000; i++) {
      held.push(createConnection({ host: '127.0.0.1', port: FRONT_BASE }));
    }
    const deadline = Date.now() + 30_000;
    while (accepted.length < 1000 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    for (const [label, runtime, changes] of [
      ['runtime path', true, 100],
      ['reload path (--runtime-socket none)', false, 20],
    ] as const) {
      const transport = new LocalTransport([
        { ...lb.target, runtimeSocket: runtime ? lb.runtimeSocket : null },
      ]);
      const before = await haproxyProcesses(lb.hp);
      let peak = before;
      const t = performance.now();
      for (let k = 1; k <= changes; k++) {
        const c = render(k, k % 20);
        const r = await transport.apply(lb.target, encodePayload(c.text, ++lb.gen, c.servers, {}));
        if (r.result !== 'applied') throw new Error(`bench: ${r.result} ${r.message ?? ''}`);
        const now = await haproxyProcesses(lb.hp);
        if (now.count > peak.count || now.rssMiB > peak.rssMiB) peak = now;
      }
      const ms = (performance.now() - t) / changes;
      const after = await haproxyProcesses(lb.hp);
      rows.push([
        label,
        changes,
        accepted.length,
        before.count,
        after.count,
        peak.count,
        before.rssMiB.toFixed(1),
        after.rssMiB.toFixed(1),
        ms.toFixed(0),
      ]);
      if (runtime) {
        targets.push({
          name: 'zero extra HAProxy processes left by membership changes',
          met: after.count === before.count && peak.count === before.count,
          detail: `${before.count} before, ${after.count} after, at most ${peak.count}`,
        });
      }
    }
  } finally {
    for (const c of held) c.destroy();
    for (const c of accepted) c.destroy();
    await new Promise((r) => holder.close(() => r(undefined)));
  }
  return {
    id: 'apply-idle-connections',
    title:
      'HAProxy processes and RSS across membership changes with 1,000 idle long-lived connections',
    columns: [
      'path',
      'changes',
      'idle conns',
      'procs before',
      'procs after',
      'procs peak',
      'RSS before MiB',
      'RSS after MiB',
      'ms / change',
    ],
    rows,
    targets,
  };
}

/** 4. gzip level: payload size and encode time of a 2,000 x 10 config. */
async function gzipLevels(template: Template): Promise<BenchTable> {
  const out = renderConfig(spec(10, null), fleet(2000), template);
  const raw = Buffer.from(out.text, 'utf8');
  const rows: (string | number)[][] = [];
  for (const level of [1, 3, 6, 9]) {
    const times: number[] = [];
    let bytes = 0;
    for (let r = 0; r < 9; r++) {
      const t = performance.now();
      bytes = gzipSync(raw, { level }).length;
      times.push(performance.now() - t);
    }
    rows.push([level, raw.length, bytes, Math.ceil(bytes / 3) * 4, median(times).toFixed(1)]);
  }
  return {
    id: 'apply-gzip',
    title: 'payload gzip level, 2,000 workers x 10 services (median of 9; core/payload.ts uses 6)',
    columns: ['level', 'config bytes', 'gzip bytes', 'base64 bytes', 'encode ms'],
    rows,
  };
}

/** Every apply-path table (bench/run.ts: `apply`). */
export async function benchApplyPaths(): Promise<readonly BenchTable[]> {
  const dir = mkdtempSync(join(tmpdir(), 'lbsync-bench-apply-paths-'));
  const lb = await startLb(dir);
  try {
    const template = await loadTemplate(spec(1, null));
    const tables = [await reloadVsBare(lb, template), await runtimePath(lb, template)];
    tables.push(await idleConnections(lb, template));
    tables.push(await gzipLevels(template));
    return tables;
  } finally {
    await lb.hp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
