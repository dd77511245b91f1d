import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSpec, parseSpec, specJsonSchema } from '../../adapters/spec.js';
import { SpecError } from '../../core/errors.js';

const dir = join(import.meta.dirname, '../fixtures/specs');
const invalid = readdirSync(join(dir, 'invalid')).filter((f) => f.endsWith('.yaml'));

describe('parseSpec', () => {
  it('accepts a full valid spec and applies defaults', async () => {
    // Prepare / Act
    const spec = await loadSpec(join(dir, 'valid/local-full.yaml'));
    // Assess
    expect(spec.name).toBe('demo-full');
    expect(spec.services.map((s) => s.mode)).toEqual(['tcp', 'tcp', 'http']);
    expect(spec.healthCheck).toMatchObject({ enabled: true, port: 10256, path: '/healthz' });
    expect(spec.lbApply).toEqual({
      configPath: '/etc/haproxy/haproxy.cfg',
      stateDir: '/var/lib/lbsync',
      reload: 'auto',
      masterSocket: '/run/haproxy-master.sock',
    });
    expect(spec.runtimeSocket).toBe('/run/haproxy/admin.sock');
  });

  it('has at least 15 malformed spec fixtures', () => {
    expect(invalid.length).toBeGreaterThanOrEqual(15);
  });

  it.each(invalid)('rejects %s naming the file, the field path and the reason', (file) => {
    // Prepare
    const text = readFileSync(join(dir, 'invalid', file), 'utf8');
    const expected = /^# expect: (.*)$/m.exec(text)?.[1];
    expect(expected, `${file} must start with "# expect: <message>"`).toBeDefined();
    // Act
    let err: unknown;
    try {
      parseSpec(text, `specs/${file}`);
    } catch (e) {
      err = e;
    }
    // Assess
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).retryable).toBe(false);
    expect((err as SpecError).message).toContain(`specs/${file}: ${expected}`);
  });

  it('reports every problem at once, one line each', () => {
    const text = readFileSync(join(dir, 'valid/local-full.yaml'), 'utf8')
      .replace('nodePort: 32080', 'nodePort: 80')
      .replace('profile: web', 'profile: nope');
    expect(() => parseSpec(text, 'x.yaml')).toThrowError(
      /x\.yaml: profile: must be one of web, api, iot\nx\.yaml: services\[0\]\.nodePort: must be 30000-32767|x\.yaml: services\[0\]\.nodePort: must be 30000-32767\nx\.yaml: profile: must be one of web, api, iot/,
    );
  });

  it('names a missing file clearly', async () => {
    await expect(loadSpec('/nonexistent/lbsync.config.yaml')).rejects.toThrowError(
      '/nonexistent/lbsync.config.yaml: cannot read: ENOENT',
    );
  });
});

describe('specJsonSchema', () => {
  it('publishes the schema as JSON Schema with the fields and enums editors complete', () => {
    const schema = specJsonSchema() as {
      properties: Record<string, { enum?: string[] }>;
      required: string[];
    };
    // The source/transport form: `cloud` is derived from the providers, and
    // `services` may come from a kubernetes section instead of the file.
    expect(schema.required).toEqual(expect.arrayContaining(['name', 'workers', 'loadBalancers']));
    expect(schema.properties.cloud?.enum).toEqual(['aws', 'azure', 'gcp', 'local']);
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining([
        'workers',
        'loadBalancers',
        'profile',
        'guards',
        'drain',
        'healthCheck',
      ]),
    );
  });

  it('is checked in as schema/lbsync.config.schema.json and up to date', () => {
    const onDisk = JSON.parse(
      readFileSync(join(import.meta.dirname, '../../schema/lbsync.config.schema.json'), 'utf8'),
    ) as unknown;
    expect(onDisk).toEqual(specJsonSchema());
  });
});
