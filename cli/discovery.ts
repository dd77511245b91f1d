import { resolve } from 'node:path';
import type { ClusterAccess } from '../adapters/kubernetes/factory.js';
import type { KubernetesSpec } from '../adapters/kubernetes/spec.js';
import type { Spec } from '../adapters/spec.js';
import type { Worker } from '../core/model.js';
import type { DiscoveryNote, WorkerSource } from '../core/ports.js';
import type { ProviderContext } from '../core/provider.js';

/** The spec's `kubernetes:` section, if it has one. */
export function kubernetesSectionOf(spec: Spec): KubernetesSpec | undefined {
  return spec.kubernetes as KubernetesSpec | undefined;
}

/** `--kubeconfig` and `--context` as given. */
export interface ClusterFlags {
  readonly kubeconfig?: string;
  readonly context?: string;
}

/**
 * How this machine signs in to `kubernetes.cluster` (or an `endpoint` without
 * a `tokenFile`): the same access a function uses, with this machine's own
 * credentials (the AWS SDK chain, DefaultAzureCredential, ADC), as
 * `aws eks get-token`, kubelogin and gke-gcloud-auth-plugin do for kubectl.
 * Each cloud's module loads only for a spec that names that cloud.
 */
export function cliClusterAccess(spec: Spec): ClusterAccess | undefined {
  const k = kubernetesSectionOf(spec);
  if (k === undefined || k.kubeconfig !== undefined || k.tokenFile !== undefined) return undefined;
  const cloud =
    k.cluster === undefined
      ? spec.cloud
      : 'eks' in k.cluster
        ? 'aws'
        : 'aks' in k.cluster
          ? 'azure'
          : 'gcp';
  switch (cloud) {
    case 'aws':
      return async (request, ctx, signal) =>
        (await import('../adapters/aws/eks.js')).eksClusterAccess(request, ctx, signal);
    case 'azure':
      return async (request, ctx, signal) =>
        (await import('../adapters/azure/aks.js')).aksClusterAccess(request, ctx, signal);
    case 'gcp':
      return async (request, ctx, signal) =>
        (await import('../adapters/gcp/gke.js')).gkeClusterAccess(request, ctx, signal);
    default:
      return undefined;
  }
}

/**
 * `tuning.kubernetes` for the flags: a kubeconfig path relative to the
 * current directory, as kubectl reads `--kubeconfig`; without one, the
 * cloud sign-in of `cliClusterAccess`. Returns a usage problem instead when
 * the flags cannot apply to this spec.
 */
export function clusterTuning(
  spec: Spec,
  flags: ClusterFlags,
): { readonly tuning: ProviderContext['tuning'] } | { readonly problem: string } {
  const access = flags.kubeconfig === undefined ? cliClusterAccess(spec) : undefined;
  if (flags.kubeconfig === undefined && flags.context === undefined) {
    return { tuning: access !== undefined ? { kubernetes: { access } } : {} };
  }
  const k = kubernetesSectionOf(spec);
  const flag = flags.kubeconfig !== undefined ? '--kubeconfig' : '--context';
  if (k === undefined) return { problem: `${flag}: the spec has no kubernetes section` };
  if (flags.kubeconfig === undefined && k.kubeconfig === undefined) {
    return {
      problem: `--context needs --kubeconfig: the spec's kubernetes section connects by ${k.cluster !== undefined ? 'cluster' : 'endpoint'}, not a kubeconfig`,
    };
  }
  return {
    tuning: {
      kubernetes: {
        ...(flags.kubeconfig !== undefined ? { kubeconfigPath: resolve(flags.kubeconfig) } : {}),
        ...(flags.context !== undefined ? { context: flags.context } : {}),
      },
    },
  };
}

/** A source that keeps what its last resolve returned, for the CLI's report. */
export class RecordingSource implements WorkerSource {
  /** The workers of the last resolve. */
  public last: readonly Worker[] = [];

  public constructor(private readonly inner: WorkerSource) {}

  /** Resolve through the inner source and keep the answer. */
  public async resolve(signal?: AbortSignal): Promise<readonly Worker[]> {
    this.last = await this.inner.resolve(signal);
    return this.last;
  }

  /** The inner source's notes. */
  public notes(): readonly DiscoveryNote[] {
    return this.inner.notes?.() ?? [];
  }
}
