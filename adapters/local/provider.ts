import { z } from 'zod';
import type { ProviderDescriptor } from '../../core/provider.js';
import { specFields } from '../../core/spec.js';

/*
 * The cloud-neutral local provider: workers listed in the spec or in a file,
 * and a transport that runs the apply script on this machine (demo, tests,
 * LBs the CLI host can reach). In every function bundle, so a static worker
 * list can be pushed through any cloud's transport.
 */

const { safeId, absPath, workerAddress } = specFields;

const staticWorker = z.strictObject({
  id: safeId('worker id'),
  address: workerAddress,
  state: z.enum(['serving', 'draining']).default('serving'),
});

/** `workers: { source: static, workers: [{id, address, state?}] }`. */
export const staticSourceSchema = z.strictObject({
  source: z.literal('static'),
  workers: z.array(staticWorker).max(20000),
});

/** `workers: { source: file, path }`: re-read on every sync (editing the file is a scale event). */
export const fileSourceSchema = z.strictObject({
  source: z.literal('file'),
  /** YAML/JSON list of addresses or {id, address, state?}; relative to the spec file. */
  path: z.string().min(1),
});

const localLb = z.strictObject({
  name: safeId('LB name'),
  configPath: absPath,
  stateDir: absPath,
  reload: z.enum(['auto', 'systemd', 'master-socket']).default('auto'),
  masterSocket: absPath.optional(),
  /** Where clients reach this LB (published in Kubernetes Service status). */
  address: z.union([z.ipv4(), z.ipv6()], { error: 'must be an IP address' }).optional(),
});

/** `loadBalancers: { transport: local, lbs: [...] }`: HAProxy instances on this machine. */
export const localTransportSchema = z.strictObject({
  transport: z.literal('local'),
  lbs: z.array(localLb).min(1, 'name at least one LB').max(50),
});

/** The static source section. */
export type StaticSourceSpec = z.output<typeof staticSourceSchema>;
/** The file source section. */
export type FileSourceSpec = z.output<typeof fileSourceSchema>;
/** One local LB. */
export type LocalLbSpec = z.output<typeof localLb>;
/** The local transport section. */
export type LocalTransportSpec = z.output<typeof localTransportSchema>;

/** The local provider. */
export const localProvider: ProviderDescriptor = {
  name: 'local',
  cloud: null,
  sources: { static: staticSourceSchema, file: fileSourceSchema },
  transports: { local: localTransportSchema },
  packages: [],
  describe: {
    static: 'a fixed list of workers in the spec',
    file: 'workers from a YAML/JSON file, re-read on every sync',
    local: 'the apply script run as a subprocess against HAProxy on this machine',
  },
  legacy: {
    key: 'local',
    workers: (old) => {
      const o = (old ?? {}) as { static?: unknown; file?: unknown };
      if (o.static !== undefined && o.file === undefined) {
        return { source: 'static', workers: o.static };
      }
      if (o.file !== undefined && o.static === undefined) return { source: 'file', path: o.file };
      return { source: 'static', ...(old as object) };
    },
    loadBalancers: (old) => ({ transport: 'local', lbs: old }),
    renamed: { workers: 'static', path: 'file', lbs: null },
  },
};
