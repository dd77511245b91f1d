import { stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { SourceError } from '../../core/errors.js';
import { formatBytes, parseYamlStrict, readTextFileBounded } from '../../core/input.js';
import type { Worker } from '../../core/model.js';
import type { WorkerSource } from '../../core/ports.js';

/** A fixed list of workers (spec `workers.local.static`, `--workers ip,ip`). */
export class StaticSource implements WorkerSource {
  public constructor(private readonly workers: readonly Worker[]) {}

  /** The list as given; validation happens in the core before rendering. */
  public async resolve(): Promise<readonly Worker[]> {
    return this.workers;
  }
}

/**
 * The largest workers file lbsync reads: 4 MiB, the spec's cap. 20,000
 * workers as `{id, address}` entries take about 1.2 MB, as bare addresses
 * about 0.3 MB; the cap bounds what a hostile file costs the YAML parser
 * (about 2.3 s and 190 MB per MB at worst) before anything is parsed.
 */
export const MAX_WORKERS_FILE_BYTES = 4 * 1024 * 1024;

/**
 * Workers read from a YAML/JSON file on every resolve, so editing the file is
 * a "scale event". Accepts a list of `{id, address, state?}` or of addresses.
 * The file is untrusted input: size-capped, YAML core schema only.
 */
export class FileSource implements WorkerSource {
  public constructor(private readonly path: string) {}

  /** Re-read and parse the file. Every failure is a permanent `SourceError` naming the file. */
  public async resolve(): Promise<readonly Worker[]> {
    let text: string;
    try {
      const read = await readTextFileBounded(this.path, MAX_WORKERS_FILE_BYTES);
      if (read.kind === 'too-large') {
        throw new SourceError(
          `${this.path}: the workers file is ${read.bytes === null ? 'more than 4 MiB' : `${formatBytes(read.bytes)} (${read.bytes} bytes)`}, over the ${formatBytes(MAX_WORKERS_FILE_BYTES)} cap`,
          { retryable: false },
        );
      }
      text = read.text;
    } catch (err) {
      if (err instanceof SourceError) throw err;
      throw new SourceError(
        `cannot read workers file ${this.path}: ${(err as NodeJS.ErrnoException).code}`,
        {
          cause: err,
          retryable: false,
        },
      );
    }
    const parsed = parseYamlStrict(text);
    if (!parsed.ok) {
      throw new SourceError(parsed.problems.map((p) => `${this.path}: ${p}`).join('\n'), {
        retryable: false,
      });
    }
    return parseWorkerList(parsed.data, this.path);
  }
}

/**
 * A simulated autoscaling group: the demo and tests scale it out and in, and
 * mark members as draining, the way an ASG lifecycle hook would.
 */
export class SimulatedGroup implements WorkerSource {
  private readonly members = new Map<string, Worker>();

  public constructor(
    public readonly name: string,
    initial: readonly Worker[] = [],
  ) {
    for (const w of initial) this.members.set(w.id, { ...w, group: name });
  }

  /** Add a serving worker (scale out). */
  public launch(id: string, address: string): void {
    this.members.set(id, { id, address, state: 'serving', group: this.name });
  }

  /** Mark a worker draining (terminate lifecycle hook). */
  public drain(id: string): void {
    const w = this.members.get(id);
    if (w !== undefined) this.members.set(id, { ...w, state: 'draining' });
  }

  /** Remove a worker (terminate successful). */
  public terminate(id: string): void {
    this.members.delete(id);
  }

  /** Current members, serving and draining. */
  public current(): readonly Worker[] {
    return [...this.members.values()];
  }

  /** Snapshot of the members. */
  public async resolve(): Promise<readonly Worker[]> {
    return this.current();
  }
}

/**
 * Parse `--workers` input: a readable file, or a comma list of `ip` or `id=ip`.
 * Ids default to `w-<ip with dots/colons as dashes>`. Values are validated
 * later, before rendering, like any worker from a cloud API.
 */
export async function workersFromArgument(arg: string): Promise<readonly Worker[]> {
  if (await isReadableFile(arg)) return new FileSource(arg).resolve();
  const items = arg
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0 || !items.every((i) => i.includes('=') || isIP(i) !== 0)) {
    throw new SourceError(
      `--workers: ${JSON.stringify(arg)} is neither a readable file nor a comma list of ip or id=ip`,
      { retryable: false },
    );
  }
  return items.map((item) => {
    const eq = item.indexOf('=');
    const address = eq >= 0 ? item.slice(eq + 1) : item;
    const id = eq >= 0 ? item.slice(0, eq) : `w-${address.replace(/[.:]/g, '-')}`;
    return { id, address, state: 'serving' } satisfies Worker;
  });
}

async function isReadableFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Resolve a workers file path against the spec file's directory. */
export function workersFilePath(path: string, specFile?: string): string {
  return isAbsolute(path) || specFile === undefined ? path : resolve(dirname(specFile), path);
}

function parseWorkerList(data: unknown, where: string): readonly Worker[] {
  const list = Array.isArray(data)
    ? data
    : typeof data === 'object' &&
        data !== null &&
        Array.isArray((data as { workers?: unknown }).workers)
      ? (data as { workers: unknown[] }).workers
      : null;
  if (list === null) {
    throw new SourceError(`${where}: expected a list of workers (or {workers: [...]})`, {
      retryable: false,
    });
  }
  return list.map((item, i) => {
    if (typeof item === 'string') {
      return {
        id: `w-${item.replace(/[.:]/g, '-')}`,
        address: item,
        state: 'serving',
      } satisfies Worker;
    }
    if (typeof item === 'object' && item !== null && !Array.isArray(item)) {
      const o = item as Record<string, unknown>;
      // A typo ("drainig") must not silently serve a worker meant to drain.
      if (o.state !== undefined && o.state !== 'serving' && o.state !== 'draining') {
        throw new SourceError(
          `${where}: item ${i}: state must be serving or draining, found ${JSON.stringify(o.state)}`,
          { retryable: false },
        );
      }
      const unknown = Object.keys(o).filter((k) => !['id', 'address', 'state'].includes(k));
      if (unknown.length > 0) {
        throw new SourceError(
          `${where}: item ${i}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}`,
          { retryable: false },
        );
      }
      if (typeof o.id === 'string' && typeof o.address === 'string') {
        const state = o.state === 'draining' ? 'draining' : 'serving';
        return { id: o.id, address: o.address, state } satisfies Worker;
      }
    }
    throw new SourceError(`${where}: item ${i} must be an address or {id, address, state?}`, {
      retryable: false,
    });
  });
}
