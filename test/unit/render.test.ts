import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileSource } from '../../adapters/local/source.js';
import { loadSpec, type Spec, validateSpec } from '../../adapters/spec.js';
import { InputError, RenderError } from '../../core/errors.js';
import type { Worker } from '../../core/model.js';
import { PROFILES } from '../../core/profiles.js';
import { compileTemplate, loadTemplate, renderConfig } from '../../core/render.js';
import { haproxyCheck } from '../helpers/haproxy-check.js';

const fixtures = join(import.meta.dirname, '../fixtures');
const golden = join(import.meta.dirname, '../golden');
const spec = await loadSpec(join(fixtures, 'specs/valid/local-full.yaml'));
const workers = await new FileSource(join(fixtures, 'workers/mixed.yaml')).resolve();
const template = await loadTemplate(spec);

function withProfile(profile: Spec['profile']): Spec {
  return { ...spec, profile };
}

describe('renderConfig', () => {
  it.each(['web', 'api', 'iot'] as const)(
    'renders the %s profile exactly as its golden file',
    (profile) => {
      // Prepare
      const file = join(golden, `${profile}.cfg`);
      // Act
      const out = renderConfig(withProfile(profile), workers, template);
      // Assess: UPDATE_GOLDEN=1 rewrites the files after a deliberate change.
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, out.text);
      expect(out.text).toBe(readFileSync(file, 'utf8'));
      expect(haproxyCheck(out.text)).toMatchObject({ ok: true });
    },
  );

  it('gives byte-identical output and sha256 for the same input in any order', () => {
    const a = renderConfig(spec, workers, template);
    const b = renderConfig(spec, [...workers].reverse(), template);
    expect(b.text).toBe(a.text);
    expect(b.sha256).toBe(a.sha256);
  });

  it('names servers by instance id, sorted, and counts servers across services', () => {
    const out = renderConfig(spec, workers, template);
    expect(out.workerIds).toEqual([
      'i-0aaa1111111111111',
      'i-0bbb2222222222222',
      'i-0ccc3333333333333',
      'i-0ddd4444444444444',
    ]);
    expect(out.servers).toBe(4 * spec.services.length);
    expect(out.text).toContain('server i-0aaa1111111111111 10.0.1.10:32080\n');
    expect(out.text).toContain('server i-0ddd4444444444444 [fd00:10::4]:32080\n');
  });

  it('keeps draining workers with weight 0 so in-flight sessions finish', () => {
    const out = renderConfig(spec, workers, template);
    expect(out.text).toContain('server i-0bbb2222222222222 10.0.1.20:32080 weight 0\n');
  });

  it('checks workers against kube-proxy /healthz on port 10256 by default, configurable', () => {
    expect(renderConfig(spec, workers, template).text).toContain(
      'default-server check port 10256 inter 2s rise 2 fall 2 send-proxy-v2',
    );
    const custom = renderConfig(
      { ...spec, healthCheck: { ...spec.healthCheck, port: 8080, path: '/ready' } },
      workers,
      template,
    ).text;
    expect(custom).toContain('http-check send meth GET uri /ready');
    expect(custom).toContain('check port 8080');
    const off = renderConfig(
      { ...spec, healthCheck: { ...spec.healthCheck, enabled: false } },
      workers,
      template,
    ).text;
    expect(off).not.toContain('option httpchk');
    expect(off).not.toContain(' check ');
    expect(haproxyCheck(off)).toMatchObject({ ok: true });
  });

  it('sends PROXY protocol v1 or v2 only on the services that ask for it', () => {
    const text = renderConfig(spec, workers, template).text;
    const backend = (name: string): string =>
      text.split(`\nbackend be_${name}\n`)[1]?.split('\n\n')[0] ?? '';
    expect(backend('http')).toContain('send-proxy-v2');
    expect(backend('https')).toMatch(/send-proxy(?!-v2)/);
    expect(backend('web')).not.toContain('send-proxy');
  });

  it('renders the Prometheus exporter only when stats ask for it', () => {
    expect(renderConfig(spec, workers, template).text).toContain('prometheus-exporter');
    const { stats: _omit, ...noStats } = spec;
    expect(renderConfig(noStats as Spec, workers, template).text).not.toContain('lbsync_stats');
  });

  it('applies per-field tuning overrides on top of the profile', () => {
    const tuned = validateSpec({
      ...rawOf(spec),
      profile: 'api',
      tuning: { maxconn: 1234, balance: 'source', timeouts: { client: '90s' }, serverMaxconn: 77 },
    });
    const text = renderConfig(tuned, workers, template).text;
    expect(text).toContain('maxconn 1234\n');
    expect(text).toContain('balance source');
    expect(text).toContain('timeout client 90s');
    expect(text).toContain(`timeout server ${PROFILES.api.timeouts.server}`);
    expect(text).toContain('maxconn 77');
    expect(haproxyCheck(text)).toMatchObject({ ok: true });
  });

  it('renders retries with redispatch to another worker, per profile and overridable', () => {
    for (const profile of ['web', 'api', 'iot'] as const) {
      const text = renderConfig(withProfile(profile), workers, template).text;
      expect(text).toContain(`    retries ${PROFILES[profile].retries}\n    option redispatch 1\n`);
    }
    const tuned = validateSpec({ ...rawOf(spec), tuning: { retries: 0 } });
    expect(renderConfig(tuned, workers, template).text).toContain('    retries 0\n');
  });

  it('renders balance source with hash-type consistent and ids that stay with their worker', () => {
    // Prepare: the same workers plus one, in another order.
    const source = validateSpec({ ...rawOf(spec), tuning: { balance: 'source' } });
    const more: Worker[] = [
      ...workers,
      { id: 'i-0eee5555555555555', address: '10.0.3.5', state: 'serving' as const },
    ].reverse();
    // Act
    const a = renderConfig(source, workers, template).text;
    const b = renderConfig(source, more, template).text;
    // Assess: the ring is built from ids, so a worker's id must not depend on its neighbours.
    const ids = (text: string): Map<string, string> =>
      new Map(
        [...text.matchAll(/^ {4}server (\S+) \S+ id (\d+)/gm)].map((m) => [`${m[1]}`, `${m[2]}`]),
      );
    expect(a).toContain('    balance source\n');
    expect(a).toMatch(/hash-type consistent\n/);
    expect(ids(a).size).toBe(workers.length);
    for (const [w, id] of ids(a)) expect(ids(b).get(w)).toBe(id);
    expect(new Set(ids(b).values()).size).toBe(workers.length + 1);
    expect(haproxyCheck(b)).toMatchObject({ ok: true });
    expect(renderConfig(spec, workers, template).text).not.toMatch(/hash-type| id \d/);
  });

  it('renders a user-supplied template given by path relative to the spec', async () => {
    const custom = validateSpec({ ...rawOf(spec), template: '../../templates/minimal.hbs' });
    const t = await loadTemplate(custom, join(fixtures, 'specs/valid/local-full.yaml'));
    const text = renderConfig(custom, workers, t).text;
    expect(text.startsWith('# custom template for demo-full\n')).toBe(true);
    expect(text).toContain('listen http');
    expect(haproxyCheck(text)).toMatchObject({ ok: true });
  });

  it('refuses a template that does not compile or names a missing field', async () => {
    expect(() => compileTemplate('{{#each services}}')).toThrowError(RenderError);
    const t = compileTemplate('global\n    maxconn {{nosuchfield}}\n');
    expect(() => renderConfig(spec, workers, t)).toThrowError(
      /template failed to render.*nosuchfield/,
    );
    await expect(
      loadTemplate(validateSpec({ ...rawOf(spec), template: '/nonexistent.hbs' })),
    ).rejects.toThrowError(/cannot read template \/nonexistent\.hbs: ENOENT/);
  });
});

describe('renderConfig with hostile input', () => {
  const hostile: readonly [string, Partial<Worker>][] = [
    ['a newline in an id', { id: 'i-1\n    server evil 6.6.6.6:80' }],
    ['a space in an id', { id: 'i-1 backup' }],
    ['a quote in an id', { id: 'i-1"' }],
    ['a semicolon in an id', { id: 'i-1;reboot' }],
    ['command substitution in an id', { id: 'i-$(reboot)' }],
    ['a backtick in an id', { id: 'i-`id`' }],
    ['a hash in an id', { id: 'i-1#x' }],
    ['non-ASCII in an id', { id: 'i-ü1' }],
    ['a hostname as address', { address: 'evil.example.com' }],
    ['a newline in an address', { address: '10.0.0.1\nbogus' }],
    ['an address with a port', { address: '10.0.0.1:80' }],
    ['an IPv6 zone id', { address: 'fe80::1%eth0' }],
    ['an empty id', { id: '' }],
  ];

  it.each(hostile)('rejects %s before rendering', (_name, patch) => {
    const bad: Worker = { id: 'i-good', address: '10.0.0.9', state: 'serving', ...patch };
    let err: unknown;
    try {
      renderConfig(spec, [...workers, bad], template);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toContain(JSON.stringify(patch.id ?? patch.address));
  });

  it('rejects one id with two different addresses', () => {
    expect(() =>
      renderConfig(
        spec,
        [
          { id: 'i-1', address: '10.0.0.1', state: 'serving' },
          { id: 'i-1', address: '10.0.0.2', state: 'serving' },
        ],
        template,
      ),
    ).toThrowError(/worker i-1 appears twice with different addresses/);
  });
});

function rawOf(s: Spec): Record<string, unknown> {
  return JSON.parse(JSON.stringify(s)) as Record<string, unknown>;
}
