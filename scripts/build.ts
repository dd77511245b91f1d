// npm run build: bundle each functions/<cloud>.ts with only its own cloud's SDKs.
// Output: dist/<cloud>/index.mjs (+ .map, meta.json), and dist/templates/ because
// core resolves templates as ../templates/ relative to the bundle.
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');
const only = process.argv.slice(2);

/** Bundle one function entry; returns the output size in bytes. */
export async function buildFunction(cloud: string, outRoot = dist): Promise<number> {
  const outfile = join(outRoot, cloud, 'index.mjs');
  const result = await build({
    entryPoints: [join(root, 'functions', `${cloud}.ts`)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    minify: true,
    sourcemap: true,
    treeShaking: true,
    metafile: true,
    legalComments: 'none',
    // Bundled CommonJS dependencies still call require(); give ESM output one.
    banner: {
      js: "import { createRequire as __lbsyncCreateRequire } from 'node:module'; const require = __lbsyncCreateRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
  writeFileSync(join(outRoot, cloud, 'meta.json'), JSON.stringify(result.metafile));
  writeFileSync(join(outRoot, cloud, 'package.json'), '{"type":"module"}\n');
  return statSync(outfile).size;
}

const isMain = process.argv[1] !== undefined && import.meta.filename === process.argv[1];
if (isMain) {
  const clouds = existsSync(join(root, 'functions'))
    ? readdirSync(join(root, 'functions'))
        .filter((f) => f.endsWith('.ts'))
        .map((f) => f.slice(0, -3))
        .filter((c) => only.length === 0 || only.includes(c))
    : [];
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(dist, { recursive: true });
  cpSync(join(root, 'templates'), join(dist, 'templates'), { recursive: true });
  for (const cloud of clouds) {
    const size = await buildFunction(cloud);
    console.log(`dist/${cloud}/index.mjs  ${(size / 1024).toFixed(0)} KiB`);
  }
  if (clouds.length === 0) console.log('no functions/*.ts to build');
}
