import { z } from 'zod';
import { SpecError } from '../core/errors.js';
import type { SectionSchema } from '../core/provider.js';
import {
  type Cloud,
  type CoreSpec,
  coreSpecShape,
  parseSpecDocument,
  readSpecFile,
  refineCoreSpec,
  validateWith,
} from '../core/spec.js';
import { descriptors, ownerOf, sourceNames, transportNames } from './registry.js';

/*
 * The whole spec: core's neutral fields plus the provider sections, composed
 * from the registry. `workers` is a union over every provider's worker
 * sources (discriminated by `source`), `loadBalancers` over every transport
 * (by `transport`), so any source can be paired with any transport:
 *
 *   workers:       { source: static, workers: [...] }
 *   loadBalancers: { transport: ssm, instanceIds: [i-0abc...] }
 *
 * The single-cloud form of earlier releases (`cloud: aws`, `workers.aws`,
 * `loadBalancers.aws`) is still accepted: it is rewritten into this form
 * before validation, and `lbsync migrate` prints the rewritten file.
 */

/** A provider section of the spec, as core and other providers see it. */
export type Section<K extends string> = { readonly [P in K]: string } & Readonly<
  Record<string, unknown>
>;

/** A validated spec with defaults applied. Provider sections are typed by their own modules. */
export interface Spec extends CoreSpec {
  readonly workers: Section<'source'>;
  readonly loadBalancers: Section<'transport'>;
  /** Provider-owned top-level sections (for example `kubernetes`). */
  readonly [section: string]: unknown;
}

function union(
  key: 'source' | 'transport',
  schemas: readonly SectionSchema[],
  names: readonly string[],
): z.ZodType {
  const [first, ...rest] = schemas;
  if (first === undefined) throw new Error(`no provider offers a ${key}`);
  return z.discriminatedUnion(key, [first, ...rest] as unknown as [z.ZodObject, ...z.ZodObject[]], {
    error: (issue) =>
      issue.input === undefined || issue.code !== 'invalid_union'
        ? undefined
        : `${key} must be one of ${names.join(', ')}`,
  });
}

function providerSchemas(
  pick: 'sources' | 'transports' | 'sections',
): readonly [string, SectionSchema][] {
  return descriptors().flatMap((d) => Object.entries(d[pick] ?? {}));
}

/** The clouds whose bundles must carry the chosen source and transport (null ones need none). */
export function cloudsOf(spec: Pick<Spec, 'workers' | 'loadBalancers'>): readonly Cloud[] {
  const clouds = new Set<Cloud>();
  for (const owner of [
    ownerOf('source', spec.workers.source),
    ownerOf('transport', spec.loadBalancers.transport),
  ]) {
    if (owner?.descriptor.cloud != null) clouds.add(owner.descriptor.cloud);
  }
  return [...clouds];
}

const CLOUDS = ['aws', 'azure', 'gcp', 'local'] as const;

/** The new-form spec schema, before the derived `cloud`; the JSON Schema is made from it. */
function buildSchema() {
  const sections = Object.fromEntries(
    providerSchemas('sections').map(([name, schema]) => [name, schema.optional()]),
  );
  return z.strictObject({
    ...coreSpecShape,
    /** Optional: derived from the providers; when given it must agree with them. */
    cloud: z.enum(CLOUDS, { error: `must be one of ${CLOUDS.join(', ')}` }).optional(),
    workers: union(
      'source',
      providerSchemas('sources').map(([, s]) => s),
      sourceNames(),
    ),
    loadBalancers: union(
      'transport',
      providerSchemas('transports').map(([, s]) => s),
      transportNames(),
    ),
    ...sections,
  });
}

const newForm = buildSchema();

/** The spec schema: migrates the legacy form, validates, derives `cloud`. */
export const specSchema = z.preprocess(
  migrateLegacySpec,
  newForm
    .superRefine((spec, ctx) => {
      refineCoreSpec(spec, ctx);
      const s = spec as unknown as Spec;
      const kube = (spec as Record<string, unknown>).kubernetes as
        | { readonly discoverServices?: boolean }
        | undefined;
      if (spec.services === undefined && kube === undefined) {
        ctx.addIssue({ code: 'custom', path: ['services'], message: 'required' });
      } else if ((spec.services ?? []).length === 0 && kube?.discoverServices !== true) {
        ctx.addIssue({
          code: 'custom',
          path: ['services'],
          message: 'define at least one service (or let a kubernetes section discover them)',
        });
      }
      for (const d of descriptors()) d.refine?.(spec as Readonly<Record<string, unknown>>, ctx);
      const clouds = cloudsOf(s);
      const derived = clouds.length === 1 ? (clouds[0] as Cloud) : 'local';
      if (spec.cloud !== undefined && spec.cloud !== derived) {
        ctx.addIssue({
          code: 'custom',
          path: ['cloud'],
          message: `the spec's source ${s.workers.source} and transport ${s.loadBalancers.transport} run on ${derived}, not ${spec.cloud}`,
        });
      }
    })
    .transform((spec): Spec => {
      const s = spec as unknown as Spec;
      const clouds = cloudsOf(s);
      return {
        ...s,
        services: s.services ?? [],
        cloud: clouds.length === 1 ? (clouds[0] as Cloud) : 'local',
      };
    }),
);

/**
 * Rewrite the single-cloud form (`cloud: <c>`, `workers.<c>`,
 * `loadBalancers.<c>`) into the source/transport form. Anything else passes
 * through unchanged, so the schema reports its problems.
 */
export function migrateLegacySpec(data: unknown): unknown {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return data;
  const d = data as Record<string, unknown>;
  const workers = d.workers as Record<string, unknown> | undefined;
  const lbs = d.loadBalancers as Record<string, unknown> | unknown[] | undefined;
  const isLegacy = (v: unknown, key: string): boolean =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && !(key in v);
  if (!isLegacy(workers, 'source') && !isLegacy(lbs, 'transport')) return data;
  const cloud = typeof d.cloud === 'string' ? d.cloud : undefined;
  const legacy = descriptors().find((p) => p.legacy?.key === cloud)?.legacy;
  if (legacy === undefined) return data;
  const out: Record<string, unknown> = { ...d };
  const missing: string[] = [];
  for (const [field, convert] of [
    ['workers', legacy.workers],
    ['loadBalancers', legacy.loadBalancers],
  ] as const) {
    const section = d[field] as Record<string, unknown> | undefined;
    if (!isLegacy(section, field === 'workers' ? 'source' : 'transport')) continue;
    const old = section?.[legacy.key];
    if (old === undefined || convert === undefined) missing.push(field);
    else out[field] = convert(old);
  }
  if (missing.length > 0) {
    throw new SpecError(
      'spec',
      missing.map((f) => `${f}.${cloud}: required for cloud: ${cloud}`),
    );
  }
  return out;
}

/**
 * Validate already-parsed data. Throws `SpecError` listing every problem as
 * `path: reason`; for a spec in the single-cloud form, paths name the fields
 * as the user wrote them (`workers.aws.region`).
 */
export function validateSpec(data: unknown, file = 'lbsync.config.yaml'): Spec {
  const legacy = legacyOf(data);
  try {
    return validateWith(specSchema, data, file, legacy?.path) as Spec;
  } catch (err) {
    // The legacy migration reports with a placeholder file name; name the real one.
    if (err instanceof SpecError && err.file === 'spec') throw new SpecError(file, err.problems);
    throw err;
  }
}

/** The legacy form's key and how its new paths map back to the old ones, or undefined. */
function legacyOf(
  data: unknown,
): { readonly path: (p: readonly PropertyKey[]) => readonly PropertyKey[] } | undefined {
  if (!isLegacySpec(data)) return undefined;
  const cloud = (data as { cloud?: unknown }).cloud;
  const legacy = descriptors().find((d) => d.legacy?.key === cloud)?.legacy;
  if (legacy === undefined) return undefined;
  return {
    path: (p) => {
      const [section, field, ...rest] = p;
      if (section !== 'workers' && section !== 'loadBalancers') return p;
      if (field === undefined || field === 'source' || field === 'transport')
        return [section, legacy.key];
      const renamed = legacy.renamed?.[String(field)];
      if (renamed === null) return [section, legacy.key, ...rest];
      return [section, legacy.key, renamed ?? field, ...rest];
    },
  };
}

/** Parse YAML text and validate it. Errors name the file, the field path and the reason. */
export function parseSpec(text: string, file = 'lbsync.config.yaml'): Spec {
  return validateSpec(parseSpecDocument(text, file), file);
}

/** Read and validate a spec file. */
export async function loadSpec(file: string): Promise<Spec> {
  return parseSpec(await readSpecFile(file), file);
}

/** True when `data` uses the single-cloud form that `lbsync migrate` rewrites. */
export function isLegacySpec(data: unknown): boolean {
  try {
    return migrateLegacySpec(data) !== data;
  } catch {
    return true; // single-cloud form with its section missing
  }
}

/** The spec as JSON Schema (draft 2020-12), for editor completion. */
export function specJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(newForm, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
}

/**
 * The spec for a deployed function: `LBSYNC_SPEC` holds the YAML (or JSON)
 * text, or `LBSYNC_SPEC_FILE` names a file. The stacks set one of them.
 */
export async function loadSpecFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<Spec> {
  if (env.LBSYNC_SPEC !== undefined && env.LBSYNC_SPEC.trim() !== '') {
    return parseSpec(env.LBSYNC_SPEC, 'LBSYNC_SPEC');
  }
  if (env.LBSYNC_SPEC_FILE !== undefined && env.LBSYNC_SPEC_FILE !== '') {
    return loadSpec(env.LBSYNC_SPEC_FILE);
  }
  throw new SpecError('environment', [
    'set LBSYNC_SPEC (the spec text) or LBSYNC_SPEC_FILE (a path)',
  ]);
}
