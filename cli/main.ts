import { Command, CommanderError, Option } from 'commander';
import {
  localSourceFromSpec,
  StaticSource,
  workersFromArgument,
} from '../adapters/local/source.js';
import { errorMessage, LbsyncError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import type { WorkerSource } from '../core/ports.js';
import { loadTemplate, renderConfig } from '../core/render.js';
import { loadSpec, type Spec, specJsonSchema } from '../core/spec.js';
import { runSync } from '../core/sync.js';
import { formatReport } from './output.js';

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

interface CommonOptions {
  readonly workers?: string;
  readonly logLevel: string;
  readonly json?: boolean;
}

async function sourceFor(spec: Spec, specFile: string, workers?: string): Promise<WorkerSource> {
  if (workers !== undefined) return new StaticSource(await workersFromArgument(workers));
  if (spec.cloud !== 'local') {
    throw new CliExitError(
      `spec is for cloud ${spec.cloud}; pass --workers <file|ip,ip,...> or use 'resync --cloud ${spec.cloud}'`,
      EXIT.usage,
    );
  }
  return localSourceFromSpec(spec, specFile);
}

/** Build the `lbsync` command tree; exported for tests. */
export function buildProgram(out: (s: string) => void = (s) => process.stdout.write(s)): Command {
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
    'workers as a YAML/JSON file, or a comma list of ip or id=ip (default: the spec)',
  );

  program
    .command('validate')
    .description('validate a spec file and report every problem as file: path: reason')
    .argument('<spec>', 'path to lbsync.config.yaml')
    .action(async (specFile: string) => {
      const spec = await loadSpec(specFile);
      out(
        `${specFile}: ok (${spec.name}, cloud ${spec.cloud}, profile ${spec.profile}, ${spec.services.length} services)\n`,
      );
    });

  program
    .command('render')
    .description('render the HAProxy config for a spec and worker set to stdout')
    .argument('<spec>', 'path to lbsync.config.yaml')
    .addOption(workersOpt)
    .action(async (specFile: string, opts: CommonOptions) => {
      const spec = await loadSpec(specFile);
      const source = await sourceFor(spec, specFile, opts.workers);
      const rendered = renderConfig(
        spec,
        await source.resolve(),
        await loadTemplate(spec, specFile),
      );
      out(rendered.text);
    });

  for (const name of ['plan', 'apply'] as const) {
    program
      .command(name)
      .description(
        name === 'plan'
          ? 'show what would change on each local LB (no push)'
          : 'resolve, render and push to each local LB through the apply script',
      )
      .argument('<spec>', 'path to lbsync.config.yaml (cloud: local)')
      .addOption(workersOpt)
      .option('--force', 'apply even when a guard (minWorkers, maxRemovalPercent) refuses')
      .option('--json', 'print the report as JSON')
      .addOption(logLevel)
      .action(async (specFile: string, opts: CommonOptions & { force?: boolean }) => {
        const spec = await loadSpec(specFile);
        if (spec.cloud !== 'local') {
          throw new CliExitError(
            `${name} drives local LBs; this spec is for cloud ${spec.cloud}`,
            EXIT.usage,
          );
        }
        const report = await runSync(
          { reason: 'manual', force: opts.force === true, dryRun: name === 'plan' },
          {
            spec,
            template: await loadTemplate(spec, specFile),
            source: await sourceFor(spec, specFile, opts.workers),
            // Loaded lazily: commands that push pay for the transport, the others don't.
            transport: (await import('../adapters/local/from-spec.js')).localTransportFromSpec(
              spec,
            ),
            logger: createLogger({ level: opts.logLevel, fd: 2, base: { cloud: 'local' } }),
          },
        );
        out(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
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
      'run the whole pipeline on this machine: a real HAProxy on loopback, worker servers on 127.0.30.x, scale events, live traffic',
    )
    .option('--port <port>', 'frontend port on 127.0.0.1', (v) => Number(v), 18080)
    .option('--subnet <a.b.c>', 'loopback /24 for the workers', '127.0.30')
    .option('--node-port <port>', 'NodePort the workers answer on', (v) => Number(v), 30080)
    .option('--keep-dir', 'leave the temp dir (configs, state) behind for inspection')
    .addOption(logLevel)
    .action(
      async (opts: {
        port: number;
        subnet: string;
        nodePort: number;
        keepDir?: boolean;
        logLevel: string;
      }) => {
        const { runDemo } = await import('./demo.js');
        const ok = await runDemo({ ...opts, out });
        if (!ok) throw new CliExitError('demo saw failed requests or a failed sync', EXIT.failed);
      },
    );

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
