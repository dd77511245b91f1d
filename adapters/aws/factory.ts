import { SpecError } from '../../core/errors.js';
import type { ProviderContext, ProviderFactory } from '../../core/provider.js';
import { RemoteScriptTransport } from '../../core/remote-script.js';
import type { Backoff } from '../../core/retry.js';
import { type AwsClients, createAwsClients, destroyAwsClients } from './clients.js';
import type { AsgSourceSpec, SsmTransportSpec } from './provider.js';
import { SsmShell } from './shell.js';
import { AsgSource } from './source.js';

/** Knobs of the AWS provider that are not in the spec (`tuning.aws`). */
export interface AwsTuning {
  /** Clients to use instead of building them (tests that close them afterwards). */
  readonly clients?: AwsClients;
  readonly inlineLimitBytes?: number;
  /** GetCommandInvocation poll delays. */
  readonly poll?: Backoff;
}

const clientsByRegion = new Map<string, AwsClients>();

/** The SDK clients for a region, built once per process from the standard configuration chain. */
export function awsClientsFor(ctx: ProviderContext, region: string): AwsClients {
  const injected = tuningOf(ctx).clients;
  if (injected !== undefined) return injected;
  let c = clientsByRegion.get(region);
  if (c === undefined) {
    const made = createAwsClients({ region }, ctx.env);
    clientsByRegion.set(region, made);
    ctx.onClose(() => {
      clientsByRegion.delete(region);
      destroyAwsClients(made);
    });
    c = made;
  }
  return c;
}

/** `tuning.aws`, typed. */
export function tuningOf(ctx: ProviderContext): AwsTuning {
  return (ctx.tuning.aws ?? {}) as AwsTuning;
}

/** The region of the SSM transport: its own, else the aws-asg source's, else AWS_REGION. */
export function ssmRegion(section: SsmTransportSpec, ctx: ProviderContext): string {
  const workers = ctx.spec.workers as Partial<AsgSourceSpec>;
  const region =
    section.region ??
    (workers.source === 'aws-asg' ? workers.region : undefined) ??
    ctx.env.AWS_REGION;
  if (region === undefined || region === '') {
    throw new SpecError('spec', [
      'loadBalancers.region: required when the workers do not come from aws-asg and AWS_REGION is unset',
    ]);
  }
  return region;
}

/** The Auto Scaling source of an aws-asg section. */
export function asgSourceOf(section: AsgSourceSpec, ctx: ProviderContext): AsgSource {
  const c = awsClientsFor(ctx, section.region);
  return new AsgSource({
    autoScaling: c.autoScaling,
    ec2: c.ec2,
    groups: section.autoScalingGroups,
    logger: ctx.logger,
  });
}

/** The SSM Run Command transport of an ssm section. */
export async function ssmTransportOf(
  section: SsmTransportSpec,
  ctx: ProviderContext,
): Promise<RemoteScriptTransport> {
  const c = awsClientsFor(ctx, ssmRegion(section, ctx));
  const t = tuningOf(ctx);
  const scripts = await ctx.scripts();
  return new RemoteScriptTransport(
    new SsmShell({
      ssm: c.ssm,
      ec2: c.ec2,
      s3: c.s3,
      lb: section,
      logger: ctx.logger,
      ...(t.inlineLimitBytes !== undefined ? { inlineLimitBytes: t.inlineLimitBytes } : {}),
      ...(t.poll !== undefined ? { poll: t.poll } : {}),
    }),
    {
      lbApply: ctx.spec.lbApply,
      runtimeSocket: ctx.spec.runtimeSocket,
      applyScript: scripts.apply,
      drainScript: scripts.drain,
      logger: ctx.logger,
      commandTimeoutMs: section.commandTimeoutSeconds * 1000,
    },
  );
}

/** Builds the aws-asg source. */
export const createSource: ProviderFactory['createSource'] = async (_name, section, ctx) =>
  asgSourceOf(section as AsgSourceSpec, ctx);

/** Builds the ssm transport. */
export const createTransport: ProviderFactory['createTransport'] = async (_name, section, ctx) =>
  ssmTransportOf(section as SsmTransportSpec, ctx);
