import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { SpecError } from './errors.js';
import { SAFE_ID } from './validate.js';

/*
 * The spec (`lbsync.config.yaml`) is the one description of a deployment. The
 * zod schema below is the single source: it validates, gives the TypeScript
 * types, and is exported as JSON Schema (`npm run schema`) for editors.
 */

const safeId = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .regex(SAFE_ID, `must be a safe ${what} (letters, digits, '.', '_', ':', '-'; at most 128)`);

const dnsName = z
  .string({ error: 'must be a string' })
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    'must be lowercase letters, digits and -, at most 63',
  );

const port = (what = 'port') =>
  z
    .number({ error: `${what} must be a number` })
    .int(`${what} must be an integer`)
    .min(1, `${what} must be 1-65535`)
    .max(65535, `${what} must be 1-65535`);

const nodePort = z
  .number({ error: 'must be a number' })
  .int('must be an integer')
  .min(30000, 'must be 30000-32767')
  .max(32767, 'must be 30000-32767');

/** `":80"`, `"0.0.0.0:443"`, `"127.0.0.1:18080"`, `"[::]:80"`. */
const bindAddress = z
  .string({ error: 'must be a string like ":80" or "127.0.0.1:8080"' })
  .regex(
    /^(?:\[[0-9a-fA-F:.]+\]|(?:\d{1,3}\.){3}\d{1,3}|\*)?:\d{1,5}$/,
    'must be "[address]:port", for example ":80" or "127.0.0.1:8080"',
  )
  .refine((v) => {
    const p = Number(v.slice(v.lastIndexOf(':') + 1));
    return p >= 1 && p <= 65535;
  }, 'port must be 1-65535');

const duration = z
  .string({ error: 'must be a duration string like "30s"' })
  .regex(/^\d{1,7}(?:ms|s|m|h|d)$/, 'must be a duration like "500ms", "30s", "5m", "1h"');

const absPath = z
  .string({ error: 'must be an absolute path' })
  .regex(/^\/[A-Za-z0-9._/-]{1,200}$/, 'must be an absolute path of letters, digits, . _ / -');

const tagMap = z
  .record(safeId('tag key'), safeId('tag value'), { error: 'must be a map of tag key to value' })
  .refine((t) => Object.keys(t).length <= 10, 'at most 10 tags');

const service = z.strictObject({
  name: dnsName,
  bind: bindAddress,
  nodePort,
  mode: z.enum(['tcp', 'http']).default('tcp'),
  proxyProtocol: z.enum(['none', 'v1', 'v2']).default('none'),
});

const tuning = z.strictObject({
  maxconn: z.number().int().min(1).max(2_000_000).optional(),
  balance: z.enum(['roundrobin', 'leastconn', 'source', 'first']).optional(),
  timeouts: z
    .strictObject({
      connect: duration.optional(),
      client: duration.optional(),
      server: duration.optional(),
      tunnel: duration.optional(),
      httpKeepAlive: duration.optional(),
      clientFin: duration.optional(),
    })
    .optional(),
  tcpKeepAlive: z.boolean().optional(),
  httpKeepAlive: z.boolean().optional(),
  /** Cap on new connections per worker (`maxconn` on each server line). */
  serverMaxconn: z.number().int().min(1).max(1_000_000).optional(),
});

/**
 * The cloud-neutral fields of every spec: what the LB serves and how. Where
 * workers come from (`workers`) and how configs reach the LBs
 * (`loadBalancers`) are provider sections, composed with these by
 * adapters/spec.ts; core never knows which providers exist.
 */
export const coreSpecShape = {
  name: dnsName,
  profile: z.enum(['web', 'api', 'iot'], { error: 'must be one of web, api, iot' }).default('web'),
  tuning: tuning.default({}),
  /** Optional only when a provider section discovers services (the spec schema checks). */
  services: z.array(service).max(100, 'at most 100 services').optional(),
  healthCheck: z
    .strictObject({
      enabled: z.boolean().default(true),
      port: port('healthCheck.port').default(10256),
      path: z
        .string()
        .regex(/^\/[A-Za-z0-9._~/-]{0,200}$/, 'must be an absolute URL path like /healthz')
        .default('/healthz'),
      interval: duration.default('2s'),
      rise: z.number().int().min(1).max(100).default(2),
      fall: z.number().int().min(1).max(100).default(2),
    })
    .default({ enabled: true, port: 10256, path: '/healthz', interval: '2s', rise: 2, fall: 2 }),
  guards: z
    .strictObject({
      minWorkers: z.number().int().min(0).max(100000).default(1),
      maxRemovalPercent: z.number().min(0).max(100).default(50),
    })
    .default({ minWorkers: 1, maxRemovalPercent: 50 }),
  drain: z
    .strictObject({ seconds: z.number().int().min(0).max(3600).default(30) })
    .default({ seconds: 30 }),
  stats: z
    .strictObject({
      bind: bindAddress,
      prometheus: z.boolean().default(true),
    })
    .optional(),
  /** Where the apply script acts on each LB VM (the cloud-init in templates/ sets these up). */
  lbApply: z
    .strictObject({
      configPath: absPath.default('/etc/haproxy/haproxy.cfg'),
      stateDir: absPath.default('/var/lib/lbsync'),
      reload: z.enum(['auto', 'systemd', 'master-socket']).default('auto'),
      masterSocket: absPath.default('/run/haproxy-master.sock'),
    })
    .default({
      configPath: '/etc/haproxy/haproxy.cfg',
      stateDir: '/var/lib/lbsync',
      reload: 'auto',
      masterSocket: '/run/haproxy-master.sock',
    }),
  /** Runtime API socket (drain, session counts); null renders none. */
  runtimeSocket: absPath.nullable().default('/run/haproxy/admin.sock'),
  /** Path to a Handlebars template replacing templates/haproxy.cfg.hbs; relative to the spec file. */
  template: z.string().min(1).optional(),
} as const;

/** The core fields' types, after defaults. */
type CoreFields = z.output<z.ZodObject<typeof coreSpecShape>>;

/** Which function bundle deploys a spec; `local` runs on this machine only (CLI, demo, tests). */
export type Cloud = 'aws' | 'azure' | 'gcp' | 'local';

/**
 * The spec as core sees it: the neutral fields plus the names of the chosen
 * worker source and LB transport. The full type, with every provider
 * section, is `Spec` in adapters/spec.ts; it is assignable to this one.
 */
export interface CoreSpec extends Omit<CoreFields, 'services'> {
  readonly services: readonly ServiceSpec[];
  /** The cloud whose function bundle carries this spec's providers (derived from them). */
  readonly cloud: Cloud;
  readonly workers: { readonly source: string };
  readonly loadBalancers: { readonly transport: string };
}

/**
 * Cross-field checks of the core fields: unique service names and binds.
 * Every spec schema runs it, whatever its providers.
 */
export function refineCoreSpec(
  spec: Pick<CoreFields, 'services' | 'stats'>,
  ctx: z.core.$RefinementCtx,
): void {
  const names = new Set<string>();
  const binds = new Set<string>();
  (spec.services ?? []).forEach((s, i) => {
    if (names.has(s.name)) {
      ctx.addIssue({
        code: 'custom',
        path: ['services', i, 'name'],
        message: `duplicate service name ${s.name}`,
      });
    }
    names.add(s.name);
    const normBind = s.bind.startsWith(':') ? `*${s.bind}` : s.bind;
    if (binds.has(normBind)) {
      ctx.addIssue({
        code: 'custom',
        path: ['services', i, 'bind'],
        message: `bind ${s.bind} already used by another service`,
      });
    }
    binds.add(normBind);
  });
  if (spec.stats !== undefined) {
    const normBind = spec.stats.bind.startsWith(':') ? `*${spec.stats.bind}` : spec.stats.bind;
    if (binds.has(normBind)) {
      ctx.addIssue({
        code: 'custom',
        path: ['stats', 'bind'],
        message: `bind ${spec.stats.bind} already used by a service`,
      });
    }
  }
}

/** Field builders provider sections share, so every section reports errors the same way. */
export const specFields = {
  safeId,
  dnsName,
  port,
  nodePort,
  bindAddress,
  duration,
  absPath,
  tagMap,
} as const;

/** A service entry of the spec. */
export type ServiceSpec = NonNullable<CoreFields['services']>[number];
/** Profile names. */
export type ProfileName = CoreFields['profile'];
/** Where the apply script acts on an LB. */
export type LbApplySpec = CoreFields['lbApply'];
/** Tuning overrides. */
export type TuningSpec = CoreFields['tuning'];

/** Render a zod issue path as `services[1].nodePort`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out === '' ? '(root)' : out;
}

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) return 'required';
  return issue.message;
}

/** Validate already-parsed data against `schema`. Throws `SpecError` listing every problem as `path: reason`. */
export function validateWith<S extends z.ZodType>(
  schema: S,
  data: unknown,
  file: string,
  mapPath: (path: readonly PropertyKey[]) => readonly PropertyKey[] = (p) => p,
): z.output<S> {
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (i) => `${formatPath(mapPath(i.path))}: ${issueMessage(i)}`,
    );
    throw new SpecError(file, [...new Set(problems)]);
  }
  return parsed.data;
}

/** Parse spec YAML (or JSON) text into plain data. Errors name the file, line and column. */
export function parseSpecDocument(text: string, file: string): Record<string, unknown> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, lineCounter });
  if (doc.errors.length > 0) {
    throw new SpecError(
      file,
      doc.errors.map((e) => {
        const at = lineCounter.linePos(e.pos[0]);
        return `line ${at.line}, column ${at.col}: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  const data: unknown = doc.toJS();
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new SpecError(file, ['(root): must be a YAML mapping']);
  }
  return data as Record<string, unknown>;
}

/** Read a spec file's text; a missing or unreadable file is a `SpecError`. */
export async function readSpecFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new SpecError(
      file,
      [`cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`],
      {
        cause: err,
      },
    );
  }
}
