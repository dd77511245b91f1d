import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import { validateSpec } from '../../adapters/spec.js';
import { memoryLogger } from '../../core/log.js';
import { SyncFailedError } from '../../core/trigger.js';
import { configureAwsFunction, handler } from '../../functions/aws.js';
import { fixture, instanceEvent } from '../fakes/aws/events.js';
import { FakeAws } from '../fakes/aws/fake-aws.js';
import { FakeKubernetes } from '../fakes/kubernetes/fake-kubernetes.js';
import { BOOT_CONFIG, LbVm } from '../fakes/lb-vm.js';
import {
  type ClusterHarness,
  clusterScenario,
  errorLines,
  LBSYNC_RULES,
} from '../helpers/kubernetes-scenario.js';

// Ports 18100-18199 and workers on 127.0.34.x belong to this file.
const AWS_PORT = 18101;
const API_PORT = 18102;
const SERVICE_PORT = 18180;
const NODE_PORT = 31341;
const HEALTH = 10256;
const GROUP = 'eks-nodes';
const LB = 'i-0e2e0000000034b1';
const LB_IP = '10.9.34.10';
// What Lambda puts in the environment for the function's role: temporary credentials.
const ROLE_SESSION = {
  accessKeyId: 'ASIAEKSE2EFUNCTION01',
  secretAccessKey: 'e2e-lambda-role-secret',
  sessionToken: 'IQoJb3JpZ2luX2VjEE2E/lambda+session==',
};
const ROLE = 'arn:aws:iam::123456789012:role/lbsync-syncer';
const wid = (n: number): string => `i-0b${n.toString(16).padStart(15, '0')}`;
const addr = (n: number): string => `127.0.34.${n}`;

describe('EKS: Auto Scaling event -> Lambda handler -> EKS token -> cluster API -> SSM -> HAProxy -> Service status', () => {
  let dir: string;
  let aws: FakeAws;
  let k8s: FakeKubernetes;
  let lb: LbVm;
  const logs: Record<string, unknown>[] = [];
  const nodes: { node: string; worker: string; server: WorkerServer }[] = [];
  const saved = { ...process.env };
  let h: ClusterHarness;
  let runs = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lbsync-e2e-k8s-aws-'));
    [aws, k8s] = await Promise.all([
      FakeAws.start({ port: AWS_PORT, invocationNotFoundPolls: 1 }),
      FakeKubernetes.start({ port: API_PORT }),
    ]);
    lb = await LbVm.start('lb-eks', join(dir, 'lb'), BOOT_CONFIG);
    aws.addLbInstance(LB, lb, { privateIp: LB_IP });
    aws.addGroup(GROUP);
    // The cluster: EKS knows its endpoint and CA; its API server trusts STS-verified tokens
    // of roles with an access entry, and RBAC grants that entry's group the lbsync rules.
    aws.eks.addCluster({ name: 'prod', endpoint: k8s.url, caPem: k8s.caPem });
    aws.eks.addAccessEntry('prod', ROLE, { user: 'lbsync-syncer', groups: ['lbsync:syncers'] });
    aws.sts.addIdentity({
      ...ROLE_SESSION,
      arn: 'arn:aws:sts::123456789012:assumed-role/lbsync-syncer/lbsync-fn',
      account: '123456789012',
      userId: 'AROAE2EEXAMPLE:lbsync-fn',
    });
    k8s.setAuthenticator(aws.eks.authenticator('prod'));
    k8s.grant({ group: 'lbsync:syncers' }, LBSYNC_RULES);
    for (const n of [1, 2, 3]) {
      const id = wid(n);
      const server = await startWorkerServer({
        id,
        address: addr(10 + n),
        ports: [NODE_PORT],
        healthPort: HEALTH,
        delayMs: n === 3 ? 800 : 0,
      });
      aws.addMember(GROUP, id, addr(10 + n));
      const node = `ip-127-0-34-${10 + n}.eu-west-1.compute.internal`;
      k8s.objects.addNode({
        name: node,
        internalIP: addr(10 + n),
        providerID: `aws:///eu-west-1a/${id}`,
      });
      nodes.push({ node, worker: id, server });
    }
    // The SDK's standard configuration, as in Lambda (the endpoint points at the fake).
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: aws.url,
      AWS_ACCESS_KEY_ID: ROLE_SESSION.accessKeyId,
      AWS_SECRET_ACCESS_KEY: ROLE_SESSION.secretAccessKey,
      AWS_SESSION_TOKEN: ROLE_SESSION.sessionToken,
      AWS_MAX_ATTEMPTS: '2',
    });
    configureAwsFunction({
      spec: validateSpec({
        name: 'e2e-k8s-aws',
        workers: { source: 'aws-asg', region: 'eu-west-1', autoScalingGroups: [GROUP] },
        loadBalancers: { transport: 'ssm', instanceIds: [LB], commandTimeoutSeconds: 30 },
        kubernetes: { cluster: { eks: { name: 'prod' } }, bindAddress: '127.0.0.1' },
        healthCheck: { port: HEALTH, interval: '1s', rise: 1, fall: 1 },
        guards: { minWorkers: 1, maxRemovalPercent: 50 },
        drain: { seconds: 5 },
        tuning: { maxconn: 4000 },
      }),
      logger: memoryLogger(logs),
      tuning: { aws: { poll: { initialMs: 40, maxMs: 200 } } },
    });
    h = {
      k8s,
      nodes,
      port: SERVICE_PORT,
      nodePort: NODE_PORT,
      ingress: LB_IP,
      clusterUser: 'lbsync-syncer',
      lbConfig: () => readFileSync(lb.configPath, 'utf8'),
      async sync() {
        const from = logs.length;
        // The first run is a launch; later ones the periodic schedule (cluster changes have no ASG event).
        const event =
          runs++ === 0 ? instanceEvent('launch-successful', GROUP, wid(1)) : fixture('scheduled');
        try {
          await handler(event);
          return { redelivered: false, errors: errorLines(logs, from) };
        } catch (err) {
          if (!(err instanceof SyncFailedError)) throw err;
          return { redelivered: true, errors: errorLines(logs, from) };
        }
      },
      // IAM revoked the role's sessions: STS stops verifying them, so EKS refuses their tokens.
      refuseTokens: () => aws.sts.revoke(ROLE_SESSION.accessKeyId),
    };
  });

  afterAll(async () => {
    process.env = saved;
    await lb?.stop();
    await Promise.all([aws?.stop(), k8s?.stop(), ...nodes.map((n) => n.server.close())]);
    await rm(dir, { recursive: true, force: true });
  });

  it('discovers the cluster once and signs the token EKS verifies with STS', async () => {
    // Prepare: the first run of the scenario below happens here, on a cold start.
    await h.sync();

    // Assess: DescribeCluster once; STS saw the function's session, bound to the cluster.
    expect(aws.count('DescribeCluster')).toBe(1);
    expect(aws.sts.calls.length).toBeGreaterThan(0);
    expect(aws.sts.calls.every((c) => c.status === 200 && c.clusterId === 'prod')).toBe(true);
    expect(aws.eks.attempts.every((a) => a.accepted)).toBe(true);
    await h.sync();
    expect(aws.count('DescribeCluster')).toBe(1);
  });

  clusterScenario(() => h);
});
