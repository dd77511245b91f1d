// npm run build: bundle each functions/<cloud>.ts with only its own cloud's SDKs,
// then lay out the deployment package each platform runs.
//
//   dist/<cloud>/index.mjs (+ .map, meta.json)  the bundle and esbuild's metafile
//   dist/templates/                             core resolves ../templates/ from the bundle;
//                                               the LB scripts in their shipped (inlined) form
//   dist/package/<cloud>/                       the archive root the stacks upload:
//       <cloud>/index.mjs(.map), templates/, and what the platform needs:
//       aws    nothing more; handler "aws/index.handler" (Node 22 Lambda runtime)
//       azure  host.json (extension bundle for the Event Grid trigger) and a
//              package.json whose "main" is azure/index.mjs (v4 programming model)
//       gcp    a package.json whose "main" is gcp/index.mjs and which depends on
//              @google-cloud/functions-framework: the buildpack's launcher looks the
//              entry point up in *its* framework registry, so the bundle must not
//              carry a private copy (it is external and installed by the build)
//   dist/cloud-init/<cloud>.yaml                LB VM user data (templates/cloud-init)
//
// The stacks hand dist/package/<cloud> to Pulumi as a FileArchive, which zips the
// directory at deploy time: no zip tool is needed and the zip is reproducible.
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { build, type Metafile, type Plugin } from 'esbuild';
import { FUNCTION_CLOUDS, type FunctionCloud, PROVIDERS } from '../adapters/registry.js';
import { LB_SCRIPT_FILES, type LbScriptName, loadLbScriptSync } from '../core/lb-scripts.js';
import { renderCloudInit } from '../stacks/cloud-init.js';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');

/** Modules the platform provides at runtime, per cloud; they stay out of the bundle. */
export const PLATFORM_EXTERNALS: Readonly<Record<string, readonly string[]>> = {
  aws: [],
  // Injected by the Azure Functions Node worker; @azure/functions requires it lazily.
  azure: ['@azure/functions-core'],
  // Installed from the package's dependencies; see the header comment.
  gcp: ['@google-cloud/functions-framework'],
};

/**
 * Bundled CommonJS dependencies still call require() and read __dirname /
 * __filename (google-gax does at import time); ESM output has none of them,
 * so the banner provides them and `define` points the free identifiers there
 * (a plain `const __dirname` could clash with a bundled module's own).
 */
export const ESM_NODE_BANNER = [
  "import { createRequire as __lbsyncCreateRequire } from 'node:module';",
  "import { fileURLToPath as __lbsyncFileURLToPath } from 'node:url';",
  'const require = __lbsyncCreateRequire(import.meta.url);',
  'const __lbsyncFilename = __lbsyncFileURLToPath(import.meta.url);',
  "const __lbsyncDirname = __lbsyncFileURLToPath(new URL('.', import.meta.url));",
].join(' ');

/** The `define` that goes with `ESM_NODE_BANNER`. */
export const ESM_NODE_DEFINE: Readonly<Record<string, string>> = {
  __dirname: '__lbsyncDirname',
  __filename: '__lbsyncFilename',
};

/**
 * The registry names every provider's factory behind a dynamic import. In
 * the bundle of `cloud`, the factories of other clouds' providers become a
 * stub that says so, so no bundle carries another cloud's SDK; cloud-neutral
 * providers (local, kubernetes) stay in every bundle.
 */
export function onlyOwnCloudFactories(cloud: string): Plugin {
  const foreign = PROVIDERS.map((p) => p.descriptor).filter(
    (d) => d.cloud !== null && d.cloud !== cloud,
  );
  const pattern = new RegExp(
    `^\\./(${foreign.map((d) => d.name).join('|') || '$^'})/factory\\.js$`,
  );
  return {
    name: 'lbsync-only-own-cloud-factories',
    setup(b) {
      b.onResolve({ filter: pattern }, (args) =>
        args.importer.endsWith(join('adapters', 'registry.ts'))
          ? { path: args.path, namespace: 'lbsync-foreign-factory' }
          : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'lbsync-foreign-factory' }, (args) => ({
        contents: `throw new Error(${JSON.stringify(`${args.path}: this is the ${cloud} bundle; a spec whose source or transport belongs to another cloud is deployed to that cloud`)});`,
        loader: 'js',
      }));
    },
  };
}

/** What one bundle build produced. */
export interface BuiltFunction {
  readonly cloud: string;
  readonly bytes: number;
  readonly metafile: Metafile;
}

/**
 * Bundle one function entry into `<outRoot>/<cloud>/index.mjs` plus chunks.
 * Splitting keeps cold start close to importing the bare SDK clients: the
 * functions import the pipeline (zod, yaml, handlebars, pino) dynamically, so
 * it lands in a chunk loaded on the first invocation, not at import time.
 */
export async function buildFunction(cloud: string, outRoot = dist): Promise<BuiltFunction> {
  const outdir = join(outRoot, cloud);
  const result = await build({
    entryPoints: { index: join(root, 'functions', `${cloud}.ts`) },
    outdir,
    splitting: true,
    chunkNames: 'chunk-[hash]',
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    // Every platform runs Node 22; node20 keeps the bundle loadable on the
    // project's Node 20 machines (tests import it).
    target: 'node20',
    format: 'esm',
    minify: true,
    sourcemap: true,
    treeShaking: true,
    metafile: true,
    legalComments: 'none',
    external: [...(PLATFORM_EXTERNALS[cloud] ?? [])],
    // Bundled CommonJS dependencies still call require() and read __dirname /
    // __filename (google-gax does at import time); ESM output has none of
    // them, so the banner provides them and `define` points the free
    // identifiers there (a plain `const __dirname` could clash with a bundled
    // module's own declaration).
    banner: { js: ESM_NODE_BANNER },
    define: ESM_NODE_DEFINE,
    plugins: [onlyOwnCloudFactories(cloud)],
    logLevel: 'warning',
  });
  writeFileSync(join(outRoot, cloud, 'meta.json'), JSON.stringify(result.metafile));
  writeFileSync(join(outRoot, cloud, 'package.json'), '{"type":"module"}\n');
  const bytes = Object.entries(result.metafile.outputs)
    .filter(([file]) => file.endsWith('.mjs'))
    .reduce((sum, [, o]) => sum + o.bytes, 0);
  return { cloud, bytes, metafile: result.metafile };
}

function installedVersion(pkg: string): string {
  const text = readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

/** The platform files at the root of a cloud's package. */
export function platformFiles(cloud: string): Readonly<Record<string, string>> {
  const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;
  switch (cloud) {
    case 'azure':
      return {
        'host.json': json({
          version: '2.0',
          extensionBundle: {
            id: 'Microsoft.Azure.Functions.ExtensionBundle',
            version: '[4.*, 5.0.0)',
          },
          functionTimeout: '00:10:00',
          logging: { logLevel: { default: 'Information' } },
        }),
        'package.json': json({
          name: 'lbsync-azure',
          private: true,
          type: 'module',
          main: 'azure/index.mjs',
        }),
      };
    case 'gcp':
      return {
        'package.json': json({
          name: 'lbsync-gcp',
          private: true,
          type: 'module',
          main: 'gcp/index.mjs',
          engines: { node: '>=20' },
          dependencies: {
            '@google-cloud/functions-framework': installedVersion(
              '@google-cloud/functions-framework',
            ),
          },
        }),
      };
    default:
      return {};
  }
}

/**
 * Overwrite the LB scripts under `templatesDir` with their shipped,
 * self-contained form (the shell library inlined), so a deployed function
 * reads and ships exactly what the tests ran.
 */
export function writeShippedLbScripts(templatesDir: string): void {
  for (const [name, file] of Object.entries(LB_SCRIPT_FILES)) {
    writeFileSync(
      join(templatesDir, file),
      loadLbScriptSync(name as LbScriptName, join(root, 'templates')),
    );
  }
}

/** Lay out `<outRoot>/package/<cloud>/` from the bundle and templates; returns its path. */
export function packageFunction(cloud: string, outRoot = dist): string {
  const dir = join(outRoot, 'package', cloud);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, cloud), { recursive: true });
  for (const f of readdirSync(join(outRoot, cloud))) {
    if (f.endsWith('.mjs') || f.endsWith('.mjs.map'))
      cpSync(join(outRoot, cloud, f), join(dir, cloud, f));
  }
  // Only the runtime templates: cloud-init belongs on the LB VMs, not in the function.
  cpSync(join(root, 'templates'), join(dir, 'templates'), {
    recursive: true,
    filter: (src) => !src.includes(`${join('templates', 'cloud-init')}`),
  });
  writeShippedLbScripts(join(dir, 'templates'));
  for (const [name, text] of Object.entries(platformFiles(cloud))) {
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

/** The clouds with a function bundle (the registry's list; each has functions/<cloud>.ts). */
export function functionClouds(): readonly string[] {
  return [...FUNCTION_CLOUDS].filter((c) => existsSync(join(root, 'functions', `${c}.ts`)));
}

/** Build everything into `outRoot` (default dist/): bundles, packages, cloud-init. */
export async function buildAll(
  outRoot = dist,
  clouds: readonly string[] = functionClouds(),
): Promise<readonly BuiltFunction[]> {
  rmSync(outRoot, { recursive: true, force: true });
  mkdirSync(join(outRoot, 'cloud-init'), { recursive: true });
  cpSync(join(root, 'templates'), join(outRoot, 'templates'), { recursive: true });
  writeShippedLbScripts(join(outRoot, 'templates'));
  const built = await Promise.all(clouds.map((c) => buildFunction(c, outRoot)));
  for (const c of clouds) {
    packageFunction(c, outRoot);
    writeFileSync(join(outRoot, 'cloud-init', `${c}.yaml`), renderCloudInit(c as FunctionCloud));
  }
  return built;
}

const isMain = process.argv[1] !== undefined && import.meta.filename === process.argv[1];
if (isMain) {
  const only = process.argv.slice(2);
  const clouds = functionClouds().filter((c) => only.length === 0 || only.includes(c));
  const built = await buildAll(dist, clouds);
  for (const b of built) {
    console.log(
      `dist/${b.cloud}/index.mjs (+chunks)  ${(b.bytes / 1024).toFixed(0)} KiB  -> dist/package/${b.cloud}/`,
    );
  }
}
