import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HaproxyProcess } from '../adapters/local/haproxy.js';
import { LocalTransport } from '../adapters/local/transport.js';
import { type Spec, validateSpec } from '../adapters/spec.js';
import { encodePayload } from '../core/payload.js';
import { planLb } from '../core/plan.js';
import { canonicalWorkers, loadTemplate, renderConfig } from '../core/render.js';
import { fleet } from './lib.js';
import type { BenchTable } from './table.js';

function specWith(services: number, extra: Record<string, unknown> = {}): Spec {
  return validateSpec({
    name: 'bench',
    cloud: 'local',
    workers: { local: { static: [] } },
    loadBalancers: {
      local: [{ name: 'lb', configPath: '/etc/haproxy/haproxy.cfg', stateDir: '/var/lib/lbsync' }],
    },
    services: Array.from({ length: services }, (_, i) => ({
      name: `svc-${i}`,
      bind: `127.0.0.1:${26000 + i}`,
      nodePort: 30000 + i,
      proxyProtocol: 'v2',
    })),
    ...extra,
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

/** Render + plan time and payload size over workers x services. */
export async function benchRenderPlan(): Promise<BenchTable> {
  const rows: (string | number)[][] = [];
  let tenK = Number.NaN;
  for (const services of [1, 5, 20]) {
    const spec = specWith(services);
    const template = await loadTemplate(spec);
    for (const n of [10, 100, 1000, 10_000]) {
      const before = renderConfig(spec, fleet(n), template);
      const desiredWorkers = fleet(n, 1); // a one-worker shift: realistic scale event
      const live = {
        generation: 1,
        sha256: before.sha256,
        servers: before.servers,
        workerIds: before.workerIds,
      };
      const times: number[] = [];
      let payloadRaw = 0;
      let payloadEnc = 0;
      const runs = n >= 10_000 ? 7 : 15;
      for (let r = 0; r < runs; r++) {
        const t = performance.now();
        const workers = canonicalWorkers(desiredWorkers);
        const out = renderConfig(spec, workers, template);
        planLb({
          desired: out,
          workers,
          live,
          guards: spec.guards,
          serviceCount: services,
          force: false,
        });
        times.push(performance.now() - t);
        payloadRaw = Buffer.byteLength(out.text);
        if (r === 0) payloadEnc = encodePayload(out.text, 1, out.servers).text.length;
      }
      const ms = median(times);
      if (n === 10_000 && services === 1) tenK = ms;
      rows.push([n, services, n * services, ms.toFixed(2), payloadRaw, payloadEnc]);
    }
  }
  return {
    id: 'render-plan',
    title: 'render + plan (median ms) and payload size',
    columns: [
      'workers',
      'services',
      'servers',
      'render+plan ms',
      'config bytes',
      'gzip+base64 bytes',
    ],
    rows,
    targets: [
      {
        name: 'render + plan of 10,000 servers < 50 ms',
        met: tenK < 50,
        detail: `${tenK.toFixed(2)} ms`,
      },
    ],
  };
}

/** Apply latency on a local HAProxy: apply script start to reload verified. */
export async function benchApply(): Promise<BenchTable> {
  const dir = mkdtempSync(join(tmpdir(), 'lbsync-bench-apply-'));
  const boot =
    'global\n    log stdout format raw local0 notice\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n';
  const haproxy = await HaproxyProcess.start({ dir, config: boot });
  const rows: (string | number)[][] = [];
  try {
    const transport = new LocalTransport([
      {
        id: 'lb',
        configPath: haproxy.configPath,
        stateDir: haproxy.stateDir,
        reload: 'master-socket',
        masterSocket: haproxy.masterSocket,
      },
    ]);
    const target = { id: 'lb' };
    let gen = 1;
    for (const [n, services] of [
      [10, 1],
      [100, 5],
      [1000, 5],
      [2000, 10],
    ] as const) {
      const spec = specWith(services, {
        runtimeSocket: null,
        healthCheck: { enabled: false },
        tuning: { maxconn: 4000 },
      });
      const template = await loadTemplate(spec);
      const script: number[] = [];
      const wall: number[] = [];
      for (let r = 0; r < 5; r++) {
        const out = renderConfig(spec, fleet(n, r), template);
        const t = performance.now();
        const res = await transport.apply(target, encodePayload(out.text, gen++, out.servers));
        wall.push(performance.now() - t);
        if (res.result !== 'applied')
          throw new Error(`bench apply: ${res.result} ${res.message ?? ''}`);
        script.push(res.ms);
      }
      rows.push([n, services, n * services, median(script), median(wall).toFixed(0)]);
    }
  } finally {
    await haproxy.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    id: 'apply-local',
    title: 'apply on a local HAProxy (median of 5; script start to reload verified)',
    columns: ['workers', 'services', 'servers', 'script ms', 'wall ms (incl. spawn)'],
    rows,
  };
}
