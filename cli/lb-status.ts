import { buildRuntime, type Runtime } from '../adapters/runtime.js';
import type { Spec } from '../adapters/spec.js';
import { errorMessage } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import type { LbTarget, LiveState } from '../core/model.js';
import type { Transport } from '../core/ports.js';
import type { ProviderContext } from '../core/provider.js';
import { kubernetesSectionOf } from './discovery.js';
import type { ServicesStatus } from './service-status.js';

/** One LB row of `lbsync status`. */
export interface LbStatus {
  readonly lb: string;
  readonly generation: number;
  readonly sha256: string | null;
  readonly servers: number;
  readonly error?: string;
}

/** One target and what its transport's status said (or why it could not). */
export interface LiveRead {
  readonly target: LbTarget;
  readonly live?: LiveState;
  readonly error?: string;
}

/** Read every target's live state in parallel; an unreadable LB carries `error`, not a throw. */
export async function readLive(transport: Transport): Promise<readonly LiveRead[]> {
  const targets = await transport.targets();
  return Promise.all(
    targets.map(async (target): Promise<LiveRead> => {
      try {
        return { target, live: await transport.status(target) };
      } catch (err) {
        return { target, error: errorMessage(err) };
      }
    }),
  );
}

function rowOf(r: LiveRead): LbStatus {
  if (r.live === undefined) {
    return { lb: r.target.id, generation: 0, sha256: null, servers: 0, error: r.error ?? '' };
  }
  const { generation, sha256, servers } = r.live;
  return { lb: r.target.id, generation, sha256, servers };
}

/** Read every target's live state in parallel; one unreadable LB becomes a row with `error`, not a throw. */
export async function readLbStatuses(transport: Transport): Promise<readonly LbStatus[]> {
  return (await readLive(transport)).map(rowOf);
}

/** Options of `statusOf`. */
export interface StatusOptions {
  readonly specFile?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly tuning?: ProviderContext['tuning'];
}

async function withRuntime<T>(
  spec: Spec,
  o: StatusOptions,
  fn: (rt: Runtime) => Promise<T>,
): Promise<T> {
  const rt = await buildRuntime({ spec, logger: silentLogger(), ...o });
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}

/**
 * The live state of every LB of a spec, read through the spec's own
 * transport (SSM, Run Command, guest attributes, a local script) with this
 * machine's credentials.
 */
export async function statusOf(spec: Spec, o: StatusOptions = {}): Promise<readonly LbStatus[]> {
  return withRuntime(spec, o, (rt) => readLbStatuses(rt.transport));
}

/** What `lbsync status` reports: the LBs and, with a kubernetes section, its Services. */
export interface StatusReport {
  readonly lbs: readonly LbStatus[];
  /** Per Service: the external IP the cluster shows and whether the LBs serve it. */
  readonly services?: ServicesStatus;
}

/**
 * `statusOf` plus, for a spec with a kubernetes section that discovers
 * Services, each Service's `status.loadBalancer.ingress` compared with what
 * lbsync publishes and with each LB's live config.
 */
export async function statusReportOf(spec: Spec, o: StatusOptions = {}): Promise<StatusReport> {
  const k = kubernetesSectionOf(spec);
  return withRuntime(spec, o, async (rt) => {
    const reads = await readLive(rt.transport);
    const lbs = reads.map(rowOf);
    if (k === undefined || !k.discoverServices || rt.services === undefined) return { lbs };
    // Only a kubernetes spec loads the Kubernetes client.
    const { servicesStatusOf } = await import('./service-status.js');
    return { lbs, services: await servicesStatusOf(k, rt.services, reads) };
  });
}
