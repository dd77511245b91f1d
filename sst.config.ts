// lbsync deployment: `npm run build && LBSYNC_CLOUD=<aws|azure|gcp> npx sst deploy --stage <stage>`
// (docs/deploy.md). Thin by design: read and validate lbsync.config.yaml, then
// hand SST's provider globals to the cloud's stack in stacks/. Types come from
// types/sst-globals.d.ts, so this file type-checks without `sst install`.
//
// Environment:
//   LBSYNC_CLOUD           the cloud whose provider SST loads (default aws); must match the spec
//   LBSYNC_CONFIG          the spec file (default lbsync.config.yaml)
//   LBSYNC_DIST            the build output (default dist; the stack uses <dist>/package/<cloud>)
//   and the stack options (LBSYNC_SCHEDULE, LBSYNC_AWS_*, LBSYNC_AZURE_*, LBSYNC_GCP_*, ...),
//   read by stacks/env-options.ts and listed in docs/deploy.md.

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
    const env = await import('./stacks/env-options.js');
    if (cloud === 'aws') {
      const { awsStack } = await import('./stacks/aws.js');
      const options = env.awsOptionsFromEnv(process.env);
      return awsStack({ pulumi: $util, aws, spec, packageDir, options }).outputs;
    }
    if (cloud === 'azure') {
      const { azureStack } = await import('./stacks/azure.js');
      const options = env.azureOptionsFromEnv(process.env);
      return azureStack({ pulumi: $util, azure: azurenative, spec, packageDir, options }).outputs;
    }
    const { gcpStack } = await import('./stacks/gcp.js');
    const options = env.gcpOptionsFromEnv(process.env);
    return gcpStack({ pulumi: $util, gcp, spec, packageDir, options }).outputs;
  },
});
