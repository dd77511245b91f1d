import { join } from 'node:path';
import * as aws from '@pulumi/aws';
import * as azure from '@pulumi/azure-native';
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadSpec, type Spec } from '../../../adapters/spec.js';
import { awsStack } from '../../../stacks/aws.js';
import { azureStack } from '../../../stacks/azure.js';
import { AKS_CLUSTER_USER_ROLE } from '../../../stacks/azure-kubernetes.js';
import { gcpStack } from '../../../stacks/gcp.js';
import { installMocks, type Recorder, settle, stubPackage } from './pulumi-mocks.js';

/*
 * The stacks' Kubernetes half, under Pulumi mocks: each cloud maps the
 * function's identity into the cluster (EKS access entry, AKS Cluster User
 * role + a bound user, GKE clusterViewer + a bound user), prints the
 * ClusterRole it needs, and gives the watcher a way to call the function.
 */

const FIXTURES = join(import.meta.dirname, '../../fixtures/kubernetes/rbac');
const fixture = (name: string): Promise<Spec> => loadSpec(join(FIXTURES, `${name}.yaml`));
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, read field by field.
type Doc = Record<string, any>;
const docs = (text: string): Doc[] => parseAllDocuments(text).map((d) => d.toJSON() as Doc);

/** The ClusterRole and binding of a `kubernetesRbac` output, checked for wildcards. */
function rbacOf(out: Record<string, string>): { rules: Doc[]; subjects: Doc[] } {
  const [role, binding] = docs(out.kubernetesRbac ?? '');
  expect(role?.kind).toBe('ClusterRole');
  expect(binding?.roleRef.name).toBe(role?.metadata.name);
  for (const r of role?.rules ?? []) {
    for (const list of [r.apiGroups, r.resources, r.verbs]) {
      expect(list.filter((x: string) => x.includes('*'))).toEqual([]);
    }
  }
  return { rules: role?.rules, subjects: binding?.subjects };
}

const FULL_RULES = [
  { apiGroups: [''], resources: ['nodes', 'services'], verbs: ['get', 'list'] },
  { apiGroups: [''], resources: ['services', 'services/status'], verbs: ['patch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
];

describe('stacks: the function in the cluster, and the watcher to the function', () => {
  let rec: Recorder;
  const pkgs: ReturnType<typeof stubPackage>[] = [];
  const pkg = (cloud: string): string => {
    const p = stubPackage(cloud);
    pkgs.push(p);
    return p.dir;
  };

  beforeAll(async () => {
    rec = await installMocks();
  });
  afterAll(() => {
    for (const p of pkgs) p.remove();
  });
  beforeEach(() => rec.reset());

  it('EKS: an access entry maps the role to the group the ClusterRole is bound to, and no access policy', async () => {
    // Act
    const spec = await fixture('eks');
    const out = await settle(awsStack({ pulumi, aws, spec, packageDir: pkg('aws') }));
    // Assess
    const role = rec.ofType('aws:iam/role:Role').find((r) => r.name === 'lbsync-edge-role');
    const entry = rec.one('aws:eks/accessEntry:AccessEntry').inputs;
    expect(entry).toEqual({
      clusterName: 'prod-eks',
      principalArn: `arn:aws:iam:eu-west-1:123456789012:${role?.inputs.name}`,
      kubernetesGroups: ['lbsync:edge'],
      type: 'STANDARD',
    });
    expect(rec.ofType('aws:eks/accessPolicyAssociation:AccessPolicyAssociation')).toEqual([]);
    const { rules, subjects } = rbacOf(out);
    expect(rules).toEqual(FULL_RULES);
    expect(subjects).toEqual([
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'lbsync:edge' },
    ]);
    const eks = rec
      .ofType('aws:iam/rolePolicy:RolePolicy')
      .find((p) => p.inputs.name === 'lbsync-eks');
    expect(JSON.parse(eks?.inputs.policy).Statement).toEqual([
      {
        Sid: 'DescribeTheCluster',
        Effect: 'Allow',
        Action: ['eks:DescribeCluster'],
        Resource: 'arn:aws:eks:eu-west-1:123456789012:cluster/prod-eks',
      },
    ]);
  });

  it('AWS: an IAM function URL for the watcher, whose Pod Identity role may call only that', async () => {
    // Act
    const out = await settle(
      awsStack({ pulumi, aws, spec: await fixture('eks'), packageDir: pkg('aws') }),
    );
    // Assess
    expect(rec.one('aws:lambda/functionUrl:FunctionUrl').inputs).toMatchObject({
      functionName: 'lbsync-edge',
      authorizationType: 'AWS_IAM',
    });
    expect(out.watcherUrl).toMatch(/\.lambda-url\.eu-west-1\.on\.aws\/$/);
    const policy = rec
      .ofType('aws:iam/rolePolicy:RolePolicy')
      .find((p) => p.inputs.name === 'lbsync-watcher');
    expect(JSON.parse(policy?.inputs.policy).Statement).toEqual([
      {
        Sid: 'CallTheFunctionUrl',
        Effect: 'Allow',
        Action: ['lambda:InvokeFunctionUrl'],
        Resource: 'arn:aws:lambda:eu-west-1:123456789012:lbsync-edge',
        Condition: { StringEquals: { 'lambda:FunctionUrlAuthType': 'AWS_IAM' } },
      },
    ]);
    expect(rec.one('aws:eks/podIdentityAssociation:PodIdentityAssociation').inputs).toMatchObject({
      clusterName: 'prod-eks',
      namespace: 'lbsync',
      serviceAccount: 'lbsync-watcher',
    });
  });

  it('AWS: runs the function in the given VPC subnets when asked', async () => {
    await settle(
      awsStack({
        pulumi,
        aws,
        spec: await fixture('eks'),
        packageDir: pkg('aws'),
        options: { vpc: { subnetIds: ['subnet-0a'], securityGroupIds: ['sg-0a'] } },
      }),
    );
    expect(rec.one('aws:lambda/function:Function').inputs.vpcConfig).toEqual({
      subnetIds: ['subnet-0a'],
      securityGroupIds: ['sg-0a'],
    });
    expect(rec.one('aws:iam/rolePolicyAttachment:RolePolicyAttachment').inputs.policyArn).toBe(
      'arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole',
    );
  });

  it("AKS: the Cluster User role on the cluster alone, and the ClusterRole bound to the identity's object id", async () => {
    // Act
    const out = await settle(
      azureStack({
        pulumi,
        azure,
        spec: await fixture('aks'),
        packageDir: pkg('azure'),
        options: { location: 'westeurope' },
      }),
    );
    // Assess
    const user = rec
      .ofType('azure-native:authorization:RoleAssignment')
      .filter((r) => String(r.inputs.roleDefinitionId).endsWith(AKS_CLUSTER_USER_ROLE));
    expect(user.map((r) => r.inputs.scope)).toEqual([
      '/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-prod/providers/Microsoft.ContainerService/managedClusters/prod-aks',
    ]);
    const { rules, subjects } = rbacOf(out);
    // This spec only filters nodes: reading them is all it may do.
    expect(rules).toEqual([{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list'] }]);
    expect(subjects).toEqual([
      {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'User',
        name: 'principal-of-the-function-app',
      },
    ]);
  });

  it('Azure: VNet integration moves the app to Elastic Premium', async () => {
    const subnet =
      '/subscriptions/s/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/functions';
    await settle(
      azureStack({
        pulumi,
        azure,
        spec: await fixture('aks'),
        packageDir: pkg('azure'),
        options: { location: 'westeurope', vnetSubnetId: subnet },
      }),
    );
    expect(rec.one('azure-native:web:AppServicePlan').inputs.sku).toEqual({
      name: 'EP1',
      tier: 'ElasticPremium',
    });
    const app = rec.one('azure-native:web:WebApp').inputs;
    expect(app.virtualNetworkSubnetId).toBe(subnet);
    expect(app.siteConfig.vnetRouteAllEnabled).toBe(true);
  });

  it("GKE: clusterViewer for the function's account, the ClusterRole bound to its email, and a watcher that may only invoke", async () => {
    // Act
    const out = await settle(
      gcpStack({
        pulumi,
        gcp,
        spec: await fixture('gke'),
        packageDir: pkg('gcp'),
        options: { vpcConnector: 'projects/lbsync-demo/locations/europe-west1/connectors/lbsync' },
      }),
    );
    // Assess
    const fnEmail = 'lbsync-fn-edge@lbsync-demo.iam.gserviceaccount.com';
    const viewer = rec
      .ofType('gcp:projects/iAMMember:IAMMember')
      .filter((m) => m.inputs.role === 'roles/container.clusterViewer');
    expect(viewer.map((m) => m.inputs)).toEqual([
      {
        project: 'lbsync-demo',
        role: 'roles/container.clusterViewer',
        member: `serviceAccount:${fnEmail}`,
      },
    ]);
    const { rules, subjects } = rbacOf(out);
    expect(rules).toEqual(
      FULL_RULES.map((r, i) => (i === 0 ? { ...r, resources: ['services'] } : r)),
    );
    expect(subjects).toEqual([
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: fnEmail },
    ]);
    const invokers = rec
      .ofType('gcp:cloudrunv2/serviceIamMember:ServiceIamMember')
      .filter((m) => m.name.endsWith('watcher-invoker'));
    expect(invokers.map((m) => [m.inputs.name, m.inputs.role, m.inputs.member])).toEqual([
      ['lbsync-edge-resync', 'roles/run.invoker', `serviceAccount:${out.watcherServiceAccount}`],
    ]);
    expect(
      rec
        .ofType('gcp:serviceaccount/iAMMember:IAMMember')
        .find((m) => m.name.endsWith('workload-identity'))?.inputs,
    ).toMatchObject({
      role: 'roles/iam.workloadIdentityUser',
      member: 'serviceAccount:lbsync-demo.svc.id.goog[lbsync/lbsync-watcher]',
    });
    for (const fn of rec.ofType('gcp:cloudfunctionsv2/function:Function')) {
      expect(fn.inputs.serviceConfig).toMatchObject({
        vpcConnector: 'projects/lbsync-demo/locations/europe-west1/connectors/lbsync',
        vpcConnectorEgressSettings: 'PRIVATE_RANGES_ONLY',
      });
    }
  });

  it('adds nothing Kubernetes to a spec without a kubernetes section', async () => {
    const spec = await fixture('eks');
    const { kubernetes: _k, ...bare } = spec as Spec & { kubernetes?: unknown };
    const out = await settle(awsStack({ pulumi, aws, spec: bare as Spec, packageDir: pkg('aws') }));
    expect(rec.ofType('aws:eks/accessEntry:AccessEntry')).toEqual([]);
    expect(rec.ofType('aws:lambda/functionUrl:FunctionUrl')).toEqual([]);
    expect(out.kubernetesRbac).toBeUndefined();
  });
});
