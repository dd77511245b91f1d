import { type Command, Option } from 'commander';
import { FUNCTION_CLOUDS } from '../adapters/registry.js';
import { CliExitError, EXIT } from './exit.js';

interface ResyncOptions {
  readonly cloud: (typeof FUNCTION_CLOUDS)[number];
  readonly function?: string;
  readonly region?: string;
  readonly url?: string;
  readonly key?: string;
  readonly idToken?: string;
  readonly force?: boolean;
  readonly dryRun?: boolean;
}

function need(value: string | undefined, flag: string, cloud: string): string {
  if (value === undefined || value === '')
    throw new CliExitError(`resync --cloud ${cloud} needs ${flag}`, EXIT.usage);
  return value;
}

// Each cloud's CLI module is imported only when used, so one command never loads another cloud's SDK.
async function resync(o: ResyncOptions): Promise<unknown> {
  const common = { force: o.force === true, dryRun: o.dryRun === true };
  switch (o.cloud) {
    case 'aws':
      return (await import('./aws.js')).resyncAws({
        function: need(o.function, '--function <name|arn>', 'aws'),
        ...(o.region !== undefined ? { region: o.region } : {}),
        ...common,
      });
    case 'azure':
      return (await import('./azure.js')).resyncAzure({
        url: need(o.url, '--url <function-url>', 'azure'),
        ...(o.key !== undefined ? { key: o.key } : {}),
        ...common,
      });
    case 'gcp':
      return (await import('./gcp.js')).resyncGcp({
        url: need(o.url, '--url <function-url>', 'gcp'),
        ...(o.idToken !== undefined ? { idToken: o.idToken } : {}),
        ...common,
      });
  }
}

/** Register `resync --cloud aws|azure|gcp`: invoke a deployed function and print its report. */
export function addResyncCommand(program: Command, out: (s: string) => void): void {
  program
    .command('resync')
    .description('invoke the deployed lbsync function of a cloud and print its per-LB results')
    .addOption(
      new Option('--cloud <cloud>', 'which deployment')
        .choices([...FUNCTION_CLOUDS])
        .makeOptionMandatory(),
    )
    .option('--function <name|arn>', 'aws: the Lambda function name or ARN')
    .option('--region <region>', 'aws: its region (default: the SDK chain, AWS_REGION)')
    .option('--url <url>', 'azure, gcp: the HTTP resync function URL')
    .option('--key <key>', 'azure: the function key (default: LBSYNC_FUNCTION_KEY)')
    .option('--id-token <token>', 'gcp: identity token (default: LBSYNC_ID_TOKEN, else from ADC)')
    .option('--force', 'apply even when a guard refuses')
    .option('--dry-run', 'resolve, render and plan only')
    .action(async (o: ResyncOptions) => {
      const result = await resync(o);
      out(`${JSON.stringify(result, null, 2)}\n`);
      if (
        typeof result === 'object' &&
        result !== null &&
        (result as { ok?: unknown }).ok === false
      ) {
        throw new CliExitError(
          'the sync did not succeed on every LB (see results above)',
          EXIT.failed,
        );
      }
    });
}
