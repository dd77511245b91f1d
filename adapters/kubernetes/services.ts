import { createHash } from 'node:crypto';
import type { V1Service } from '@kubernetes/client-node';
import { InputError } from '../../core/errors.js';
import type { HealthCheckDef, ServiceDef } from '../../core/model.js';
import { PROFILES } from '../../core/profiles.js';
import type { CoreSpec as Spec } from '../../core/spec.js';
import { readAnnotations } from './annotations.js';
import { BindTable, bindFor, bindKey, parseCidr } from './net.js';

/** lbsync's own finalizer: a Service carrying it keeps its frontends until lbsync removed them. */
export const LBSYNC_FINALIZER = 'lbsync.io/load-balancer-cleanup';
/** The upstream service controller's finalizer: never added, never removed by lbsync. */
export const UPSTREAM_FINALIZER = 'service.kubernetes.io/load-balancer-cleanup';
/** Upstream's legacy source-range annotation, read when the spec field is empty (as upstream does). */
export const SOURCE_RANGES_ANNOTATION = 'service.beta.kubernetes.io/load-balancer-source-ranges';

/** A problem with one Service, to become a Warning Event on it. */
export interface ServiceNotice {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** Event reason, CamelCase: `UnsupportedProtocol`, `PortConflict`, `InvalidAnnotation`, ... */
  readonly reason: string;
  readonly message: string;
}

/** Binds and frontend names the spec already holds (its static services, its stats page). */
export interface Reserved {
  readonly binds: BindTable;
  readonly names: ReadonlySet<string>;
}

/** Options of `servicesFromCluster`, from the spec. */
export interface ServicesFromClusterOptions {
  readonly loadBalancerClass: string;
  /** IPv4/IPv6 literal the frontends bind to; unset: every address (`:<port>`). */
  readonly bindAddress?: string;
  /** The spec's kube-proxy check for `externalTrafficPolicy: Cluster`; null when disabled. */
  readonly defaultHealthCheck: HealthCheckDef | null;
  readonly reserved?: Reserved;
}

/** The desired Services and everything the caller must tell the cluster. */
export interface DiscoveredServices {
  /** One per TCP port of every accepted Service, oldest Service first. */
  readonly services: readonly ServiceDef[];
  /** Services that got frontends: patch their status once every LB applied. */
  readonly accepted: readonly V1Service[];
  /** Blocking problems: the Service gets no frontend. */
  readonly refused: readonly ServiceNotice[];
  /** Non-blocking problems (unknown `lbsync.io/` annotations): reported, the Service syncs. */
  readonly warnings: readonly ServiceNotice[];
  /** Carry lbsync's finalizer but are deleted or no longer ours: remove it once every LB applied. */
  readonly cleanup: readonly V1Service[];
  /** Ours and not being deleted, without lbsync's finalizer yet. */
  readonly needFinalizer: readonly V1Service[];
}

// Timing for healthCheckNodePort checks when the spec disabled the kube-proxy check.
const FALLBACK_TIMING = { interval: '2s', rise: 2, fall: 2 } as const;

/** The binds and names the spec's static services and stats page take. */
export function reservedFromSpec(spec: Pick<Spec, 'services' | 'stats'>): Reserved {
  const binds = new BindTable();
  for (const s of spec.services) binds.add(bindKey(s.bind), `the spec's service ${s.name}`);
  if (spec.stats !== undefined) binds.add(bindKey(spec.stats.bind), "the spec's stats page");
  return { binds, names: new Set(spec.services.map((s) => s.name)) };
}

/**
 * Turn the cluster's Services into frontends. Only `type: LoadBalancer` with
 * our loadBalancerClass counts. A problem refuses that Service only; the others
 * still sync. When two Services claim one port, the older (creationTimestamp,
 * then namespace/name) keeps it. Mixed TCP/UDP Services are refused whole, so
 * their status never claims a port the LB does not serve.
 */
export function servicesFromCluster(
  cluster: readonly V1Service[],
  options: ServicesFromClusterOptions,
): DiscoveredServices {
  const out = {
    services: [] as ServiceDef[],
    accepted: [] as V1Service[],
    refused: [] as ServiceNotice[],
    warnings: [] as ServiceNotice[],
    cleanup: [] as V1Service[],
    needFinalizer: [] as V1Service[],
  };
  const binds = options.reserved?.binds.clone() ?? new BindTable();
  const names = new Set(options.reserved?.names ?? []);

  for (const svc of [...cluster].sort(olderFirst)) {
    const finalized = svc.metadata?.finalizers?.includes(LBSYNC_FINALIZER) ?? false;
    const spec = svc.spec;
    const ours =
      spec?.type === 'LoadBalancer' && spec.loadBalancerClass === options.loadBalancerClass;
    // upstream needsCleanup: deleted, or no longer wanting our load balancer.
    if (svc.metadata?.deletionTimestamp != null || !ours || spec === undefined) {
      if (finalized) out.cleanup.push(svc);
      continue;
    }
    if (!finalized) out.needFinalizer.push(svc);

    const ref = refOf(svc);
    const { settings, problems } = readAnnotations(svc.metadata?.annotations);
    for (const p of problems.filter((q) => !q.blocking)) {
      out.warnings.push({ ...ref, reason: 'UnknownAnnotation', message: p.message });
    }
    const refusals = [
      ...problems.filter((p) => p.blocking).map((p) => ['InvalidAnnotation', p.message] as const),
      ...specRefusals(svc),
    ];
    const ranges = sourceRanges(svc);
    if (typeof ranges === 'string') refusals.push(['InvalidSourceRange', ranges]);

    // Binds are checked last and claimed only when nothing else refused the
    // Service, so a Service that serves nothing holds no port.
    const ports = (spec.ports ?? []).map((p) => ({
      port: p.port,
      nodePort: p.nodePort ?? 0,
      bind: bindFor(options.bindAddress, p.port),
    }));
    if (refusals.length === 0) {
      for (const p of ports) {
        const holder = binds.holderOf(bindKey(p.bind));
        if (holder !== undefined) {
          refusals.push(['PortConflict', `port ${p.port} (bind ${p.bind}) is taken by ${holder}`]);
        }
      }
    }
    if (refusals.length > 0) {
      out.refused.push(...refusals.map(([reason, message]) => ({ ...ref, reason, message })));
      continue;
    }

    // Holder text reads in the loser's message: the older Service keeps a port.
    const holder = `Service ${ref.namespace}/${ref.name} (the older Service keeps a port)`;
    for (const p of ports) binds.add(bindKey(p.bind), holder);
    const healthCheck: HealthCheckDef | null =
      spec.externalTrafficPolicy === 'Local'
        ? {
            port: spec.healthCheckNodePort ?? 0,
            path: '/healthz',
            ...timingOf(options.defaultHealthCheck),
          }
        : options.defaultHealthCheck;
    const profile = settings.profile === undefined ? undefined : PROFILES[settings.profile];
    // ClientIP affinity is the Service's contract, so it beats the profile's balance.
    const balance = spec.sessionAffinity === 'ClientIP' ? 'source' : profile?.balance;
    const timeouts =
      profile === undefined
        ? settings.timeouts
        : { ...fourTimeouts(profile.timeouts), ...settings.timeouts };
    for (const p of ports) {
      out.services.push({
        name: frontendName(ref.namespace, ref.name, p.port, names),
        bind: p.bind,
        nodePort: p.nodePort,
        mode: settings.mode ?? 'tcp',
        proxyProtocol: settings.proxyProtocol ?? 'none',
        healthCheck,
        ...(balance !== undefined ? { balance } : {}),
        ...(timeouts !== undefined ? { timeouts } : {}),
        ...(ranges !== undefined ? { sourceRanges: ranges as readonly string[] } : {}),
        origin: { kind: 'kubernetes', ...ref, port: p.port },
      });
    }
    out.accepted.push(svc);
  }
  return out;
}

/** What the Service's spec asks for that lbsync cannot serve, as [reason, message]. */
function specRefusals(svc: V1Service): [string, string][] {
  const out: [string, string][] = [];
  const ports = svc.spec?.ports ?? [];
  if (ports.length === 0) out.push(['NoPorts', 'the Service lists no ports']);
  const notTcp = ports.filter((p) => (p.protocol ?? 'TCP') !== 'TCP');
  if (notTcp.length > 0) {
    const list = notTcp.map((p) => `${p.port}/${p.protocol}`).join(', ');
    out.push([
      'UnsupportedProtocol',
      `lbsync balances TCP only; the Service is refused for ${list}`,
    ]);
  }
  const noNodePort = ports.filter((p) => (p.protocol ?? 'TCP') === 'TCP' && !p.nodePort);
  if (noNodePort.length > 0) {
    out.push([
      'MissingNodePort',
      `port ${noNodePort.map((p) => p.port).join(', ')} has no nodePort (allocateLoadBalancerNodePorts: false); lbsync forwards to <node>:<nodePort>`,
    ]);
  }
  if (svc.spec?.externalTrafficPolicy === 'Local' && !svc.spec.healthCheckNodePort) {
    out.push([
      'MissingHealthCheckNodePort',
      'externalTrafficPolicy: Local needs a healthCheckNodePort to find nodes with ready endpoints',
    ]);
  }
  return out;
}

/**
 * upstream GetLoadBalancerSourceRanges: the spec field, else the legacy
 * annotation (comma-separated); canonical and deduplicated. undefined: no
 * restriction (none given, or one is 0.0.0.0/0, upstream's IsAllowAll).
 * A string: the refusal message.
 */
function sourceRanges(svc: V1Service): readonly string[] | undefined | string {
  const field = svc.spec?.loadBalancerSourceRanges ?? [];
  const annotation = svc.metadata?.annotations?.[SOURCE_RANGES_ANNOTATION]?.trim() ?? '';
  const from = field.length > 0 ? 'loadBalancerSourceRanges' : SOURCE_RANGES_ANNOTATION;
  const specs = field.length > 0 ? field : annotation === '' ? [] : annotation.split(',');
  const out = new Set<string>();
  for (const text of specs) {
    const cidr = parseCidr(text);
    if (cidr === null) {
      return `${from}: ${JSON.stringify(text)} is not a CIDR like 10.0.0.0/24 or 2001:db8::/64`;
    }
    out.add(cidr);
  }
  if (out.size === 0 || out.has('0.0.0.0/0')) return undefined;
  return [...out].sort();
}

const MAX_NAME = 63;

/**
 * `<namespace>-<name>-<port>`, HAProxy-safe and at most 63 characters. Too
 * long, or already taken (by the spec, or by an older Service whose name reads
 * the same, e.g. `a-b`/`c` and `a`/`b-c`): cut and suffixed with a hash of
 * namespace/name/port, so it stays unique and the same across runs.
 */
export function frontendName(
  namespace: string,
  name: string,
  port: number,
  taken: Set<string>,
): string {
  const base = `${namespace}-${name}-${port}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  const digest = createHash('sha256').update(`${namespace}/${name}/${port}`).digest('hex');
  const candidates = [base, ...[8, 12, 16, 32].map((n) => hashed(base, digest.slice(0, n)))];
  const free = candidates.find((c) => c.length <= MAX_NAME && !taken.has(c));
  if (free === undefined)
    throw new InputError(`no unique frontend name for Service ${namespace}/${name} port ${port}`);
  taken.add(free);
  return free;
}

function hashed(base: string, hash: string): string {
  return `${base.slice(0, MAX_NAME - hash.length - 1).replace(/-+$/, '')}-${hash}`;
}

function timingOf(hc: HealthCheckDef | null): Pick<HealthCheckDef, 'interval' | 'rise' | 'fall'> {
  return hc === null ? FALLBACK_TIMING : { interval: hc.interval, rise: hc.rise, fall: hc.fall };
}

function fourTimeouts(
  t: (typeof PROFILES)['web']['timeouts'],
): NonNullable<ServiceDef['timeouts']> {
  return { connect: t.connect, client: t.client, server: t.server, tunnel: t.tunnel };
}

function refOf(svc: V1Service): Pick<ServiceNotice, 'namespace' | 'name' | 'uid'> {
  return {
    namespace: svc.metadata?.namespace ?? '',
    name: svc.metadata?.name ?? '',
    uid: svc.metadata?.uid ?? '',
  };
}

// creationTimestamp is a Date from the client's deserializer, a string in raw JSON.
function olderFirst(a: V1Service, b: V1Service): number {
  const t = (s: V1Service): number => {
    const c = s.metadata?.creationTimestamp;
    const ms = c === undefined ? Number.NaN : new Date(c).getTime();
    return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
  };
  const key = (s: V1Service): string => `${s.metadata?.namespace ?? ''}/${s.metadata?.name ?? ''}`;
  return t(a) - t(b) || (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
}
