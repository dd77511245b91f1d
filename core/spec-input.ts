import type { z } from 'zod';
import { SpecError } from './errors.js';
import { formatBytes, parseYamlStrict, readTextFileBounded } from './input.js';

/*
 * The spec file as untrusted input: bounded before it is parsed, read with
 * the YAML core schema only, and every problem reported as the typed,
 * never-retryable SpecError with `file: path: reason`, each wrong value
 * saying what was expected and what was found.
 */

/** Render a zod issue path as `services[1].nodePort`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out === '' ? '(root)' : out;
}

/**
 * The largest spec lbsync reads: 4 MiB. The largest legitimate spec is one
 * with the schema's maximum of 20,000 static workers: about 1.7 MB with EC2
 * ids and IPv4 addresses, 4.0 MB with 110-character ids and full IPv6
 * addresses, parsed in about 2 s and 220 MB. The YAML parser costs about 2.3 s
 * and 190 MB per MB of the densest input (one-character list items), so the cap
 * also bounds a hostile spec to about 10 s and 800 MB instead of running the
 * process out of heap. Cloud specs (no static workers) are a few KB.
 */
export const MAX_SPEC_BYTES = 4 * 1024 * 1024;

/** At most this many problems are listed; the rest are counted. */
export const MAX_LISTED_PROBLEMS = 50;

const EXPECTED: Readonly<Record<string, string>> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

/** What a wrong value is, for "expected X, found Y" messages. */
export function describeFound(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return input.length === 0 ? 'an empty list' : 'a list';
  switch (typeof input) {
    case 'string': {
      const shown = input.length > 60 ? `${input.slice(0, 60)}...` : input;
      return `the string ${JSON.stringify(shown)}`;
    }
    case 'number':
      if (Number.isNaN(input)) return '.nan (not a number)';
      if (!Number.isFinite(input)) return `${input < 0 ? '-' : ''}.inf (infinity)`;
      return `the number ${input}`;
    case 'boolean':
      return `${input}`;
    case 'object':
      return 'a mapping';
    default:
      return typeof input;
  }
}

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
  }
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return 'required';
    // zod's own wording ("Invalid input: expected number, received string") is replaced; ours is kept.
    const expected = issue.message.startsWith('Invalid input')
      ? `must be ${EXPECTED[issue.expected] ?? issue.expected}`
      : issue.message;
    return `${expected}, found ${describeFound(issue.input)}`;
  }
  if (issue.code === 'invalid_union' && issue.input !== undefined) {
    return `${issue.message}, found ${describeFound(issue.input)}`;
  }
  return issue.message;
}

/** A SpecError with duplicates dropped and at most `MAX_LISTED_PROBLEMS` listed. */
export function specError(file: string, problems: readonly string[], cause?: unknown): SpecError {
  const unique = [...new Set(problems)];
  const listed =
    unique.length > MAX_LISTED_PROBLEMS
      ? [
          ...unique.slice(0, MAX_LISTED_PROBLEMS),
          `(${unique.length - MAX_LISTED_PROBLEMS} more problems not listed)`,
        ]
      : unique;
  return new SpecError(file, listed, cause === undefined ? {} : { cause });
}

/**
 * Validate already-parsed data against `schema`. Throws `SpecError` listing
 * every problem as `path: reason`, whatever the data did to the validator.
 */
export function validateWith<S extends z.ZodType>(
  schema: S,
  data: unknown,
  file: string,
  mapPath: (path: readonly PropertyKey[]) => readonly PropertyKey[] = (p) => p,
): z.output<S> {
  let parsed: ReturnType<S['safeParse']>;
  try {
    parsed = schema.safeParse(data, { reportInput: true }) as ReturnType<S['safeParse']>;
  } catch (err) {
    if (err instanceof SpecError) throw err;
    throw specError(file, [`(root): cannot validate: ${(err as Error).message}`], err);
  }
  if (!parsed.success) {
    throw specError(
      file,
      parsed.error.issues.map((i) => `${formatPath(mapPath(i.path))}: ${issueMessage(i)}`),
    );
  }
  return parsed.data as z.output<S>;
}

/**
 * Parse spec YAML (or JSON) text into plain data: refused above
 * `MAX_SPEC_BYTES` before parsing, core schema only (unknown tags refused),
 * aliases bounded. Errors name the file, then the line and column.
 */
export function parseSpecDocument(text: string, file: string): Record<string, unknown> {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_SPEC_BYTES) throw specError(file, [tooLarge(bytes)]);
  const read = parseYamlStrict(text);
  if (!read.ok) throw specError(file, read.problems);
  const data = read.data;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw specError(file, [`(root): must be a YAML mapping, found ${describeFound(data)}`]);
  }
  return data as Record<string, unknown>;
}

function tooLarge(bytes: number | null): string {
  const size = bytes === null ? 'more than 4 MiB' : `${formatBytes(bytes)} (${bytes} bytes)`;
  return `(root): the spec is ${size}, over the ${formatBytes(MAX_SPEC_BYTES)} cap (20,000 static workers fit in about 2 MiB); use a file source (workers: {source: file}) or a cloud source for more`;
}

/** Read a spec file's text; missing, unreadable or over `MAX_SPEC_BYTES` is a `SpecError`. */
export async function readSpecFile(file: string): Promise<string> {
  try {
    const read = await readTextFileBounded(file, MAX_SPEC_BYTES);
    if (read.kind === 'too-large') throw specError(file, [tooLarge(read.bytes)]);
    return read.text;
  } catch (err) {
    if (err instanceof SpecError) throw err;
    throw specError(
      file,
      [`cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`],
      err,
    );
  }
}
