import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  defaultFunctionSubject,
  functionRbac,
  functionRbacYaml,
  functionRules,
} from '../../../adapters/kubernetes/rbac.js';
import { loadSpec, type Spec } from '../../../adapters/spec.js';
import { buildProgram, main } from '../../../cli/main.js';
import { SpecError } from '../../../core/errors.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures/kubernetes/rbac');
const TEMPLATES = join(import.meta.dirname, '../../../templates/kubernetes');
const fixture = (name: string): Promise<Spec> => loadSpec(join(FIXTURES, `${name}.yaml`));
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, read field by field.
type Doc = Record<string, any>;
const docs = (text: string): Doc[] => parseAllDocuments(text).map((d) => d.toJSON() as Doc);

/** Every rule of every ClusterRole in `objects` uses no wildcard. */
function expectNoWildcards(objects: readonly Doc[]): void {
  for (const role of objects.filter((o) => o.kind === 'ClusterRole')) {
    for (const r of role.rules) {
      for (const list of [r.apiGroups, r.resources, r.verbs]) {
        expect(list.some((x: string) => x.includes('*'))).toBe(false);
      }
    }
  }
}

describe("the function's RBAC, from the spec", () => {
  it('grants get/list on nodes and services, patch on services and services/status, create on events, nothing else', async () => {
    expect(functionRules(await fixture('eks'))).toEqual([
      { apiGroups: [''], resources: ['nodes', 'services'], verbs: ['get', 'list'] },
      { apiGroups: [''], resources: ['services', 'services/status'], verbs: ['patch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
    ]);
  });

  it('drops nodes when no node rule is read, and the Service writes when Services are not discovered', async () => {
    expect(functionRules(await fixture('gke'))).toEqual([
      { apiGroups: [''], resources: ['services'], verbs: ['get', 'list'] },
      { apiGroups: [''], resources: ['services', 'services/status'], verbs: ['patch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
    ]);
    expect(functionRules(await fixture('aks'))).toEqual([
      { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list'] },
    ]);
  });

  it('binds the ClusterRole to the subject the stacks map the identity to', async () => {
    expect(defaultFunctionSubject(await fixture('eks'))).toEqual({
      kind: 'Group',
      name: 'lbsync:edge',
    });
    expect(defaultFunctionSubject(await fixture('gke'))).toEqual({
      kind: 'User',
      name: 'lbsync-fn-edge@lbsync-demo.iam.gserviceaccount.com',
    });
    // An AKS managed identity is named by an object id only the deploy knows.
    expect(defaultFunctionSubject(await fixture('aks'))).toBeUndefined();
    const [role, binding] = functionRbac(await fixture('eks'), {
      kind: 'Group',
      name: 'lbsync:edge',
    });
    expect(binding).toMatchObject({
      kind: 'ClusterRoleBinding',
      roleRef: { kind: 'ClusterRole', name: (role.metadata as Doc).name },
      subjects: [{ kind: 'Group', name: 'lbsync:edge', apiGroup: 'rbac.authorization.k8s.io' }],
    });
  });

  it('prints YAML that reads back as the same two objects, without wildcards', async () => {
    const spec = await fixture('eks');
    const subject = { kind: 'Group', name: 'lbsync:edge' } as const;
    const parsed = docs(functionRbacYaml(spec, subject));
    expect(parsed).toEqual(functionRbac(spec, subject));
    expectNoWildcards(parsed);
  });

  it('refuses a system: subject and a spec without a kubernetes section', async () => {
    const spec = await fixture('eks');
    expect(() => functionRbac(spec, { kind: 'Group', name: 'system:masters' })).toThrow(SpecError);
    const { kubernetes: _k, ...bare } = spec as Spec & { kubernetes?: unknown };
    expect(() => functionRules(bare as Spec)).toThrow(/no kubernetes section/);
  });

  it('lbsync rbac prints it, and asks for the object id on AKS', async () => {
    let printed = '';
    await buildProgram((s) => {
      printed += s;
    }).parseAsync(['node', 'lbsync', 'rbac', join(FIXTURES, 'gke.yaml')]);
    expect(docs(printed)[1]?.subjects[0].name).toBe(
      'lbsync-fn-edge@lbsync-demo.iam.gserviceaccount.com',
    );
    let err = '';
    const code = await main(['node', 'lbsync', 'rbac', join(FIXTURES, 'aks.yaml')], (s) => {
      err += s;
    });
    expect(code).toBe(1);
    expect(err).toMatch(/--user <object id/);
  });
});

describe('templates/kubernetes: the watcher', () => {
  const all = readdirSync(TEMPLATES)
    .filter((f) => f !== 'kustomization.yaml')
    .flatMap((f) => docs(readFileSync(join(TEMPLATES, f), 'utf8')));
  const one = (kind: string): Doc => {
    const found = all.filter((d) => d.kind === kind);
    expect(found).toHaveLength(1);
    return found[0] as Doc;
  };

  it('lists every manifest in the kustomization', () => {
    const k = docs(readFileSync(join(TEMPLATES, 'kustomization.yaml'), 'utf8'))[0] as Doc;
    expect([...k.resources].sort()).toEqual(
      readdirSync(TEMPLATES)
        .filter((f) => f !== 'kustomization.yaml')
        .sort(),
    );
  });

  it('may get, list and watch nodes and services, and nothing else', () => {
    expect(one('ClusterRole').rules).toEqual([
      { apiGroups: [''], resources: ['nodes', 'services'], verbs: ['get', 'list', 'watch'] },
    ]);
    expectNoWildcards(all);
    const sa = one('ServiceAccount');
    expect(one('ClusterRoleBinding')).toMatchObject({
      roleRef: { kind: 'ClusterRole', name: one('ClusterRole').metadata.name },
      subjects: [
        { kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace },
      ],
    });
  });

  it('runs one replica of lbsync watch as that ServiceAccount, configured by the ConfigMap', () => {
    const d = one('Deployment');
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy.type).toBe('Recreate');
    const pod = d.spec.template.spec;
    expect(pod.serviceAccountName).toBe(one('ServiceAccount').metadata.name);
    expect(pod.containers[0].args).toEqual(['watch']);
    expect(pod.containers[0].envFrom[0].configMapRef.name).toBe(one('ConfigMap').metadata.name);
    expect(pod.containers[0].env[0].valueFrom.secretKeyRef.name).toBe(one('Secret').metadata.name);
  });

  it('probes /healthz and /readyz on the named port lbsync watch serves them on', () => {
    const c = one('Deployment').spec.template.spec.containers[0];
    const port = c.ports.find((p: Doc) => p.name === 'health');
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
    const watch = buildProgram().commands.find((cmd) => cmd.name() === 'watch');
    const addr = watch?.options.find((o) => o.long === '--health-addr');
    expect(addr?.defaultValue).toBe(`:${port.containerPort}`);
    expect(one('ConfigMap').data.LBSYNC_WATCH_HEALTH_ADDR).toBe(`:${port.containerPort}`);
  });

  it('sets only variables that lbsync watch reads', () => {
    const watch = buildProgram().commands.find((c) => c.name() === 'watch');
    const known = new Set(watch?.options.map((o) => o.envVar).filter((v) => v !== undefined));
    const set = [...Object.keys(one('ConfigMap').data), ...Object.keys(one('Secret').stringData)];
    expect(set.filter((v) => !known.has(v))).toEqual([]);
  });
});
