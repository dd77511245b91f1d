import type * as AzureNamespace from '@pulumi/azure-native';
import type * as PulumiTypes from '@pulumi/pulumi';
import { functionRbacYaml } from '../adapters/kubernetes/rbac.js';
import type { KubernetesSpec } from '../adapters/kubernetes/spec.js';
import type { Spec } from '../adapters/spec.js';
import type { StackResource } from './shared.js';

/*
 * Azure, when the spec has a `kubernetes` section: how the function's
 * managed identity reaches AKS.
 *
 *   - Azure RBAC: the built-in "Azure Kubernetes Service Cluster User Role"
 *     on the cluster alone (read the managed cluster, list its user
 *     kubeconfig: the API server's address and CA). It grants nothing inside
 *     the cluster.
 *   - Kubernetes RBAC, not Azure RBAC for Kubernetes authorization, decides
 *     what the identity may do inside: the ClusterRole of `lbsync rbac`
 *     bound to the identity as a User named by its object id (how AKS with
 *     Microsoft Entra ID names a service principal), printed as the
 *     `kubernetesRbac` output for the cluster admin to apply. Azure RBAC's
 *     Kubernetes roles cannot say exactly that: the built-in ones are
 *     broader (RBAC Writer) or cannot patch (RBAC Reader), and a custom
 *     role's dataAction `services/write` covers create, update and patch
 *     alike. Kubernetes RoleBindings are honoured with and without Azure RBAC
 *     enabled on the cluster. A bound Entra group (options.kubernetesGroupId)
 *     works too; putting the identity in the group is the directory admin's
 *     step.
 */

/** The `@pulumi/azure-native` namespace. */
type AzureNs = typeof AzureNamespace;

/** Built-in role: Azure Kubernetes Service Cluster User Role. */
export const AKS_CLUSTER_USER_ROLE = '4abbcc35-e782-43d8-92c5-2d3f1bd2253f';

/** Kubernetes choices of the Azure stack. */
export interface AzureKubernetesOptions {
  /** Bind this Entra group's object id instead of the identity itself. */
  readonly kubernetesGroupId?: string;
}

/** The resources for the spec's `kubernetes` section (none without one). */
export function azureKubernetes(args: {
  readonly azure: AzureNs;
  readonly spec: Spec;
  readonly name: string;
  readonly subscriptionId: string;
  readonly principalId: PulumiTypes.Output<string>;
  readonly opts: PulumiTypes.CustomResourceOptions;
  readonly options?: AzureKubernetesOptions;
}): {
  readonly resources: readonly StackResource[];
  readonly outputs: Readonly<Record<string, PulumiTypes.Input<string>>>;
} {
  const { azure, spec, name, principalId, opts } = args;
  const k = (spec as { kubernetes?: KubernetesSpec }).kubernetes;
  if (k === undefined) return { resources: [], outputs: {} };
  const resources: StackResource[] = [];
  const aks = k.cluster !== undefined && 'aks' in k.cluster ? k.cluster.aks : undefined;
  if (aks !== undefined) {
    const sub = aks.subscriptionId ?? args.subscriptionId;
    resources.push(
      new azure.authorization.RoleAssignment(
        `${name}-aks-user`,
        {
          principalId,
          principalType: 'ServicePrincipal',
          roleDefinitionId: `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/${AKS_CLUSTER_USER_ROLE}`,
          scope: `/subscriptions/${sub}/resourceGroups/${aks.resourceGroup}/providers/Microsoft.ContainerService/managedClusters/${aks.name}`,
        },
        opts,
      ),
    );
  }
  const group = args.options?.kubernetesGroupId;
  return {
    resources,
    outputs: {
      kubernetesRbac:
        group !== undefined
          ? functionRbacYaml(spec, { kind: 'Group', name: group })
          : principalId.apply((id) => functionRbacYaml(spec, { kind: 'User', name: id })),
    },
  };
}
