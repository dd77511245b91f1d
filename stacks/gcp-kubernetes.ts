import type * as GcpNamespace from '@pulumi/gcp';
import type * as PulumiTypes from '@pulumi/pulumi';
import { functionRbacYaml } from '../adapters/kubernetes/rbac.js';
import type { KubernetesSpec } from '../adapters/kubernetes/spec.js';
import type { Spec } from '../adapters/spec.js';
import { type StackResource, WATCHER_SERVICE_ACCOUNT } from './shared.js';

/*
 * GCP, when the spec has a `kubernetes` section: how the function's service
 * account reaches GKE, and how the cluster watcher reaches the function.
 *
 *   - IAM: roles/container.clusterViewer on the cluster's project, which
 *     holds container.clusters.get (the endpoint and CA, and the right to
 *     authenticate to the cluster) and no access to Kubernetes objects;
 *   - Kubernetes RBAC: the ClusterRole of `lbsync rbac` bound to the service
 *     account's email, which is its user name in GKE, printed as the
 *     `kubernetesRbac` output for the cluster admin to apply;
 *   - the watcher: a Google service account that may invoke the resync
 *     function (roles/run.invoker on it alone), which the watcher's
 *     Kubernetes service account (lbsync/lbsync-watcher) impersonates
 *     through Workload Identity.
 */

/** The `@pulumi/gcp` namespace. */
type GcpNs = typeof GcpNamespace;

/** Kubernetes choices of the GCP stack. */
export interface GcpKubernetesOptions {
  /** Create the watcher's service account and its invoker binding; default true. */
  readonly watcher?: boolean;
}

/** The resources for the spec's `kubernetes` section (none without one). */
export function gcpKubernetes(args: {
  readonly gcp: GcpNs;
  readonly spec: Spec;
  readonly name: string;
  readonly project: string;
  readonly region: string;
  readonly fnAccount: GcpNamespace.serviceaccount.Account;
  readonly httpFn: GcpNamespace.cloudfunctionsv2.Function;
  readonly options?: GcpKubernetesOptions;
}): {
  readonly resources: readonly StackResource[];
  readonly outputs: Readonly<Record<string, PulumiTypes.Input<string>>>;
} {
  const { gcp, spec, name, project, fnAccount } = args;
  const k = (spec as { kubernetes?: KubernetesSpec }).kubernetes;
  if (k === undefined) return { resources: [], outputs: {} };
  const gke = k.cluster !== undefined && 'gke' in k.cluster ? k.cluster.gke : undefined;
  const clusterProject = gke?.project ?? project;
  const resources: StackResource[] = [
    new gcp.projects.IAMMember(`${name}-gke-viewer`, {
      project: clusterProject,
      role: 'roles/container.clusterViewer',
      member: fnAccount.email.apply((e) => `serviceAccount:${e}`),
    }),
  ];
  const outputs: Record<string, PulumiTypes.Input<string>> = {
    kubernetesRbac: fnAccount.email.apply((email) =>
      functionRbacYaml(spec, { kind: 'User', name: email }),
    ),
  };
  if (args.options?.watcher === false) return { resources, outputs };
  const watcher = new gcp.serviceaccount.Account(`${name}-watcher-sa`, {
    project,
    accountId: `lbsync-wt-${spec.name}`.slice(0, 30).replace(/-$/, ''),
    displayName: `lbsync ${spec.name} cluster watcher`,
  });
  resources.push(
    watcher,
    new gcp.cloudrunv2.ServiceIamMember(`${name}-watcher-invoker`, {
      project,
      location: args.region,
      name: args.httpFn.name,
      role: 'roles/run.invoker',
      member: watcher.email.apply((e) => `serviceAccount:${e}`),
    }),
    new gcp.serviceaccount.IAMMember(`${name}-watcher-workload-identity`, {
      serviceAccountId: watcher.name,
      role: 'roles/iam.workloadIdentityUser',
      member: `serviceAccount:${clusterProject}.svc.id.goog[${WATCHER_SERVICE_ACCOUNT.namespace}/${WATCHER_SERVICE_ACCOUNT.name}]`,
    }),
  );
  outputs.watcherServiceAccount = watcher.email;
  return { resources, outputs };
}
