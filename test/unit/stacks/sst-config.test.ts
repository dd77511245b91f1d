import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as aws from '@pulumi/aws';
import * as azurenative from '@pulumi/azure-native';
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadSpec } from '../../../adapters/spec.js';
import { installMocks, type Recorder, settle } from './pulumi-mocks.js';

/*
 * sst.config.ts runs here the way `sst deploy` runs it: $config and the
 * provider namespaces are globals (the real @pulumi packages, under Pulumi's
 * mocks), the spec comes from LBSYNC_CONFIG and the package from LBSYNC_DIST.
 * Each example spec in examples/ must render its cloud's stack.
 */

const CONFIG = new URL('../../../sst.config.ts', import.meta.url);
const ENV_KEYS = [
  'LBSYNC_CLOUD',
  'LBSYNC_CONFIG',
  'LBSYNC_DIST',
  'LBSYNC_AZURE_LOCATION',
  'LBSYNC_AWS_LOG_RETENTION_DAYS',
  'LBSYNC_AWS_VPC_SUBNETS',
  'LBSYNC_AWS_VPC_SECURITY_GROUPS',
  'LBSYNC_WATCHER',
  'LBSYNC_GCP_VPC_CONNECTOR',
] as const;

describe('sst.config.ts', () => {
  let rec: Recorder;
  // A stand-in build output: <dist>/package/<cloud>/<cloud>/index.mjs.
  const dist = mkdtempSync(join(tmpdir(), 'lbsync-sst-dist-'));
  for (const c of ['aws', 'azure', 'gcp']) {
    mkdirSync(join(dist, 'package', c, c), { recursive: true });
    writeFileSync(join(dist, 'package', c, c, 'index.mjs'), 'export {};\n');
  }
  const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  let config: SstConfig;

  beforeAll(async () => {
    rec = await installMocks();
    Object.assign(globalThis, {
      $config: (c: SstConfig) => c,
      $util: pulumi,
      aws,
      azurenative,
      gcp,
    });
    config = (await import(CONFIG.href)).default as SstConfig;
  });
  afterAll(() => {
    rmSync(dist, { recursive: true, force: true });
    for (const k of ENV_KEYS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  beforeEach(() => {
    rec.reset();
    for (const k of ENV_KEYS) delete process.env[k];
  });

  it.each([
    ['aws', 'aws', 'aws:lambda/function:Function'],
    ['azure', 'azure', 'azure-native:web:WebApp'],
    ['gcp', 'gcp', 'gcp:cloudfunctionsv2/function:Function'],
    ['kubernetes', 'aws', 'aws:lambda/function:Function'],
    ['karpenter', 'aws', 'aws:lambda/function:Function'],
  ] as const)('renders examples/%s.yaml through the %s stack', async (file, cloud, fnType) => {
    process.env.LBSYNC_CLOUD = cloud;
    process.env.LBSYNC_CONFIG = new URL(`../../../examples/${file}.yaml`, import.meta.url).pathname;
    process.env.LBSYNC_DIST = dist;
    process.env.LBSYNC_AZURE_LOCATION = 'westeurope';
    const app = config.app({ stage: 'dev' });
    expect(Object.keys(app.providers ?? {})).toEqual([cloud === 'azure' ? 'azure-native' : cloud]);
    const outputs = (await config.run()) as Record<string, pulumi.Input<string>>;
    const resolved = await settle({ outputs, resources: [] });
    expect(Object.keys(resolved).length).toBeGreaterThanOrEqual(5);
    expect(rec.ofType(fnType).length).toBeGreaterThanOrEqual(1);
    const spec = await loadSpec(process.env.LBSYNC_CONFIG);
    const envs = JSON.stringify(rec.ofType(fnType).map((r) => r.inputs));
    expect(envs).toContain(JSON.stringify(JSON.stringify(spec)).slice(1, -1));
  });

  it('deploys examples/static-ssm.yaml through the aws stack: the schedule and SSM, no Auto Scaling rule or hook', async () => {
    process.env.LBSYNC_CLOUD = 'aws';
    process.env.LBSYNC_CONFIG = new URL(
      '../../../examples/static-ssm.yaml',
      import.meta.url,
    ).pathname;
    process.env.LBSYNC_DIST = dist;
    const outputs = (await config.run()) as Record<string, pulumi.Input<string>>;
    const resolved = await settle({ outputs, resources: [] });
    expect(resolved.functionName).toBe('lbsync-edge-static');
    expect(resolved.scheduleRule).toBe('lbsync-edge-static-schedule');
    expect(resolved.eventRule).toBeUndefined();
    expect(rec.one('pulumi:providers:aws').inputs.region).toBe('eu-west-1');
    const spec = await loadSpec(process.env.LBSYNC_CONFIG);
    const fn = rec.one('aws:lambda/function:Function').inputs;
    expect(JSON.parse(fn.environment.variables.LBSYNC_SPEC)).toEqual(
      JSON.parse(JSON.stringify(spec)),
    );
    const rules = rec.ofType('aws:cloudwatch/eventRule:EventRule').map((r) => r.inputs);
    expect(rules.map((r) => [r.scheduleExpression, r.eventPattern])).toEqual([
      ['rate(5 minutes)', undefined],
    ]);
    expect(rec.ofType('aws:autoscaling/lifecycleHook:LifecycleHook')).toEqual([]);
    const policy = JSON.parse(rec.one('aws:iam/rolePolicy:RolePolicy').inputs.policy);
    const actions: string[] = policy.Statement.flatMap((s: { Action: string[] }) => s.Action);
    expect(actions).toContain('ssm:SendCommand');
    expect(actions.filter((a) => a.startsWith('autoscaling:'))).toEqual([]);
  });

  it('hands the stack options from the environment to the aws stack', async () => {
    process.env.LBSYNC_CLOUD = 'aws';
    process.env.LBSYNC_CONFIG = new URL(
      '../../../examples/karpenter.yaml',
      import.meta.url,
    ).pathname;
    process.env.LBSYNC_DIST = dist;
    process.env.LBSYNC_AWS_LOG_RETENTION_DAYS = '90';
    process.env.LBSYNC_AWS_VPC_SUBNETS = 'subnet-0a,subnet-0b';
    process.env.LBSYNC_AWS_VPC_SECURITY_GROUPS = 'sg-01';
    process.env.LBSYNC_WATCHER = '0';
    const outputs = (await config.run()) as Record<string, pulumi.Input<string>>;
    await settle({ outputs, resources: [] });
    expect(rec.one('aws:cloudwatch/logGroup:LogGroup').inputs.retentionInDays).toBe(90);
    expect(rec.one('aws:lambda/function:Function').inputs.vpcConfig).toEqual({
      subnetIds: ['subnet-0a', 'subnet-0b'],
      securityGroupIds: ['sg-01'],
    });
    expect(rec.ofType('aws:lambda/functionUrl:FunctionUrl')).toEqual([]);
  });

  it('hands the stack options from the environment to the gcp stack', async () => {
    process.env.LBSYNC_CLOUD = 'gcp';
    process.env.LBSYNC_CONFIG = new URL('../../../examples/gcp.yaml', import.meta.url).pathname;
    process.env.LBSYNC_DIST = dist;
    process.env.LBSYNC_GCP_VPC_CONNECTOR = 'projects/p/locations/europe-west1/connectors/c';
    const outputs = (await config.run()) as Record<string, pulumi.Input<string>>;
    await settle({ outputs, resources: [] });
    const fns = rec.ofType('gcp:cloudfunctionsv2/function:Function').map((r) => r.inputs);
    expect(fns.map((f) => f.serviceConfig.vpcConnector)).toEqual(
      fns.map(() => 'projects/p/locations/europe-west1/connectors/c'),
    );
  });

  it('refuses a malformed stack option before rendering anything, naming the variable', async () => {
    process.env.LBSYNC_CLOUD = 'aws';
    process.env.LBSYNC_CONFIG = new URL('../../../examples/aws.yaml', import.meta.url).pathname;
    process.env.LBSYNC_DIST = dist;
    process.env.LBSYNC_AWS_LOG_RETENTION_DAYS = '42';
    await expect(config.run()).rejects.toThrow(
      /^options.logRetentionDays \(LBSYNC_AWS_LOG_RETENTION_DAYS\): CloudWatch keeps logs for one of 1, 3, 5/,
    );
    expect(rec.ofType('aws:lambda/function:Function')).toEqual([]);
  });

  it('refuses a spec for another cloud than LBSYNC_CLOUD', async () => {
    process.env.LBSYNC_CLOUD = 'aws';
    process.env.LBSYNC_CONFIG = new URL('../../../examples/gcp.yaml', import.meta.url).pathname;
    await expect(config.run()).rejects.toThrow(/set LBSYNC_CLOUD=gcp/);
  });

  it('stays a thin caller of stacks/: no resources of its own', () => {
    const text = readFileSync(CONFIG, 'utf8');
    expect(text).not.toMatch(/new\s+(aws|gcp|azurenative|sst|\$util)\./);
    for (const stack of ['awsStack', 'azureStack', 'gcpStack']) expect(text).toContain(`${stack}(`);
    expect(text.split('\n').length).toBeLessThan(100);
  });
});
