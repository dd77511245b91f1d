import type * as AwsNamespace from '@pulumi/aws';
import type * as PulumiTypes from '@pulumi/pulumi';
import { eksFunctionGroup, functionRbacYaml } from '../adapters/kubernetes/rbac.js';
import type { KubernetesSpec } from '../adapters/kubernetes/spec.js';
import type { Spec } from '../adapters/spec.js';
import { StackConfigError, type StackResource, WATCHER_SERVICE_ACCOUNT } from './shared.js';

/*
 * AWS, when the spec has a `kubernetes` section: how the function reaches
 * EKS and how the cluster watcher reaches the function.
 *
 *   - an EKS access entry (type STANDARD) maps the function's IAM role to the
 *     Kubernetes group `lbsync:<name>`, with no access policy association (no
 *     AmazonEKSClusterAdminPolicy or any other): what the group may do is only
 *     the ClusterRole of `lbsync rbac`, printed as the `kubernetesRbac` output
 *     for the cluster admin to apply (Pulumi's Kubernetes provider is not part
 *     of this deployment);
 *   - eks:DescribeCluster on that cluster alone (its endpoint and CA);
 *   - a function URL with AuthType AWS_IAM, the watcher's target;
 *   - a role for the watcher pod (EKS Pod Identity, service account
 *     lbsync/lbsync-watcher of templates/kubernetes) that may call that URL
 *     and nothing else.
 */

/** The `@pulumi/aws` namespace. */
type AwsNs = typeof AwsNamespace;

/** Kubernetes choices of the AWS stack. */
export interface AwsKubernetesOptions {
  /** The EKS cluster, when the spec reaches it by endpoint rather than by `cluster.eks`. */
  readonly eksCluster?: string;
  /** Create the watcher's function URL, role and Pod Identity association; default true. */
  readonly watcher?: boolean;
}

/** What `awsKubernetes` adds. */
export interface AwsKubernetesResult {
  readonly resources: readonly StackResource[];
  readonly outputs: Readonly<Record<string, PulumiTypes.Input<string>>>;
}

/** The resources for the spec's `kubernetes` section (none without one). */
export function awsKubernetes(args: {
  readonly aws: AwsNs;
  readonly spec: Spec;
  readonly name: string;
  readonly region: string;
  readonly role: AwsNamespace.iam.Role;
  readonly fn: AwsNamespace.lambda.Function;
  readonly arnParts: PulumiTypes.Output<[string, string]>;
  readonly opts: PulumiTypes.CustomResourceOptions;
  readonly options?: AwsKubernetesOptions;
}): AwsKubernetesResult {
  const { aws, spec, name, region, role, fn, arnParts, opts } = args;
  const k = (spec as { kubernetes?: KubernetesSpec }).kubernetes;
  if (k === undefined) return { resources: [], outputs: {} };
  const eks = k.cluster !== undefined && 'eks' in k.cluster ? k.cluster.eks : undefined;
  if (eks?.region !== undefined && eks.region !== region) {
    throw new StackConfigError(
      `kubernetes.cluster.eks.region ${eks.region}: the stack deploys to ${region}; put the function in the cluster's region`,
    );
  }
  const cluster = eks?.name ?? args.options?.eksCluster;
  const resources: StackResource[] = [];
  const keep = <T extends StackResource>(r: T): T => {
    resources.push(r);
    return r;
  };
  const group = eksFunctionGroup(spec);
  const outputs: Record<string, PulumiTypes.Input<string>> = {
    kubernetesRbac: functionRbacYaml(spec, { kind: 'Group', name: group }),
    kubernetesGroup: group,
  };
  if (cluster !== undefined) {
    keep(
      new aws.eks.AccessEntry(
        `${name}-access`,
        {
          clusterName: cluster,
          principalArn: role.arn,
          kubernetesGroups: [group],
          type: 'STANDARD',
        },
        opts,
      ),
    );
    keep(
      new aws.iam.RolePolicy(
        `${name}-eks`,
        {
          role: role.id,
          name: 'lbsync-eks',
          policy: arnParts.apply(([p, account]) =>
            JSON.stringify({
              Version: '2012-10-17',
              Statement: [
                {
                  Sid: 'DescribeTheCluster',
                  Effect: 'Allow',
                  Action: ['eks:DescribeCluster'],
                  Resource: `arn:${p}:eks:${region}:${account}:cluster/${cluster}`,
                },
              ],
            }),
          ),
        },
        opts,
      ),
    );
  }
  if (args.options?.watcher === false) return { resources, outputs };

  const url = keep(
    new aws.lambda.FunctionUrl(
      `${name}-watcher-url`,
      { functionName: fn.name, authorizationType: 'AWS_IAM' },
      opts,
    ),
  );
  const watcherRole = keep(
    new aws.iam.Role(
      `${name}-watcher-role`,
      {
        name: `${name}-watcher`,
        assumeRolePolicy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { Service: 'pods.eks.amazonaws.com' },
              Action: ['sts:AssumeRole', 'sts:TagSession'],
            },
          ],
        }),
      },
      opts,
    ),
  );
  keep(
    new aws.iam.RolePolicy(
      `${name}-watcher-policy`,
      {
        role: watcherRole.id,
        name: 'lbsync-watcher',
        policy: fn.arn.apply((arn) =>
          JSON.stringify({
            Version: '2012-10-17',
            Statement: [
              {
                Sid: 'CallTheFunctionUrl',
                Effect: 'Allow',
                Action: ['lambda:InvokeFunctionUrl'],
                Resource: arn,
                Condition: { StringEquals: { 'lambda:FunctionUrlAuthType': 'AWS_IAM' } },
              },
            ],
          }),
        ),
      },
      opts,
    ),
  );
  if (cluster !== undefined) {
    keep(
      new aws.eks.PodIdentityAssociation(
        `${name}-watcher-identity`,
        {
          clusterName: cluster,
          namespace: WATCHER_SERVICE_ACCOUNT.namespace,
          serviceAccount: WATCHER_SERVICE_ACCOUNT.name,
          roleArn: watcherRole.arn,
        },
        opts,
      ),
    );
  }
  outputs.watcherUrl = url.functionUrl;
  outputs.watcherRoleArn = watcherRole.arn;
  return { resources, outputs };
}
