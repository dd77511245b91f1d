import { execFileSync } from 'node:child_process';
import { cpSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { Worker } from '../core/model.js';
import { buildFunction, ESM_NODE_BANNER, ESM_NODE_DEFINE } from '../scripts/build.js';

const ROOT = join(import.meta.dirname, '..');

/** `n` serving workers with distinct ids and 10.x addresses, numbered from `offset`. */
export function fleet(n: number, offset = 0): Worker[] {
  return Array.from({ length: n }, (_, i) => {
    const k = i + offset;
    return {
      id: `i-${k.toString(16).padStart(17, '0')}`,
      address: `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`,
      state: 'serving',
    };
  });
}

/** Median of a sample. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

/** Cold import time of an ESM file in a fresh Node process, optionally running `then` after import. */
export function importMs(file: string, then = '', env: NodeJS.ProcessEnv = process.env): number {
  const out = execFileSync(
    process.execPath,
    [
      '--no-warnings',
      '--input-type=module',
      '-e',
      `const t=performance.now(); const m = await import(${JSON.stringify(file)}); ${then} console.log(performance.now()-t)`,
    ],
    { encoding: 'utf8', env },
  );
  return Number(out.trim().split('\n').at(-1));
}

/** Bundle a reference entry (the bare SDK clients) the way the functions are bundled, unsplit. */
export async function bundleBare(
  entry: string,
  outfile: string,
  external: readonly string[] = [],
): Promise<number> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    minify: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    banner: { js: ESM_NODE_BANNER },
    define: { ...ESM_NODE_DEFINE },
    external: [...external],
    logLevel: 'silent',
  });
  return statSync(outfile).size;
}

/**
 * Build the function exactly as `npm run build` ships it (split), into `dir`.
 * Returns the entry file and the total bytes of all its chunks. Templates are
 * copied beside it because the bundle resolves them as ../templates.
 */
export async function buildShippedFunction(
  cloud: 'aws' | 'azure' | 'gcp',
  dir: string,
): Promise<{ readonly entry: string; readonly bytes: number }> {
  const built = await buildFunction(cloud, dir);
  cpSync(join(ROOT, 'templates'), join(dir, 'templates'), { recursive: true });
  return { entry: join(dir, cloud, 'index.mjs'), bytes: built.bytes };
}
