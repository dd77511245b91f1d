import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/*
 * The one way tests read fixture files (test/fixtures/...): text, a fresh
 * JSON copy every call (tests mutate their copies), or a cloud's event.
 */

/** Absolute path of test/fixtures/<path>. */
export const fixturePath = (path: string): string =>
  join(import.meta.dirname, '..', 'fixtures', path);

/** A fixture file's text. */
export function fixtureText(path: string): string {
  return readFileSync(fixturePath(path), 'utf8');
}

/** A fresh parse of a JSON fixture. */
export function fixtureJson<T = Record<string, unknown>>(path: string): T {
  return JSON.parse(fixtureText(path)) as T;
}

/** A provider event from test/fixtures/events/<cloud>/<name>(.json). */
export function eventFixture(cloud: string, name: string): Record<string, unknown> {
  return fixtureJson(`events/${cloud}/${name.endsWith('.json') ? name : `${name}.json`}`);
}

/** Fixture file names in a folder, sorted, optionally by extension. */
export function fixtureNames(dir: string, ext?: string): readonly string[] {
  return readdirSync(fixturePath(dir))
    .filter((f) => ext === undefined || f.endsWith(ext))
    .sort();
}
