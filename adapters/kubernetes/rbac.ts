import { stringify } from 'yaml';
import { SpecError } from '../../core/errors.js';
import type { KubernetesSpec } from './spec.js';

/*
 * The Kubernetes RBAC the function needs, generated from the spec: a
 * ClusterRole with exactly the verbs its cluster client uses (client.ts) and
 * a ClusterRoleBinding to the function's Kubernetes identity. Nothing else:
 *
 *   get, list   nodes       only when nodes are read (workers.source kubernetes,
 *                           or kubernetes.nodeEligibility)
 *   get, list   services    }
 *   patch       services    } only when kubernetes.discoverServices: lbsync's
 *   patch  services/status  } finalizer, the external IP, and Events on them
 *   create      events      }
 *
 * `patch services`, not `update`: lbsync edits its finalizer with a JSON
 * merge patch that carries only `metadata.finalizers` and the
 * resourceVersion it read (finalizers.ts), so a concurrent writer still gets
 * a 409 and nothing else is touched. An update (PUT) would send the whole
 * object back as @kubernetes/client-node's typed models hold it, and fields
 * those models do not know (newer API fields, alpha fields) would be
 * dropped from the Service. ClusterRole scope because Services live in every
 * namespace; the Events are created in the Service's own namespace.
 */

/** One RBAC PolicyRule, as a ClusterRole lists it. */
export interface RbacRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
}

/** Whom the ClusterRoleBinding names: the function's Kubernetes user or group. */
export interface RbacSubject {
  readonly kind: 'User' | 'Group';
  readonly name: string;
}

/** What `functionRbac` reads of a spec. */
export interface RbacSpecInput {
  readonly name: string;
  readonly cloud: string;
  readonly workers: { readonly source: string; readonly project?: unknown };
  readonly kubernetes?: KubernetesSpec;
}

const LABELS = (spec: RbacSpecInput): Record<string, string> => ({
  'app.kubernetes.io/name': 'lbsync',
  'app.kubernetes.io/component': 'function',
  'lbsync.io/deployment': spec.name,
});

function sectionOf(spec: RbacSpecInput): KubernetesSpec {
  if (spec.kubernetes === undefined) {
    throw new SpecError('spec', ['kubernetes: the spec has no kubernetes section; no RBAC needed']);
  }
  return spec.kubernetes;
}

/** The rules the function's identity needs for this spec. */
export function functionRules(spec: RbacSpecInput): readonly RbacRule[] {
  const k = sectionOf(spec);
  const nodes = spec.workers.source === 'kubernetes' || k.nodeEligibility;
  const services = k.discoverServices;
  const read = [...(nodes ? ['nodes'] : []), ...(services ? ['services'] : [])];
  if (read.length === 0) {
    throw new SpecError('spec', [
      'kubernetes: discoverServices and nodeEligibility are both off, so the function reads nothing from the cluster',
    ]);
  }
  const rules: RbacRule[] = [{ apiGroups: [''], resources: read, verbs: ['get', 'list'] }];
  if (services) {
    rules.push(
      { apiGroups: [''], resources: ['services', 'services/status'], verbs: ['patch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
    );
  }
  return rules;
}

/** The Kubernetes group the EKS access entry puts the function's role in. */
export function eksFunctionGroup(spec: Pick<RbacSpecInput, 'name'>): string {
  return `lbsync:${spec.name}`;
}

/** The function's Google service account, as stacks/gcp.ts names it in `project`. */
export function gcpFunctionServiceAccount(
  spec: Pick<RbacSpecInput, 'name'>,
  project: string,
): string {
  return `${`lbsync-fn-${spec.name}`.slice(0, 30).replace(/-$/, '')}@${project}.iam.gserviceaccount.com`;
}

/**
 * The subject the stacks bind, when it can be told from the spec alone: EKS
 * maps the function's IAM role to a group (the access entry); GKE knows the
 * service account's email as the user name. AKS names a managed identity by
 * its object id, known only after the deploy (the stack binds it itself).
 */
export function defaultFunctionSubject(spec: RbacSpecInput): RbacSubject | undefined {
  const c = sectionOf(spec).cluster;
  const cloud = c === undefined ? spec.cloud : 'eks' in c ? 'aws' : 'aks' in c ? 'azure' : 'gcp';
  if (cloud === 'aws') return { kind: 'Group', name: eksFunctionGroup(spec) };
  if (cloud === 'gcp') {
    const workerProject =
      typeof spec.workers.project === 'string' ? spec.workers.project : undefined;
    const project = workerProject ?? (c !== undefined && 'gke' in c ? c.gke.project : undefined);
    return project === undefined
      ? undefined
      : { kind: 'User', name: gcpFunctionServiceAccount(spec, project) };
  }
  return undefined;
}

/** The ClusterRole and ClusterRoleBinding, as Kubernetes objects. */
export function functionRbac(
  spec: RbacSpecInput,
  subject: RbacSubject,
): readonly [Record<string, unknown>, Record<string, unknown>] {
  if (subject.name === '' || subject.name.startsWith('system:')) {
    throw new SpecError('spec', [
      `the function's Kubernetes ${subject.kind.toLowerCase()} must be named, and not system:*`,
    ]);
  }
  const name = `lbsync-${spec.name}-function`;
  const metadata = { name, labels: LABELS(spec) };
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata,
      rules: functionRules(spec).map((r) => ({
        apiGroups: [...r.apiGroups],
        resources: [...r.resources],
        verbs: [...r.verbs],
      })),
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: subject.kind, name: subject.name }],
    },
  ];
}

/** The same as YAML documents, ready for `kubectl apply -f -`. */
export function functionRbacYaml(spec: RbacSpecInput, subject: RbacSubject): string {
  const header = `# lbsync ${spec.name}: what the function may do in the cluster (lbsync rbac)\n`;
  return (
    header +
    functionRbac(spec, subject)
      .map((d) => stringify(d))
      .join('---\n')
  );
}
