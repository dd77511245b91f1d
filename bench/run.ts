// npm run bench: runs every benchmark, prints tables, writes bench/results/<id>.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchApplyPaths } from './apply.js';
import { benchApply, benchRenderPlan } from './core.js';
import { benchKubernetes } from './kubernetes.js';
import { type BenchTable, formatTable } from './table.js';

type Bench = () => Promise<BenchTable | readonly BenchTable[]>;

const benches: [string, Bench][] = [
  ['render-plan', benchRenderPlan],
  ['apply-local', benchApply],
  ['apply', benchApplyPaths],
  ['kubernetes', benchKubernetes],
];
// Cloud benchmarks are optional modules: each cloud path adds bench/<cloud>.ts.
for (const cloud of ['aws', 'azure', 'gcp'] as const) {
  try {
    const mod = (await import(`./${cloud}.js`)) as Record<string, Bench>;
    const fn = Object.entries(mod).find(([k]) => k.toLowerCase() === `bench${cloud}`)?.[1];
    if (fn) benches.push([cloud, fn]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
  }
}

const only = process.argv.slice(2);
const dir = join(import.meta.dirname, 'results');
mkdirSync(dir, { recursive: true });
let missed = 0;
for (const [name, fn] of benches) {
  if (only.length > 0 && !only.includes(name)) continue;
  const out = await fn();
  const tables: readonly BenchTable[] = Array.isArray(out) ? out : [out as BenchTable];
  for (const t of tables) {
    console.log(`${formatTable(t)}\n`);
    writeFileSync(
      join(dir, `${t.id}.json`),
      `${JSON.stringify({ ...t, at: new Date().toISOString() }, null, 2)}\n`,
    );
    missed += (t.targets ?? []).filter((x) => !x.met).length;
  }
}
if (missed > 0) console.log(`${missed} target(s) missed`);
