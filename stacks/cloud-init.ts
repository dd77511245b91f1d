import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LB_SCRIPT_FILES, type LbScriptName, loadLbScriptSync } from '../core/lb-scripts.js';

/*
 * Renders templates/cloud-init/<cloud>.yaml into the user data an LB VM boots
 * with. Each cloud's file is a header plus the shared base (base-files.yaml,
 * base-runcmd.yaml) and what only that cloud needs. The templates hold
 * markers so the shipped files have one source (templates/), never a pasted
 * copy that drifts:
 *   @@include:FILE@@          the file's text, indented like the marker (block
 *                             scalars, the shared base); expanded recursively
 *   @@base64:FILE@@           the file's bytes, base64 (`encoding: b64` entries)
 *   @@lb-script-base64:NAME@@ an LB script (apply, drain, gcp-agent) in its
 *                             shipped, self-contained form (core/lb-scripts.ts)
 * FILE is relative to templates/cloud-init/.
 */

/** The directory holding the cloud-init templates. */
export const CLOUD_INIT_DIR = fileURLToPath(new URL('../templates/cloud-init/', import.meta.url));

/** Clouds with an LB VM bootstrap. */
export type CloudInitCloud = 'aws' | 'azure' | 'gcp';

/** A marker names a file that does not exist or is outside templates/. */
export class CloudInitTemplateError extends Error {
  /** Always false: the template itself is wrong. */
  readonly retryable = false;
  override readonly name = 'CloudInitTemplateError';
  /** Build one from the reason and the underlying error. */
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options);
  }
}

function readRelative(dir: string, file: string): Buffer {
  if (!/^(?:\.\.\/)?[A-Za-z0-9._-]+$/.test(file)) {
    throw new CloudInitTemplateError(
      `marker names ${file}: only files in templates/ may be embedded`,
    );
  }
  try {
    return readFileSync(join(dir, file));
  } catch (err) {
    throw new CloudInitTemplateError(`cannot read ${file} for the cloud-init template`, {
      cause: err,
    });
  }
}

/** How deep includes may nest (a cycle is an error, not a hang). */
const MAX_INCLUDE_DEPTH = 5;

/** Render one cloud's cloud-init user data (a `#cloud-config` YAML document). */
export function renderCloudInit(cloud: CloudInitCloud, dir: string = CLOUD_INIT_DIR): string {
  let text = readRelative(dir, `${cloud}.yaml`).toString('utf8');
  const include = /^([ \t]*)@@include:([^@\s]+)@@[ \t]*$/gm;
  for (let depth = 0; include.test(text); depth++) {
    if (depth >= MAX_INCLUDE_DEPTH) {
      throw new CloudInitTemplateError(
        `${cloud}.yaml: includes nest deeper than ${MAX_INCLUDE_DEPTH}`,
      );
    }
    include.lastIndex = 0;
    text = text.replace(include, (_m, indent: string, file: string) =>
      readRelative(dir, file)
        .toString('utf8')
        .replace(/\n$/, '')
        .split('\n')
        .map((line) => (line === '' ? '' : `${indent}${line}`))
        .join('\n'),
    );
    include.lastIndex = 0;
  }
  return text
    .replace(/@@base64:([^@\s]+)@@/g, (_m, file: string) =>
      readRelative(dir, file).toString('base64'),
    )
    .replace(/@@lb-script-base64:([^@\s]+)@@/g, (_m, name: string) => {
      if (!Object.hasOwn(LB_SCRIPT_FILES, name)) {
        throw new CloudInitTemplateError(`marker names an unknown LB script: ${name}`);
      }
      return Buffer.from(loadLbScriptSync(name as LbScriptName, join(dir, '..'))).toString(
        'base64',
      );
    });
}
