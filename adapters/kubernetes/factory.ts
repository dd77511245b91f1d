import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { InputError, SpecError } from '../../core/errors.js';
import type { HealthCheckDef } from '../../core/model.js';
import type { ProviderContext, ProviderFactory, RuntimeExtension } from '../../core/provider.js';
import type { CoreSpec } from '../../core/spec.js';
import { type ClusterClient, createClusterClient } from './client.js';
import {
  ClusterMembershipSource,
  ClusterNodeSource,
  ClusterServiceSource,
  ClusterView,
} from './cluster.js';
import type { ClusterConnection, TokenProvider } from './connect.js';
import type { EligibilityOptions } from './eligibility.js';
import { reservedFromSpec } from './services.js';
import type { KubernetesSpec, ManagedClusterSpec } from './spec.js';
import { ServiceStatusObserver } from './status-observer.js';

/**
 * What a function's cloud is asked to reach: a managed cluster by name
 * (`kubernetes.cluster`: endpoint and CA come from the cloud's cluster API),
 * or an endpoint whose CA the spec gave, signed in to with the function's
 * own identity (`kubernetes.endpoint` without a `tokenFile`).
 */
export interface ClusterAccessRequest {
  readonly cluster?: ManagedClusterSpec;
  readonly endpoint?: { readonly url: string; readonly caPem: string };
}

/** An API server, its CA and a token provider: what a cloud's access hands back. */
export interface ClusterAccessGrant {
  readonly endpoint: string;
  readonly caPem: string;
  readonly tokenProvider: TokenProvider;
  readonly tlsServerName?: string;
}

/**
 * A cloud's way to a cluster with its own identity (EKS, AKS, GKE tokens).
 * Each cloud adapter exports one, typed structurally (cloud folders never
 * import this one); the Kubernetes adapter calls it once per runtime, so what
 * it discovers is cached per cold start.
 */
export type ClusterAccess = (
  request: ClusterAccessRequest,
  ctx: ProviderContext,
  signal?: AbortSignal,
) => Promise<ClusterAccessGrant>;

/**
 * Knobs of the Kubernetes provider that are not in the spec (`tuning.kubernetes`).
 * A function's cloud sets `access` (its identity: EKS, AKS or GKE tokens);
 * tests set `connection` (the fake API server) or `client`.
 */
export interface KubernetesTuning {
  readonly client?: ClusterClient;
  readonly connection?: ClusterConnection;
  /** How this function's cloud reaches `kubernetes.cluster` or `endpoint` with its own identity. */
  readonly access?: ClusterAccess;
  /** Where `--kubeconfig` points (the CLI); overrides the section's way of connecting. */
  readonly kubeconfigPath?: string;
  /** `--context` (the CLI): the kubeconfig context to use instead of its current-context. */
  readonly context?: string;
}

const views = new WeakMap<ProviderContext, Promise<ClusterView>>();

/** `tuning.kubernetes`, typed. */
export function tuningOf(ctx: ProviderContext): KubernetesTuning {
  return (ctx.tuning.kubernetes ?? {}) as KubernetesTuning;
}

function sectionOf(ctx: ProviderContext): KubernetesSpec {
  const k = (ctx.spec as Readonly<Record<string, unknown>>).kubernetes as
    | KubernetesSpec
    | undefined;
  if (k === undefined) {
    throw new SpecError('spec', ['kubernetes: required by workers.source kubernetes']);
  }
  return k;
}

const relative = (path: string, ctx: ProviderContext): string =>
  isAbsolute(path) || ctx.specFile === undefined ? path : resolve(dirname(ctx.specFile), path);

/** How to reach the cluster: tuning first, then the section (kubeconfig, endpoint + token file). */
export async function connectionOf(
  k: KubernetesSpec,
  ctx: ProviderContext,
): Promise<ClusterConnection> {
  const t = tuningOf(ctx);
  if (t.connection !== undefined) return t.connection;
  // A kubeconfig given on the command line comes with its own current-context;
  // the section's `context` names a context of the section's file only.
  if (t.kubeconfigPath !== undefined) {
    return {
      kubeconfigPath: t.kubeconfigPath,
      ...(t.context !== undefined ? { context: t.context } : {}),
    };
  }
  if (k.kubeconfig !== undefined) {
    const context = t.context ?? k.context;
    return {
      kubeconfigPath: relative(k.kubeconfig, ctx),
      ...(context ? { context } : {}),
    };
  }
  if (t.context !== undefined) {
    throw new InputError(
      `a kubeconfig context ("${t.context}") needs a kubeconfig: the kubernetes section connects by ${k.cluster !== undefined ? 'cluster' : 'endpoint'}`,
    );
  }
  if (k.endpoint !== undefined && k.tokenFile !== undefined) {
    const caPem = await caOf(k, ctx);
    const tokenFile = relative(k.tokenFile, ctx);
    // Re-read on every refresh: projected service-account tokens rotate in place.
    return {
      endpoint: k.endpoint,
      caPem,
      tokenProvider: async () => ({ token: (await readFile(tokenFile, 'utf8')).trim() }),
    };
  }
  if (t.access !== undefined) {
    const request: ClusterAccessRequest =
      k.endpoint !== undefined
        ? { endpoint: { url: k.endpoint, caPem: await caOf(k, ctx) } }
        : { ...(k.cluster !== undefined ? { cluster: k.cluster } : {}) };
    return t.access(request, ctx);
  }
  throw new SpecError('spec', [
    `kubernetes: ${k.cluster !== undefined ? 'cluster' : 'endpoint'} needs a cloud identity to mint a token, and this spec names no cloud (cloud ${ctx.spec.cloud}); give a kubeconfig or a tokenFile`,
  ]);
}

/** The CA of an `endpoint` section: `caData`, else the `caFile` (relative to the spec file). */
async function caOf(k: KubernetesSpec, ctx: ProviderContext): Promise<string> {
  return k.caData !== undefined
    ? Buffer.from(k.caData, 'base64').toString('utf8')
    : readFile(relative(k.caFile ?? '', ctx), 'utf8');
}

/** The run-shared view of the cluster for this runtime, connected once. */
function viewOf(ctx: ProviderContext): Promise<ClusterView> {
  let v = views.get(ctx);
  if (v === undefined) {
    v = (async () => {
      const k = sectionOf(ctx);
      const client =
        tuningOf(ctx).client ??
        createClusterClient(await connectionOf(k, ctx), { logger: ctx.logger });
      if (tuningOf(ctx).client === undefined) ctx.onClose(() => client.close());
      const nodes = ctx.spec.workers.source === 'kubernetes' || k.nodeEligibility;
      return new ClusterView(client, { nodes, services: k.discoverServices });
    })();
    views.set(ctx, v);
  }
  return v;
}

function eligibility(k: KubernetesSpec): EligibilityOptions {
  return { nodeEligibility: k.nodeEligibility, ignoreExcludeLabel: k.ignoreExcludeLabel };
}

/** Builds the kubernetes source: the cluster's Nodes as workers. */
export const createSource: ProviderFactory['createSource'] = async (_name, _section, ctx) =>
  new ClusterNodeSource(await viewOf(ctx), eligibility(sectionOf(ctx)), ctx.logger);

/**
 * The `kubernetes:` section: the cloud group's members meet the cluster's
 * Nodes, Services of lbsync's class become frontends, and their status,
 * finalizer and Events are written after each run.
 */
export const extend: ProviderFactory['extend'] = async (
  _name,
  section,
  base,
  ctx,
): Promise<RuntimeExtension> => {
  const k = section as KubernetesSpec;
  const view = await viewOf(ctx);
  const source =
    ctx.spec.workers.source !== 'kubernetes' && k.nodeEligibility
      ? new ClusterMembershipSource(base.source, view, eligibility(k), ctx.logger)
      : base.source;
  if (!k.discoverServices) return { source };
  const services = new ClusterServiceSource(
    view,
    {
      loadBalancerClass: k.loadBalancerClass,
      ...(k.bindAddress !== undefined ? { bindAddress: k.bindAddress } : {}),
      defaultHealthCheck: defaultHealthCheck(ctx.spec),
      reserved: reservedFromSpec(ctx.spec),
    },
    ctx.logger,
  );
  const observer = new ServiceStatusObserver(view.client, services, {
    ...(k.ingress !== undefined ? { ingress: k.ingress } : {}),
  });
  return { source, services, observers: [observer] };
};

function defaultHealthCheck(spec: CoreSpec): HealthCheckDef | null {
  const hc = spec.healthCheck;
  return hc.enabled
    ? { port: hc.port, path: hc.path, interval: hc.interval, rise: hc.rise, fall: hc.fall }
    : null;
}
