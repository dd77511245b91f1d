import type { V1LoadBalancerIngress, V1Service } from '@kubernetes/client-node';
import { ClusterServiceSource } from '../adapters/kubernetes/cluster.js';
import { LBSYNC_FINALIZER } from '../adapters/kubernetes/services.js';
import type { KubernetesSpec } from '../adapters/kubernetes/spec.js';
import { ingressEqual, ingressFor } from '../adapters/kubernetes/status.js';
import { errorMessage } from '../core/errors.js';
import type { ServiceDef } from '../core/model.js';
import type { ServiceSource } from '../core/ports.js';
import type { LiveRead } from './lb-status.js';

/*
 * `lbsync status` for the Services lbsync serves: what the cluster shows
 * (status.loadBalancer.ingress) against what lbsync publishes (the spec's
 * kubernetes.ingress, else the LBs' addresses, as the status observer
 * writes it), and each Service's frontends against each LB's live config.
 * Only a transport that returns the live text (local) lets the frontends be
 * compared; for the others the row says so instead of guessing.
 */

/** One frontend of a Service as lbsync renders it. */
export interface ServiceFrontend {
  /** HAProxy section names are `fe_<name>` and `be_<name>`. */
  readonly name: string;
  readonly bind: string;
  readonly port: number;
}

/** A Service's frontends on one LB. */
export interface FrontendsOnLb {
  readonly lb: string;
  /** true: every frontend is in the live config with its bind; null: not compared (see `compared`). */
  readonly present: boolean | null;
  /** Frontends not in the live config (or with another bind). */
  readonly missing?: readonly string[];
  /** `server` lines in the Service's backends, and how many of them drain (weight 0). */
  readonly servers?: number;
  readonly draining?: number;
  /** What was compared on this LB, or why nothing was. */
  readonly compared: string;
}

/** One Service of lbsync's class (or one that still carries lbsync's finalizer). */
export interface ServiceStatusRow {
  /** `namespace/name`. */
  readonly service: string;
  /** accepted: lbsync serves it; refused: it cannot; deleting: its finalizer waits for lbsync. */
  readonly state: 'accepted' | 'refused' | 'deleting';
  /** Why it was refused or warned about, or what the deletion waits for. */
  readonly reasons?: readonly string[];
  /** What the cluster shows: `status.loadBalancer.ingress`. */
  readonly ingress: readonly V1LoadBalancerIngress[];
  /** What lbsync publishes for it; null when the LBs' addresses are not all known. */
  readonly expected: readonly V1LoadBalancerIngress[] | null;
  readonly ingressMatches: boolean | null;
  readonly frontends: readonly ServiceFrontend[];
  readonly lbs: readonly FrontendsOnLb[];
  /** The ingress matches and every LB serves every frontend; null when something could not be compared. */
  readonly inSync: boolean | null;
}

/** The Services part of `lbsync status`. */
export interface ServicesStatus {
  readonly loadBalancerClass: string;
  /** Where the expected ingress comes from. */
  readonly expectedFrom: 'kubernetes.ingress' | 'LB addresses';
  readonly services: readonly ServiceStatusRow[];
  /** The cluster could not be read. */
  readonly error?: string;
}

const keyOf = (s: V1Service): string => `${s.metadata?.namespace}/${s.metadata?.name}`;
const TEXT_COMPARED = "each frontend's section and bind in the live config";

/** Every Service row, from this run's cluster lists and the LBs' live state. */
export async function servicesStatusOf(
  k: KubernetesSpec,
  services: ServiceSource,
  reads: readonly LiveRead[],
): Promise<ServicesStatus> {
  const base = {
    loadBalancerClass: k.loadBalancerClass,
    expectedFrom: k.ingress !== undefined ? 'kubernetes.ingress' : 'LB addresses',
  } as const;
  if (!(services instanceof ClusterServiceSource)) {
    return { ...base, services: [], error: 'the Service source is not the cluster' };
  }
  let defs: readonly ServiceDef[];
  try {
    defs = await services.resolve();
  } catch (err) {
    return { ...base, services: [], error: errorMessage(err) };
  }
  const d = services.last;
  if (d === undefined) return { ...base, services: [] };
  const expected = expectedIngress(k, reads);
  const rows: ServiceStatusRow[] = [];

  for (const svc of d.accepted) {
    const ns = svc.metadata?.namespace ?? '';
    const name = svc.metadata?.name ?? '';
    const frontends = defs
      .filter(
        (s) =>
          s.origin.kind === 'kubernetes' && s.origin.namespace === ns && s.origin.name === name,
      )
      .map((s) => ({
        name: s.name,
        bind: s.bind,
        port: s.origin.kind === 'kubernetes' ? s.origin.port : 0,
      }));
    const warnings = d.warnings
      .filter((w) => w.namespace === ns && w.name === name)
      .map((w) => `${w.reason}: ${w.message}`);
    const ingress = svc.status?.loadBalancer?.ingress ?? [];
    const lbs = reads.map((r) => frontendsOn(r, frontends));
    const ingressMatches = expected === null ? null : ingressEqual(ingress, expected);
    rows.push({
      service: keyOf(svc),
      state: 'accepted',
      ...(warnings.length > 0 ? { reasons: warnings } : {}),
      ingress,
      expected,
      ingressMatches,
      frontends,
      lbs,
      inSync: allOf([ingressMatches, ...lbs.map((l) => l.present)]),
    });
  }

  const refused = new Map<string, string[]>();
  for (const r of d.refused) {
    const key = `${r.namespace}/${r.name}`;
    refused.set(key, [...(refused.get(key) ?? []), `${r.reason}: ${r.message}`]);
  }
  for (const [service, reasons] of refused) {
    const [ns, name] = service.split('/');
    const listed = services.listed.find(
      (s) => s.metadata?.namespace === ns && s.metadata?.name === name,
    );
    const ingress = listed?.status?.loadBalancer?.ingress ?? [];
    const ingressMatches = ingress.length === 0;
    rows.push({
      service,
      state: 'refused',
      reasons,
      ingress,
      expected: [],
      ingressMatches,
      frontends: [],
      lbs: [],
      inSync: ingressMatches,
    });
  }

  for (const svc of d.cleanup) {
    rows.push({
      service: keyOf(svc),
      state: 'deleting',
      reasons: [
        svc.metadata?.deletionTimestamp != null
          ? `deleted; finalizer ${LBSYNC_FINALIZER} held until the next run removes its frontends`
          : `no longer of class ${k.loadBalancerClass}; the next run removes its frontends and the finalizer`,
      ],
      ingress: svc.status?.loadBalancer?.ingress ?? [],
      expected: [],
      ingressMatches: null,
      frontends: [],
      lbs: [],
      inSync: false,
    });
  }
  rows.sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0));
  return { ...base, services: rows };
}

/** What the status observer would write: kubernetes.ingress, else every LB's address. */
function expectedIngress(
  k: KubernetesSpec,
  reads: readonly LiveRead[],
): readonly V1LoadBalancerIngress[] | null {
  if (k.ingress !== undefined) return ingressFor(k.ingress);
  const addresses = reads.map((r) => r.target.address).filter((a) => a !== undefined);
  if (addresses.length === 0 || addresses.length < reads.length) return null;
  return ingressFor(addresses);
}

/** The Service's frontends in one LB's live config, when its transport returned the text. */
function frontendsOn(r: LiveRead, frontends: readonly ServiceFrontend[]): FrontendsOnLb {
  const lb = r.target.id;
  if (r.live === undefined) {
    return { lb, present: null, compared: `not compared: the LB could not be read (${r.error})` };
  }
  if (r.live.text === undefined) {
    return {
      lb,
      present: null,
      compared: `not compared: this transport's status reports generation ${r.live.generation}, sha256 and ${r.live.servers} servers, not the config text`,
    };
  }
  const sections = parseSections(r.live.text);
  const missing: string[] = [];
  let servers = 0;
  let draining = 0;
  for (const f of frontends) {
    const fe = sections.get(`frontend fe_${f.name}`);
    if (
      fe === undefined ||
      !fe.some((l) => l.startsWith('bind ') && l.split(/\s+/)[1] === f.bind)
    ) {
      missing.push(f.name);
    }
    for (const l of sections.get(`backend be_${f.name}`) ?? []) {
      if (!l.startsWith('server ')) continue;
      servers++;
      if (/\sweight 0(\s|$)/.test(l)) draining++;
    }
  }
  return {
    lb,
    present: missing.length === 0,
    ...(missing.length > 0 ? { missing } : {}),
    servers,
    draining,
    compared: TEXT_COMPARED,
  };
}

/** HAProxy sections of a config: `frontend fe_x` -> its trimmed lines. */
export function parseSections(text: string): ReadonlyMap<string, readonly string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trimEnd();
    if (line === '') continue;
    if (!/^\s/.test(line)) {
      current = [];
      out.set(line.trim().split(/\s+/).slice(0, 2).join(' '), current);
    } else current?.push(line.trim());
  }
  return out;
}

function allOf(xs: readonly (boolean | null)[]): boolean | null {
  if (xs.some((x) => x === false)) return false;
  return xs.some((x) => x === null) ? null : true;
}
