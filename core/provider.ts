import type { z } from 'zod';
import type { Logger } from './log.js';
import type { ServiceSource, SyncObserver, Transport, WorkerSource } from './ports.js';
import type { Cloud, CoreSpec } from './spec.js';

/*
 * A provider is one adapter folder (adapters/<name>/). It contributes spec
 * sections and builds adapters from them. The two halves live in separate
 * modules so a function bundle can read every provider's schema (to validate
 * any spec) while carrying only its own cloud's SDKs:
 *
 *   adapters/<name>/provider.ts  ProviderDescriptor: schemas and constants, no SDK
 *   adapters/<name>/factory.ts   ProviderFactory: constructors, imports the SDK
 *
 * adapters/registry.ts lists every provider once; the spec schema, the CLI,
 * the JSON Schema, the stacks, the build and the lint rules all read it.
 */

/** A spec section schema; its output is the section as the factory receives it. */
export type SectionSchema = z.ZodType<Record<string, unknown>>;

/** The pre-2026-12 single-cloud spec form this provider migrates (`workers.<key>`, `loadBalancers.<key>`). */
export interface LegacyForm {
  /** The old key under `workers` and `loadBalancers` (aws, azure, gcp, local). */
  readonly key: string;
  /** The old `workers.<key>` value as the new `workers` section. */
  readonly workers?: (old: unknown) => Record<string, unknown>;
  /** The old `loadBalancers.<key>` value as the new `loadBalancers` section. */
  readonly loadBalancers?: (old: unknown) => Record<string, unknown>;
  /**
   * New field names inside the sections that had other names in the old
   * form (`workers.workers` was `workers.local.static`); null: the new field
   * wraps what was the old section itself (`loadBalancers.lbs`). Errors in a
   * legacy spec name the fields the user wrote.
   */
  readonly renamed?: Readonly<Record<string, string | null>>;
}

/** What a provider declares; imports no SDK. */
export interface ProviderDescriptor {
  /** The folder name under adapters/. */
  readonly name: string;
  /** The function bundle that carries this provider's SDKs; null: cloud-neutral, in every bundle. */
  readonly cloud: Exclude<Cloud, 'local'> | null;
  /** Worker sources: the `workers.source` value -> the schema of the whole `workers` section. */
  readonly sources?: Readonly<Record<string, SectionSchema>>;
  /** LB transports: the `loadBalancers.transport` value -> the schema of the whole section. */
  readonly transports?: Readonly<Record<string, SectionSchema>>;
  /** Optional top-level sections this provider owns (for example `kubernetes`). */
  readonly sections?: Readonly<Record<string, SectionSchema>>;
  readonly legacy?: LegacyForm;
  /** Cross-section checks this provider needs (a source that needs a section of its own). */
  readonly refine?: (spec: Readonly<Record<string, unknown>>, ctx: z.core.$RefinementCtx) => void;
  /** The npm packages (SDKs) only this provider may import; the lint rules keep them here. */
  readonly packages: readonly string[];
  /** One-line description per source/transport name, for `--help` and the README. */
  readonly describe: Readonly<Record<string, string>>;
}

/** The LB-side scripts every remote transport ships (self-contained text). */
export interface LbScripts {
  readonly apply: string;
  readonly drain: string;
}

/** What a factory gets besides its own section. */
export interface ProviderContext {
  /** The whole validated spec (its provider sections are `unknown` to other providers). */
  readonly spec: CoreSpec & Readonly<Record<string, unknown>>;
  /** The spec file, when there is one (relative paths resolve against it). */
  readonly specFile?: string;
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  /** Loaded once per process; only remote transports read them. */
  readonly scripts: () => Promise<LbScripts>;
  /**
   * Knobs that are not part of the spec (poll intervals, timeouts, endpoints
   * for tests), keyed by provider name; each factory reads only its own.
   */
  readonly tuning: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Register cleanup (closing SDK clients) for short-lived callers such as the CLI. */
  readonly onClose: (close: () => void | Promise<void>) => void;
}

/** What a provider builds; imports its SDK. */
export interface ProviderFactory {
  /** Build the worker source named `name` from its validated section. */
  createSource?(name: string, section: unknown, ctx: ProviderContext): Promise<WorkerSource>;
  /** Build the transport named `name` from its validated section. */
  createTransport?(name: string, section: unknown, ctx: ProviderContext): Promise<Transport>;
  /**
   * For a top-level section of this provider present in the spec: wrap the
   * worker source, add services and observers (Kubernetes filters nodes,
   * discovers Services and writes their status).
   */
  extend?(
    name: string,
    section: unknown,
    base: { readonly source: WorkerSource },
    ctx: ProviderContext,
  ): Promise<RuntimeExtension>;
}

/** What a section's `extend` adds to a runtime. */
export interface RuntimeExtension {
  readonly source?: WorkerSource;
  readonly services?: ServiceSource;
  readonly observers?: readonly SyncObserver[];
}

/** One registry line: the descriptor, and how to load the factory (lazily: bundles stay lean). */
export interface ProviderEntry {
  readonly descriptor: ProviderDescriptor;
  readonly load: () => Promise<ProviderFactory>;
}

/** The spec's `workers` section when its source is `source`, typed by the caller; else undefined. */
export function sourceSection<T>(
  spec: { readonly workers: { readonly source: string } },
  source: string,
): T | undefined {
  return spec.workers.source === source ? (spec.workers as unknown as T) : undefined;
}

/** The spec's `loadBalancers` section when its transport is `transport`; else undefined. */
export function transportSection<T>(
  spec: { readonly loadBalancers: { readonly transport: string } },
  transport: string,
): T | undefined {
  return spec.loadBalancers.transport === transport
    ? (spec.loadBalancers as unknown as T)
    : undefined;
}
