import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * The LB-side scripts share one shell library, templates/lib/lbsync-lib.sh.
 * In the checkout each script sources it between two marker lines, so it runs
 * from templates/ as it is; what an LB receives is the shipped form this
 * module produces: the library inlined, then comment and blank lines dropped
 * (the documentation stays in templates/; Run Command's inline budget is
 * counted in bytes, and the apply script's comments are most of them). Every transport ships that form, LocalTransport
 * runs it, stacks/cloud-init.ts installs it and `npm run build` writes it into
 * the packages, so tests exercise exactly what the LBs run.
 */

/** The directory holding the LB scripts (and lib/). */
export const LB_SCRIPTS_DIR = fileURLToPath(new URL('../templates/', import.meta.url));

/** The scripts that run on an LB VM. */
export type LbScriptName = 'apply' | 'drain' | 'gcp-agent';

/** File names under templates/ of each LB script. */
export const LB_SCRIPT_FILES: Readonly<Record<LbScriptName, string>> = {
  apply: 'lbsync-apply.sh',
  drain: 'lbsync-drain.sh',
  'gcp-agent': 'lbsync-gcp-agent.sh',
};

/** The library's path relative to a script's directory. */
export const LB_LIBRARY_FILE = 'lib/lbsync-lib.sh';

const BEGIN = '# >>> lbsync-lib';
const END = '# <<< lbsync-lib';
const BLOCK = /^# >>> lbsync-lib[^\n]*\n[\s\S]*?^# <<< lbsync-lib[^\n]*\n/gm;

/** A script's library markers are missing, doubled or unbalanced. */
export class LbScriptError extends Error {
  /** Always false: the script text itself is wrong. */
  public readonly retryable = false;
  public override readonly name = 'LbScriptError';
}

/**
 * Replace the library block of `script` with `library`. Idempotent: the
 * inlined form keeps its markers, so inlining it again gives the same text.
 * A script without markers (a test stub) is returned as it is.
 */
export function inlineLbLibrary(script: string, library: string, what = 'script'): string {
  const begins = script.split('\n').filter((l) => l.startsWith(BEGIN)).length;
  const ends = script.split('\n').filter((l) => l.startsWith(END)).length;
  if (begins === 0 && ends === 0) return script;
  const blocks = script.match(BLOCK)?.length ?? 0;
  if (begins !== 1 || ends !== 1 || blocks !== 1) {
    throw new LbScriptError(
      `${what}: expected one "${BEGIN}" … "${END}" block, found ${begins} begin and ${ends} end markers`,
    );
  }
  const body = library.endsWith('\n') ? library : `${library}\n`;
  return script.replace(
    BLOCK,
    `${BEGIN} (inlined from templates/${LB_LIBRARY_FILE}; do not edit here)\n${body}${END}\n`,
  );
}

/**
 * Drop comment and blank lines from a shell script, except the `#!` line and
 * the bodies of here-documents (which are data). Lines that start with `#`
 * inside single-quoted awk programs are awk comments, so they go too.
 */
export function compactShellScript(script: string, source = 'templates/'): string {
  const out: string[] = [];
  let heredocEnd: string | null = null;
  let first = true;
  for (const line of script.split('\n')) {
    if (heredocEnd !== null) {
      out.push(line);
      if (line.replace(/^\t+/, '') === heredocEnd) heredocEnd = null;
      continue;
    }
    if (first) {
      first = false;
      if (line.startsWith('#!')) {
        out.push(
          line,
          `# Shipped form of ${source}: comments dropped, library inlined. Edit the source.`,
        );
        continue;
      }
    }
    if (/^\s*(#|$)/.test(line)) continue;
    out.push(line);
    const m = /<<-?\s*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\1/.exec(line);
    if (m?.[2] !== undefined) heredocEnd = m[2];
  }
  return `${out.join('\n').replace(/\n*$/, '')}\n`;
}

/** The script's shipped text: library inlined (from `lib` beside it), comments dropped. */
function shipped(path: string, script: string, library: () => string): string {
  if (!script.includes(BEGIN)) return script;
  const name = `templates/${path.split('/').at(-1) ?? path}`;
  return compactShellScript(inlineLbLibrary(script, library(), path), name);
}

/** The self-contained text of the script at `path`, its library read from `<dir of path>/lib/`. */
export function shippedLbScriptSync(path: string): string {
  return shipped(path, readFileSync(path, 'utf8'), () =>
    readFileSync(join(dirname(path), LB_LIBRARY_FILE), 'utf8'),
  );
}

const cache = new Map<string, Promise<string>>();

/** Like `shippedLbScriptSync`, read once per process and path. */
export function shippedLbScript(path: string): Promise<string> {
  let p = cache.get(path);
  if (p === undefined) {
    p = (async () => {
      const script = await readFile(path, 'utf8');
      const library = script.includes(BEGIN)
        ? await readFile(join(dirname(path), LB_LIBRARY_FILE), 'utf8')
        : '';
      return shipped(path, script, () => library);
    })();
    cache.set(path, p);
    p.catch(() => cache.delete(path));
  }
  return p;
}

/** The path of an LB script under `dir` (default: this checkout's or bundle's templates/). */
export function lbScriptPath(name: LbScriptName, dir: string = LB_SCRIPTS_DIR): string {
  return join(dir, LB_SCRIPT_FILES[name]);
}

/** The self-contained text every transport ships for `name`, cached per process. */
export function loadLbScript(name: LbScriptName, dir: string = LB_SCRIPTS_DIR): Promise<string> {
  return shippedLbScript(lbScriptPath(name, dir));
}

/** Synchronous `loadLbScript`, for renderers that are synchronous (cloud-init). */
export function loadLbScriptSync(name: LbScriptName, dir: string = LB_SCRIPTS_DIR): string {
  return shippedLbScriptSync(lbScriptPath(name, dir));
}

/** Path of the LB-side apply script shipped by every transport. */
export const APPLY_SCRIPT_PATH = lbScriptPath('apply');

/**
 * The apply script's shipped (self-contained) text, read once per process;
 * `path` overrides the checkout's copy (its library is read from `lib/` beside it).
 */
export function loadApplyScript(path: string = APPLY_SCRIPT_PATH): Promise<string> {
  return shippedLbScript(path);
}

/** The drain script's shipped (self-contained) text, read once per process; `path` as for `loadApplyScript`. */
export function loadDrainScript(path: string = lbScriptPath('drain')): Promise<string> {
  return shippedLbScript(path);
}
