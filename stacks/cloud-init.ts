import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * Renders templates/cloud-init/<cloud>.yaml into the user data an LB VM boots
 * with. The templates hold two kinds of markers so the shipped scripts have
 * one source (templates/), never a pasted copy that drifts:
 *   @@include:FILE@@  the file's text, indented like the marker (block scalars)
 *   @@base64:FILE@@   the file's bytes, base64 (for `encoding: b64` entries)
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

/** Render one cloud's cloud-init user data (a `#cloud-config` YAML document). */
export function renderCloudInit(cloud: CloudInitCloud, dir: string = CLOUD_INIT_DIR): string {
  const template = readRelative(dir, `${cloud}.yaml`).toString('utf8');
  return template
    .replace(/^([ \t]*)@@include:([^@\s]+)@@[ \t]*$/gm, (_m, indent: string, file: string) =>
      readRelative(dirname(join(dir, `${cloud}.yaml`)), file)
        .toString('utf8')
        .replace(/\n$/, '')
        .split('\n')
        .map((line) => (line === '' ? '' : `${indent}${line}`))
        .join('\n'),
    )
    .replace(/@@base64:([^@\s]+)@@/g, (_m, file: string) =>
      readRelative(dir, file).toString('base64'),
    );
}
