import { readFile } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import { stringify } from 'yaml';
import { StaticSource, workersFromArgument } from '../adapters/local/source.js';
import { ownerOf, sourceNames, transportNames } from '../adapters/registry.js';
import { buildRuntime, buildSource, type Runtime } from '../adapters/runtime.js';
import {
  isLegacySpec,
  loadSpec,
  migrateLegacySpec,
  type Spec,
  specJsonSchema,
} from '../adapters/spec.js';
import { errorMessage } from '../core/errors.js';
import { createLogger, type Logger, silentLogger } from '../core/log.js';
import type { ServiceDef, Worker } from '../core/model.js';
import type { DiscoveryNote } from '../core/ports.js';
import { loadTemplate, renderConfig, servicesOf } from '../core/render.js';
import { parseSpecDocument } from '../core/spec.js';
import { runSync } from '../core/sync.js';
import { addDemoCommand } from './demo-command.js';
import { type ClusterFlags, kubernetesSectionOf, RecordingSource } from './discovery.js';
import { CliExitError, EXIT } from './exit.js';
import { contextOpt, kubeconfigOpt, logLevelOpt, tuningFor } from './options.js';
import { formatDiscovery, formatReport } from './output.js';
import { addResyncCommand } from './resync.js';
import { addStatusCommand } from './status-command.js';
import { addWatchCommands } from './watch.js';

export { EXIT } from './exit.js';

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
  const logLevel = logLevelOpt();
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

  addDemoCommand(program, out, logLevel);
  addResyncCommand(program, out);
  addStatusCommand(program, out);
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
