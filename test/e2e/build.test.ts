import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LB_SCRIPT_FILES, type LbScriptName, loadLbScriptSync } from '../../core/lb-scripts.js';
import { type BuiltFunction, buildAll } from '../../scripts/build.js';
import { AWS_HANDLER } from '../../stacks/aws.js';
import { AZURE_FUNCTIONS } from '../../stacks/azure.js';
import { GCP_ENTRY_POINTS } from '../../stacks/gcp.js';

/*
 * `npm run build` for real: esbuild bundles the three functions into a temp
 * dist, and each package is imported by a plain Node process (no vitest, no
 * tsx), as the platform would load it.
 */

const ROOT = new URL('../../', import.meta.url).pathname;

/** npm package families of each cloud's SDKs. */
const SDK_FAMILIES: Readonly<Record<string, RegExp>> = {
  aws: /^(?:@aws-sdk|@smithy|@aws-crypto|@aws)\//,
  azure: /^(?:@azure|@azure-rest|@typespec)\//,
  gcp: /^(?:@google-cloud\/|google-auth-library$|google-gax$|gaxios$|gcp-metadata$|gtoken$|@grpc\/|proto3-json-serializer$)/,
};

function packagesOf(b: BuiltFunction): Set<string> {
  const names = new Set<string>();
  for (const input of Object.keys(b.metafile.inputs)) {
    const i = input.lastIndexOf('node_modules/');
    if (i < 0) continue;
    const parts = input.slice(i + 'node_modules/'.length).split('/');
    names.add(parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? ''));
  }
  for (const out of Object.values(b.metafile.outputs)) {
    for (const imp of out.imports)
      if (imp.external && !imp.path.startsWith('node:')) names.add(imp.path);
  }
  return names;
}

/** Import a module in a fresh Node process and run `probe` (an async function body) after it. */
function nodeImport(
  file: string,
  probe: string,
  env: Record<string, string> = {},
): { status: number | null; out: unknown; stdout: string; stderr: string } {
  const script = `const m = await import(${JSON.stringify(file)});\n${probe}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    // Bare imports in the probe resolve from the package, as the platform's loader does.
    cwd: dirname(file),
    encoding: 'utf8',
    timeout: 30_000,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: tmpdir(),
      AWS_REGION: 'eu-west-1',
      ...env,
    },
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let out: unknown = null;
  try {
    out = JSON.parse(last);
  } catch {
    out = r.stdout;
  }
  // Minified bundles print whole lines of code with a stack trace; keep the end.
  return { status: r.status, out, stdout: r.stdout, stderr: r.stderr.slice(-2000) };
}

describe('npm run build', () => {
  let out: string;
  let built: readonly BuiltFunction[];

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'lbsync-build-'));
    built = await buildAll(join(out, 'dist'), ['aws', 'azure', 'gcp']);
    // Externals (the Functions Framework) resolve from node_modules, as after the platform's install.
    symlinkSync(join(ROOT, 'node_modules'), join(out, 'node_modules'));
  }, 120_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('bundles each function with its own cloud SDKs and none of the others', () => {
    expect(built.map((b) => b.cloud)).toEqual(['aws', 'azure', 'gcp']);
    for (const b of built) {
      const pkgs = [...packagesOf(b)];
      for (const [cloud, family] of Object.entries(SDK_FAMILIES)) {
        const hits = pkgs.filter((p) => family.test(p));
        if (cloud === b.cloud) expect(hits.length, `${b.cloud} has its own SDK`).toBeGreaterThan(0);
        else expect(hits, `${b.cloud} bundle pulls in ${cloud} SDKs`).toEqual([]);
      }
      // No Pulumi, SST or test code in a function.
      expect(pkgs.filter((p) => /^(?:@pulumi|sst|vitest|esbuild)\b/.test(p))).toEqual([]);
    }
  });

  it('keeps the platform-provided modules out of the bundles', () => {
    const externals = (cloud: string) =>
      [...packagesOf(built.find((b) => b.cloud === cloud) as BuiltFunction)].filter(
        (p) =>
          p.startsWith('@azure/functions-core') ||
          p.startsWith('@google-cloud/functions-framework'),
      );
    expect(externals('azure')).toEqual(['@azure/functions-core']);
    const gcpInputs = Object.keys(built.find((b) => b.cloud === 'gcp')?.metafile.inputs ?? {});
    expect(gcpInputs.some((i) => i.includes('@google-cloud/functions-framework'))).toBe(false);
  });

  it('starts the AWS package under Node: the handler named by the stack exists and finds its templates', () => {
    const pkg = join(out, 'dist', 'package', 'aws');
    const spec = readFileSync(join(ROOT, 'examples', 'aws.yaml'), 'utf8');
    // "aws/index.handler": file aws/index.mjs, export handler.
    const [file, exported] = [
      AWS_HANDLER.slice(0, AWS_HANDLER.lastIndexOf('.')),
      AWS_HANDLER.split('.').pop(),
    ];
    const r = nodeImport(
      join(pkg, `${file}.mjs`),
      `const h = await m.buildAwsHandler({ LBSYNC_SPEC: ${JSON.stringify(spec)} });
       console.log(JSON.stringify({ handler: typeof m[${JSON.stringify(exported)}], built: typeof h }));`,
    );
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    expect(r.out).toEqual({ handler: 'function', built: 'function' });
  });

  it('starts the Azure package under Node, registering the function names the stack wires', () => {
    const pkg = join(out, 'dist', 'package', 'azure');
    // Outside the Functions host, @azure/functions names each registration it skips.
    const r = nodeImport(
      join(pkg, 'azure', 'index.mjs'),
      `const logs = [];
       const say = (...a) => logs.push(a.join(' '));
       const ctx = { invocationId: 'i1', log: say, trace: say, debug: say, info: say, warn: say, error: say };
       await m.onEventGrid({ id: 'e1', eventType: 'Microsoft.Storage.BlobCreated', subject: '/x', data: {} }, ctx);
       console.log(JSON.stringify({ exports: Object.keys(m).sort(), ignored: logs.some((l) => l.includes('event ignored')) }));`,
      { LBSYNC_SPEC: readFileSync(join(ROOT, 'examples', 'azure.yaml'), 'utf8') },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.out).toMatchObject({ ignored: true });
    expect((r.out as { exports: string[] }).exports).toEqual(
      expect.arrayContaining(['onEventGrid', 'onHttp', 'onTimer']),
    );
    const registered = [...`${r.stdout}${r.stderr}`.matchAll(/register function "([^"]+)"/g)].map(
      (x) => x[1],
    );
    expect(registered.sort()).toEqual(Object.values(AZURE_FUNCTIONS).sort());
    const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
    expect(manifest.main).toBe('azure/index.mjs');
    const host = JSON.parse(readFileSync(join(pkg, 'host.json'), 'utf8'));
    expect(host.extensionBundle.id).toBe('Microsoft.Azure.Functions.ExtensionBundle');
  });

  it('starts the GCP package under Node and registers the entry points the stack deploys', () => {
    const pkg = join(out, 'dist', 'package', 'gcp');
    const r = nodeImport(
      join(pkg, 'gcp', 'index.mjs'),
      `const { getFunction } = await import('@google-cloud/functions-framework/testing');
       // An event it ignores still builds the clients and loads the template.
       await m.onGcpAuditLogEvent({ type: 'not-an-audit-log', id: 'probe' });
       console.log(JSON.stringify({ event: typeof getFunction(${JSON.stringify(GCP_ENTRY_POINTS.event)}),
         http: typeof getFunction(${JSON.stringify(GCP_ENTRY_POINTS.http)}) }));`,
      { LBSYNC_SPEC: readFileSync(join(ROOT, 'examples', 'gcp.yaml'), 'utf8') },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.out).toEqual({ event: 'function', http: 'function' });
    expect(r.stdout).toContain('event ignored');
    const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
    const installed = JSON.parse(
      readFileSync(
        join(ROOT, 'node_modules/@google-cloud/functions-framework/package.json'),
        'utf8',
      ),
    );
    expect(manifest.main).toBe('gcp/index.mjs');
    expect(manifest.dependencies).toEqual({
      '@google-cloud/functions-framework': installed.version,
    });
  });

  it('ships the runtime templates next to each bundle and the cloud-init user data beside them', () => {
    for (const cloud of ['aws', 'azure', 'gcp']) {
      const pkg = join(out, 'dist', 'package', cloud);
      for (const f of ['haproxy.cfg.hbs', 'lbsync-apply.sh', 'lbsync-drain.sh']) {
        expect(existsSync(join(pkg, 'templates', f)), `${cloud}: ${f}`).toBe(true);
      }
      expect(existsSync(join(pkg, 'templates', 'cloud-init'))).toBe(false);
      // The LB scripts in the form every transport ships: library inlined.
      for (const [name, file] of Object.entries(LB_SCRIPT_FILES)) {
        expect(readFileSync(join(pkg, 'templates', file), 'utf8'), `${cloud}: ${file}`).toBe(
          loadLbScriptSync(name as LbScriptName),
        );
      }
      expect(readFileSync(join(out, 'dist', 'cloud-init', `${cloud}.yaml`), 'utf8')).toMatch(
        /^#cloud-config\n/,
      );
    }
  });
});
