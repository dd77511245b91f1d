import { TransportError } from '../../core/errors.js';
import type { Spec } from '../../core/spec.js';
import { type LocalLbTarget, LocalTransport } from './transport.js';

/** The local transport for a `cloud: local` spec's `loadBalancers.local` list. */
export function localTransportFromSpec(spec: Spec): LocalTransport {
  const lbs = spec.loadBalancers.local;
  if (lbs === undefined) {
    throw new TransportError('spec has no loadBalancers.local section', { retryable: false });
  }
  const targets: LocalLbTarget[] = lbs.map((lb) => ({
    id: lb.name,
    configPath: lb.configPath,
    stateDir: lb.stateDir,
    reload: lb.reload,
    ...(lb.masterSocket !== undefined ? { masterSocket: lb.masterSocket } : {}),
    runtimeSocket: spec.runtimeSocket,
  }));
  return new LocalTransport(targets);
}
