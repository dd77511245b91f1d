import type * as AwsNamespace from '@pulumi/aws';
import { AWS_DETAIL_TYPES, asgSection, ssmSection } from '../adapters/aws/provider.js';
import type { Spec } from '../adapters/spec.js';
import { type AwsKubernetesOptions, awsKubernetes } from './aws-kubernetes.js';
import {
  assertDeployable,
  assertPackage,
  functionEnvironment,
  type PulumiNs,
  StackConfigError,
  type StackResource,
  type StackResult,
} from './shared.js';

/*
 * AWS: one Lambda (Node 22, arm64) fed by a schedule and, when the workers
 * come from aws-asg, an EventBridge rule on the default bus (only the spec's
 * Auto Scaling groups, only the detail-types adapters/aws/events.ts acts
 * on); retries and a dead-letter queue on the rule targets and Lambda's
 * async invocations; optional terminate lifecycle hooks so the function
 * drains an instance before it goes; and an inline IAM policy with no
 * wildcard action, scoped to the spec's LB instances, groups, report bus
 * and staging prefix. Any other deployable source (static, kubernetes) gets
 * the same function, schedule and SSM grants, without the group wiring: its
 * changes arrive by the schedule, a manual resync or the cluster watcher.
 *
 * Raw @pulumi/aws resources rather than sst.aws.Function: SST components
 * call back into the SST CLI, so they cannot be rendered under Pulumi mocks
 * and the stack could not be tested offline.
 */

/** The `@pulumi/aws` namespace (SST's global `aws`). */
export type AwsNs = typeof AwsNamespace;

/** Lambda handler: `aws/index.mjs` in the package, export `handler` (functions/aws.ts). */
export const AWS_HANDLER = 'aws/index.handler';

/** The Auto Scaling detail-types the handler acts on, from the provider (one list for both). */
export { AWS_DETAIL_TYPES };

// The only retention periods CloudWatch Logs accepts (PutRetentionPolicy).
const LOG_RETENTION_DAYS: readonly number[] = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
  3653,
];

/** Deployment choices that are not part of the spec (they do not change what is synced). */
export interface AwsStackOptions {
  /** EventBridge schedule for the periodic resync; default `rate(5 minutes)`. */
  readonly schedule?: string;
  /**
   * Concurrent executions reserved for the function; default 1, so syncs run
   * one at a time (excess async events are throttled and retried by Lambda
   * for up to 6 h, and a later sync sees the latest state anyway).
   */
  readonly reservedConcurrency?: number;
  /**
   * Create a terminate lifecycle hook on every spec group, so a leaving
   * worker is drained first (`drain.seconds`); default false. With an
   * existing hook of your own, leave this off: the function completes any
   * hook whose event it receives. Only for workers.source aws-asg.
   */
  readonly lifecycleHooks?: boolean;
  /** Heartbeat timeout of the created hooks in seconds; default max(120, drain + 60). */
  readonly hookHeartbeatSeconds?: number;
  /** Days to keep the function's logs; default 30. */
  readonly logRetentionDays?: number;
  /**
   * Run the function in these VPC subnets, e.g. to reach a private EKS API
   * endpoint (docs/kubernetes.md). The subnets need a route to the AWS APIs
   * lbsync calls (NAT or VPC endpoints for SSM, EC2, Auto Scaling, STS, EKS).
   */
  readonly vpc?: {
    readonly subnetIds: readonly string[];
    readonly securityGroupIds: readonly string[];
  };
  /** EKS access and the cluster watcher's function URL (stacks/aws-kubernetes.ts). */
  readonly kubernetes?: AwsKubernetesOptions;
}

/** Arguments of {@link awsStack}. */
export interface AwsStackArgs {
  readonly pulumi: PulumiNs;
  readonly aws: AwsNs;
  readonly spec: Spec;
  /** dist/package/aws from `npm run build`. */
  readonly packageDir: string;
  readonly options?: AwsStackOptions;
}

/** How long one invocation may run: a drain plus one Run Command round, capped by Lambda. */
export function awsFunctionTimeoutSeconds(spec: Spec): number {
  const command = ssmSection(spec)?.commandTimeoutSeconds ?? 120;
  return Math.min(900, spec.drain.seconds + command + 60);
}

/** The EventBridge pattern for the spec's groups. */
export function awsEventPattern(groups: readonly string[]): Record<string, unknown> {
  return {
    source: ['aws.autoscaling'],
    'detail-type': [...AWS_DETAIL_TYPES],
    detail: { AutoScalingGroupName: [...groups] },
  };
}

/**
 * The stack's region (the Auto Scaling groups' when the workers come from
 * aws-asg, else the LB instances') and the LB instances' region (theirs,
 * else the groups'), as the function resolves them (adapters/aws/factory.ts
 * `ssmRegion`); the deployed function must not depend on AWS_REGION for it.
 */
export function awsRegions(spec: Spec): { readonly stack: string; readonly lb: string } {
  const lb = ssmSection(spec);
  if (lb === undefined) {
    throw new StackConfigError('loadBalancers.transport: the aws stack reaches the LBs with ssm');
  }
  const stack = asgSection(spec)?.region ?? lb.region;
  if (stack === undefined) {
    throw new StackConfigError(
      `loadBalancers.region: required to deploy when workers.source is ${spec.workers.source}, not aws-asg (the stack pins every resource to that region)`,
    );
  }
  return { stack, lb: lb.region ?? stack };
}

/** ARN of an event bus given by name or ARN. */
function busArn(bus: string, partition: string, region: string, account: string): string {
  return bus.startsWith('arn:')
    ? bus
    : `arn:${partition}:events:${region}:${account}:event-bus/${bus}`;
}

/** Deploy lbsync's AWS path for a validated spec. */
export function awsStack(args: AwsStackArgs): StackResult {
  const { pulumi, aws, spec, packageDir } = args;
  const o = args.options ?? {};
  assertDeployable(spec, 'aws');
  assertPackage(packageDir, 'aws');
  // The group wiring (event rule, hooks, group grants) only for aws-asg.
  const workers = asgSection(spec);
  if (workers === undefined && o.lifecycleHooks === true) {
    throw new StackConfigError(
      `options.lifecycleHooks (LBSYNC_AWS_LIFECYCLE_HOOKS): lifecycle hooks need workers.source aws-asg, not ${spec.workers.source}`,
    );
  }
  const reserved = o.reservedConcurrency ?? 1;
  if (!Number.isInteger(reserved) || reserved < 1) {
    throw new StackConfigError('options.reservedConcurrency must be a positive integer');
  }
  const retention = o.logRetentionDays ?? 30;
  if (!LOG_RETENTION_DAYS.includes(retention)) {
    throw new StackConfigError(
      `options.logRetentionDays (LBSYNC_AWS_LOG_RETENTION_DAYS): CloudWatch keeps logs for one of ${LOG_RETENTION_DAYS.join(', ')} days, not ${retention}`,
    );
  }
  const region = awsRegions(spec).stack;
  const name = `lbsync-${spec.name}`;
  if (name.length > 56) {
    // IAM role and Lambda names stop at 64 characters, with suffixes.
    throw new StackConfigError('name: at most 49 characters for an AWS deployment');
  }
  const resources: StackResource[] = [];
  const keep = <T extends StackResource>(r: T): T => {
    resources.push(r);
    return r;
  };

  // An explicit provider pins every resource to the spec's region, whatever
  // region the deployer's environment defaults to (the ARNs below assume it).
  const provider = keep(
    new aws.Provider(`${name}-provider`, { region: region as AwsNamespace.Region }),
  );
  const inRegion = { provider };
  const identity = aws.getCallerIdentityOutput({}, inRegion);
  const partition = aws.getPartitionOutput({}, inRegion);
  const arnParts = pulumi.all([partition.partition, identity.accountId]);

  const logGroup = keep(
    new aws.cloudwatch.LogGroup(
      `${name}-logs`,
      {
        name: `/aws/lambda/${name}`,
        retentionInDays: retention,
      },
      inRegion,
    ),
  );

  // Events EventBridge could not deliver and async invocations that failed
  // every retry land here; the schedule heals the LBs meanwhile.
  const dlq = keep(
    new aws.sqs.Queue(
      `${name}-dlq`,
      {
        name: `${name}-dlq`,
        messageRetentionSeconds: 14 * 24 * 3600,
        sqsManagedSseEnabled: true,
      },
      inRegion,
    ),
  );

  const role = keep(
    new aws.iam.Role(
      `${name}-role`,
      {
        name: `${name}-fn`,
        assumeRolePolicy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { Service: 'lambda.amazonaws.com' },
              Action: 'sts:AssumeRole',
            },
          ],
        }),
      },
      inRegion,
    ),
  );

  const policy = pulumi
    .all([arnParts, logGroup.arn, dlq.arn])
    .apply(([[part, account], logArn, dlqArn]) =>
      JSON.stringify(awsFunctionPolicy({ spec, partition: part, account, logArn, dlqArn })),
    );
  const rolePolicy = keep(
    new aws.iam.RolePolicy(`${name}-policy`, { role: role.id, name: 'lbsync', policy }, inRegion),
  );

  if (
    o.vpc !== undefined &&
    (o.vpc.subnetIds.length === 0 || o.vpc.securityGroupIds.length === 0)
  ) {
    throw new StackConfigError('options.vpc needs subnetIds and securityGroupIds');
  }
  // Lambda manages the VPC network interfaces with this AWS managed policy.
  const vpcAccess =
    o.vpc === undefined
      ? []
      : [
          keep(
            new aws.iam.RolePolicyAttachment(
              `${name}-vpc-access`,
              {
                role: role.name,
                policyArn: partition.partition.apply(
                  (p) => `arn:${p}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole`,
                ),
              },
              inRegion,
            ),
          ),
        ];
  const fn = keep(
    new aws.lambda.Function(
      `${name}-fn`,
      {
        name,
        description: `lbsync ${spec.name}: HAProxy LBs follow ${workers !== undefined ? 'Auto Scaling groups' : `workers.source ${spec.workers.source}`}`,
        runtime: 'nodejs22.x',
        architectures: ['arm64'],
        handler: AWS_HANDLER,
        code: new pulumi.asset.FileArchive(packageDir),
        role: role.arn,
        memorySize: 512,
        timeout: awsFunctionTimeoutSeconds(spec),
        reservedConcurrentExecutions: reserved,
        environment: {
          variables: { ...functionEnvironment(spec), NODE_OPTIONS: '--enable-source-maps' },
        },
        loggingConfig: { logFormat: 'JSON', logGroup: logGroup.name },
        ...(o.vpc !== undefined
          ? {
              vpcConfig: {
                subnetIds: [...o.vpc.subnetIds],
                securityGroupIds: [...o.vpc.securityGroupIds],
              },
            }
          : {}),
      },
      { ...inRegion, dependsOn: [rolePolicy, logGroup, ...vpcAccess] },
    ),
  );
  const k8s = awsKubernetes({
    aws,
    spec,
    name,
    region,
    role,
    fn,
    arnParts,
    opts: inRegion,
    ...(o.kubernetes !== undefined ? { options: o.kubernetes } : {}),
  });
  resources.push(...k8s.resources);

  // Lambda's own async retries (function errors: the handler throws when a
  // retry could help); events older than an hour are stale, the schedule
  // covers them.
  keep(
    new aws.lambda.FunctionEventInvokeConfig(
      `${name}-async`,
      {
        functionName: fn.name,
        maximumRetryAttempts: 2,
        maximumEventAgeInSeconds: 3600,
        destinationConfig: { onFailure: { destination: dlq.arn } },
      },
      inRegion,
    ),
  );

  const retryPolicy = { maximumEventAgeInSeconds: 3600, maximumRetryAttempts: 10 };

  const rule =
    workers === undefined
      ? undefined
      : keep(
          new aws.cloudwatch.EventRule(
            `${name}-asg-events`,
            {
              name: `${name}-asg-events`,
              description: 'Auto Scaling instance and lifecycle events of the lbsync spec groups',
              eventBusName: 'default',
              eventPattern: JSON.stringify(awsEventPattern(workers.autoScalingGroups)),
            },
            inRegion,
          ),
        );
  const schedule = keep(
    new aws.cloudwatch.EventRule(
      `${name}-schedule`,
      {
        name: `${name}-schedule`,
        description: 'Periodic lbsync resync (heals missed events)',
        scheduleExpression: o.schedule ?? 'rate(5 minutes)',
      },
      inRegion,
    ),
  );
  const rules = [
    ...(rule !== undefined ? [['asg-events', rule] as const] : []),
    ['schedule', schedule] as const,
  ];

  for (const [id, r] of rules) {
    keep(
      new aws.lambda.Permission(
        `${name}-${id}-invoke`,
        {
          action: 'lambda:InvokeFunction',
          function: fn.name,
          principal: 'events.amazonaws.com',
          sourceArn: r.arn,
        },
        inRegion,
      ),
    );
    keep(
      new aws.cloudwatch.EventTarget(
        `${name}-${id}-target`,
        {
          rule: r.name,
          arn: fn.arn,
          retryPolicy,
          deadLetterConfig: { arn: dlq.arn },
        },
        inRegion,
      ),
    );
  }

  // EventBridge delivers dead letters with its own principal, only for our rules.
  keep(
    new aws.sqs.QueuePolicy(
      `${name}-dlq-policy`,
      {
        queueUrl: dlq.url,
        policy: pulumi.all([dlq.arn, ...rules.map(([, r]) => r.arn)]).apply(([q, ...sources]) =>
          JSON.stringify({
            Version: '2012-10-17',
            Statement: [
              {
                Sid: 'EventBridgeDeadLetters',
                Effect: 'Allow',
                Principal: { Service: 'events.amazonaws.com' },
                Action: 'sqs:SendMessage',
                Resource: q,
                Condition: { ArnEquals: { 'aws:SourceArn': sources } },
              },
            ],
          }),
        ),
      },
      inRegion,
    ),
  );

  if (workers !== undefined && o.lifecycleHooks === true) {
    const heartbeat = o.hookHeartbeatSeconds ?? Math.max(120, spec.drain.seconds + 60);
    if (heartbeat < 30 || heartbeat > 7200) {
      throw new StackConfigError('options.hookHeartbeatSeconds must be 30-7200');
    }
    for (const group of workers.autoScalingGroups) {
      keep(
        new aws.autoscaling.LifecycleHook(
          `${name}-drain-${group}`,
          {
            name: `${name}-drain`,
            autoscalingGroupName: group,
            lifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
            // If lbsync cannot answer, the instance still terminates.
            defaultResult: 'CONTINUE',
            heartbeatTimeout: heartbeat,
          },
          inRegion,
        ),
      );
    }
  }

  return {
    outputs: {
      functionName: fn.name,
      functionArn: fn.arn,
      ...(rule !== undefined ? { eventRule: rule.name } : {}),
      scheduleRule: schedule.name,
      deadLetterQueueUrl: dlq.url,
      logGroup: logGroup.name,
      ...k8s.outputs,
    },
    resources,
  };
}

/** One IAM policy statement. */
export interface IamStatement {
  readonly Sid: string;
  readonly Effect: 'Allow';
  readonly Action: readonly string[];
  readonly Resource: string | readonly string[];
  readonly Condition?: Record<string, Record<string, string | readonly string[]>>;
}

/** What the function's policy is built from. */
export interface AwsPolicyInput {
  readonly spec: Spec;
  readonly partition: string;
  readonly account: string;
  readonly logArn: string;
  readonly dlqArn: string;
}

/**
 * The function's least-privilege policy: every action named, every resource
 * scoped where the API allows it (the Describe* calls and
 * GetCommandInvocation have no resource-level permissions, so only they use
 * `Resource: "*"`).
 */
export function awsFunctionPolicy(input: AwsPolicyInput): {
  readonly Version: '2012-10-17';
  readonly Statement: readonly IamStatement[];
} {
  const { spec, partition: p, account } = input;
  const workers = asgSection(spec);
  const lb = ssmSection(spec);
  if (lb === undefined) {
    throw new StackConfigError('loadBalancers.transport: the aws stack reaches the LBs with ssm');
  }
  // The Auto Scaling grants are the groups'; the SSM ones are in the LBs' region.
  const lbRegion = awsRegions(spec).lb;
  const statements: IamStatement[] = [
    {
      Sid: 'Logs',
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: `${input.logArn}:*`,
    },
    {
      Sid: 'Describe',
      Effect: 'Allow',
      Action: [
        ...(workers !== undefined
          ? ['autoscaling:DescribeAutoScalingGroups', 'autoscaling:DescribeLifecycleHooks']
          : []),
        'ec2:DescribeInstances',
        'ssm:GetCommandInvocation',
      ],
      Resource: '*',
    },
    {
      Sid: 'RunShellScriptDocument',
      Effect: 'Allow',
      Action: ['ssm:SendCommand'],
      Resource: `arn:${p}:ssm:${lbRegion}::document/AWS-RunShellScript`,
    },
  ];
  const ids = lb.instanceIds ?? [];
  if (ids.length > 0) {
    statements.push({
      Sid: 'SendCommandToLbInstances',
      Effect: 'Allow',
      Action: ['ssm:SendCommand'],
      Resource: ids.map((id) => `arn:${p}:ec2:${lbRegion}:${account}:instance/${id}`),
    });
  }
  const tags = Object.entries(lb.tags ?? {});
  if (tags.length > 0) {
    statements.push({
      Sid: 'SendCommandToTaggedLbInstances',
      Effect: 'Allow',
      Action: ['ssm:SendCommand'],
      Resource: `arn:${p}:ec2:${lbRegion}:${account}:instance/*`,
      Condition: {
        StringEquals: Object.fromEntries(tags.map(([k, v]) => [`ssm:resourceTag/${k}`, v])),
      },
    });
  }
  if (workers !== undefined) {
    statements.push({
      Sid: 'CompleteLifecycleActions',
      Effect: 'Allow',
      Action: ['autoscaling:CompleteLifecycleAction'],
      Resource: workers.autoScalingGroups.map(
        (g) =>
          `arn:${p}:autoscaling:${workers.region}:${account}:autoScalingGroup:*:autoScalingGroupName/${g}`,
      ),
    });
  }
  if (lb.reportBus !== null) {
    statements.push({
      Sid: 'PublishRunSummary',
      Effect: 'Allow',
      Action: ['events:PutEvents'],
      Resource: busArn(lb.reportBus, p, lbRegion, account),
    });
  }
  if (lb.staging !== undefined) {
    // PutObject to stage; GetObject because the LB's presigned URL is signed
    // with the function's credentials.
    statements.push({
      Sid: 'StagePayloads',
      Effect: 'Allow',
      Action: ['s3:PutObject', 's3:GetObject'],
      Resource: `arn:${p}:s3:::${lb.staging.bucket}/${lb.staging.prefix}*`,
    });
  }
  statements.push({
    Sid: 'AsyncFailureDestination',
    Effect: 'Allow',
    Action: ['sqs:SendMessage'],
    Resource: input.dlqArn,
  });
  return { Version: '2012-10-17', Statement: statements };
}
