import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAzureClients, staticTokenCredential } from '../adapters/azure/clients.js';
import { createAzureEntry } from '../adapters/azure/entry.js';
import { buildRuntime } from '../adapters/runtime.js';
import { validateSpec } from '../adapters/spec.js';
import { silentLogger } from '../core/log.js';
import { FakeArm } from '../test/fakes/azure/fake-arm.js';
import { BOOT_CONFIG, LbVm } from '../test/fakes/lb-vm.js';
import { eventFixture } from '../test/helpers/fixtures.js';
import { buildShippedFunction, bundleBare, importMs, median } from './lib.js';
import type { BenchTable } from './table.js';

const ROOT = join(import.meta.dirname, '..');
// Ports 23900-23999 belong to the Azure benchmark; nothing listens on the workers' addresses.
const ARM_PORT = 23900;
const FRONT = 23901;
const SUB = '00000000-0000-4000-8000-0000000000a4';

/** Bundle size and cold import of functions/azure.ts vs. the bare SDKs it carries. */
async function benchBundle(): Promise<BenchTable> {
  // Inside the repo so bare imports resolve and the bundle finds ../templates.
  const dir = mkdtempSync(join(ROOT, '.bench-azure-'));
  try {
    const bareEntry = join(dir, 'bare.ts');
    writeFileSync(
      bareEntry,
      [
        "export * as compute from '@azure/arm-compute';",
        "export * as network from '@azure/arm-network';",
        "export * as identity from '@azure/identity';",
        "export * as blob from '@azure/storage-blob';",
        "export * as functions from '@azure/functions';",
      ].join('\n'),
    );
    // The same SDKs plus the libraries core uses (schema, YAML, template, logger).
    const depsEntry = join(dir, 'deps.ts');
    writeFileSync(
      depsEntry,
      [
        readFileSync(bareEntry, 'utf8'),
        "export * as zod from 'zod';",
        "export * as yaml from 'yaml';",
        "export { default as handlebars } from 'handlebars';",
        "export * as pino from 'pino';",
      ].join('\n'),
    );
    const bareOut = join(dir, 'bare.mjs');
    const depsOut = join(dir, 'deps.mjs');
    // The function exactly as npm run build ships it (split into chunks).
    const { entry: fnOut, bytes: fnBytes } = await buildShippedFunction('azure', dir);
    // Provided by the Functions host at run time, as in the shipped build.
    const hostProvided = ['@azure/functions-core'];
    const bareBytes = await bundleBare(bareEntry, bareOut, hostProvided);
    const depsBytes = await bundleBare(depsEntry, depsOut, hostProvided);
    const fnMs: number[] = [];
    const bareMs: number[] = [];
    const depsMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      fnMs.push(importMs(fnOut));
      bareMs.push(importMs(bareOut));
      depsMs.push(importMs(depsOut));
    }
    const f = median(fnMs);
    const b = median(bareMs);
    const d = median(depsMs);
    const overhead = ((f - b) / b) * 100;
    return {
      id: 'azure-bundle',
      title:
        'Azure function bundle (as built: esbuild, minified, ESM, split) and cold import (median of 5, side by side)',
      columns: ['bundle', 'bytes', 'import ms'],
      rows: [
        ['functions/azure.ts', fnBytes, Math.round(f)],
        [
          'arm-compute + arm-network + identity + storage-blob + functions only',
          bareBytes,
          Math.round(b),
        ],
        ['those SDKs + zod, yaml, handlebars, pino (what core uses)', depsBytes, Math.round(d)],
      ],
      targets: [
        {
          name: 'cold import within 10% of the bare SDK bundle',
          met: overhead <= 10,
          detail: `${overhead.toFixed(1)}% (${Math.round(f)} ms vs ${Math.round(b)} ms)`,
        },
        {
          name: 'cold import within 10% of the SDKs + core libraries bundle',
          met: f <= d * 1.1,
          detail: `${(((f - d) / d) * 100).toFixed(1)}% (${Math.round(f)} ms vs ${Math.round(d)} ms)`,
        },
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Event -> applied through the Event Grid handler, Run Command (fake) and HAProxy. */
async function benchEventToApplied(): Promise<BenchTable> {
  const dir = mkdtempSync(join(tmpdir(), 'lbsync-bench-azure-'));
  const arm = await FakeArm.start({ port: ARM_PORT, pageSize: 1000 });
  const vm = await LbVm.start('lb-bench', join(dir, 'lb'), BOOT_CONFIG);
  arm.addLbVm({ subscriptionId: SUB, resourceGroup: 'rg-edge', name: 'lb-bench', vm });
  const clients = createAzureClients({
    credential: staticTokenCredential('fake-token'),
    endpoint: arm.url,
    ca: arm.caPem,
  });
  const event = eventFixture('azure', 'vmss-write-success.json') as Record<string, unknown>;
  const rows: (string | number)[][] = [];
  let met2000 = false;
  let detail2000 = '';
  try {
    for (const [workers, services] of [
      [10, 1],
      [100, 1],
      [2000, 1],
      [2000, 10],
    ] as const) {
      // The fixture's scale set, refilled with `workers` instances.
      const rg = 'mc-weu';
      const name = 'aks-system-vmss';
      arm.addScaleSet(SUB, rg, name, 'uniform');
      for (let i = 0; i < workers; i++) {
        arm.addInstance(rg, name, {
          instanceId: String(i),
          ip: `10.224.${(i >> 8) & 255}.${i & 255}`,
        });
      }
      const spec = validateSpec({
        name: 'bench-azure',
        cloud: 'azure',
        workers: {
          azure: { subscriptionId: SUB, scaleSets: [{ resourceGroup: rg, name }] },
        },
        loadBalancers: {
          azure: {
            vms: [{ resourceGroup: 'rg-edge', name: 'lb-bench' }],
            staging: { containerUrl: `${arm.storageAccountUrl}/lbsync` },
          },
        },
        services: Array.from({ length: services }, (_, i) => ({
          name: `svc${i}`,
          bind: `127.0.0.1:${FRONT + i}`,
          nodePort: 30900 + i,
        })),
        healthCheck: { enabled: false },
        guards: { minWorkers: 1, maxRemovalPercent: 100 },
        drain: { seconds: 0 },
        tuning: { maxconn: 4000 },
      });
      const entry = createAzureEntry(
        await buildRuntime({
          spec,
          logger: silentLogger(),
          tuning: { azure: { clients, pollMs: 25 } },
        }),
      );
      const blobsBefore = arm.blobs.size;
      const commandsBefore = arm.runCommands().length;
      const t = performance.now();
      const report = (await entry.eventGrid(event, silentLogger())).report;
      const ms = Math.round(performance.now() - t);
      const outcome = report?.results[0]?.outcome ?? 'none';
      const last = arm.runCommands().at(-1);
      rows.push([
        workers,
        services,
        workers * services,
        report?.payloadBytes ?? 0,
        arm.blobs.size > blobsBefore ? 'staged blob' : 'inline',
        last?.scriptBytes ?? 0,
        arm.runCommands().length - commandsBefore,
        outcome,
        ms,
      ]);
      if (workers === 2000 && services === 10) {
        met2000 = outcome === 'applied' && ms < 30_000;
        detail2000 = `${outcome} in ${ms} ms (plus ~2 x 20 s of Run Command on Azure)`;
      }
    }
  } finally {
    await arm.stop();
    await vm.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    id: 'azure-event-to-applied',
    title:
      'Azure event -> applied (Event Grid handler, ARM fake over HTTPS, Run Command running the apply script in an LbVm, real HAProxy; the fake skips the ~20 s Run Command minimum)',
    columns: [
      'workers',
      'services',
      'servers',
      'payload bytes',
      'delivery',
      'script bytes',
      'run commands',
      'outcome',
      'event -> applied ms',
    ],
    rows,
    targets: [{ name: '2,000 x 10 reaches the LB', met: met2000, detail: detail2000 }],
  };
}

/** Every Azure benchmark table. */
export async function benchAzure(): Promise<BenchTable[]> {
  return [await benchBundle(), await benchEventToApplied()];
}
