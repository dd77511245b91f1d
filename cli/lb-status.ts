import { errorMessage } from '../core/errors.js';
import type { Transport } from '../core/ports.js';

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
