import { isIP } from 'node:net';
import { z } from 'zod';
import {
  BIND_SHAPE,
  bindsOverlap,
  type CanonicalBind,
  DURATION_SHAPE,
  describeBind,
  durationProblem,
  readBind,
  SAFE_ID,
  workerAddressProblem,
} from './validate.js';

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

/**
 * `":80"`, `"0.0.0.0:443"`, `"127.0.0.1:18080"`, `"[::]:80"`: a literal
 * address HAProxy reads the way we do (see `readBind`), port 1-65535.
 */
const bindAddress = z
  .string({ error: 'must be a string like ":80" or "127.0.0.1:8080"' })
  .regex(BIND_SHAPE, {
    message: 'must be "[address]:port", for example ":80", "10.0.0.5:443" or "[::]:80"',
    abort: true,
  })
  .superRefine((v, ctx) => {
    const read = readBind(v);
    if (!read.ok) ctx.addIssue({ code: 'custom', message: read.problem });
  });

/** `"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"2d"`: 1ms up to HAProxy's timer limit (~24.8 days). */
const duration = z
  .string({ error: 'must be a duration string like "30s"' })
  .regex(DURATION_SHAPE, {
    message: 'must be a duration like "500ms", "30s", "5m", "1h", "2d"',
    abort: true,
  })
  .superRefine((v, ctx) => {
    const problem = durationProblem(v);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
  });

/** A worker's address: literal, unicast, reachable (see `workerAddressProblem`). */
const workerAddress = z.string({ error: 'must be an IP address' }).superRefine((v, ctx) => {
  const problem = workerAddressProblem(v);
  if (problem === null) return;
  ctx.addIssue({
    code: 'custom',
    message:
      isIP(v) === 0
        ? `must be an IP address: ${problem}`
        : `cannot be a worker address: ${problem}`,
  });
});

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
  /** Connection retries on another worker (`retries` with `option redispatch 1`). */
  retries: z.number().int().min(0).max(10).optional(),
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
 * Cross-field checks of the core fields: unique service names, and binds
 * compared after canonicalisation (`:80`, `*:80` and `0.0.0.0:80` are one
 * listener; a wildcard overlaps every address on its port). Every spec
 * schema runs it, whatever its providers.
 */
export function refineCoreSpec(
  spec: Pick<CoreFields, 'services' | 'stats'>,
  ctx: z.core.$RefinementCtx,
): void {
  const services = spec.services ?? [];
  const names = new Set<string>();
  services.forEach((s, i) => {
    if (names.has(s.name)) {
      ctx.addIssue({
        code: 'custom',
        path: ['services', i, 'name'],
        message: `duplicate service name ${s.name}`,
      });
    }
    names.add(s.name);
  });
  const listeners: {
    readonly who: string;
    readonly text: string;
    readonly bind: CanonicalBind;
  }[] = [];
  const add = (who: string, path: readonly (string | number)[], text: string): void => {
    const read = readBind(text);
    if (!read.ok) return; // already reported on the field
    const clash = listeners.find((l) => bindsOverlap(l.bind, read.bind));
    if (clash !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [...path],
        message: bindClash(who, text, read.bind, clash),
      });
    }
    listeners.push({ who, text, bind: read.bind });
  };
  services.forEach((s, i) => {
    add(`service ${s.name}`, ['services', i, 'bind'], s.bind);
  });
  if (spec.stats !== undefined) add('stats', ['stats', 'bind'], spec.stats.bind);
}

function bindClash(
  who: string,
  text: string,
  bind: CanonicalBind,
  other: { readonly who: string; readonly text: string; readonly bind: CanonicalBind },
): string {
  const theirs = `${other.who}'s bind ${JSON.stringify(other.text)}`;
  if (bind.key === other.bind.key) {
    return `bind ${JSON.stringify(text)} is the same listener as ${theirs}: ${who} and ${other.who} would both listen on ${describeBind(bind)}, and HAProxy would split its connections between them`;
  }
  return `bind ${JSON.stringify(text)} overlaps ${theirs} on port ${bind.port}: ${who} listens on ${describeBind(bind)}, ${other.who} on ${describeBind(other.bind)}; HAProxy binds with SO_REUSEPORT, so both would start and the kernel would silently give the shared connections to the more specific socket. Use distinct ports or non-overlapping specific addresses`;
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
  workerAddress,
} as const;

/** A service entry of the spec. */
export type ServiceSpec = NonNullable<CoreFields['services']>[number];
/** Profile names. */
export type ProfileName = CoreFields['profile'];
/** Where the apply script acts on an LB. */
export type LbApplySpec = CoreFields['lbApply'];
/** Tuning overrides. */
export type TuningSpec = CoreFields['tuning'];

export {
  describeFound,
  formatPath,
  MAX_LISTED_PROBLEMS,
  MAX_SPEC_BYTES,
  parseSpecDocument,
  readSpecFile,
  specError,
  validateWith,
} from './spec-input.js';
