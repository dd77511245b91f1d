import { Option } from 'commander';
import type { Spec } from '../adapters/spec.js';
import type { ProviderContext } from '../core/provider.js';
import { type ClusterFlags, clusterTuning } from './discovery.js';
import { CliExitError, EXIT } from './exit.js';

/** `--kubeconfig`, for every command that reads the cluster. */
export function kubeconfigOpt(): Option {
  return new Option(
    '--kubeconfig <path>',
    "kubeconfig to reach the cluster with (as kubectl reads it), instead of the spec's kubernetes connection",
  );
}

/** `--context`, beside `--kubeconfig`. */
export function contextOpt(): Option {
  return new Option(
    '--context <name>',
    "kubeconfig context to use (default: its current-context, or the spec's kubernetes.context)",
  );
}

/** `--log-level`; the CLI is silent by default because it prints its own report. */
export function logLevelOpt(): Option {
  return new Option(
    '--log-level <level>',
    'JSON logs on stderr: silent, error, warn, info, debug',
  ).default('silent');
}

/** The spec's `--kubeconfig`/`--context` tuning, or a usage error. */
export function tuningFor(spec: Spec, flags: ClusterFlags): ProviderContext['tuning'] {
  const t = clusterTuning(spec, flags);
  if ('problem' in t) throw new CliExitError(t.problem, EXIT.usage);
  return t.tuning;
}
