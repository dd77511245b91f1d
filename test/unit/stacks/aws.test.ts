import { readFileSync } from 'node:fs';
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseAwsEvent } from '../../../adapters/aws/events.js';
import { loadSpec, parseSpec, type Spec, validateSpec } from '../../../adapters/spec.js';
import { AWS_DETAIL_TYPES, type AwsStackOptions, awsStack } from '../../../stacks/aws.js';
import { StackConfigError } from '../../../stacks/shared.js';
import { eventFixture, fixtureNames, fixturePath } from '../../helpers/fixtures.js';
import { matchesEventPattern, UnsupportedPatternError } from './event-pattern.js';
import { installMocks, type Recorder, settle, stubPackage } from './pulumi-mocks.js';

const fixtures: readonly { readonly file: string; readonly event: Record<string, unknown> }[] =
  fixtureNames('events/aws', '.json').map((file) => ({ file, event: eventFixture('aws', file) }));

function spec(extra = '', groups = '[workers-a, workers-b]'): Spec {
  return parseSpec(`
name: edge
cloud: aws
workers:
  aws: { region: eu-west-1, autoScalingGroups: ${groups} }
loadBalancers:
  aws:
    instanceIds: [i-0abc1234567890def, i-0fed0987654321abc]
    tags: { lbsync: edge, tier: lb }
${extra}
services:
  - { name: http, bind: ":80", nodePort: 32080 }
`);
}

const TYPES = {
  fn: 'aws:lambda/function:Function',
  policy: 'aws:iam/rolePolicy:RolePolicy',
  role: 'aws:iam/role:Role',
  rule: 'aws:cloudwatch/eventRule:EventRule',
  target: 'aws:cloudwatch/eventTarget:EventTarget',
  queue: 'aws:sqs/queue:Queue',
  queuePolicy: 'aws:sqs/queuePolicy:QueuePolicy',
  invokeConfig: 'aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig',
  permission: 'aws:lambda/permission:Permission',
  hook: 'aws:autoscaling/lifecycleHook:LifecycleHook',
  accessEntry: 'aws:eks/accessEntry:AccessEntry',
} as const;

/** A spec the stack tests deploy or refuse (test/fixtures/stacks/). */
const stackFixture = (name: string): Promise<Spec> => loadSpec(fixturePath(`stacks/${name}.yaml`));

interface Statement {
  readonly Sid?: string;
  readonly Action: string | string[];
  readonly Resource?: string | string[];
  readonly Condition?: Record<string, Record<string, unknown>>;
}

describe('AWS stack (Pulumi mocks, real @pulumi/aws)', () => {
  let rec: Recorder;
  let pkg: ReturnType<typeof stubPackage>;

  beforeAll(async () => {
    rec = await installMocks();
    pkg = stubPackage('aws');
  });
  afterAll(() => pkg.remove());
  beforeEach(() => rec.reset());

  async function render(s: Spec, options: AwsStackOptions = {}): Promise<Record<string, string>> {
    return settle(awsStack({ pulumi, aws, spec: s, packageDir: pkg.dir, options }));
  }

  function statements(): Statement[] {
    return JSON.parse(rec.one(TYPES.policy).inputs.policy).Statement;
  }

  function pattern(): unknown {
    const rule = rec.ofType(TYPES.rule).find((r) => r.inputs.eventPattern !== undefined);
    return JSON.parse(rule?.inputs.eventPattern);
  }

  it('deploys a Node 22 arm64 Lambda running the bundled handler', async () => {
    const out = await render(spec());
    const fn = rec.one(TYPES.fn).inputs;
    expect(fn.runtime).toBe('nodejs22.x');
    expect(fn.architectures).toEqual(['arm64']);
    expect(fn.handler).toBe('aws/index.handler');
    expect(await fn.code.path).toBe(pkg.dir);
    expect(fn.reservedConcurrentExecutions).toBe(1);
    expect(fn.timeout).toBe(30 + 120 + 60);
    expect(out.functionName).toBe('lbsync-edge');
  });

  it('pins every resource to the spec region through its own provider', async () => {
    await render(spec());
    expect(rec.one('pulumi:providers:aws').inputs.region).toBe('eu-west-1');
    const resources = rec.resources.filter((r) => r.type.startsWith('aws:'));
    expect(resources.length).toBeGreaterThan(10);
    for (const r of resources) expect(r.provider, r.name).toMatch(/::lbsync-edge-provider::/);
  });

  it('hands the function the validated spec in LBSYNC_SPEC, which parses back to the same spec', async () => {
    const s = spec();
    await render(s);
    const env = rec.one(TYPES.fn).inputs.environment.variables;
    expect(Object.keys(env).sort()).toEqual(['LBSYNC_SPEC', 'NODE_OPTIONS']);
    expect(parseSpec(env.LBSYNC_SPEC)).toEqual(s);
    expect(validateSpec(JSON.parse(env.LBSYNC_SPEC))).toEqual(s);
    // Lambda caps all variables together at 4 KB.
    expect(Buffer.byteLength(JSON.stringify(env))).toBeLessThan(4096);
  });

  it('matches the Auto Scaling fixture events of the spec groups on the default bus', async () => {
    await render(spec('', '[workers-a]'));
    const rule = rec.ofType(TYPES.rule).find((r) => r.inputs.eventPattern !== undefined);
    expect(rule?.inputs.eventBusName).toBe('default');
    const asg = fixtures.filter((f) => f.event.source === 'aws.autoscaling');
    expect(asg.length).toBeGreaterThanOrEqual(10);
    for (const f of asg) {
      expect(matchesEventPattern(pattern(), f.event), f.file).toBe(true);
    }
  });

  it('does not match events of other groups, other sources, schedules or manual bodies', async () => {
    await render(spec('', '[workers-b, workers-c]'));
    for (const f of fixtures) {
      expect(matchesEventPattern(pattern(), f.event), f.file).toBe(false);
    }
  });

  it('matches exactly what the handler acts on for its groups', async () => {
    await render(spec('', '[workers-a]'));
    for (const f of fixtures.filter((x) => x.event.source === 'aws.autoscaling')) {
      const trigger = parseAwsEvent(f.event, ['workers-a']);
      const isTestNotification =
        (f.event.detail as Record<string, unknown>).LifecycleTransition ===
        'autoscaling:TEST_NOTIFICATION';
      // The rule may deliver a hook's one-off test notification; the handler ignores it.
      if (!isTestNotification) expect(trigger.kind, f.file).not.toBe('ignore');
    }
    const p = pattern() as { 'detail-type': string[] };
    expect([...p['detail-type']].sort()).toEqual([...AWS_DETAIL_TYPES].sort());
    for (const detailType of AWS_DETAIL_TYPES) {
      const event = {
        source: 'aws.autoscaling',
        'detail-type': detailType,
        detail: {
          AutoScalingGroupName: 'workers-a',
          LifecycleHookName: 'h',
          LifecycleActionToken: 't',
          EC2InstanceId: 'i-0123456789abcdef0',
          LifecycleTransition: detailType.includes('launch Lifecycle')
            ? 'autoscaling:EC2_INSTANCE_LAUNCHING'
            : 'autoscaling:EC2_INSTANCE_TERMINATING',
        },
      };
      expect(matchesEventPattern(pattern(), event)).toBe(true);
      expect(parseAwsEvent(event, ['workers-a']).kind, detailType).not.toBe('ignore');
    }
  });

  it('grants no wildcard action in any policy or trust document', async () => {
    await render(spec('  ', '[workers-a]'));
    const docs = [
      rec.one(TYPES.policy).inputs.policy,
      rec.one(TYPES.role).inputs.assumeRolePolicy,
      rec.one(TYPES.queuePolicy).inputs.policy,
    ].map((p: string) => JSON.parse(p).Statement as Statement[]);
    const actions = docs.flat().flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
    expect(actions.length).toBeGreaterThan(10);
    for (const a of actions) expect(a).toMatch(/^[a-z0-9-]+:[A-Za-z]+$/);
  });

  it('uses Resource "*" only for calls without resource-level permissions', async () => {
    await render(spec());
    const star = statements().filter((s) => s.Resource === '*');
    expect(star.flatMap((s) => s.Action).sort()).toEqual([
      'autoscaling:DescribeAutoScalingGroups',
      'autoscaling:DescribeLifecycleHooks',
      'ec2:DescribeInstances',
      'ssm:GetCommandInvocation',
    ]);
  });

  it('allows SendCommand only on the LB instances (by id and by tag) and AWS-RunShellScript', async () => {
    await render(spec());
    const send = statements().filter((s) =>
      ([] as string[]).concat(s.Action).includes('ssm:SendCommand'),
    );
    expect(send.map((s) => s.Resource)).toEqual([
      'arn:aws:ssm:eu-west-1::document/AWS-RunShellScript',
      [
        'arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc1234567890def',
        'arn:aws:ec2:eu-west-1:123456789012:instance/i-0fed0987654321abc',
      ],
      'arn:aws:ec2:eu-west-1:123456789012:instance/*',
    ]);
    expect(send[2]?.Condition).toEqual({
      StringEquals: { 'ssm:resourceTag/lbsync': 'edge', 'ssm:resourceTag/tier': 'lb' },
    });
    for (const s of send) expect(s.Action).toEqual(['ssm:SendCommand']);
  });

  it('completes lifecycle actions only on the spec groups and publishes only to the report bus', async () => {
    await render(spec('    reportBus: lbsync-reports'));
    const bySid = Object.fromEntries(statements().map((s) => [s.Sid, s]));
    expect(bySid.CompleteLifecycleActions?.Resource).toEqual([
      'arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:*:autoScalingGroupName/workers-a',
      'arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:*:autoScalingGroupName/workers-b',
    ]);
    expect(bySid.PublishRunSummary).toMatchObject({
      Action: ['events:PutEvents'],
      Resource: 'arn:aws:events:eu-west-1:123456789012:event-bus/lbsync-reports',
    });
    expect(bySid.StagePayloads).toBeUndefined();
  });

  it('drops the PutEvents grant when reportBus is null', async () => {
    await render(spec('    reportBus: null'));
    expect(
      statements().some((s) => ([] as string[]).concat(s.Action).includes('events:PutEvents')),
    ).toBe(false);
  });

  it('scopes payload staging to the bucket prefix', async () => {
    await render(spec('    staging: { bucket: lbsync-stage, prefix: edge/ }'));
    const stage = statements().find((s) => s.Sid === 'StagePayloads');
    expect(stage).toEqual({
      Sid: 'StagePayloads',
      Effect: 'Allow',
      Action: ['s3:PutObject', 's3:GetObject'],
      Resource: 'arn:aws:s3:::lbsync-stage/edge/*',
    });
  });

  it('runs a periodic resync and retries both triggers into a dead-letter queue', async () => {
    await render(spec(), { schedule: 'rate(2 minutes)' });
    const schedule = rec.ofType(TYPES.rule).find((r) => r.inputs.scheduleExpression !== undefined);
    expect(schedule?.inputs.scheduleExpression).toBe('rate(2 minutes)');
    const dlqArn = `arn:aws:sqs:eu-west-1:123456789012:lbsync-edge-dlq`;
    const targets = rec.ofType(TYPES.target);
    expect(targets.map((t) => t.inputs.rule).sort()).toEqual([
      'lbsync-edge-asg-events',
      'lbsync-edge-schedule',
    ]);
    for (const t of targets) {
      expect(t.inputs.arn).toBe('arn:aws:lambda:eu-west-1:123456789012:lbsync-edge');
      expect(t.inputs.retryPolicy).toEqual({
        maximumEventAgeInSeconds: 3600,
        maximumRetryAttempts: 10,
      });
      expect(t.inputs.deadLetterConfig).toEqual({ arn: dlqArn });
    }
    expect(rec.one(TYPES.invokeConfig).inputs).toMatchObject({
      maximumRetryAttempts: 2,
      maximumEventAgeInSeconds: 3600,
      destinationConfig: { onFailure: { destination: dlqArn } },
    });
    const permissions = rec.ofType(TYPES.permission);
    expect(permissions.map((p) => p.inputs.principal)).toEqual([
      'events.amazonaws.com',
      'events.amazonaws.com',
    ]);
    const dlqPolicy = JSON.parse(rec.one(TYPES.queuePolicy).inputs.policy).Statement[0];
    expect(dlqPolicy.Condition.ArnEquals['aws:SourceArn']).toHaveLength(2);
  });

  it('creates terminate lifecycle hooks on every spec group only when asked', async () => {
    await render(spec());
    expect(rec.ofType(TYPES.hook)).toEqual([]);
    rec.reset();
    await render(spec('drain: { seconds: 90 }'), { lifecycleHooks: true });
    const hooks = rec.ofType(TYPES.hook).map((h) => h.inputs);
    expect(hooks.map((h) => h.autoscalingGroupName).sort()).toEqual(['workers-a', 'workers-b']);
    for (const h of hooks) {
      expect(h).toMatchObject({
        lifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
        defaultResult: 'CONTINUE',
        heartbeatTimeout: 150,
      });
    }
  });

  it('refuses a spec for another cloud and a missing build', () => {
    const gcp = parseSpec(
      readFileSync(new URL('../../../examples/gcp.yaml', import.meta.url), 'utf8'),
    );
    expect(() => awsStack({ pulumi, aws, spec: gcp, packageDir: pkg.dir })).toThrow(
      StackConfigError,
    );
    expect(() => awsStack({ pulumi, aws, spec: spec(), packageDir: '/nonexistent' })).toThrow(
      /npm run build/,
    );
  });

  it('grants SendCommand in the LB region and lifecycle actions in the groups region when they differ', async () => {
    await render(spec('    region: eu-central-1'));
    const bySid = Object.fromEntries(statements().map((s) => [s.Sid, s]));
    expect(bySid.RunShellScriptDocument?.Resource).toBe(
      'arn:aws:ssm:eu-central-1::document/AWS-RunShellScript',
    );
    expect(bySid.SendCommandToTaggedLbInstances?.Resource).toBe(
      'arn:aws:ec2:eu-central-1:123456789012:instance/*',
    );
    expect(bySid.CompleteLifecycleActions?.Resource).toContain(
      'arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:*:autoScalingGroupName/workers-a',
    );
    expect(rec.one('pulumi:providers:aws').inputs.region).toBe('eu-west-1');
  });

  it.each([
    ['kubernetes', 1],
    ['static', 0],
  ] as const)(
    'deploys a %s-source spec: function, schedule and SSM grants, no Auto Scaling wiring',
    async (source, accessEntries) => {
      const s = await stackFixture(`aws-${source}`);
      const out = await render(s);
      // The function, pinned to loadBalancers.region, with the spec.
      expect(rec.one('pulumi:providers:aws').inputs.region).toBe('eu-west-1');
      const fn = rec.one(TYPES.fn).inputs;
      expect(fn.handler).toBe('aws/index.handler');
      expect(parseSpec(fn.environment.variables.LBSYNC_SPEC)).toEqual(s);
      expect(out.functionName).toBe('lbsync-edge');
      // The schedule is the only rule, the only target and the only invoker.
      const rules = rec.ofType(TYPES.rule).map((r) => r.inputs);
      expect(rules).toHaveLength(1);
      expect(rules[0]?.scheduleExpression).toBe('rate(5 minutes)');
      expect(rules[0]?.eventPattern).toBeUndefined();
      expect(rec.ofType(TYPES.target).map((t) => t.inputs.rule)).toEqual(['lbsync-edge-schedule']);
      expect(rec.ofType(TYPES.permission).map((p) => p.inputs.principal)).toEqual([
        'events.amazonaws.com',
      ]);
      const dlqPolicy = JSON.parse(rec.one(TYPES.queuePolicy).inputs.policy).Statement[0];
      expect(dlqPolicy.Condition.ArnEquals['aws:SourceArn']).toHaveLength(1);
      expect(rec.ofType(TYPES.hook)).toEqual([]);
      expect(out.eventRule).toBeUndefined();
      expect(out.scheduleRule).toBe('lbsync-edge-schedule');
      // SSM on the LB instances; nothing of Auto Scaling in any policy.
      const policies = rec.ofType(TYPES.policy).map((p) => p.inputs);
      const all = policies.flatMap((p) => JSON.parse(p.policy).Statement as Statement[]);
      const actions = all.flatMap((st) => ([] as string[]).concat(st.Action));
      expect(actions.filter((a) => a.startsWith('autoscaling:'))).toEqual([]);
      const fnPolicy = policies.find((p) => p.name === 'lbsync');
      const own = JSON.parse(fnPolicy?.policy).Statement as Statement[];
      const describe = own.find((st) => st.Sid === 'Describe');
      expect(describe?.Action).toEqual(['ec2:DescribeInstances', 'ssm:GetCommandInvocation']);
      const send = own.filter((st) =>
        ([] as string[]).concat(st.Action).includes('ssm:SendCommand'),
      );
      expect(send.map((st) => st.Resource)).toEqual([
        'arn:aws:ssm:eu-west-1::document/AWS-RunShellScript',
        [
          'arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc1234567890def',
          'arn:aws:ec2:eu-west-1:123456789012:instance/i-0fed0987654321abc',
        ],
        'arn:aws:ec2:eu-west-1:123456789012:instance/*',
      ]);
      // The kubernetes source reaches its cluster as before (stacks/aws-kubernetes.ts).
      expect(rec.ofType(TYPES.accessEntry)).toHaveLength(accessEntries);
    },
  );

  it('refuses to deploy an ssm transport without loadBalancers.region when no aws-asg source gives one', async () => {
    const s = await stackFixture('aws-static-no-region');
    expect(() => awsStack({ pulumi, aws, spec: s, packageDir: pkg.dir })).toThrow(StackConfigError);
    expect(() => awsStack({ pulumi, aws, spec: s, packageDir: pkg.dir })).toThrow(
      /^loadBalancers\.region: required to deploy when workers\.source is static/,
    );
  });

  it('refuses lifecycle hooks without an aws-asg source, naming the option', async () => {
    const s = await stackFixture('aws-static');
    expect(() =>
      awsStack({ pulumi, aws, spec: s, packageDir: pkg.dir, options: { lifecycleHooks: true } }),
    ).toThrow(/^options\.lifecycleHooks \(LBSYNC_AWS_LIFECYCLE_HOOKS\): .*aws-asg, not static/);
  });

  it('refuses a file source and a local transport, naming the field', async () => {
    const file = await stackFixture('aws-file');
    expect(() => awsStack({ pulumi, aws, spec: file, packageDir: pkg.dir })).toThrow(
      /^workers\.source: file cannot be deployed: the function receives only the spec/,
    );
    const local = await stackFixture('aws-local');
    expect(() => awsStack({ pulumi, aws, spec: local, packageDir: pkg.dir })).toThrow(
      /^loadBalancers\.transport: the aws stack reaches the LBs with ssm, not local/,
    );
    expect(rec.resources).toEqual([]);
  });

  it('checks its pattern matcher against literal, nested and array fields, refusing content filters', () => {
    const p = { source: ['a'], detail: { g: ['x', 'y'] } };
    expect(matchesEventPattern(p, { source: 'a', detail: { g: 'y' } })).toBe(true);
    expect(matchesEventPattern(p, { source: 'a', detail: { g: ['z', 'x'] } })).toBe(true);
    expect(matchesEventPattern(p, { source: 'a', detail: { g: 'z' } })).toBe(false);
    expect(matchesEventPattern(p, { source: 'a' })).toBe(false);
    expect(matchesEventPattern(p, { source: 'b', detail: { g: 'x' } })).toBe(false);
    expect(() => matchesEventPattern({ source: [{ prefix: 'a' }] }, { source: 'ab' })).toThrow(
      UnsupportedPatternError,
    );
  });
});
