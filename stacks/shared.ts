import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type * as PulumiNamespace from '@pulumi/pulumi';
import { descriptors } from '../adapters/registry.js';
import type { Spec } from '../adapters/spec.js';

/*
 * What every stack shares. Stacks never import a Pulumi package at runtime:
 * under `sst deploy` the SST CLI owns the Pulumi runtime and hands out the
 * provider namespaces as globals, and a second copy of @pulumi/pulumi would
 * register resources with a monitor that does not exist (DESIGN.md,
 * Deployment). So the namespaces arrive as arguments, and only their types
 * are imported here; tests pass the real packages under runtime mocks.
 */

/** The `@pulumi/pulumi` namespace (SST's `$util`). */
export type PulumiNs = typeof PulumiNamespace;

/** A resource a stack created; tests wait for all of them to register. */
export type StackResource = PulumiNamespace.Resource;

/** What every stack returns: the outputs SST prints and the resources it made. */
export interface StackResult {
  /** Outputs for `sst deploy` to print (function names, URLs, queue ARNs). */
  readonly outputs: Readonly<Record<string, PulumiNamespace.Input<string>>>;
  /** Every resource the stack created, in creation order. */
  readonly resources: readonly StackResource[];
}

/** The cluster watcher's namespace and service account (templates/kubernetes/rbac.yaml). */
export const WATCHER_SERVICE_ACCOUNT = { namespace: 'lbsync', name: 'lbsync-watcher' } as const;

/** A spec or option the stack cannot deploy; not retryable, fix the input. */
export class StackConfigError extends Error {
  /** Always false: a deploy with the same input fails the same way. */
  readonly retryable = false;
  override readonly name = 'StackConfigError';
  /** Build one from the reason; `cause` carries the underlying error, if any. */
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Check that `spec` is for `cloud` and uses nothing the deployed function
 * cannot see or do. A custom `template` and a `file` worker source are paths
 * next to the spec file, and the function only receives the spec text, so
 * they are refused rather than silently ignored; a `local` transport runs
 * the apply script on the CLI host, never in a function. Any other source
 * (the cloud's group source, `static`, `kubernetes`) is deployable with the
 * cloud's own transport.
 */
export function assertDeployable(spec: Spec, cloud: 'aws' | 'azure' | 'gcp'): void {
  if (spec.cloud !== cloud) {
    throw new StackConfigError(`the spec is for cloud ${spec.cloud}, not ${cloud}`);
  }
  if (spec.template !== undefined) {
    throw new StackConfigError(
      'template: a custom template is not shipped to the function yet; remove it to deploy',
    );
  }
  if (spec.workers.source === 'file') {
    throw new StackConfigError(
      'workers.source: file cannot be deployed: the function receives only the spec (LBSYNC_SPEC), not the worker file beside it; list the workers with source static, or use a group or kubernetes source',
    );
  }
  const transports = cloudTransports(cloud);
  if (!transports.includes(spec.loadBalancers.transport)) {
    throw new StackConfigError(
      `loadBalancers.transport: the ${cloud} stack reaches the LBs with ${transports.join(' or ')}, not ${spec.loadBalancers.transport}${spec.loadBalancers.transport === 'local' ? ' (local runs the apply script on the CLI host only)' : ''}`,
    );
  }
}

/** The transports the cloud's own provider offers (ssm, azure-run-command, gcp-metadata). */
function cloudTransports(cloud: 'aws' | 'azure' | 'gcp'): readonly string[] {
  return descriptors()
    .filter((d) => d.cloud === cloud)
    .flatMap((d) => Object.keys(d.transports ?? {}));
}

/**
 * The environment every lbsync function reads: `LBSYNC_SPEC` is the
 * validated spec (defaults applied) as compact JSON, which core/entry.ts
 * parses as YAML. JSON keeps it small (Lambda caps all variables at 4 KB)
 * and independent of the YAML file's comments and layout.
 */
export function functionEnvironment(spec: Spec): Record<string, string> {
  return { LBSYNC_SPEC: JSON.stringify(spec) };
}

/** Short content digest of a directory (paths and bytes), so a changed package gets a new name. */
export function directoryDigest(dir: string): string {
  const hash = createHash('sha256');
  const files: string[] = [];
  // Bounded by the package size: a build output of a few dozen files.
  const walk = (d: string): void => {
    for (const entry of readdirSync(d).sort()) {
      const p = join(d, entry);
      if (statSync(p).isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk(dir);
  for (const f of files) {
    hash.update(relative(dir, f));
    hash.update('\0');
    hash.update(readFileSync(f));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/** The package directory must exist and hold the cloud's bundle; a clear error beats a broken deploy. */
export function assertPackage(packageDir: string, cloud: 'aws' | 'azure' | 'gcp'): void {
  const entry = join(packageDir, cloud, 'index.mjs');
  try {
    statSync(entry);
  } catch (err) {
    throw new StackConfigError(`${entry} is missing: run \`npm run build\` first`, { cause: err });
  }
}
