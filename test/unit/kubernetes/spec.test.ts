import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { kubernetesSpecSchema } from '../../../adapters/kubernetes/spec.js';
import { formatPath } from '../../../core/spec.js';
import { K8S_FIXTURES } from '../../helpers/kubernetes-fixtures.js';

const dir = join(K8S_FIXTURES, 'spec');
const files = (sub: string) => readdirSync(join(dir, sub)).filter((f) => f.endsWith('.yaml'));
const read = (sub: string, file: string) => readFileSync(join(dir, sub, file), 'utf8');

/** The problems as the spec loader prints them: `path: reason`. */
function problems(text: string): string[] {
  const r = kubernetesSpecSchema.safeParse(parse(text));
  if (r.success) return [];
  return r.error.issues.map((i) =>
    i.code === 'unrecognized_keys'
      ? `${formatPath(i.path)}: unknown field ${i.keys.join(', ')}`
      : `${formatPath(i.path)}: ${i.message}`,
  );
}

describe('kubernetesSpecSchema', () => {
  it.each(files('valid'))('accepts %s', (file) => {
    expect(problems(read('valid', file))).toEqual([]);
  });

  it('applies the defaults', () => {
    expect(kubernetesSpecSchema.parse({ kubeconfig: '/k' })).toEqual({
      kubeconfig: '/k',
      loadBalancerClass: 'lbsync.io/haproxy',
      discoverServices: true,
      nodeEligibility: true,
      ignoreExcludeLabel: false,
    });
  });

  it.each(files('invalid'))('rejects %s naming the field and the reason', (file) => {
    const text = read('invalid', file);
    const expected = /^# expect: (.*)$/m.exec(text)?.[1];
    expect(expected, `${file} must start with "# expect: <message>"`).toBeDefined();
    expect(problems(text)).toContain(expected);
  });

  it('exports to JSON Schema with every field, as the spec schema does', () => {
    const schema = z.toJSONSchema(kubernetesSpecSchema, { io: 'input', unrepresentable: 'any' });
    expect(Object.keys((schema as { properties: object }).properties).sort()).toEqual([
      'bindAddress',
      'caData',
      'caFile',
      'cluster',
      'context',
      'discoverServices',
      'endpoint',
      'ignoreExcludeLabel',
      'ingress',
      'kubeconfig',
      'loadBalancerClass',
      'nodeEligibility',
      'tokenFile',
    ]);
  });
});
