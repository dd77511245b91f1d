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

const awsWorkers = z.strictObject({
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region like eu-west-1'),
  autoScalingGroups: z
    .array(safeId('Auto Scaling group name'))
    .min(1, 'name at least one Auto Scaling group')
    .max(50, 'at most 50 groups'),
});
const awsLoadBalancers = z
  .strictObject({
    instanceIds: z
      .array(
        z.string().regex(/^i-[0-9a-f]{8,17}$/, 'must be an EC2 instance id like i-0abc12345678'),
      )
      .max(50, 'at most 50 instance ids')
      .optional(),
    tags: tagMap.optional(),
    /**
     * Where payloads too large for one SendCommand go (S3, fetched by the LB
     * through a short-lived presigned URL). Without it, an oversized payload is an error.
     */
    staging: z
      .strictObject({
        bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name'),
        prefix: z
          .string()
          .regex(/^[A-Za-z0-9._/-]{0,200}$/, 'must be letters, digits, . _ / -')
          .default('lbsync/'),
        urlExpiresSeconds: z.number().int().min(60).max(3600).default(300),
      })
      .optional(),
    /** Seconds to wait for one Run Command to finish on an LB. */
    commandTimeoutSeconds: z.number().int().min(10).max(900).default(120),
    /** EventBridge bus for the per-run summary event; null sends none. */
    reportBus: z
      .string()
      .regex(/^[A-Za-z0-9._/:-]{1,1600}$/, 'must be an event bus name or ARN')
      .nullable()
      .default('default'),
  })
  .refine((lb) => (lb.instanceIds?.length ?? 0) > 0 || Object.keys(lb.tags ?? {}).length > 0, {
    message: 'name LB instances by instanceIds or tags',
  });

const azureScaleSet = z.strictObject({
  resourceGroup: safeId('resource group'),
  name: safeId('scale set name'),
  orchestration: z.enum(['uniform', 'flexible']).default('uniform'),
});
const azureWorkers = z.strictObject({
  subscriptionId: z.uuid('must be a subscription id (uuid)'),
  scaleSets: z.array(azureScaleSet).min(1, 'name at least one scale set').max(50),
});
const azureLbVm = z.strictObject({
  resourceGroup: safeId('resource group'),
  name: safeId('VM name'),
  /** Set for an LB that is itself a scale set instance. */
  scaleSet: safeId('scale set name').optional(),
});
const azureLoadBalancers = z.strictObject({
  subscriptionId: z.uuid('must be a subscription id (uuid)').optional(),
  vms: z.array(azureLbVm).min(1, 'name at least one LB VM').max(50),
  /** Blob container for payloads too large to travel inside a Run Command script. */
  staging: z
    .strictObject({
      containerUrl: z
        .url({ protocol: /^https$/, error: 'must be an https URL of a blob container' })
        .refine((u) => new URL(u).pathname.split('/').filter(Boolean).length >= 1, {
          message: 'must name a container, e.g. https://acct.blob.core.windows.net/lbsync',
        }),
      sasMinutes: z.number().int().min(1).max(60).default(15),
    })
    .optional(),
});

const gcpGroup = z
  .strictObject({
    name: dnsName,
    zone: z
      .string()
      .regex(/^[a-z]+-[a-z]+\d+-[a-z]$/, 'must be a zone like europe-west1-b')
      .optional(),
    region: z
      .string()
      .regex(/^[a-z]+-[a-z]+\d+$/, 'must be a region like europe-west1')
      .optional(),
  })
  .refine((g) => (g.zone === undefined) !== (g.region === undefined), {
    message: 'set exactly one of zone (zonal MIG) or region (regional MIG)',
  });
const gcpWorkers = z.strictObject({
  project: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'must be a GCP project id'),
  groups: z.array(gcpGroup).min(1, 'name at least one managed instance group').max(50),
});
const gcpLoadBalancers = z.strictObject({
  project: z
    .string()
    .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'must be a GCP project id')
    .optional(),
  instances: z
    .array(
      z.strictObject({
        name: dnsName,
        zone: z.string().regex(/^[a-z]+-[a-z]+\d+-[a-z]$/, 'must be a zone like europe-west1-b'),
      }),
    )
    .min(1, 'name at least one LB instance')
    .max(50),
});

const localWorker = z.strictObject({
  id: safeId('worker id'),
  address: z.union([z.ipv4(), z.ipv6()], { error: 'must be an IP address' }),
  state: z.enum(['serving', 'draining']).default('serving'),
});
const localWorkers = z
  .strictObject({
    static: z.array(localWorker).max(20000).optional(),
    file: z.string().min(1).optional(),
  })
  .refine((w) => (w.static === undefined) !== (w.file === undefined), {
    message: 'set exactly one of static or file',
  });
const localLb = z.strictObject({
  name: safeId('LB name'),
  configPath: absPath,
  stateDir: absPath,
  reload: z.enum(['auto', 'systemd', 'master-socket']).default('auto'),
  masterSocket: absPath.optional(),
});
const localLoadBalancers = z.array(localLb).min(1, 'name at least one LB').max(50);

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

/** The spec schema: the single source for validation, types and the published JSON Schema. */
export const specSchema = z
  .strictObject({
    name: dnsName,
    cloud: z.enum(['aws', 'azure', 'gcp', 'local'], {
      error: 'must be one of aws, azure, gcp, local',
    }),
    workers: z.strictObject({
      aws: awsWorkers.optional(),
      azure: azureWorkers.optional(),
      gcp: gcpWorkers.optional(),
      local: localWorkers.optional(),
    }),
    loadBalancers: z.strictObject({
      aws: awsLoadBalancers.optional(),
      azure: azureLoadBalancers.optional(),
      gcp: gcpLoadBalancers.optional(),
      local: localLoadBalancers.optional(),
    }),
    profile: z
      .enum(['web', 'api', 'iot'], { error: 'must be one of web, api, iot' })
      .default('web'),
    tuning: tuning.default({}),
    services: z
      .array(service)
      .min(1, 'define at least one service')
      .max(100, 'at most 100 services'),
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
  })
  .superRefine((spec, ctx) => {
    const c = spec.cloud;
    if (spec.workers[c] === undefined) {
      ctx.addIssue({ code: 'custom', path: ['workers', c], message: `required for cloud: ${c}` });
    }
    if (spec.loadBalancers[c] === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['loadBalancers', c],
        message: `required for cloud: ${c}`,
      });
    }
    const names = new Set<string>();
    const binds = new Set<string>();
    spec.services.forEach((s, i) => {
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
  });

/** A validated spec with defaults applied. */
export type Spec = z.output<typeof specSchema>;
/** A service entry of the spec. */
export type ServiceSpec = Spec['services'][number];
/** The `local` load balancer entries. */
export type LocalLbSpec = z.output<typeof localLb>;
/** Profile names. */
export type ProfileName = Spec['profile'];
/** Where the apply script acts on an LB. */
export type LbApplySpec = Spec['lbApply'];
/** The `aws` load balancer section (LB instances, staging, reporting). */
export type AwsLbSpec = NonNullable<Spec['loadBalancers']['aws']>;

/** The Azure LB section of a spec. */
export type AzureLbSpec = NonNullable<Spec['loadBalancers']['azure']>;
/** Tuning overrides. */
export type TuningSpec = Spec['tuning'];

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

/** Validate already-parsed data. Throws `SpecError` listing every problem as `path: reason`. */
export function validateSpec(data: unknown, file = 'lbsync.config.yaml'): Spec {
  const parsed = specSchema.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${formatPath(i.path)}: ${issueMessage(i)}`);
    throw new SpecError(file, [...new Set(problems)]);
  }
  return parsed.data;
}

/** Parse YAML text and validate it. Errors name the file, the field path and the reason. */
export function parseSpec(text: string, file = 'lbsync.config.yaml'): Spec {
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
  return validateSpec(data, file);
}

/** Read and validate a spec file. */
export async function loadSpec(file: string): Promise<Spec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new SpecError(
      file,
      [`cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`],
      {
        cause: err,
      },
    );
  }
  return parseSpec(text, file);
}

/** The spec as JSON Schema (draft 2020-12), for editor completion. */
export function specJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(specSchema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
}
