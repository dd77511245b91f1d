import type { V1LoadBalancerIngress } from '@kubernetes/client-node';
import { assertIpAddress } from '../../core/validate.js';
import { canonicalIpv6 } from './net.js';

/** What a Service's `status.loadBalancer.ingress` should list: an LB VM address or a DNS name. */
export type IngressTarget = { readonly ip: string } | { readonly hostname: string };

/**
 * The ingress list for the status patch: one entry per distinct target,
 * sorted so the list is stable across runs, IPs with `ipMode: Proxy` (the LB
 * proxies; kube-proxy must not short-circuit the external IP to the Service
 * inside the cluster). The API allows ipMode only beside an ip.
 */
export function ingressFor(
  targets: readonly (string | IngressTarget)[],
): readonly V1LoadBalancerIngress[] {
  const ips = new Set<string>();
  const hostnames = new Set<string>();
  for (const t of targets) {
    if (typeof t === 'string' || 'ip' in t) {
      const ip = assertIpAddress(typeof t === 'string' ? t : t.ip, 'ingress ip');
      ips.add(ip.includes(':') ? canonicalIpv6(ip) : ip);
    } else {
      hostnames.add(t.hostname);
    }
  }
  return [
    ...[...ips].sort().map((ip) => ({ ip, ipMode: 'Proxy' })),
    ...[...hostnames].sort().map((hostname) => ({ hostname })),
  ];
}

/**
 * True when the Service's current ingress already is `desired`, so the patch
 * is skipped. Order-sensitive, like upstream's LoadBalancerStatusEqual
 * (Semantic.DeepEqual, where nil and empty `ports` are equal). One tolerance:
 * a current entry without `ipMode` matches a desired `Proxy`, because API
 * servers without the LoadBalancerIPMode feature (before 1.30) drop the field
 * on write; comparing it strictly would patch, and wake every watcher, forever.
 */
export function ingressEqual(
  current: readonly V1LoadBalancerIngress[] | undefined,
  desired: readonly V1LoadBalancerIngress[],
): boolean {
  const cur = current ?? [];
  if (cur.length !== desired.length) return false;
  return cur.every((c, i) => {
    const d = desired[i];
    if (d === undefined) return false;
    if ((c.ip ?? '') !== (d.ip ?? '') || (c.hostname ?? '') !== (d.hostname ?? '')) return false;
    if (c.ipMode !== undefined && c.ipMode !== d.ipMode) return false;
    if (c.ipMode === undefined && d.ipMode !== undefined && d.ipMode !== 'Proxy') return false;
    return (c.ports ?? []).length === 0 && (d.ports ?? []).length === 0;
  });
}
