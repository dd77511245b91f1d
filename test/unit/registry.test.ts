import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { descriptors, PROVIDERS, sourceNames, transportNames } from '../../adapters/registry.js';
import { specJsonSchema, validateSpec } from '../../adapters/spec.js';
import { boundaryOverrides } from '../../scripts/lint-rules.js';

const ROOT = join(import.meta.dirname, '../..');

describe('the provider registry', () => {
  it('lists every adapter folder that has a provider, once', () => {
    const folders = readdirSync(join(ROOT, 'adapters'), { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join(ROOT, 'adapters', d.name, 'provider.ts')))
      .map((d) => d.name)
      .sort();
    expect(
      descriptors()
        .map((d) => d.name)
        .sort(),
    ).toEqual(folders);
    for (const name of folders) {
      expect(existsSync(join(ROOT, 'adapters', name, 'factory.ts')), name).toBe(true);
    }
  });

  it('names each worker source and transport once, each described', () => {
    const all = [...sourceNames(), ...transportNames()];
    expect(new Set(all).size).toBe(all.length);
    for (const d of descriptors()) {
      for (const name of [...Object.keys(d.sources ?? {}), ...Object.keys(d.transports ?? {})]) {
        expect(d.describe[name], `${d.name}: ${name}`).toMatch(/\w/);
      }
    }
  });

  it('loads a factory that builds what the descriptor declares', async () => {
    for (const p of PROVIDERS) {
      const f = await p.load();
      if (Object.keys(p.descriptor.sources ?? {}).length > 0)
        expect(f.createSource).toBeTypeOf('function');
      if (Object.keys(p.descriptor.transports ?? {}).length > 0) {
        expect(f.createTransport).toBeTypeOf('function');
      }
      if (Object.keys(p.descriptor.sections ?? {}).length > 0)
        expect(f.extend).toBeTypeOf('function');
    }
  });

  it('publishes every source and transport in the JSON Schema', () => {
    const text = JSON.stringify(specJsonSchema());
    for (const name of [...sourceNames(), ...transportNames()]) {
      expect(text, name).toContain(JSON.stringify(name));
    }
  });

  it('keeps biome.json import boundaries in step with it (npm run lint:rules)', () => {
    const biome = JSON.parse(readFileSync(join(ROOT, 'biome.json'), 'utf8')) as {
      overrides: unknown;
    };
    expect(biome.overrides).toEqual(JSON.parse(JSON.stringify(boundaryOverrides())));
  });

  it('pairs any source with any transport: static workers pushed through SSM', () => {
    const spec = validateSpec({
      name: 'mixed',
      workers: { source: 'static', workers: [{ id: 'w1', address: '10.0.0.1' }] },
      loadBalancers: { transport: 'ssm', region: 'eu-west-1', instanceIds: ['i-0abc12345678'] },
      services: [{ name: 'http', bind: ':80', nodePort: 30080 }],
    });
    // The transport decides where it deploys: the AWS function carries static workers too.
    expect(spec.cloud).toBe('aws');
  });

  it('refuses a source nobody offers, naming the ones that exist', () => {
    expect(() =>
      validateSpec({
        name: 'x',
        workers: { source: 'consul' },
        loadBalancers: {
          transport: 'local',
          lbs: [{ name: 'l', configPath: '/a', stateDir: '/b' }],
        },
        services: [{ name: 'http', bind: ':80', nodePort: 30080 }],
      }),
    ).toThrowError(new RegExp(`workers.source: source must be one of ${sourceNames().join(', ')}`));
  });
});
