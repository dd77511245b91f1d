import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { TransportError } from './errors.js';
import type { ApplyOutcome, ApplyResult } from './model.js';

/** Payload format version understood by templates/lbsync-apply.sh. */
export const PAYLOAD_VERSION = 1;

/** What travels to the LB: a small text header and the gzip+base64 config. */
export interface Payload {
  readonly generation: number;
  readonly sha256: string;
  readonly servers: number;
  /** The exact bytes the apply script reads on stdin or from a file. */
  readonly text: string;
}

/** sha256 hex of a string's UTF-8 bytes. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Encode a rendered config for the apply script. The header is `key=value`
 * lines so plain POSIX shell can read it without a JSON parser.
 */
export function encodePayload(config: string, generation: number, servers: number): Payload {
  if (!Number.isSafeInteger(generation) || generation < 0) {
    throw new TransportError(`generation must be a non-negative integer, got ${generation}`);
  }
  const sha256 = sha256Hex(config);
  const body = gzipSync(Buffer.from(config, 'utf8'), { level: 9 }).toString('base64');
  const text = `lbsync=${PAYLOAD_VERSION}\ngeneration=${generation}\nsha256=${sha256}\nservers=${servers}\n---\n${body}\n`;
  return { generation, sha256, servers, text };
}

const OUTCOMES: ReadonlySet<string> = new Set<ApplyOutcome>([
  'applied',
  'unchanged',
  'stale',
  'invalid',
  'rejected',
  'rolled-back',
  'failed',
  'busy',
  'status',
]);

/**
 * Find and validate the apply script's result: the last line of stdout that is
 * a JSON object with `"lbsync":1`. Transports may prepend their own noise.
 */
export function parseApplyResult(stdout: string): ApplyResult {
  const lines = stdout.split('\n').map((l) => l.trim());
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] ?? '';
    if (!line.startsWith('{') || !line.includes('"lbsync"')) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof raw !== 'object' || raw === null) continue;
    const r = raw as Record<string, unknown>;
    if (r.lbsync !== 1 || typeof r.result !== 'string' || !OUTCOMES.has(r.result)) continue;
    const result: ApplyResult = {
      result: r.result as ApplyOutcome,
      generation: typeof r.generation === 'number' ? r.generation : 0,
      sha256: typeof r.sha256 === 'string' && r.sha256 !== '' ? r.sha256 : null,
      servers: typeof r.servers === 'number' ? r.servers : 0,
      ms: typeof r.ms === 'number' ? r.ms : 0,
      ...(typeof r.message === 'string' && r.message !== '' ? { message: r.message } : {}),
    };
    return result;
  }
  const tail = stdout.slice(-300).trim();
  throw new TransportError(
    `the apply script printed no result line${tail ? `; output ended with: ${tail}` : ''}`,
    { retryable: false },
  );
}
