import type { SyncReport } from '../core/sync.js';

/** Human-readable per-LB lines for a sync report (the JSON is available with --json). */
export function formatReport(r: SyncReport): string {
  const lines = [
    `${r.name} (${r.cloud}) generation ${r.generation} sha256 ${r.sha256.slice(0, 12)} ` +
      `workers ${r.workers.serving} serving/${r.workers.draining} draining, ${r.servers} servers, ` +
      `payload ${r.payloadBytes} B${r.dryRun ? ', dry run' : ''}${r.forced ? ', forced' : ''}`,
  ];
  for (const lb of r.results) {
    const p = lb.plan;
    const diff =
      p === null
        ? ''
        : p.added !== null
          ? ` +${p.added.length} -${p.removed?.length ?? 0} ~${p.draining.length} draining`
          : ` ${p.liveServers} -> ${p.desiredServers} servers`;
    const sections = p?.sectionsChanged?.length ? ` sections: ${p.sectionsChanged.join(', ')}` : '';
    lines.push(
      `  ${lb.lb}: ${lb.outcome}${p ? ` (plan ${p.action}: ${p.reason};${diff}${sections})` : ''}` +
        `${lb.message && lb.message !== p?.reason ? ` — ${lb.message}` : ''} [${lb.ms} ms]`,
    );
  }
  return lines.join('\n');
}
