// The few SST globals sst.config.ts uses, typed against the real @pulumi
// packages. `sst install` generates the full declarations into
// .sst/platform/config.d.ts, but that needs network and ~0.5 GB; this file
// lets `tsc --noEmit -p .` check the config offline. Under `sst deploy` the
// SST CLI provides the values.
import type * as PulumiAws from '@pulumi/aws';
import type * as PulumiAzureNative from '@pulumi/azure-native';
import type * as PulumiGcp from '@pulumi/gcp';
import type * as Pulumi from '@pulumi/pulumi';

declare global {
  /** What SST passes to `app()`. */
  interface SstAppInput {
    readonly stage: string;
  }
  /** A provider entry of `app().providers`. */
  interface SstProviderConfig {
    readonly version?: string;
    readonly [setting: string]: unknown;
  }
  /** What `app()` returns. */
  interface SstAppConfig {
    readonly name: string;
    readonly removal?: 'remove' | 'retain' | 'retain-all';
    readonly home: 'aws' | 'cloudflare' | 'local';
    readonly providers?: Readonly<Record<string, SstProviderConfig | string | boolean>>;
  }
  /** The object `sst.config.ts` exports. */
  interface SstConfig {
    app(input: SstAppInput): SstAppConfig;
    run(): Promise<Readonly<Record<string, unknown>> | undefined>;
  }
  /** Declares the app (SST global). */
  function $config(config: SstConfig): SstConfig;
  /** The @pulumi/pulumi namespace (SST global). */
  const $util: typeof Pulumi;
  /** The @pulumi/aws namespace, when the aws provider is loaded (SST global). */
  const aws: typeof PulumiAws;
  /** The @pulumi/azure-native namespace, when loaded (SST global). */
  const azurenative: typeof PulumiAzureNative;
  /** The @pulumi/gcp namespace, when loaded (SST global). */
  const gcp: typeof PulumiGcp;
}
