import { loadApplyScript, loadDrainScript } from '../core/lb-scripts.js';
import { bindOnce, type Logger } from '../core/log.js';
import type {
  Drainer,
  ServiceSource,
  SyncObserver,
  Transport,
  WorkerSource,
} from '../core/ports.js';
import type { LbScripts, ProviderContext } from '../core/provider.js';
import { loadTemplate } from '../core/render.js';
import { SyncCoalescer, type TriggerDeps } from '../core/trigger.js';
import type { ClusterAccess } from './kubernetes/factory.js';
import { factoryFor, PROVIDERS } from './registry.js';
import type { Spec } from './spec.js';

/*
 * How every entry point (the three functions, the CLI, the bench) builds its
 * adapters: from the spec, through the registry's factories. A function adds
 * its cloud's own ports (lifecycle hooks, a reporter) on top.
 */

/** What `buildRuntime` needs. */
export interface RuntimeInit {
  readonly spec: Spec;
  readonly specFile?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly logger: Logger;
  /** Per-provider knobs that are not in the spec (poll delays, injected clients in tests). */
  readonly tuning?: ProviderContext['tuning'];
  readonly now?: () => number;
  /** How the caller forces past a guard, for refusal messages. */
  readonly forceHint?: string;
  /**
   * Workers to use instead of the spec's source (`--workers`). Provider
   * sections still apply on top: with a `kubernetes:` section these stand in
   * for the cloud group and meet the cluster's Nodes as the group would.
   */
  readonly source?: WorkerSource;
}

/** The trigger deps of a spec, and the context its adapters were built with. */
export interface Runtime extends TriggerDeps {
  readonly spec: Spec;
  readonly context: ProviderContext;
  /** Close what the adapters opened (SDK clients); for short-lived callers such as the CLI. */
  close(): Promise<void>;
}

/** The LB-side scripts, read once per process (the env may point at other copies). */
export function lbScripts(env: NodeJS.ProcessEnv = process.env): () => Promise<LbScripts> {
  let p: Promise<LbScripts> | undefined;
  return () => {
    p ??= Promise.all([
      loadApplyScript(env.LBSYNC_APPLY_SCRIPT),
      loadDrainScript(env.LBSYNC_DRAIN_SCRIPT),
    ]).then(([apply, drain]) => ({ apply, drain }));
    return p;
  };
}

/** True when a transport can also drain a server (the remote-script transports). */
export function isDrainer(t: Transport): t is Transport & Drainer {
  return typeof (t as Partial<Drainer>).drain === 'function';
}

/** What `buildSource` builds: the workers and any discovered Services, no transport. */
export interface SourceRuntime {
  readonly source: WorkerSource;
  /** Services from a provider section (Kubernetes), when the spec has one that discovers them. */
  readonly services?: ServiceSource;
  readonly close: () => Promise<void>;
}

/**
 * The worker source of a spec and what its provider sections add (`lbsync
 * render`: no transport, no SDK of the LBs' cloud).
 */
export async function buildSource(init: RuntimeInit): Promise<SourceRuntime> {
  const closers: (() => void | Promise<void>)[] = [];
  const context = contextOf(init, closers);
  const close = async (): Promise<void> => void (await Promise.all(closers.map((c) => c())));
  try {
    const extended = await extendRuntime(init.spec, await baseSource(init, context), context);
    return {
      source: extended.source,
      ...(extended.services !== undefined ? { services: extended.services } : {}),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The caller's workers, or the spec's source built through the registry. */
async function baseSource(init: RuntimeInit, context: ProviderContext): Promise<WorkerSource> {
  if (init.source !== undefined) return init.source;
  const { spec } = init;
  const factory = await factoryFor('source', spec.workers.source);
  return required(factory.createSource, 'source', spec.workers.source)(
    spec.workers.source,
    spec.workers,
    context,
  );
}

function contextOf(init: RuntimeInit, closers: (() => void | Promise<void>)[]): ProviderContext {
  return {
    spec: init.spec,
    ...(init.specFile !== undefined ? { specFile: init.specFile } : {}),
    env: init.env ?? process.env,
    // Adapters log with the cloud bound, like every pipeline line.
    logger: bindOnce(init.logger, { cloud: init.spec.cloud }),
    scripts: lbScripts(init.env ?? process.env),
    tuning: init.tuning ?? {},
    onClose: (close) => {
      closers.push(close);
    },
  };
}

/** Build the template, the source and the transport of a spec through the registry. */
export async function buildRuntime(init: RuntimeInit): Promise<Runtime> {
  const { spec } = init;
  const closers: (() => void | Promise<void>)[] = [];
  const context = contextOf(init, closers);
  const [template, transportFactory] = await Promise.all([
    loadTemplate(spec, init.specFile),
    factoryFor('transport', spec.loadBalancers.transport),
  ]);
  const [source, transport] = await Promise.all([
    baseSource(init, context),
    required(transportFactory.createTransport, 'transport', spec.loadBalancers.transport)(
      spec.loadBalancers.transport,
      spec.loadBalancers,
      context,
    ),
  ]);
  const extended = await extendRuntime(spec, source, context);
  return {
    spec,
    context,
    template,
    source: extended.source,
    transport,
    ...(extended.services !== undefined ? { services: extended.services } : {}),
    ...(extended.observers.length > 0 ? { observers: extended.observers } : {}),
    ...(isDrainer(transport) ? { drainer: transport } : {}),
    coalescer: new SyncCoalescer(),
    logger: init.logger,
    ...(init.now !== undefined ? { now: init.now } : {}),
    ...(init.forceHint !== undefined ? { forceHint: init.forceHint } : {}),
    close: async () => {
      await Promise.all(closers.splice(0).map((c) => c()));
    },
  };
}

/** Let every provider section present in the spec wrap the source and add services/observers. */
async function extendRuntime(
  spec: Spec,
  base: WorkerSource,
  ctx: ProviderContext,
): Promise<{ source: WorkerSource; services?: ServiceSource; observers: SyncObserver[] }> {
  let source = base;
  let services: ServiceSource | undefined;
  const observers: SyncObserver[] = [];
  for (const entry of PROVIDERS) {
    for (const name of Object.keys(entry.descriptor.sections ?? {})) {
      const section = (spec as Readonly<Record<string, unknown>>)[name];
      if (section === undefined) continue;
      const factory = await entry.load();
      const ext = await factory.extend?.(name, section, { source }, ctx);
      source = ext?.source ?? source;
      if (ext?.services !== undefined) {
        if (services !== undefined) throw new Error(`two sections discover services (${name})`);
        services = ext.services;
      }
      observers.push(...(ext?.observers ?? []));
    }
  }
  return { source, ...(services !== undefined ? { services } : {}), observers };
}

function required<F>(fn: F | undefined, kind: string, name: string): F {
  if (fn === undefined) throw new Error(`the provider of ${kind} ${name} cannot build it`);
  return fn;
}

/** What a test or a custom deployment may override when a function builds its runtime. */
export interface FunctionOverrides {
  readonly spec?: Spec;
  readonly env?: NodeJS.ProcessEnv;
  readonly logger?: Logger;
  readonly tuning?: ProviderContext['tuning'];
  readonly now?: () => number;
}

/**
 * A function's runtime from its environment (LBSYNC_SPEC / LBSYNC_SPEC_FILE)
 * or the overrides: the one cold-start path of every cloud's function.
 * `clusterAccess` is the function's cloud identity for `kubernetes.cluster`
 * (EKS, AKS or GKE tokens and discovery); overrides may still replace it.
 */
export async function buildFunctionRuntime(
  cloud: string,
  forceHint: string,
  o: FunctionOverrides = {},
  clusterAccess?: ClusterAccess,
): Promise<Runtime> {
  const env = o.env ?? process.env;
  const [{ loadSpecFromEnv }, { createLogger }] = await Promise.all([
    import('./spec.js'),
    import('../core/log.js'),
  ]);
  const spec = o.spec ?? (await loadSpecFromEnv(env));
  const logger = o.logger?.child({ cloud }) ?? createLogger({ base: { cloud } });
  const tuning =
    clusterAccess === undefined
      ? o.tuning
      : {
          ...o.tuning,
          kubernetes: { access: clusterAccess, ...o.tuning?.kubernetes },
        };
  return buildRuntime({
    spec,
    env,
    logger,
    forceHint,
    ...(env.LBSYNC_SPEC_FILE ? { specFile: env.LBSYNC_SPEC_FILE } : {}),
    ...(tuning !== undefined ? { tuning } : {}),
    ...(o.now !== undefined ? { now: o.now } : {}),
  });
}
