import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { InputError, RenderError } from './errors.js';
import type { ServiceDef, Worker } from './model.js';
import { sha256Hex } from './payload.js';
import { resolveTuning, type Tuning } from './profiles.js';
import type { CoreSpec } from './spec.js';
import { assertSafeId, canonicalWorkerAddress, hostPort } from './validate.js';

/** The bundled template's path. */
export const DEFAULT_TEMPLATE_PATH = fileURLToPath(
  new URL('../templates/haproxy.cfg.hbs', import.meta.url),
);

/** A compiled template; compile once per process (cold start), render many times. */
export interface Template {
  readonly source: string;
  readonly render: (context: RenderContext) => string;
}

/** The data a template sees. Every string in it has been validated. */
export interface RenderContext {
  readonly name: string;
  readonly profile: string;
  readonly tuning: Tuning;
  readonly runtimeSocket: string | null;
  readonly hardStopAfter: string | null;
  readonly workerCount: number;
  readonly serverCount: number;
  readonly stats: { readonly bind: string; readonly prometheus: boolean } | null;
  /** Any service health-checked (kept for custom templates written against the global check). */
  readonly health: { readonly port: number; readonly path: string } | null;
  readonly services: readonly {
    readonly name: string;
    readonly bind: string;
    readonly mode: 'tcp' | 'http';
    readonly http: boolean;
    /** This service's health check; null renders none. */
    readonly health: { readonly port: number; readonly path: string } | null;
    readonly balance: Tuning['balance'];
    /** `balance source`: rendered with `hash-type consistent`. */
    readonly consistentHash: boolean;
    /** `timeout <name> <value>` lines for the frontend (client) and the backend (others). */
    readonly frontendTimeouts: readonly string[];
    readonly backendTimeouts: readonly string[];
    /** Client CIDRs allowed to connect; empty: everyone. */
    readonly sourceRanges: readonly string[];
    readonly defaultServer: string;
    /** `"<id> <ip>:<port>[ id <n>][ weight 0]"`, sorted by id. */
    readonly servers: readonly string[];
  }[];
}

/** A rendered config and what identifies it. */
export interface RenderedConfig {
  readonly text: string;
  readonly sha256: string;
  /** Server lines across all backends. */
  readonly servers: number;
  /** Worker ids in the config, sorted. */
  readonly workerIds: readonly string[];
  /** The validated, canonical workers it was rendered from. */
  readonly workers: readonly Worker[];
}

/** Compile a Handlebars template. `noEscape`: the output is a config file, not HTML. */
export function compileTemplate(source: string): Template {
  try {
    // compile() is lazy; parse() surfaces syntax errors now, at load time.
    Handlebars.parse(source);
    const fn = Handlebars.compile<RenderContext>(source, { noEscape: true, strict: true });
    return { source, render: (ctx) => fn(ctx) };
  } catch (err) {
    throw new RenderError(`template does not compile: ${(err as Error).message}`, { cause: err });
  }
}

/** Load the spec's template (path relative to the spec file), or the bundled one. */
export async function loadTemplate(
  spec: Pick<CoreSpec, 'template'>,
  specFile?: string,
): Promise<Template> {
  let path = DEFAULT_TEMPLATE_PATH;
  if (spec.template !== undefined) {
    path = isAbsolute(spec.template)
      ? spec.template
      : resolve(specFile === undefined ? process.cwd() : dirname(specFile), spec.template);
  }
  let source: string;
  try {
    source = await readFile(path, 'utf8');
  } catch (err) {
    throw new RenderError(`cannot read template ${path}: ${(err as NodeJS.ErrnoException).code}`, {
      cause: err,
    });
  }
  return compileTemplate(source);
}

/**
 * Validate the workers and make them canonical: sorted by id, one entry per
 * id, each address spelled one way (IPv6 per RFC 5952). Every source (spec,
 * `--workers`, workers file, every cloud) passes through here before a config
 * is rendered. Throws `InputError` naming the first hostile or conflicting value.
 */
export function canonicalWorkers(workers: readonly Worker[]): readonly Worker[] {
  const byId = new Map<string, Worker>();
  for (const raw of workers) {
    assertSafeId(raw.id, 'worker id');
    const address = canonicalWorkerAddress(raw.address, `worker ${raw.id} address`);
    const w = address === raw.address ? raw : { ...raw, address };
    if (w.state !== 'serving' && w.state !== 'draining') {
      throw new InputError(`worker ${w.id}: state must be serving or draining`);
    }
    const prev = byId.get(w.id);
    if (prev !== undefined) {
      if (prev.address !== w.address) {
        throw new InputError(
          `worker ${w.id} appears twice with different addresses (${prev.address}, ${w.address})`,
        );
      }
      // Serving wins: a worker listed serving by one group must not be drained by another.
      if (prev.state === 'serving') continue;
    }
    byId.set(w.id, w);
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The spec's static `services:` as service definitions, each with the spec's health check. */
export function servicesOf(spec: CoreSpec): readonly ServiceDef[] {
  const hc = spec.healthCheck;
  const healthCheck = hc.enabled
    ? { port: hc.port, path: hc.path, interval: hc.interval, rise: hc.rise, fall: hc.fall }
    : null;
  return spec.services.map((svc) => ({
    name: svc.name,
    bind: svc.bind,
    nodePort: svc.nodePort,
    mode: svc.mode,
    proxyProtocol: svc.proxyProtocol,
    healthCheck,
    origin: { kind: 'spec' },
  }));
}

const TIMEOUT_ORDER = ['connect', 'server', 'tunnel'] as const;

/**
 * Build what the template sees. Pure; exported for tests and custom
 * templates. `workers` must be canonical (see `canonicalWorkers`);
 * `services` defaults to the spec's static ones.
 */
export function buildRenderContext(
  spec: CoreSpec,
  workers: readonly Worker[],
  services: readonly ServiceDef[] = servicesOf(spec),
): RenderContext {
  const tuning = resolveTuning(spec.profile, spec.tuning);
  // `source` (consistent hash ring) and `first` (lowest id first) choose by
  // server id, so ids must not depend on the order servers arrived in: a
  // server added at runtime, a reload and another LB must agree.
  const byId = services.some((svc) => ['source', 'first'].includes(svc.balance ?? tuning.balance));
  const ids = byId ? stableIds(workers) : null;
  const rendered = services.map((svc) => {
    const balance = svc.balance ?? tuning.balance;
    const parts: string[] = [];
    const hc = svc.healthCheck;
    if (hc !== null)
      parts.push(`check port ${hc.port} inter ${hc.interval} rise ${hc.rise} fall ${hc.fall}`);
    if (svc.proxyProtocol === 'v1') parts.push('send-proxy');
    if (svc.proxyProtocol === 'v2') parts.push('send-proxy-v2');
    if (tuning.serverMaxconn !== undefined) parts.push(`maxconn ${tuning.serverMaxconn}`);
    // One string per server keeps the template loop cheap at 10,000+ servers.
    const servers = workers.map((w) => {
      const id = ids === null ? '' : ` id ${ids.get(w.id)}`;
      const line = `${w.id} ${hostPort(w.address, svc.nodePort)}${id}`;
      return w.state === 'draining' ? `${line} weight 0` : line;
    });
    const t = svc.timeouts ?? {};
    return {
      name: svc.name,
      bind: svc.bind,
      mode: svc.mode,
      http: svc.mode === 'http',
      health: hc === null ? null : { port: hc.port, path: hc.path },
      balance,
      consistentHash: balance === 'source',
      frontendTimeouts: t.client !== undefined ? [`client ${t.client}`] : [],
      backendTimeouts: TIMEOUT_ORDER.flatMap((k) => (t[k] !== undefined ? [`${k} ${t[k]}`] : [])),
      sourceRanges: svc.sourceRanges ?? [],
      defaultServer: parts.join(' ') || 'inter 2s',
      servers,
    };
  });
  const firstHealth = rendered.find((r) => r.health !== null)?.health ?? null;
  return {
    name: spec.name,
    profile: spec.profile,
    tuning,
    runtimeSocket: spec.runtimeSocket,
    hardStopAfter: spec.drain.seconds > 0 ? `${spec.drain.seconds}s` : null,
    workerCount: workers.length,
    serverCount: workers.length * rendered.length,
    stats: spec.stats ?? null,
    health: firstHealth,
    services: rendered,
  };
}

/**
 * A server id per worker from a hash of its id (FNV-1a, 31 bits): the same
 * worker gets the same id in every config. Collisions (rare) are resolved
 * deterministically in sorted order, so an id only moves when another
 * worker collides with it.
 */
export function stableIds(workers: readonly Worker[]): ReadonlyMap<string, number> {
  const taken = new Set<number>();
  const out = new Map<string, number>();
  for (const w of workers) {
    let h = 0x811c9dc5;
    for (let i = 0; i < w.id.length; i++) {
      h ^= w.id.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    let id = (h % 0x7ffffffe) + 1;
    while (taken.has(id)) id = id >= 0x7fffffff ? 1 : id + 1;
    taken.add(id);
    out.set(w.id, id);
  }
  return out;
}

/**
 * Render the HAProxy config for a spec and worker set (validated and made
 * canonical here, once). Same input, same bytes.
 */
export function renderConfig(
  spec: CoreSpec,
  workers: readonly Worker[],
  template: Template,
  services?: readonly ServiceDef[],
): RenderedConfig {
  const canonical = canonicalWorkers(workers);
  const ctx = buildRenderContext(spec, canonical, services);
  let text: string;
  try {
    text = template.render(ctx);
  } catch (err) {
    throw new RenderError(`template failed to render: ${(err as Error).message}`, { cause: err });
  }
  if (text.trim() === '') throw new RenderError('template rendered an empty config');
  if (!text.endsWith('\n')) text += '\n';
  return {
    text,
    sha256: sha256Hex(text),
    servers: ctx.serverCount,
    workerIds: ctx.services.length > 0 ? canonical.map((w) => w.id) : [],
    workers: canonical,
  };
}
