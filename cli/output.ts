import type { V1LoadBalancerIngress } from '@kubernetes/client-node';
import type { Worker } from '../core/model.js';
import type { DiscoveryNote } from '../core/ports.js';
import type { SyncReport } from '../core/sync.js';
import type { ServicesStatus } from './service-status.js';

/** Human-readable per-LB lines for a sync report (the JSON is available with --json). */
export function formatReport(r: SyncReport, workers?: readonly Worker[]): string {
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
  if (workers !== undefined) {
    lines.push(...formatDiscovery(r.notes ?? [], workers).map((l) => `  ${l}`));
  }
  return lines.join('\n');
}

/** How many serving workers `formatDiscovery` names before it says "and N more". */
const NAMED_WORKERS = 20;

/**
 * What the Kubernetes section discovered: a summary line, one line per
 * Service (accepted, refused, warned about) and per node left out or
 * drained, each with the rule that decided, then the serving workers.
 */
export function formatDiscovery(
  notes: readonly DiscoveryNote[],
  workers: readonly Worker[],
): string[] {
  const services = notes.filter((n) => n.kind === 'service');
  const nodes = notes.filter((n) => n.kind === 'node');
  const accepted = new Set(services.filter((n) => n.verdict === 'accepted').map((n) => n.name));
  const refused = new Set(services.filter((n) => n.verdict === 'refused').map((n) => n.name));
  const serving = workers.filter((w) => w.state === 'serving');
  const count = (v: DiscoveryNote['verdict']): number =>
    new Set(nodes.filter((n) => n.verdict === v).map((n) => n.name)).size;
  const lines = [
    `kubernetes: Services ${accepted.size} accepted, ${refused.size} refused; ` +
      `nodes ${count('draining')} draining, ${count('excluded')} left out` +
      `${nodes.length + services.length > 0 ? ' (why, below)' : ''}`,
  ];
  for (const n of services) {
    lines.push(
      n.verdict === 'accepted'
        ? `service ${n.name}: accepted (${n.detail})`
        : `service ${n.name}: ${n.verdict} ${n.rule}: ${n.detail}`,
    );
  }
  // A group member without a Node is named by its worker id.
  for (const n of nodes) {
    lines.push(
      `${n.rule === 'no-node' ? 'worker' : 'node'} ${n.name}: ${n.verdict} ${n.rule}: ${n.detail}`,
    );
  }
  const named = serving.slice(0, NAMED_WORKERS).map((w) => `${w.id} ${w.address}`);
  const more = serving.length - named.length;
  lines.push(
    `serving (${serving.length}): ${named.join(', ') || 'none'}${more > 0 ? `, and ${more} more` : ''}`,
  );
  return lines;
}

const ingressText = (xs: readonly V1LoadBalancerIngress[] | null): string =>
  xs === null
    ? "unknown (an LB's address could not be read; or set kubernetes.ingress)"
    : xs.length === 0
      ? 'none'
      : xs.map((i) => `${i.ip ?? i.hostname}${i.ipMode ? ` (${i.ipMode})` : ''}`).join(', ');

const verdict = (x: boolean | null, yes: string, no: string): string =>
  x === null ? 'not compared' : x ? yes : no;

/** `lbsync status` lines for the Services part: one block per Service. */
export function formatServicesStatus(s: ServicesStatus): string[] {
  const lines = [
    `Services of class ${s.loadBalancerClass} (external IP = status.loadBalancer.ingress, compared with ${s.expectedFrom === 'kubernetes.ingress' ? "the spec's kubernetes.ingress" : "the LBs' addresses"}; frontends compared in each LB's live config):`,
  ];
  if (s.error !== undefined) lines.push(`  error: the cluster could not be read: ${s.error}`);
  else if (s.services.length === 0) lines.push('  none');
  for (const r of s.services) {
    const head =
      r.state === 'accepted'
        ? r.inSync === null
          ? 'no mismatch in what could be compared (see below)'
          : verdict(r.inSync, 'in sync', 'NOT in sync')
        : `${r.state}${r.state === 'refused' ? '' : `, ${verdict(r.inSync, 'in sync', 'NOT in sync')}`}`;
    lines.push(`  ${r.service}: ${head}`);
    for (const why of r.reasons ?? []) lines.push(`    ${why}`);
    lines.push(
      `    external IP ${ingressText(r.ingress)}` +
        (r.state === 'deleting'
          ? ''
          : `; lbsync publishes ${ingressText(r.expected)}: ${verdict(r.ingressMatches, 'match', 'MISMATCH')}`),
    );
    for (const lb of r.lbs) {
      if (lb.present === null) lines.push(`    ${lb.lb}: frontends ${lb.compared}`);
      else if (lb.present) {
        const fe = r.frontends.map((f) => `fe_${f.name} on ${f.bind}`).join(', ');
        lines.push(
          `    ${lb.lb}: ${fe} present, ${lb.servers} servers${lb.draining ? ` (${lb.draining} draining)` : ''}`,
        );
      } else
        lines.push(`    ${lb.lb}: missing ${(lb.missing ?? []).map((m) => `fe_${m}`).join(', ')}`);
    }
  }
  return lines;
}
