import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSpec, loadSpecFromEnv, parseSpec, specJsonSchema } from '../../adapters/spec.js';
import { isRetryable, SpecError } from '../../core/errors.js';
import { MAX_LISTED_PROBLEMS, MAX_SPEC_BYTES } from '../../core/spec.js';

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

  it.each([
    [
      'azure-run-command',
      'azure-vmss',
      'subscriptionId: 00000000-0000-4000-8000-000000000001, scaleSets: [{ resourceGroup: rg, name: vmss }]',
      'subscriptionId: 00000000-0000-4000-8000-000000000002',
      'vms: [{ resourceGroup: rg, name: lb1 }]',
    ],
    [
      'gcp-metadata',
      'gcp-mig',
      'project: lbsync-workers, groups: [{ name: web, zone: europe-west1-b }]',
      'project: lbsync-edge',
      'instances: [{ name: lb-1, zone: europe-west1-b }]',
    ],
  ])(
    'takes the %s transport default from %s, and needs it in loadBalancers otherwise',
    (transport, group, groupFields, own, lbFields) => {
      const text = (workers: string, lb: string): string => `
name: edge
workers: { ${workers} }
loadBalancers: { transport: ${transport}, ${lb} }
services: [{ name: http, bind: ":80", nodePort: 30080 }]
`;
      const field = own.split(':')[0];
      const stat = 'source: static, workers: [{ id: w1, address: 10.0.0.1 }]';
      expect(
        parseSpec(text(`source: ${group}, ${groupFields}`, lbFields)).loadBalancers,
      ).not.toHaveProperty(field ?? '');
      expect(parseSpec(text(stat, `${own}, ${lbFields}`)).loadBalancers).toHaveProperty(
        field ?? '',
      );
      expect(() => parseSpec(text(stat, lbFields), 'x.yaml')).toThrowError(
        `x.yaml: loadBalancers.${field}: required when workers.source is not ${group}`,
      );
    },
  );

  it('names a missing file clearly', async () => {
    await expect(loadSpec('/nonexistent/lbsync.config.yaml')).rejects.toThrowError(
      '/nonexistent/lbsync.config.yaml: cannot read: ENOENT',
    );
  });
});

/** The spec lbsync must still read: the schema's maximum of 20,000 static workers. */
function largestLegitimateSpec(): string {
  const lines = ['name: big', 'cloud: local', 'workers:', '  local:', '    static:'];
  for (let i = 0; i < 20_000; i++) {
    lines.push(
      `      - id: i-${i.toString(16).padStart(17, '0')}`,
      `        address: 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      '        state: serving',
    );
  }
  lines.push(
    'loadBalancers:',
    '  local: [{ name: lb, configPath: /etc/haproxy/haproxy.cfg, stateDir: /var/lib/lbsync }]',
    'services: [{ name: http, bind: ":80", nodePort: 30080 }]',
    '',
  );
  return lines.join('\n');
}

describe('the spec as untrusted input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lbsync-spec-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the largest legitimate spec (20,000 static workers) under the size cap', () => {
    const text = largestLegitimateSpec();
    expect(Buffer.byteLength(text)).toBeLessThan(MAX_SPEC_BYTES / 2);
    expect(parseSpec(text, 'big.yaml').workers.workers).toHaveLength(20_000);
  }, 60_000);

  it('refuses a spec over the size cap before parsing it', () => {
    // Prepare: a million list entries, which would take minutes and gigabytes to parse.
    const text = `name: x\nservices:\n${'  - 0\n'.repeat(MAX_SPEC_BYTES / 6 + 1)}`;
    // Act / Assess
    expect(() => parseSpec(text, 'huge.yaml')).toThrowError(
      /^huge\.yaml: \(root\): the spec is 4\.0 MiB \(\d+ bytes\), over the 4 MiB cap/,
    );
  });

  it('refuses a spec file over the cap by its size, without reading it', async () => {
    const file = join(dir, 'sparse.yaml');
    writeFileSync(file, '');
    truncateSync(file, 50 * 1024 * 1024);
    await expect(loadSpec(file)).rejects.toThrowError(
      `${file}: (root): the spec is 50 MiB (52428800 bytes), over the 4 MiB cap`,
    );
  });

  it('stops reading an endless stream at the cap', async () => {
    const err = await loadSpec('/dev/zero').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).message).toContain('/dev/zero: (root): the spec is more than 4 MiB');
  });

  it('turns an unresolved alias into a non-retryable SpecError, also from the environment', async () => {
    // A bare ReferenceError here made the AWS function rethrow, and Lambda retry, forever.
    const env = { LBSYNC_SPEC: 'name: x\nprofile: *preset\n' };
    const err = await loadSpecFromEnv(env).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpecError);
    expect(isRetryable(err)).toBe(false);
    expect((err as SpecError).message).toBe(
      'LBSYNC_SPEC: line 2, column 10: alias *preset has no anchor &preset before it',
    );
  });

  it('lists at most a bounded number of problems and counts the rest', () => {
    const services = Array.from({ length: 80 }, (_, i) => `  - { name: s${i}, nodePort: 1 }`);
    const err = (() => {
      try {
        parseSpec(`name: x\nservices:\n${services.join('\n')}\n`, 'many.yaml');
      } catch (e) {
        return e as SpecError;
      }
      throw new Error('accepted');
    })();
    expect(err.problems).toHaveLength(MAX_LISTED_PROBLEMS + 1);
    expect(err.problems.at(-1)).toMatch(/^\(\d+ more problems not listed\)$/);
  });

  it('fails only with a SpecError naming the file, whatever the text', () => {
    const fragment = fc.constantFrom(
      'name: x\n',
      'services: ',
      '- ',
      '&a ',
      '*a ',
      '*b ',
      '!!omap ',
      '!!set ',
      '!!js/function ',
      '!!binary ',
      '!foo ',
      '!!str ',
      '<<: ',
      '{',
      '}',
      '[',
      ']',
      ': ',
      '---\n',
      '%YAML 1.1\n',
      '.nan',
      '0x1F',
      '"30080"',
      '  ',
      '\n',
      '\t',
      '#',
      '? ',
    );
    const text = fc.oneof(
      fc.string(),
      fc
        .array(fc.oneof(fragment, fc.string({ maxLength: 4 })), { maxLength: 40 })
        .map((a) => a.join('')),
    );
    fc.assert(
      fc.property(text, (t) => {
        try {
          parseSpec(t, 'fuzz.yaml');
        } catch (e) {
          expect(e).toBeInstanceOf(SpecError);
          expect((e as SpecError).retryable).toBe(false);
          expect((e as SpecError).message.startsWith('fuzz.yaml: ')).toBe(true);
        }
      }),
      { numRuns: 500 },
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
