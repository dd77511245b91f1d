// AWS benchmarks: function bundle size and cold import time (side by side with
// a bundle of only the SDK clients), the inline Run Command capacity, and
// event -> applied time against the protocol-level fake with a real HAProxy.

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAwsClients, destroyAwsClients } from '../adapters/aws/clients.js';
import { ssmSection } from '../adapters/aws/provider.js';
import { DEFAULT_INLINE_LIMIT_BYTES, parameterBytes, SSM_LIMITS } from '../adapters/aws/shell.js';
import { type Spec, validateSpec } from '../adapters/spec.js';
import { applyArgs } from '../core/apply-contract.js';
import { applyCommand } from '../core/command.js';
import { loadApplyScript } from '../core/lb-scripts.js';
import { silentLogger } from '../core/log.js';
import { encodePayload } from '../core/payload.js';
import { loadTemplate, renderConfig } from '../core/render.js';
import { fixture } from '../test/fakes/aws/events.js';
import { FakeAws } from '../test/fakes/aws/fake-aws.js';
import { BOOT_CONFIG, LbVm } from '../test/fakes/lb-vm.js';
import { awsHandlerFor } from '../test/helpers/functions.js';
import { buildShippedFunction, bundleBare, importMs, median } from './lib.js';
import type { BenchTable } from './table.js';

const ROOT = join(import.meta.dirname, '..');
// Ports 22900-22999 belong to the AWS benchmark.
const FAKE_PORT = 22901;

/** Bundle size and cold import of functions/aws.ts vs. the bare SDK clients. */
async function benchBundle(): Promise<BenchTable> {
  // Inside the repo so bare imports resolve and the bundle finds ../templates.
  const dir = mkdtempSync(join(ROOT, '.bench-aws-'));
  try {
    const bareEntry = join(dir, 'bare.ts');
    writeFileSync(
      bareEntry,
      [
        "export * as asg from '@aws-sdk/client-auto-scaling';",
        "export * as ec2 from '@aws-sdk/client-ec2';",
        "export * as ssm from '@aws-sdk/client-ssm';",
        "export * as events from '@aws-sdk/client-eventbridge';",
        "export * as s3 from '@aws-sdk/client-s3';",
        "export * as presign from '@aws-sdk/s3-request-presigner';",
      ].join('\n'),
    );
    // The function as npm run build ships it: split, so the entry holds the
    // SDK clients and lbsync's pipeline is a chunk imported on first invocation.
    const { entry: fnOut, bytes: fnBytes } = await buildShippedFunction('aws', dir);
    const bareOut = join(dir, 'bare/bare.mjs');
    const bareBytes = await bundleBare(bareEntry, bareOut);
    const spec = JSON.stringify({
      name: 'bench',
      cloud: 'aws',
      workers: { aws: { region: 'eu-west-1', autoScalingGroups: ['bench'] } },
      loadBalancers: { aws: { instanceIds: ['i-0be0c0000000000a1'] } },
      services: [{ name: 'http', bind: ':80', nodePort: 30080 }],
    });
    const readyEnv = {
      ...process.env,
      LBSYNC_SPEC: spec,
      LBSYNC_APPLY_SCRIPT: join(ROOT, 'templates/lbsync-apply.sh'),
      LBSYNC_DRAIN_SCRIPT: join(ROOT, 'templates/lbsync-drain.sh'),
    };
    // Alternate runs so both see the same machine load.
    const fnMs: number[] = [];
    const bareMs: number[] = [];
    const readyMs: number[] = [];
    for (let i = 0; i < 7; i++) {
      fnMs.push(importMs(fnOut));
      bareMs.push(importMs(bareOut));
      readyMs.push(importMs(fnOut, 'await m.readyAwsHandler();', readyEnv));
    }
    const f = median(fnMs);
    const b = median(bareMs);
    const r = median(readyMs);
    const overhead = ((f - b) / b) * 100;
    return {
      id: 'aws-bundle',
      title:
        'AWS function bundle (esbuild, minified, ESM, split) and cold start (median of 7, side by side)',
      columns: ['bundle', 'bytes', 'import ms', 'import + ready handler ms'],
      rows: [
        ['functions/aws.ts', fnBytes, Math.round(f), Math.round(r)],
        [
          'SDK clients only (ASG, EC2, SSM, EventBridge, S3 + presigner)',
          bareBytes,
          Math.round(b),
          '-',
        ],
      ],
      targets: [
        {
          name: 'cold import within 10% of the bare SDK bundle',
          met: overhead <= 10,
          detail: `${overhead.toFixed(1)}% (${Math.round(f)} ms vs ${Math.round(b)} ms); building the handler (spec, template, pipeline) adds ${Math.round(r - f)} ms on the first invocation`,
        },
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function benchSpec(services: number, staging: boolean): Spec {
  return validateSpec({
    name: 'bench',
    cloud: 'aws',
    workers: { aws: { region: 'eu-west-1', autoScalingGroups: ['bench'] } },
    loadBalancers: {
      aws: {
        instanceIds: ['i-0be0c0000000000a1'],
        ...(staging ? { staging: { bucket: 'lbsync-bench' } } : {}),
      },
    },
    services: Array.from({ length: services }, (_, i) => ({
      name: `svc${i}`,
      bind: `127.0.0.1:${22910 + i}`,
      nodePort: 31900 + i,
    })),
    healthCheck: { enabled: false },
    tuning: { maxconn: 4000 },
  });
}

/** Random-looking ids and IPs, as real fleets have (they compress like real configs). */
function randomWorker(seed: string, i: number): { id: string; ip: string } {
  const h = createHash('sha256').update(`${seed}/${i}`).digest('hex');
  const b = (k: number): number => Number.parseInt(h.slice(16 + 2 * k, 18 + 2 * k), 16);
  return { id: `i-0${h.slice(0, 16)}`, ip: `10.${b(0)}.${b(1)}.${b(2)}` };
}

/** How many workers fit inline in one SendCommand (with the apply script), per service count. */
async function benchInline(): Promise<BenchTable> {
  const script = await loadApplyScript();
  const rows: (string | number)[][] = [];
  for (const services of [1, 10]) {
    const spec = benchSpec(services, false);
    const template = await loadTemplate(spec);
    const fits = (n: number): boolean => {
      const ws = Array.from({ length: n }, (_, i) => {
        const w = randomWorker('inline', i);
        return { id: w.id, address: w.ip, state: 'serving' as const };
      });
      const r = renderConfig(spec, ws, template);
      const cmd = applyCommand(
        script,
        applyArgs(spec.lbApply),
        { kind: 'inline', text: encodePayload(r.text, 1, r.servers).text },
        SSM_LIMITS,
      );
      return (
        parameterBytes(cmd, ssmSection(spec)?.commandTimeoutSeconds ?? 120) <=
        DEFAULT_INLINE_LIMIT_BYTES
      );
    };
    let lo = 0;
    let hi = 4000;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (fits(mid)) lo = mid;
      else hi = mid - 1;
    }
    rows.push([services, lo, lo * services, Buffer.byteLength(script)]);
  }
  return {
    id: 'aws-inline-capacity',
    title: `Workers that fit inline in one SendCommand (limit ${DEFAULT_INLINE_LIMIT_BYTES} bytes of parameters, random ids/IPs)`,
    columns: ['services', 'workers', 'servers', 'apply script bytes'],
    rows,
  };
}

/** Event -> applied against the fake for 10 / 100 / 2,000 workers x 10 services. */
async function benchEndToEnd(): Promise<BenchTable> {
  const dir = mkdtempSync(join(tmpdir(), 'lbsync-bench-aws-e2e-'));
  const fake = await FakeAws.start({ port: FAKE_PORT, commandDelayMs: 0 });
  const vm = await LbVm.start('bench-lb', join(dir, 'lb'), BOOT_CONFIG);
  const clients = createAwsClients({
    region: 'eu-west-1',
    endpoint: fake.url,
    credentials: { accessKeyId: 'AKIAFAKE', secretAccessKey: 'fake' },
  });
  const rows: (string | number)[][] = [];
  let ours100 = Number.NaN;
  try {
    fake.addGroup('bench');
    fake.addBucket('lbsync-bench');
    fake.addLbInstance('i-0be0c0000000000a1', vm);
    const spec = benchSpec(10, true);
    const handle = await awsHandlerFor(spec, { clients, logger: silentLogger() });
    let added = 0;
    for (const size of [10, 100, 2000]) {
      const samples: { total: number; cloud: number; lb: number }[] = [];
      for (let run = 0; run < 5; run++) {
        // A real change each run: grow to `size`, then replace one worker.
        while (added < size) {
          const w = randomWorker('e2e', added);
          fake.addMember('bench', w.id, w.ip);
          added++;
        }
        const victim = fake.membersOf('bench')[run];
        if (victim !== undefined && run > 0) {
          fake.terminate('bench', victim.id);
          const w = randomWorker('e2e', added);
          fake.addMember('bench', w.id, w.ip);
          added++;
        }
        const commandsBefore = fake.commandDurations().length;
        const t = performance.now();
        const r = await handle(fixture('scheduled'));
        const total = performance.now() - t;
        if (r.report?.results[0]?.outcome !== 'applied') {
          throw new Error(`bench run not applied: ${JSON.stringify(r.report?.results ?? r.error)}`);
        }
        // Time inside the fake's Run Command (the LB executing the scripts)
        // is the cloud's and the LB's; the rest (API calls, render, polling
        // overhang) is ours.
        const cloud = fake
          .commandDurations()
          .slice(commandsBefore)
          .reduce((a, b) => a + b, 0);
        samples.push({ total, cloud, lb: r.report?.results[0]?.apply?.ms ?? 0 });
      }
      const total = median(samples.map((s) => s.total));
      const cloud = median(samples.map((s) => s.cloud));
      const ours = median(samples.map((s) => s.total - s.cloud));
      if (size === 100) ours100 = ours;
      rows.push([
        size,
        size * 10,
        Math.round(total),
        Math.round(cloud),
        median(samples.map((s) => s.lb)),
        Math.round(ours),
      ]);
    }
  } finally {
    destroyAwsClients(clients);
    await vm.stop();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    id: 'aws-event-to-applied',
    title: 'AWS event -> applied against the fake, real HAProxy (median of 5; 10 services)',
    columns: ['workers', 'servers', 'total ms', 'in Run Command ms', 'apply script ms', 'ours ms'],
    rows,
    targets: [
      {
        name: 'our part of event -> applied under 300 ms for 100 workers',
        met: ours100 < 300,
        detail: `${Math.round(ours100)} ms`,
      },
    ],
  };
}

/** Every AWS benchmark table. */
export async function benchAws(): Promise<BenchTable[]> {
  return [await benchBundle(), await benchInline(), await benchEndToEnd()];
}
