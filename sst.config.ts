// lbsync deployment: `npm run build && LBSYNC_CLOUD=<aws|azure|gcp> npx sst deploy --stage <stage>`
// (docs/deploy.md). Thin by design: read and validate lbsync.config.yaml, then
// hand SST's provider globals to the cloud's stack in stacks/. Types come from
// types/sst-globals.d.ts, so this file type-checks without `sst install`.
//
// Environment:
//   LBSYNC_CLOUD           the cloud whose provider SST loads (default aws); must match the spec
//   LBSYNC_CONFIG          the spec file (default lbsync.config.yaml)
//   LBSYNC_DIST            the build output (default dist; the stack uses <dist>/package/<cloud>)
//   LBSYNC_SCHEDULE        periodic resync: rate()/cron() on AWS, NCRONTAB on Azure, cron on GCP
//   LBSYNC_AWS_LIFECYCLE_HOOKS=1  create terminate hooks for draining (AWS, aws-asg only)
//   LBSYNC_AZURE_LOCATION  region of the Azure resources (required on Azure)
//   LBSYNC_AZURE_STAGING_ACCOUNT_ID  storage account id behind loadBalancers.azure.staging
//   LBSYNC_GCP_REGION, LBSYNC_GCP_LB_SERVICE_ACCOUNT  (GCP, optional)

const PROVIDERS = {
  aws: { aws: { version: '7.48.0' } },
  azure: { 'azure-native': { version: '3.28.0' } },
  gcp: { gcp: { version: '9.37.0' } },
} as const;

type Cloud = keyof typeof PROVIDERS;

function cloudFromEnv(): Cloud {
  const c = process.env.LBSYNC_CLOUD ?? 'aws';
  if (c !== 'aws' && c !== 'azure' && c !== 'gcp') {
    throw new Error(`LBSYNC_CLOUD must be aws, azure or gcp, not ${c}`);
  }
  return c;
}

export default $config({
  app(input) {
    return {
      name: 'lbsync',
      removal: input?.stage === 'production' ? 'retain' : 'remove',
      home: 'local',
      providers: PROVIDERS[cloudFromEnv()],
    };
  },
  async run() {
    const { join, resolve } = await import('node:path');
    const { loadSpec } = await import('./adapters/spec.js');
    const cloud = cloudFromEnv();
    const spec = await loadSpec(process.env.LBSYNC_CONFIG ?? 'lbsync.config.yaml');
    if (spec.cloud !== cloud) {
      throw new Error(`the spec is for cloud ${spec.cloud}; set LBSYNC_CLOUD=${spec.cloud}`);
    }
    const packageDir = resolve(join(process.env.LBSYNC_DIST ?? 'dist', 'package', cloud));
    const env = process.env;
    if (cloud === 'aws') {
      const { awsStack } = await import('./stacks/aws.js');
      return awsStack({
        pulumi: $util,
        aws,
        spec,
        packageDir,
        options: {
          ...(env.LBSYNC_SCHEDULE ? { schedule: env.LBSYNC_SCHEDULE } : {}),
          lifecycleHooks: env.LBSYNC_AWS_LIFECYCLE_HOOKS === '1',
        },
      }).outputs;
    }
    if (cloud === 'azure') {
      const { azureStack } = await import('./stacks/azure.js');
      return azureStack({
        pulumi: $util,
        azure: azurenative,
        spec,
        packageDir,
        options: {
          location: env.LBSYNC_AZURE_LOCATION ?? '',
          ...(env.LBSYNC_AZURE_STAGING_ACCOUNT_ID
            ? { stagingStorageAccountId: env.LBSYNC_AZURE_STAGING_ACCOUNT_ID }
            : {}),
          ...(env.LBSYNC_SCHEDULE ? { schedule: env.LBSYNC_SCHEDULE } : {}),
        },
      }).outputs;
    }
    const { gcpStack } = await import('./stacks/gcp.js');
    return gcpStack({
      pulumi: $util,
      gcp,
      spec,
      packageDir,
      options: {
        ...(env.LBSYNC_SCHEDULE ? { schedule: env.LBSYNC_SCHEDULE } : {}),
        ...(env.LBSYNC_GCP_REGION ? { region: env.LBSYNC_GCP_REGION } : {}),
        ...(env.LBSYNC_GCP_LB_SERVICE_ACCOUNT
          ? { lbServiceAccountEmail: env.LBSYNC_GCP_LB_SERVICE_ACCOUNT }
          : {}),
      },
    }).outputs;
  },
});
