import { buildRuntime } from '../adapters/runtime.js';
import type { Spec } from '../adapters/spec.js';
import { errorMessage } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import type { Transport } from '../core/ports.js';
import type { ProviderContext } from '../core/provider.js';

/** One LB row of `lbsync status`. */
export interface LbStatus {
  readonly lb: string;
  readonly generation: number;
  readonly sha256: string | null;
  readonly servers: number;
  readonly error?: string;
}

/** Read every target's live state in parallel; one unreadable LB becomes a row with `error`, not a throw. */
export async function readLbStatuses(transport: Transport): Promise<readonly LbStatus[]> {
  const targets = await transport.targets();
  return Promise.all(
    targets.map(async (t): Promise<LbStatus> => {
      try {
        const s = await transport.status(t);
        return { lb: t.id, generation: s.generation, sha256: s.sha256, servers: s.servers };
      } catch (err) {
        return { lb: t.id, generation: 0, sha256: null, servers: 0, error: errorMessage(err) };
      }
    }),
  );
}

/** Options of `statusOf`. */
export interface StatusOptions {
  readonly specFile?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly tuning?: ProviderContext['tuning'];
}

/**
 * The live state of every LB of a spec, read through the spec's own
 * transport (SSM, Run Command, guest attributes, a local script) with this
 * machine's credentials.
 */
export async function statusOf(spec: Spec, o: StatusOptions = {}): Promise<readonly LbStatus[]> {
  const rt = await buildRuntime({ spec, logger: silentLogger(), ...o });
  try {
    return await readLbStatuses(rt.transport);
  } finally {
    await rt.close();
  }
}
