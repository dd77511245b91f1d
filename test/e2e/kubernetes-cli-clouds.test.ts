import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeAws } from '../fakes/aws/fake-aws.js';
import { ARM_AUDIENCE, FakeManagedIdentity } from '../fakes/azure/entra.js';
import { FakeArm } from '../fakes/azure/fake-arm.js';
import { FakeCompute } from '../fakes/gcp/compute.js';
import { FakeGoogleIdentity } from '../fakes/gcp/identity.js';
import { FakeKubernetes } from '../fakes/kubernetes/fake-kubernetes.js';
import { BOOT_CONFIG, LbVm } from '../fakes/lb-vm.js';
import { type CliRun, runLbsync } from '../helpers/cli.js';
import { LBSYNC_RULES } from '../helpers/kubernetes-scenario.js';

/*
 * The CLI reaches `kubernetes.cluster` with this machine's cloud credentials,
 * as the functions do with theirs: the same EKS, AKS and GKE sign-in, found
 * from the section. Each cluster's API server fake accepts only tokens of its
 * cloud's identity, so a render that lists the Nodes proves the sign-in.
 */

// Ports 17100-17199 and workers on 127.0.42.x belong to this file.
const AWS_PORT = 17101;
const ARM_PORT = 17102;
const AZ_IDENTITY_PORT = 17103;
const GOOGLE_PORT = 17104;
const GCP_IDENTITY_PORT = 17105;
const EKS_API = 17110;
const AKS_API = 17111;
const GKE_API = 17112;
const SERVICE_PORT = 17180;
const NODE_PORT = 31421;
const SUB = '00000000-0000-4000-8000-0000000000c1';
const PROJECT = 'lbsync-cli-test';
const SA = `operator@${PROJECT}.iam.gserviceaccount.com`;
const ROLE = 'arn:aws:iam::123456789012:role/platform-operator';
const KEYS = {
  AWS_ACCESS_KEY_ID: 'ASIACLIOPERATOR00001',
  AWS_SECRET_ACCESS_KEY: 'cli-operator-secret',
  AWS_SESSION_TOKEN: 'IQoJb3JpZ2luX2VjECLI/operator+session==',
};
const LB = 'i-0c1100000000033a';
const LB_IP = '10.42.0.10';
const addr = (n: number): string => `127.0.42.${n}`;

/** Run the CLI with exactly `env` on top of PATH and HOME, as an operator's shell would. */
function lbsync(env: Record<string, string>, ...args: string[]): Promise<CliRun> {
  return runLbsync(args, {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/root',
    ...env,
  });
}

/** Three Nodes and one lbsync Service in a cluster fake. */
function populate(k8s: FakeKubernetes, providerID: (n: number) => string): void {
  for (const n of [1, 2, 3]) {
    k8s.objects.addNode({ name: `node-${n}`, internalIP: addr(n), providerID: providerID(n) });
  }
  k8s.objects.addService({
    name: 'web',
    namespace: 'shop',
    loadBalancerClass: 'lbsync.io/haproxy',
    ports: [{ port: SERVICE_PORT, nodePort: NODE_PORT }],
  });
}

describe('lbsync CLI: kubernetes.cluster with this machine cloud credentials', () => {
  let dir: string;
  let aws: FakeAws;
  let arm: FakeArm;
  let azIdentity: FakeManagedIdentity;
  let google: FakeCompute;
  let gcpIdentity: FakeGoogleIdentity;
  let eksApi: FakeKubernetes;
  let aksApi: FakeKubernetes;
  let gkeApi: FakeKubernetes;
  let lb: LbVm;
  let awsEnv: Record<string, string>;
  let azureEnv: Record<string, string>;
  let gcpEnv: Record<string, string>;

  const spec = (name: string, lines: readonly string[]): string => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      [
        `name: ${name}`,
        'workers: { source: kubernetes }',
        ...lines,
        'healthCheck: { port: 10256, interval: 1s, rise: 1, fall: 1 }',
        'tuning: { maxconn: 4000 }',
        '',
      ].join('\n'),
    );
    return file;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-e2e-k8s-cli-clouds-'));
    [aws, arm, azIdentity, google, gcpIdentity, eksApi, aksApi, gkeApi] = await Promise.all([
      FakeAws.start({ port: AWS_PORT, invocationNotFoundPolls: 1 }),
      FakeArm.start({ port: ARM_PORT }),
      FakeManagedIdentity.start(AZ_IDENTITY_PORT),
      FakeCompute.start(GOOGLE_PORT),
      FakeGoogleIdentity.start(GCP_IDENTITY_PORT, { project: PROJECT, email: SA }),
      FakeKubernetes.start({ port: EKS_API }),
      FakeKubernetes.start({ port: AKS_API }),
      FakeKubernetes.start({ port: GKE_API }),
    ]);

    // EKS: the operator's role has an access entry; the API server trusts STS-verified tokens.
    aws.eks.addCluster({ name: 'prod', endpoint: eksApi.url, caPem: eksApi.caPem });
    aws.eks.addAccessEntry('prod', ROLE, { user: 'operator', groups: ['platform:ops'] });
    aws.sts.addIdentity({
      accessKeyId: KEYS.AWS_ACCESS_KEY_ID,
      secretAccessKey: KEYS.AWS_SECRET_ACCESS_KEY,
      sessionToken: KEYS.AWS_SESSION_TOKEN,
      arn: 'arn:aws:sts::123456789012:assumed-role/platform-operator/alice',
      account: '123456789012',
      userId: 'AROACLIEXAMPLE:alice',
    });
    eksApi.setAuthenticator(aws.eks.authenticator('prod'));
    eksApi.grant({ group: 'platform:ops' }, LBSYNC_RULES);
    populate(eksApi, (n) => `aws:///eu-west-1a/i-0c11000000000${n}`);
    lb = await LbVm.start('lb-cli', join(dir, 'lb'), BOOT_CONFIG);
    aws.addLbInstance(LB, lb, { privateIp: LB_IP });
    awsEnv = { AWS_ENDPOINT_URL: aws.url, AWS_MAX_ATTEMPTS: '2', ...KEYS };

    // AKS: Entra tokens of the identity; the cluster is found through ARM.
    arm.acceptToken = (t) =>
      azIdentity.validate(t, ARM_AUDIENCE) !== null || azIdentity.validate(t, arm.url) !== null;
    arm.managedClusters.add({
      subscriptionId: SUB,
      resourceGroup: 'rg-aks',
      name: 'prod',
      server: aksApi.url,
      caPem: aksApi.caPem,
    });
    aksApi.setAuthenticator(azIdentity.aksAuthenticator(['platform:ops']));
    aksApi.grant({ group: 'platform:ops' }, LBSYNC_RULES);
    populate(
      aksApi,
      (n) =>
        `azure:///subscriptions/${SUB}/resourceGroups/mc/providers/Microsoft.Compute/virtualMachineScaleSets/pool/virtualMachines/${n}`,
    );
    azureEnv = {
      ...azIdentity.env,
      LBSYNC_AZURE_ENDPOINT: arm.url,
      LBSYNC_AZURE_CA_FILE: arm.caFile,
    };

    // GKE: ADC access tokens from the metadata server; clusters.get through the same client.
    google.gkeClusters.add({
      project: PROJECT,
      location: 'europe-west1',
      name: 'prod',
      endpoint: new URL(gkeApi.url).host,
      caPem: gkeApi.caPem,
    });
    google.acceptToken = (t) => gcpIdentity.validate(t) !== null;
    gkeApi.setAuthenticator(gcpIdentity.gkeAuthenticator());
    gkeApi.grant({ user: SA }, LBSYNC_RULES);
    populate(gkeApi, (n) => `gce://${PROJECT}/europe-west1-b/node-${n}`);
    gcpEnv = {
      GCE_METADATA_HOST: gcpIdentity.host,
      CLOUDSDK_CONFIG: dir,
      LBSYNC_GCP_CONTAINER_ENDPOINT: `http://127.0.0.1:${google.port}`,
    };
  });

  afterAll(async () => {
    await lb?.stop();
    await Promise.all(
      [aws, arm, azIdentity, google, gcpIdentity, eksApi, aksApi, gkeApi].map((f) => f?.stop()),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  const servers = (config: string): string[] =>
    [...config.matchAll(/^\s+server (\S+) (\S+)/gm)].map((m) => `${m[1]} ${m[2]}`);

  it.each([
    [
      'EKS, signed with the AWS SDK credential chain',
      () => awsEnv,
      [
        'loadBalancers: { transport: ssm, region: eu-west-1, instanceIds: [i-0c1100000000033a] }',
        'kubernetes: { cluster: { eks: { name: prod } }, bindAddress: 127.0.0.1 }',
      ],
      () => eksApi,
    ],
    [
      'AKS, with an Entra token from DefaultAzureCredential',
      () => azureEnv,
      [
        `loadBalancers: { transport: azure-run-command, subscriptionId: ${SUB}, vms: [{ resourceGroup: rg-edge, name: lb-1 }] }`,
        'kubernetes: { cluster: { aks: { resourceGroup: rg-aks, name: prod } }, bindAddress: 127.0.0.1 }',
      ],
      () => aksApi,
    ],
    [
      'GKE, with an Application Default Credentials access token',
      () => gcpEnv,
      [
        `loadBalancers: { transport: gcp-metadata, project: ${PROJECT}, instances: [{ name: lb-1, zone: europe-west1-b }] }`,
        'kubernetes: { cluster: { gke: { name: prod, location: europe-west1 } }, bindAddress: 127.0.0.1 }',
      ],
      () => gkeApi,
    ],
  ])('renders the Nodes and Services of %s', async (what, env, lines, api) => {
    const before = api().requests.length;
    const r = await lbsync(
      env(),
      'render',
      spec(`render-${what.slice(0, 3).toLowerCase()}`, lines),
    );
    expect(r.stderr).not.toMatch(/^lbsync: /m);
    expect(r.code).toBe(0);
    expect(servers(r.stdout)).toEqual([
      `node-1 ${addr(1)}:${NODE_PORT}`,
      `node-2 ${addr(2)}:${NODE_PORT}`,
      `node-3 ${addr(3)}:${NODE_PORT}`,
    ]);
    expect(r.stdout).toContain(`bind 127.0.0.1:${SERVICE_PORT}`);
    // Every cluster call carried a token the cluster took from that cloud's identity.
    const calls = api().requests.slice(before);
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.every((c) => c.status !== 401)).toBe(true);
  });

  it('says why when this machine has no credentials the cluster takes, and renders nothing', async () => {
    const r = await lbsync(
      { ...awsEnv, AWS_SECRET_ACCESS_KEY: 'not-the-operator-secret' },
      'render',
      spec('render-bad-creds', [
        'loadBalancers: { transport: ssm, region: eu-west-1, instanceIds: [i-0c1100000000033a] }',
        'kubernetes: { cluster: { eks: { name: prod } }, bindAddress: 127.0.0.1 }',
      ]),
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^lbsync: .*(401|Unauthorized|unauthori[sz]ed)/im);
  });

  it('applies Nodes from EKS through SSM to the LB and publishes its address on the Service', async () => {
    const file = spec('apply-eks', [
      'loadBalancers: { transport: ssm, region: eu-west-1, instanceIds: [i-0c1100000000033a], reportBus: null }',
      'kubernetes: { cluster: { eks: { name: prod } }, bindAddress: 127.0.0.1 }',
    ]);
    const sends = aws.commands.length;
    const r = await lbsync(awsEnv, 'apply', file, '--json');
    // On Node 20 the AWS SDK warns that its 2027 releases need Node 22; nothing else is said.
    expect(r.stderr).not.toMatch(/^lbsync: /m);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { results: { lb: string; outcome: string }[] };
    expect(report.results).toEqual([expect.objectContaining({ lb: LB, outcome: 'applied' })]);
    expect(aws.commands.length - sends).toBe(1);
    expect(servers(readFileSync(lb.configPath, 'utf8'))).toHaveLength(3);
    const status = eksApi.objects.service('shop', 'web')?.status as {
      loadBalancer?: { ingress?: unknown };
    };
    expect(status.loadBalancer?.ingress).toEqual([{ ip: LB_IP, ipMode: 'Proxy' }]);
  });
});
