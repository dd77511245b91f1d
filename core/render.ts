import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { InputError, RenderError } from './errors.js';
import type { Worker } from './model.js';
import { sha256Hex } from './payload.js';
import { resolveTuning, type Tuning } from './profiles.js';
import type { Spec } from './spec.js';
import { assertIpAddress, assertSafeId, hostPort } from './validate.js';

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
  readonly health: { readonly port: number; readonly path: string } | null;
  readonly services: readonly {
    readonly name: string;
    readonly bind: string;
    readonly mode: 'tcp' | 'http';
    readonly http: boolean;
    readonly balance: Tuning['balance'];
    /** `balance source`: rendered with `hash-type consistent`. */
    readonly consistentHash: boolean;
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
export async function loadTemplate(spec: Spec, specFile?: string): Promise<Template> {
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
 * Validate the workers and make them canonical: sorted by id, one entry per id.
 * Throws `InputError` naming the first hostile or conflicting value.
 */
export function canonicalWorkers(workers: readonly Worker[]): readonly Worker[] {
  const byId = new Map<string, Worker>();
  for (const w of workers) {
    assertSafeId(w.id, 'worker id');
    assertIpAddress(w.address, `worker ${w.id} address`);
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

/** Build what the template sees. Pure; exported for tests and custom templates. */
export function buildRenderContext(spec: Spec, workers: readonly Worker[]): RenderContext {
  const sorted = canonicalWorkers(workers);
  const tuning = resolveTuning(spec.profile, spec.tuning);
  const hc = spec.healthCheck;
  // `source` (consistent hash ring) and `first` (lowest id first) choose by
  // server id, so ids must not depend on the order servers arrived in: a
  // server added at runtime, a reload and another LB must agree.
  const ids = tuning.balance === 'source' || tuning.balance === 'first' ? stableIds(sorted) : null;
  const services = spec.services.map((svc) => {
    const parts: string[] = [];
    if (hc.enabled)
      parts.push(`check port ${hc.port} inter ${hc.interval} rise ${hc.rise} fall ${hc.fall}`);
    if (svc.proxyProtocol === 'v1') parts.push('send-proxy');
    if (svc.proxyProtocol === 'v2') parts.push('send-proxy-v2');
    if (tuning.serverMaxconn !== undefined) parts.push(`maxconn ${tuning.serverMaxconn}`);
    // One string per server keeps the template loop cheap at 10,000+ servers.
    const servers = sorted.map((w) => {
      const id = ids === null ? '' : ` id ${ids.get(w.id)}`;
      const line = `${w.id} ${hostPort(w.address, svc.nodePort)}${id}`;
      return w.state === 'draining' ? `${line} weight 0` : line;
    });
    return {
      name: svc.name,
      bind: svc.bind,
      mode: svc.mode,
      http: svc.mode === 'http',
      balance: tuning.balance,
      consistentHash: tuning.balance === 'source',
      defaultServer: parts.join(' ') || 'inter 2s',
      servers,
    };
  });
  return {
    name: spec.name,
    profile: spec.profile,
    tuning,
    runtimeSocket: spec.runtimeSocket,
    hardStopAfter: spec.drain.seconds > 0 ? `${spec.drain.seconds}s` : null,
    workerCount: sorted.length,
    serverCount: sorted.length * services.length,
    stats: spec.stats ?? null,
    health: hc.enabled ? { port: hc.port, path: hc.path } : null,
    services,
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

/** Render the HAProxy config for a spec and worker set. Same input, same bytes. */
export function renderConfig(
  spec: Spec,
  workers: readonly Worker[],
  template: Template,
): RenderedConfig {
  const ctx = buildRenderContext(spec, workers);
  let text: string;
  try {
    text = ctx === undefined ? '' : template.render(ctx);
  } catch (err) {
    throw new RenderError(`template failed to render: ${(err as Error).message}`, { cause: err });
  }
  if (text.trim() === '') throw new RenderError('template rendered an empty config');
  if (!text.endsWith('\n')) text += '\n';
  return {
    text,
    sha256: sha256Hex(text),
    servers: ctx.serverCount,
    workerIds: ctx.services.length > 0 ? canonicalIds(ctx) : [],
  };
}

function canonicalIds(ctx: RenderContext): readonly string[] {
  const first = ctx.services[0];
  return first === undefined ? [] : first.servers.map((s) => s.slice(0, s.indexOf(' ')));
}
