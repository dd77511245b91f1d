import type { ProviderContext, ProviderFactory } from '../../core/provider.js';
import type { FileSourceSpec, LocalTransportSpec, StaticSourceSpec } from './provider.js';
import { FileSource, StaticSource, workersFilePath } from './source.js';
import { type LocalLbTarget, LocalTransport } from './transport.js';

/** The local transport for a `transport: local` section; `runtimeSocket` is the spec's. */
export function localTransportOf(
  section: LocalTransportSpec,
  runtimeSocket: string | null = null,
): LocalTransport {
  const targets: LocalLbTarget[] = section.lbs.map((lb) => ({
    id: lb.name,
    configPath: lb.configPath,
    stateDir: lb.stateDir,
    reload: lb.reload,
    ...(lb.masterSocket !== undefined ? { masterSocket: lb.masterSocket } : {}),
    ...(lb.address !== undefined ? { address: lb.address } : {}),
    runtimeSocket,
  }));
  return new LocalTransport(targets);
}

/** Builds the static and file sources and the local transport. */
export const createSource: ProviderFactory['createSource'] = async (
  name: string,
  section: unknown,
  ctx: ProviderContext,
) => {
  if (name === 'static') return new StaticSource((section as StaticSourceSpec).workers);
  return new FileSource(workersFilePath((section as FileSourceSpec).path, ctx.specFile));
};

/** Builds the local transport. */
export const createTransport: ProviderFactory['createTransport'] = async (_name, section, ctx) =>
  localTransportOf(section as LocalTransportSpec, ctx.spec.runtimeSocket);
