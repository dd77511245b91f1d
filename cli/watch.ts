/*
 * `lbsync watch`: the cluster-side trigger (adapters/kubernetes/watcher.ts)
 * as a long-running command, in the cluster (templates/kubernetes/) or on a
 * laptop with a kubeconfig. Every option also reads an environment variable,
 * which is how the Deployment's ConfigMap and Secret configure it.
 *
 * `lbsync rbac <spec>`: the ClusterRole and ClusterRoleBinding the function
 * needs (adapters/kubernetes/rbac.ts), for `kubectl apply -f -`.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { type Command, Option } from 'commander';
import { type HealthServer, startHealthServer } from '../adapters/kubernetes/health-server.js';
import { bindKey } from '../adapters/kubernetes/net.js';
import {
  defaultFunctionSubject,
  functionRbacYaml,
  type RbacSubject,
} from '../adapters/kubernetes/rbac.js';
import { DEFAULT_LOAD_BALANCER_CLASS, type KubernetesSpec } from '../adapters/kubernetes/spec.js';
import { ClusterWatcher } from '../adapters/kubernetes/watcher.js';
import { loadSpec, type Spec } from '../adapters/spec.js';
import { InputError } from '../core/errors.js';
import { createLogger, type Logger } from '../core/log.js';
import type { ResyncTarget } from '../core/resync.js';

/** Options of `lbsync watch`, as commander parses them. */
export interface WatchOptions {
  readonly target: 'aws' | 'azure' | 'gcp';
  readonly url?: string;
  readonly function?: string;
  readonly region?: string;
  readonly key?: string;
  readonly audience?: string;
  readonly idTokenFile?: string;
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly spec?: string;
  readonly loadBalancerClass: string;
  readonly ignoreExcludeLabel?: boolean;
  readonly debounce: number;
  readonly maxWait?: number;
  readonly resyncOnStart: boolean;
  readonly dryRun?: boolean;
  /** `[address]:port` of /readyz and /healthz, or `off`. */
  readonly healthAddr: string;
  readonly healthStall: number;
  readonly healthFailedSends: number;
  readonly logLevel: string;
}

function need(v: string | undefined, what: string): string {
  if (v === undefined || v === '') throw new InputError(`watch --target needs ${what}`);
  return v;
}

/** The resync target of `o`; each cloud's module loads only when used. */
export async function watchTarget(
  o: Pick<
    WatchOptions,
    'target' | 'url' | 'function' | 'region' | 'key' | 'audience' | 'idTokenFile'
  >,
): Promise<ResyncTarget> {
  switch (o.target) {
    case 'aws':
      if (o.url === undefined && o.function === undefined) {
        throw new InputError('watch --target aws needs --url <function URL> or --function <name>');
      }
      return (await import('./aws.js')).awsWatchTarget({
        ...(o.url !== undefined ? { url: o.url } : { function: o.function as string }),
        ...(o.region !== undefined ? { region: o.region } : {}),
      });
    case 'azure':
      return (await import('./azure.js')).azureWatchTarget({
        url: need(o.url, '--url <function URL>'),
        key: need(o.key, '--key <function key> (or LBSYNC_FUNCTION_KEY)'),
      });
    case 'gcp':
      return (await import('./gcp.js')).gcpWatchTarget({
        url: need(o.url, '--url <function URL>'),
        ...(o.audience !== undefined ? { audience: o.audience } : {}),
        ...(o.idTokenFile !== undefined ? { idTokenFile: o.idTokenFile } : {}),
      });
  }
}

/** The kubeconfig: --kubeconfig (and --context), else KUBECONFIG, ~/.kube/config or in-cluster. */
export function watchKubeConfig(o: Pick<WatchOptions, 'kubeconfig' | 'context'>): KubeConfig {
  const kc = new KubeConfig();
  if (o.kubeconfig !== undefined) kc.loadFromFile(o.kubeconfig);
  else kc.loadFromDefault();
  if (o.context !== undefined) {
    if (kc.getContextObject(o.context) === null)
      throw new InputError(`the kubeconfig has no context "${o.context}"`);
    kc.setCurrentContext(o.context);
  }
  if (kc.getCurrentCluster() === null) throw new InputError('the kubeconfig names no cluster');
  return kc;
}

/** Start a watcher from parsed options; the caller stops it. */
export async function startWatch(o: WatchOptions, logger: Logger): Promise<ClusterWatcher> {
  const k = o.spec !== undefined ? (await loadSpec(o.spec)).kubernetes : undefined;
  if (o.spec !== undefined && k === undefined) {
    throw new InputError(`${o.spec}: has no kubernetes section`);
  }
  const section = k as KubernetesSpec | undefined;
  return ClusterWatcher.start({
    kubeConfig: watchKubeConfig(o),
    target: await watchTarget(o),
    filter: {
      loadBalancerClass: section?.loadBalancerClass ?? o.loadBalancerClass,
      nodeEligibility: section?.nodeEligibility ?? true,
      ignoreExcludeLabel: section?.ignoreExcludeLabel ?? o.ignoreExcludeLabel === true,
    },
    debounceMs: o.debounce,
    ...(o.maxWait !== undefined ? { maxWaitMs: o.maxWait } : {}),
    resyncOnStart: o.resyncOnStart,
    dryRun: o.dryRun === true,
    liveness: { stallAfterMs: o.healthStall, failedSends: o.healthFailedSends },
    logger,
  });
}

/** Serve the watcher's /readyz and /healthz unless --health-addr is off. */
export async function serveWatchHealth(
  o: Pick<WatchOptions, 'healthAddr'>,
  watcher: ClusterWatcher,
  logger: Logger,
): Promise<HealthServer | undefined> {
  if (o.healthAddr === 'off') return undefined;
  return startHealthServer({ bind: o.healthAddr, health: () => watcher.health, logger });
}

/** The subject `lbsync rbac` binds: --user / --group, else what the spec tells. */
export function functionSubject(spec: Spec, o: { user?: string; group?: string }): RbacSubject {
  if (o.user !== undefined && o.group !== undefined)
    throw new InputError('rbac: give --user or --group, not both');
  if (o.user !== undefined) return { kind: 'User', name: o.user };
  if (o.group !== undefined) return { kind: 'Group', name: o.group };
  const found = defaultFunctionSubject(spec);
  if (found !== undefined) return found;
  const cluster = (spec.kubernetes as KubernetesSpec | undefined)?.cluster;
  const aks = cluster !== undefined && 'aks' in cluster;
  throw new InputError(
    aks || spec.cloud === 'azure'
      ? "rbac: pass --user <object id of the function's managed identity> (the azure stack output identityPrincipalId)"
      : "rbac: pass --user or --group: the spec does not tell the function's Kubernetes identity",
  );
}

const ms = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 3_600_000)
    throw new InputError(`${v}: must be milliseconds, 0-3600000`);
  return n;
};

const healthAddr = (v: string): string => {
  if (v === 'off') return v;
  bindKey(v); // throws an InputError naming the value
  return v;
};

const count = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InputError(`${v}: must be 1-1000`);
  return n;
};

const env = (flags: string, description: string, name: string): Option =>
  new Option(flags, description).env(name);

/** Add `watch` and `rbac` to the program. */
export function addWatchCommands(program: Command, out: (s: string) => void): void {
  program
    .command('watch')
    .description(
      'watch Nodes and Services and send a debounced, authenticated resync to the deployed function on every change that matters',
    )
    .addOption(
      env('--target <cloud>', 'the function: aws, azure or gcp', 'LBSYNC_WATCH_TARGET')
        .choices(['aws', 'azure', 'gcp'])
        .makeOptionMandatory(),
    )
    .addOption(env('--url <url>', 'the function URL to POST to', 'LBSYNC_WATCH_URL'))
    .addOption(
      env('--function <name|arn>', 'aws: Lambda Invoke instead of a URL', 'LBSYNC_WATCH_FUNCTION'),
    )
    .addOption(env('--region <region>', 'aws: default the URL region', 'LBSYNC_WATCH_REGION'))
    .addOption(env('--key <key>', 'azure: the function key', 'LBSYNC_FUNCTION_KEY'))
    .addOption(env('--audience <aud>', 'gcp: token audience (URL origin)', 'LBSYNC_WATCH_AUDIENCE'))
    .addOption(
      env('--id-token-file <path>', 'gcp: read the identity token here', 'LBSYNC_ID_TOKEN_FILE'),
    )
    .addOption(new Option('--kubeconfig <path>', 'default: KUBECONFIG, ~/.kube/config, in-cluster'))
    .addOption(new Option('--context <name>', 'kubeconfig context'))
    .addOption(
      env(
        '--spec <file>',
        'take the kubernetes section (class, node rules) from it',
        'LBSYNC_SPEC_FILE',
      ),
    )
    .addOption(
      env(
        '--load-balancer-class <class>',
        'Services of this class',
        'LBSYNC_LOAD_BALANCER_CLASS',
      ).default(DEFAULT_LOAD_BALANCER_CLASS),
    )
    .addOption(new Option('--ignore-exclude-label', 'as kubernetes.ignoreExcludeLabel'))
    .addOption(
      env('--debounce <ms>', 'quiet time before a resync', 'LBSYNC_WATCH_DEBOUNCE_MS')
        .argParser(ms)
        .default(1000),
    )
    .addOption(
      env(
        '--max-wait <ms>',
        'resync at the latest this long after a change (default 10 x debounce)',
        'LBSYNC_WATCH_MAX_WAIT_MS',
      ).argParser(ms),
    )
    .option('--no-resync-on-start', 'do not resync once the first lists are in')
    .option('--dry-run', 'ask the function to plan only')
    .addOption(
      env(
        '--health-addr <[address]:port|off>',
        'serve GET /readyz and /healthz here; ":port" is every interface',
        'LBSYNC_WATCH_HEALTH_ADDR',
      )
        .argParser(healthAddr)
        .default(':8081'),
    )
    .addOption(
      env(
        '--health-stall <ms>',
        '/healthz fails once the watches made no progress, or resyncs reached no function, this long',
        'LBSYNC_WATCH_HEALTH_STALL_MS',
      )
        .argParser(ms)
        .default(300_000),
    )
    .addOption(
      env(
        '--health-failed-sends <n>',
        '/healthz counts this many resync requests in a row that reached no function, or were refused, as stuck',
        'LBSYNC_WATCH_HEALTH_FAILED_SENDS',
      )
        .argParser(count)
        .default(3),
    )
    .addOption(
      env('--log-level <level>', 'JSON logs on stderr', 'LBSYNC_LOG_LEVEL').default('info'),
    )
    .action(async (o: WatchOptions) => {
      const logger = createLogger({ level: o.logLevel, fd: 2, base: { component: 'watcher' } });
      const watcher = await startWatch(o, logger);
      let health: HealthServer | undefined;
      try {
        health = await serveWatchHealth(o, watcher, logger);
      } catch (err) {
        watcher.stop();
        throw err;
      }
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          logger.info({ signal }, 'watch: stopping');
          watcher.stop();
          void (health?.close() ?? Promise.resolve()).then(resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });

  program
    .command('rbac')
    .description("print the ClusterRole and ClusterRoleBinding the function's identity needs")
    .argument('<spec>', 'path to lbsync.config.yaml (with a kubernetes section)')
    .option('--user <name>', 'bind this Kubernetes user (AKS: the identity object id)')
    .option('--group <name>', 'bind this Kubernetes group')
    .action(async (specFile: string, o: { user?: string; group?: string }) => {
      const spec = await loadSpec(specFile);
      out(functionRbacYaml(spec, functionSubject(spec, o)));
    });
}
