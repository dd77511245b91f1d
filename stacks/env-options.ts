import type { AwsStackOptions } from './aws.js';
import type { AzureStackOptions } from './azure.js';
import type { GcpStackOptions } from './gcp.js';
import { StackConfigError } from './shared.js';

/*
 * The deploy-time knobs of each stack, read from the environment of
 * `sst deploy` (sst.config.ts stays a few lines of glue). Every option of
 * AwsStackOptions, AzureStackOptions and GcpStackOptions has a variable;
 * docs/deploy.md lists them. A malformed value is refused with the
 * variable's name rather than deployed as a default.
 */

type Env = Readonly<Record<string, string | undefined>>;

/** A set variable's value; unset and empty are the same, as in a shell. */
function text(env: Env, key: string): string | undefined {
  const v = env[key]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function flag(env: Env, key: string): boolean | undefined {
  const v = text(env, key);
  if (v === undefined) return undefined;
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw new StackConfigError(`${key}: must be 1, 0, true or false, not ${JSON.stringify(v)}`);
}

function count(env: Env, key: string, min: number, max: number): number | undefined {
  const v = text(env, key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) {
    throw new StackConfigError(
      `${key}: must be a whole number from ${min} to ${max}, not ${JSON.stringify(v)}`,
    );
  }
  return n;
}

function list(env: Env, key: string): readonly string[] | undefined {
  const v = text(env, key);
  if (v === undefined) return undefined;
  const items = v.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) {
    throw new StackConfigError(
      `${key}: a comma-separated list with no empty item, not ${JSON.stringify(v)}`,
    );
  }
  return items;
}

/** `{ key: value }` when value is set, else nothing: the stacks tell unset from false. */
function opt<K extends string, V>(key: K, value: V | undefined): { readonly [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { readonly [P in K]?: V };
}

/** The AWS stack's options from LBSYNC_SCHEDULE, LBSYNC_AWS_* and LBSYNC_EKS_CLUSTER/LBSYNC_WATCHER. */
export function awsOptionsFromEnv(env: Env): AwsStackOptions {
  const subnetIds = list(env, 'LBSYNC_AWS_VPC_SUBNETS');
  const securityGroupIds = list(env, 'LBSYNC_AWS_VPC_SECURITY_GROUPS');
  if ((subnetIds === undefined) !== (securityGroupIds === undefined)) {
    throw new StackConfigError(
      'LBSYNC_AWS_VPC_SUBNETS and LBSYNC_AWS_VPC_SECURITY_GROUPS: set both to run the function in a VPC, or neither',
    );
  }
  const kubernetes = {
    ...opt('eksCluster', text(env, 'LBSYNC_EKS_CLUSTER')),
    ...opt('watcher', flag(env, 'LBSYNC_WATCHER')),
  };
  return {
    ...opt('schedule', text(env, 'LBSYNC_SCHEDULE')),
    lifecycleHooks: flag(env, 'LBSYNC_AWS_LIFECYCLE_HOOKS') ?? false,
    ...opt('hookHeartbeatSeconds', count(env, 'LBSYNC_AWS_HOOK_HEARTBEAT_SECONDS', 30, 7200)),
    ...opt('reservedConcurrency', count(env, 'LBSYNC_AWS_RESERVED_CONCURRENCY', 1, 1000)),
    ...opt('logRetentionDays', count(env, 'LBSYNC_AWS_LOG_RETENTION_DAYS', 1, 3653)),
    ...(subnetIds !== undefined && securityGroupIds !== undefined
      ? { vpc: { subnetIds, securityGroupIds } }
      : {}),
    ...(Object.keys(kubernetes).length > 0 ? { kubernetes } : {}),
  };
}

/** The Azure stack's options from LBSYNC_SCHEDULE, LBSYNC_AZURE_* and LBSYNC_AKS_GROUP_ID. */
export function azureOptionsFromEnv(env: Env): AzureStackOptions {
  const topic = text(env, 'LBSYNC_AZURE_SYSTEM_TOPIC');
  const [resourceGroup, name, ...rest] = topic?.split('/') ?? [];
  if (topic !== undefined && (!resourceGroup || !name || rest.length > 0)) {
    throw new StackConfigError(
      `LBSYNC_AZURE_SYSTEM_TOPIC: must be <resourceGroup>/<name>, not ${JSON.stringify(topic)}`,
    );
  }
  const groupId = text(env, 'LBSYNC_AKS_GROUP_ID');
  return {
    location: text(env, 'LBSYNC_AZURE_LOCATION') ?? '',
    ...opt('schedule', text(env, 'LBSYNC_SCHEDULE')),
    ...(resourceGroup && name ? { existingSystemTopic: { resourceGroup, name } } : {}),
    ...opt('stagingStorageAccountId', text(env, 'LBSYNC_AZURE_STAGING_ACCOUNT_ID')),
    ...opt('packageSasExpiry', text(env, 'LBSYNC_AZURE_PACKAGE_SAS_EXPIRY')),
    ...opt('vnetSubnetId', text(env, 'LBSYNC_AZURE_VNET_SUBNET_ID')),
    ...(groupId !== undefined ? { kubernetes: { kubernetesGroupId: groupId } } : {}),
  };
}

/** The GCP stack's options from LBSYNC_SCHEDULE, LBSYNC_GCP_* and LBSYNC_WATCHER. */
export function gcpOptionsFromEnv(env: Env): GcpStackOptions {
  const watcher = flag(env, 'LBSYNC_WATCHER');
  return {
    ...opt('schedule', text(env, 'LBSYNC_SCHEDULE')),
    ...opt('region', text(env, 'LBSYNC_GCP_REGION')),
    ...opt('lbServiceAccountEmail', text(env, 'LBSYNC_GCP_LB_SERVICE_ACCOUNT')),
    ...opt('enableServices', flag(env, 'LBSYNC_GCP_ENABLE_SERVICES')),
    ...opt('vpcConnector', text(env, 'LBSYNC_GCP_VPC_CONNECTOR')),
    ...(watcher !== undefined ? { kubernetes: { watcher } } : {}),
  };
}
