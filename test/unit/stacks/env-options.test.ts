import { describe, expect, it } from 'vitest';
import {
  awsOptionsFromEnv,
  azureOptionsFromEnv,
  gcpOptionsFromEnv,
} from '../../../stacks/env-options.js';

describe('stack options from the deploy environment', () => {
  it('gives the stacks their defaults when nothing is set', () => {
    expect(awsOptionsFromEnv({})).toEqual({ lifecycleHooks: false });
    expect(azureOptionsFromEnv({})).toEqual({ location: '' });
    expect(gcpOptionsFromEnv({})).toEqual({});
  });

  it('treats an empty variable as unset, as a shell does', () => {
    expect(awsOptionsFromEnv({ LBSYNC_SCHEDULE: '', LBSYNC_AWS_VPC_SUBNETS: ' ' })).toEqual({
      lifecycleHooks: false,
    });
  });

  it('reads every AWS option', () => {
    expect(
      awsOptionsFromEnv({
        LBSYNC_SCHEDULE: 'rate(2 minutes)',
        LBSYNC_AWS_LIFECYCLE_HOOKS: '1',
        LBSYNC_AWS_HOOK_HEARTBEAT_SECONDS: '300',
        LBSYNC_AWS_RESERVED_CONCURRENCY: '2',
        LBSYNC_AWS_LOG_RETENTION_DAYS: '90',
        LBSYNC_AWS_VPC_SUBNETS: 'subnet-0a, subnet-0b',
        LBSYNC_AWS_VPC_SECURITY_GROUPS: 'sg-01',
        LBSYNC_EKS_CLUSTER: 'prod',
        LBSYNC_WATCHER: 'false',
      }),
    ).toEqual({
      schedule: 'rate(2 minutes)',
      lifecycleHooks: true,
      hookHeartbeatSeconds: 300,
      reservedConcurrency: 2,
      logRetentionDays: 90,
      vpc: { subnetIds: ['subnet-0a', 'subnet-0b'], securityGroupIds: ['sg-01'] },
      kubernetes: { eksCluster: 'prod', watcher: false },
    });
  });

  it('reads every Azure option', () => {
    expect(
      azureOptionsFromEnv({
        LBSYNC_AZURE_LOCATION: 'westeurope',
        LBSYNC_SCHEDULE: '0 */2 * * * *',
        LBSYNC_AZURE_SYSTEM_TOPIC: 'rg-events/sub-topic',
        LBSYNC_AZURE_STAGING_ACCOUNT_ID:
          '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st',
        LBSYNC_AZURE_PACKAGE_SAS_EXPIRY: '2030-01-01',
        LBSYNC_AZURE_VNET_SUBNET_ID: '/subscriptions/s/resourceGroups/rg/providers/x/subnets/fn',
        LBSYNC_AKS_GROUP_ID: '00000000-0000-4000-8000-00000000000a',
      }),
    ).toEqual({
      location: 'westeurope',
      schedule: '0 */2 * * * *',
      existingSystemTopic: { resourceGroup: 'rg-events', name: 'sub-topic' },
      stagingStorageAccountId:
        '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st',
      packageSasExpiry: '2030-01-01',
      vnetSubnetId: '/subscriptions/s/resourceGroups/rg/providers/x/subnets/fn',
      kubernetes: { kubernetesGroupId: '00000000-0000-4000-8000-00000000000a' },
    });
  });

  it('reads every GCP option', () => {
    expect(
      gcpOptionsFromEnv({
        LBSYNC_SCHEDULE: '*/2 * * * *',
        LBSYNC_GCP_REGION: 'europe-west1',
        LBSYNC_GCP_LB_SERVICE_ACCOUNT: 'lb@p.iam.gserviceaccount.com',
        LBSYNC_GCP_ENABLE_SERVICES: '0',
        LBSYNC_GCP_VPC_CONNECTOR: 'projects/p/locations/europe-west1/connectors/c',
        LBSYNC_WATCHER: '1',
      }),
    ).toEqual({
      schedule: '*/2 * * * *',
      region: 'europe-west1',
      lbServiceAccountEmail: 'lb@p.iam.gserviceaccount.com',
      enableServices: false,
      vpcConnector: 'projects/p/locations/europe-west1/connectors/c',
      kubernetes: { watcher: true },
    });
  });

  it.each([
    [
      { LBSYNC_AWS_LIFECYCLE_HOOKS: 'yes' },
      /^LBSYNC_AWS_LIFECYCLE_HOOKS: must be 1, 0, true or false, not "yes"/,
    ],
    [
      { LBSYNC_AWS_HOOK_HEARTBEAT_SECONDS: '10' },
      /^LBSYNC_AWS_HOOK_HEARTBEAT_SECONDS: must be a whole number from 30 to 7200, not "10"/,
    ],
    [
      { LBSYNC_AWS_RESERVED_CONCURRENCY: '1.5' },
      /^LBSYNC_AWS_RESERVED_CONCURRENCY: must be a whole number/,
    ],
    [
      { LBSYNC_AWS_LOG_RETENTION_DAYS: '-1' },
      /^LBSYNC_AWS_LOG_RETENTION_DAYS: must be a whole number/,
    ],
    [{ LBSYNC_AWS_VPC_SUBNETS: 'subnet-0a' }, /set both to run the function in a VPC, or neither/],
    [
      { LBSYNC_AWS_VPC_SUBNETS: 'subnet-0a,,b', LBSYNC_AWS_VPC_SECURITY_GROUPS: 'sg' },
      /^LBSYNC_AWS_VPC_SUBNETS: a comma-separated list with no empty item/,
    ],
    [{ LBSYNC_WATCHER: 'off' }, /^LBSYNC_WATCHER: must be 1, 0, true or false/],
  ])('refuses a malformed AWS value, naming the variable: %j', (env, message) => {
    expect(() => awsOptionsFromEnv(env)).toThrow(message);
  });

  it('refuses a system topic that is not <resourceGroup>/<name>', () => {
    for (const v of ['topic', 'rg/', '/t', 'a/b/c']) {
      expect(() => azureOptionsFromEnv({ LBSYNC_AZURE_SYSTEM_TOPIC: v })).toThrow(
        /^LBSYNC_AZURE_SYSTEM_TOPIC: must be <resourceGroup>\/<name>/,
      );
    }
  });

  it('refuses a malformed GCP switch, naming the variable', () => {
    expect(() => gcpOptionsFromEnv({ LBSYNC_GCP_ENABLE_SERVICES: 'no' })).toThrow(
      /^LBSYNC_GCP_ENABLE_SERVICES: must be 1, 0, true or false/,
    );
  });
});
