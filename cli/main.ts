import { readFile } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import { stringify } from 'yaml';
import { StaticSource, workersFromArgument } from '../adapters/local/source.js';
import { FUNCTION_CLOUDS, ownerOf, sourceNames, transportNames } from '../adapters/registry.js';
import { buildRuntime, buildSource, type Runtime } from '../adapters/runtime.js';
import {
  isLegacySpec,
  loadSpec,
  migrateLegacySpec,
  type Spec,
  specJsonSchema,
} from '../adapters/spec.js';
import { errorMessage, LbsyncError } from '../core/errors.js';
import { createLogger, type Logger, silentLogger } from '../core/log.js';
import type { ServiceDef, Worker } from '../core/model.js';
import type { DiscoveryNote } from '../core/ports.js';
import type { ProviderContext } from '../core/provider.js';
import { loadTemplate, renderConfig, servicesOf } from '../core/render.js';
import { parseSpecDocument } from '../core/spec.js';
import { runSync } from '../core/sync.js';
import {
  type ClusterFlags,
  clusterTuning,
  kubernetesSectionOf,
  RecordingSource,
} from './discovery.js';
import { statusOf, statusReportOf } from './lb-status.js';
import { formatDiscovery, formatReport, formatServicesStatus } from './output.js';
import { addWatchCommands } from './watch.js';

/** Exit codes of the CLI. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Thrown inside actions to end with a one-line reason and an exit code. */
class CliExitError extends LbsyncError {
  public constructor(
    message: string,
    public readonly code: number,
  ) {
    super(message);
    this.name = 'CliExitError';
  }
}

interface CommonOptions extends ClusterFlags {
  readonly workers?: string;
  readonly logLevel: string;
  readonly json?: boolean;
}

/** A cloud source resolves with the deployed function's identity, not this machine's. */
function refuseCloudSource(spec: Spec, workers: string | undefined): void {
  if (workers !== undefined) return;
  const owner = ownerOf('source', spec.workers.source)?.descriptor.cloud ?? null;
  if (owner === null) return;
  const cloud = spec.cloud === 'local' ? owner : spec.cloud;
  throw new CliExitError(
    `spec is for cloud ${cloud}; pass --workers <file|ip,ip,...> or use 'resync --cloud ${cloud}'`,
    EXIT.usage,
  );
}

/** The spec's `--kubeconfig`/`--context` tuning, or a usage error. */
function tuningFor(spec: Spec, flags: ClusterFlags): ProviderContext['tuning'] {
  const t = clusterTuning(spec, flags);
  if ('problem' in t) throw new CliExitError(t.problem, EXIT.usage);
  return t.tuning;
}

/**
 * The spec's adapters, built through the registry like a function builds
 * them; `--workers` stands in for the spec's worker source (a kubernetes
 * section still applies its node rules to them).
 */
async function runtimeFor(
  spec: Spec,
  specFile: string,
  logger: Logger,
  opts: CommonOptions,
): Promise<Runtime> {
  refuseCloudSource(spec, opts.workers);
  return buildRuntime({
    spec,
    specFile,
    logger,
    tuning: tuningFor(spec, opts),
    ...(opts.workers !== undefined
      ? { source: new StaticSource(await workersFromArgument(opts.workers)) }
      : {}),
  });
}

/** The workers and Services `render` shows: `--workers`, or the spec's (non-cloud) source. */
async function renderInputs(
  spec: Spec,
  specFile: string,
  opts: CommonOptions,
): Promise<{
  readonly workers: readonly Worker[];
  readonly services: readonly ServiceDef[];
  readonly notes: readonly DiscoveryNote[];
}> {
  refuseCloudSource(spec, opts.workers);
  const tuning = tuningFor(spec, opts);
  const { source, services, close } = await buildSource({
    spec,
    specFile,
    logger: silentLogger(),
    tuning,
    ...(opts.workers !== undefined
      ? { source: new StaticSource(await workersFromArgument(opts.workers)) }
      : {}),
  });
  try {
    // Workers first, in the same tick: the cluster's lists start there (adapters/kubernetes/cluster.ts).
    const [workers, discovered] = await Promise.all([
      source.resolve(),
      services?.resolve() ?? Promise.resolve([]),
    ]);
    return {
      workers,
      services: [...servicesOf(spec), ...discovered],
      notes: [...(source.notes?.() ?? []), ...(services?.notes?.() ?? [])],
    };
  } finally {
    await close();
  }
}

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

/** `--kubeconfig`, for every command that reads the cluster. */
function kubeconfigOpt(): Option {
  return new Option(
    '--kubeconfig <path>',
    "kubeconfig to reach the cluster with (as kubectl reads it), instead of the spec's kubernetes connection",
  );
}

/** `--context`, beside `--kubeconfig`. */
function contextOpt(): Option {
  return new Option(
    '--context <name>',
    "kubeconfig context to use (default: its current-context, or the spec's kubernetes.context)",
  );
}

/** Build the `lbsync` command tree; exported for tests. */
export function buildProgram(
  out: (s: string) => void = (s) => process.stdout.write(s),
  err: (s: string) => void = (s) => process.stderr.write(s),
): Command {
  const program = new Command('lbsync')
    .description('Keep self-run HAProxy load balancers in step with autoscaled Kubernetes workers.')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  // Silent by default: the CLI prints its own report; --log-level info adds one JSON line per stage on stderr.
  const logLevel = new Option(
    '--log-level <level>',
    'JSON logs on stderr: silent, error, warn, info, debug',
  ).default('silent');
  const workersOpt = new Option(
    '--workers <file|list>',
    "workers as a YAML/JSON file, or a comma list of ip or id=ip, instead of the spec's source (a kubernetes section's node rules still apply to them)",
  );

  program
    .command('validate')
    .description('validate a spec file and report every problem as file: path: reason')
    .argument('<spec>', 'path to lbsync.config.yaml')
    .action(async (specFile: string) => {
      const spec = await loadSpec(specFile);
      const legacy = isLegacySpec(parseSpecDocument(await readFile(specFile, 'utf8'), specFile));
      out(
        `${specFile}: ok (${spec.name}, workers ${spec.workers.source}, LBs ${spec.loadBalancers.transport}, cloud ${spec.cloud}, profile ${spec.profile}, ${spec.services.length} service${spec.services.length === 1 ? '' : 's'})\n`,
      );
      if (legacy) {
        out(
          `${specFile}: note: this is the single-cloud form of earlier releases; \`lbsync migrate ${specFile}\` prints it in the source/transport form\n`,
        );
      }
    });

  program
    .command('migrate')
    .description('print a spec in the source/transport form (the single-cloud form is rewritten)')
    .argument('<spec>', 'path to lbsync.config.yaml')
    .action(async (specFile: string) => {
      await loadSpec(specFile); // refuse an invalid spec before rewriting it
      const data = parseSpecDocument(await readFile(specFile, 'utf8'), specFile);
      const { cloud: _derived, ...rest } = migrateLegacySpec(data) as Record<string, unknown>;
      out(stringify(rest, { lineWidth: 100 }));
    });

  program
    .command('render')
    .description(
      'render the HAProxy config for a spec and worker set to stdout; with a kubernetes section, what was discovered and why goes to stderr as # comments',
    )
    .argument('<spec>', 'path to lbsync.config.yaml')
    .addOption(workersOpt)
    .addOption(kubeconfigOpt())
    .addOption(contextOpt())
    .action(async (specFile: string, opts: CommonOptions) => {
      const spec = await loadSpec(specFile);
      const input = await renderInputs(spec, specFile, opts);
      out(
        renderConfig(spec, input.workers, await loadTemplate(spec, specFile), input.services).text,
      );
      // HAProxy comments on stderr: stdout stays the config, and `2>&1` still gives one haproxy -c accepts.
      if (kubernetesSectionOf(spec) !== undefined) {
        err(
          `${formatDiscovery(input.notes, input.workers)
            .map((l) => `# ${l}\n`)
            .join('')}`,
        );
      }
    });

  for (const name of ['plan', 'apply'] as const) {
    program
      .command(name)
      .description(
        name === 'plan'
          ? "show what would change on each LB (reads each LB's live state, pushes nothing)"
          : "resolve, render and push to each LB through the spec's transport and the apply script",
      )
      .argument('<spec>', 'path to lbsync.config.yaml')
      .addOption(workersOpt)
      .addOption(kubeconfigOpt())
      .addOption(contextOpt())
      .option('--force', 'apply even when a guard (minWorkers, maxRemovalPercent) refuses')
      .option(
        '--json',
        'print the report as JSON (with a kubernetes section, `notes` says what was discovered and why)',
      )
      .addOption(logLevel)
      .action(async (specFile: string, opts: CommonOptions & { force?: boolean }) => {
        const spec = await loadSpec(specFile);
        const logger = createLogger({ level: opts.logLevel, fd: 2, base: { cloud: spec.cloud } });
        const rt = await runtimeFor(spec, specFile, logger, opts);
        const source = new RecordingSource(rt.source);
        let report: Awaited<ReturnType<typeof runSync>>;
        try {
          report = await runSync(
            { reason: 'manual', force: opts.force === true, dryRun: name === 'plan' },
            { ...rt, source },
          );
        } finally {
          await rt.close();
        }
        const discovered = kubernetesSectionOf(spec) !== undefined ? source.last : undefined;
        out(
          opts.json
            ? `${JSON.stringify(report, null, 2)}\n`
            : `${formatReport(report, discovered)}\n`,
        );
        if (!report.ok) {
          const bad = report.results.filter((r) => !r.ok);
          throw new CliExitError(
            `${bad.length} of ${report.results.length} LB(s) not in sync: ${bad.map((r) => `${r.lb} ${r.outcome}`).join(', ') || 'no LB targets'}`,
            EXIT.failed,
          );
        }
      });
  }

  program
    .command('demo')
    .description(
      'run the whole pipeline on this machine: a real HAProxy on loopback, worker servers on 127.0.30.x, scale events, live traffic; --kubernetes: the Kubernetes act against a simulated API server',
    )
    .option(
      '--port <port>',
      'frontend port on 127.0.0.1 (+1: stats; with --kubernetes, +2: the second Service)',
      (v) => Number(v),
      18080,
    )
    .option('--subnet <a.b.c>', 'loopback /24 for the workers', '127.0.30')
    .option('--node-port <port>', 'NodePort the workers answer on', (v) => Number(v), 30080)
    .option(
      '--kubernetes',
      "the Kubernetes act: Services of type LoadBalancer get their external IP from a simulated API server (lbsync's test fake, on 127.0.0.1), a node tainted by the autoscaler drains, a deleted Service loses its frontend",
    )
    .option(
      '--api-port <port>',
      'with --kubernetes: port of the simulated API server on 127.0.0.1',
      (v) => Number(v),
      16443,
    )
    .option('--keep-dir', 'leave the temp dir (configs, state) behind for inspection')
    .addOption(logLevel)
    .action(
      async (opts: {
        port: number;
        subnet: string;
        nodePort: number;
        kubernetes?: boolean;
        apiPort: number;
        keepDir?: boolean;
        logLevel: string;
      }) => {
        const { kubernetes, apiPort, ...common } = opts;
        const ok = kubernetes
          ? await (await import('./demo-kubernetes.js')).runKubernetesDemo({
              ...common,
              apiPort,
              out,
            })
          : await (await import('./demo.js')).runDemo({ ...common, out });
        if (!ok) throw new CliExitError('demo saw failed requests or a failed sync', EXIT.failed);
      },
    );

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

  program
    .command('status')
    .description(
      "read each LB's live generation, sha256 and server count through the spec's transport; with a kubernetes section, also each Service's external IP (status.loadBalancer.ingress) and whether the LBs serve it",
    )
    .argument('<spec>', 'path to lbsync.config.yaml')
    .addOption(kubeconfigOpt())
    .addOption(contextOpt())
    .option(
      '--json',
      'print JSON: the LB rows as an array, or { lbs, services } for a spec with a kubernetes section',
    )
    .action(async (specFile: string, o: ClusterFlags & { json?: boolean }) => {
      const spec = await loadSpec(specFile);
      const tuning = tuningFor(spec, o);
      const k8s = kubernetesSectionOf(spec) !== undefined;
      const report = k8s
        ? await statusReportOf(spec, { specFile, tuning })
        : { lbs: await statusOf(spec, { specFile, tuning }) };
      const rows = report.lbs;
      if (o.json) out(`${JSON.stringify(k8s ? report : rows, null, 2)}\n`);
      else {
        for (const r of rows) {
          out(
            r.error !== undefined
              ? `${r.lb}: error: ${r.error}\n`
              : `${r.lb}: generation ${r.generation} sha256 ${r.sha256 ?? '-'} servers ${r.servers}\n`,
          );
        }
        if (report.services !== undefined) {
          out(`${formatServicesStatus(report.services).join('\n')}\n`);
        }
      }
      const unreadable = rows.filter((r) => r.error !== undefined).length;
      if (unreadable > 0 || report.services?.error !== undefined) {
        throw new CliExitError(
          [
            unreadable > 0 ? `${unreadable} LB(s) could not be read` : '',
            report.services?.error !== undefined ? 'the cluster could not be read' : '',
          ]
            .filter((x) => x !== '')
            .join('; '),
          EXIT.failed,
        );
      }
    });

  addWatchCommands(program, out);

  program
    .command('providers')
    .description('list the worker sources and LB transports this build knows')
    .action(() => {
      out(`worker sources (workers.source): ${sourceNames().join(', ')}\n`);
      out(`LB transports (loadBalancers.transport): ${transportNames().join(', ')}\n`);
    });

  program
    .command('schema')
    .description('print the spec JSON Schema (for editor completion)')
    .action(() => {
      out(`${JSON.stringify(specJsonSchema(), null, 2)}\n`);
    });

  return program;
}

/** Run the CLI; resolves with the exit code. Errors become one line on stderr. */
export async function main(
  argv: readonly string[],
  err: (s: string) => void = (s) => process.stderr.write(s),
): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version end here too; commander already printed them.
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (e instanceof CliExitError) {
      err(`lbsync: ${e.message}\n`);
      return e.code;
    }
    err(`lbsync: ${errorMessage(e)}\n`);
    return EXIT.failed;
  }
}
