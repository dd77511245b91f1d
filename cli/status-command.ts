import type { Command } from 'commander';
import { loadSpec } from '../adapters/spec.js';
import { type ClusterFlags, kubernetesSectionOf } from './discovery.js';
import { CliExitError, EXIT } from './exit.js';
import { statusOf, statusReportOf } from './lb-status.js';
import { contextOpt, kubeconfigOpt, tuningFor } from './options.js';
import { formatServicesStatus } from './output.js';

/** Register `status <spec>`: each LB's live state and, with a kubernetes section, each Service's. */
export function addStatusCommand(program: Command, out: (s: string) => void): void {
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
}
