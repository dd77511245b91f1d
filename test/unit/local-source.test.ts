import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  FileSource,
  MAX_WORKERS_FILE_BYTES,
  workersFromArgument,
} from '../../adapters/local/source.js';
import { InputError, SourceError } from '../../core/errors.js';
import { canonicalWorkers } from '../../core/render.js';

const dir = mkdtempSync(join(tmpdir(), 'lbsync-workers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(text: string): string {
  const path = join(dir, `w${n++}.yaml`);
  writeFileSync(path, text);
  return path;
}

async function failure(path: string): Promise<SourceError> {
  const err = await new FileSource(path).resolve().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(SourceError);
  expect((err as SourceError).retryable).toBe(false);
  return err as SourceError;
}

describe('the workers file as untrusted input', () => {
  it('reads 20,000 workers, far under the size cap', async () => {
    const lines = Array.from(
      { length: 20_000 },
      (_, i) =>
        `- { id: i-${i.toString(16).padStart(17, '0')}, address: 10.1.${i >> 8}.${i & 255} }`,
    );
    const text = `${lines.join('\n')}\n`;
    expect(Buffer.byteLength(text)).toBeLessThan(MAX_WORKERS_FILE_BYTES / 2);
    expect(await new FileSource(file(text)).resolve()).toHaveLength(20_000);
  }, 60_000);

  it('refuses a file over the cap by its size, without reading it', async () => {
    const path = file('');
    truncateSync(path, 50 * 1024 * 1024);
    expect((await failure(path)).message).toBe(
      `${path}: the workers file is 50 MiB (52428800 bytes), over the 4 MiB cap`,
    );
  });

  it('stops reading an endless stream at the cap', async () => {
    expect((await failure('/dev/zero')).message).toContain('more than 4 MiB');
  });

  it.each([
    ['an unknown YAML 1.1 tag', '- !!omap [{ id: a }]\n', /line 1, column 3: unknown tag !!omap/],
    ['a language tag', '- !!js/function "f"\n', /unknown tag !!js\/function/],
    ['a custom tag', '- !foo 10.0.0.1\n', /unknown tag !foo/],
    ['an unresolved alias', '- *nope\n', /alias \*nope has no anchor/],
    [
      'an alias bomb',
      'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nworkers: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n',
      /alias bomb/,
    ],
    [
      'a state typo',
      '- { id: a, address: 10.0.0.1, state: drainig }\n',
      /state must be serving or draining, found "drainig"/,
    ],
    ['an unknown field', '- { id: a, address: 10.0.0.1, weight: 5 }\n', /unknown field "weight"/],
    ['not a list', 'workers: 10.0.0.1\n', /expected a list of workers/],
  ])('refuses %s with a SourceError naming the file', async (_what, text, why) => {
    const path = file(text);
    const err = await failure(path);
    expect(err.message).toMatch(why);
    expect(err.message.startsWith(path)).toBe(true);
  });

  it('hands every address to the core, which refuses unusable ones before rendering', async () => {
    for (const text of ['- 0.0.0.0\n', '- "::"\n', '- { id: md, address: 169.254.169.254 }\n']) {
      const workers = await new FileSource(file(text)).resolve();
      expect(() => canonicalWorkers(workers)).toThrowError(InputError);
    }
  });

  it('hands --workers addresses to the core, which refuses unusable ones', async () => {
    for (const arg of ['0.0.0.0', '::', '10.0.0.1,0.0.0.0', 'md=169.254.169.254', 'x=010.0.0.1']) {
      const workers = await workersFromArgument(arg);
      expect(() => canonicalWorkers(workers), arg).toThrowError(InputError);
    }
    expect(canonicalWorkers(await workersFromArgument('127.0.0.1,::1'))).toHaveLength(2);
  });

  it('fails only with a SourceError, whatever the file holds', async () => {
    const path = join(dir, 'fuzz.yaml');
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc
            .array(
              fc.constantFrom(
                '- ',
                '&a ',
                '*a ',
                '!!set ',
                '{',
                '}',
                '[',
                ']',
                ': ',
                '\n',
                'id',
                'address',
                '0.0.0.0',
              ),
            )
            .map((a) => a.join('')),
        ),
        async (text) => {
          writeFileSync(path, text);
          try {
            await new FileSource(path).resolve();
          } catch (e) {
            expect(e).toBeInstanceOf(SourceError);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
