import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { TransportError } from './errors.js';

// The parser moved to the LB-side contract module; this re-export keeps old imports working.
export { parseApplyResult } from './apply-contract.js';

/** Payload format version 1: generation, sha256, servers, then the config. */
export const PAYLOAD_VERSION = 1;
/** Payload format version 2: version 1 plus the removal guard, so the LB decides alone. */
export const PAYLOAD_VERSION_V2 = 2;

/**
 * gzip level of the config body. Chosen by measurement (bench/apply.ts,
 * table apply-gzip): at 2,000 workers x 10 services level 6 is within 5 % of
 * level 9's size and encodes about 7x faster (9 vs 70 ms); levels 1-3 are
 * barely faster than 6 and about 15 % bigger.
 */
export const PAYLOAD_GZIP_LEVEL = 6;

/** What travels to the LB: a small text header and the gzip+base64 config. */
export interface Payload {
  readonly generation: number;
  readonly sha256: string;
  readonly servers: number;
  /** The exact bytes the apply script reads on stdin or from a file. */
  readonly text: string;
}

/**
 * What the LB checks against its live state before changing anything
 * (payload v2). The LB refuses (`refused`, exit 7) when more than
 * `maxRemovalPercent` of its live workers (distinct server names across
 * backends) would leave the serving set (removed, or drained to `weight 0`),
 * unless `force`. `minWorkers` needs no live state and stays a function-side
 * check.
 */
export interface PayloadOptions {
  /** 0-100, at most two decimals; null or omitted: no removal guard. */
  readonly maxRemovalPercent?: number | null;
  /** Apply even when the guard would refuse. */
  readonly force?: boolean;
  /** gzip level 1-9 (default `PAYLOAD_GZIP_LEVEL`); for benchmarks. */
  readonly gzipLevel?: number;
}

/** sha256 hex of a string's UTF-8 bytes. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** `maxRemovalPercent` as the payload writes it: `50`, `33.33`, or `none`. */
function guardValue(pct: number | null | undefined): string {
  if (pct === null || pct === undefined) return 'none';
  if (!Number.isFinite(pct) || pct < 0 || pct > 100) {
    throw new TransportError(`maxRemovalPercent must be between 0 and 100, got ${pct}`);
  }
  // Two decimals, rounded down: the LB never tolerates more than asked.
  const hundredths = Math.floor(pct * 100 + 1e-9);
  const whole = Math.floor(hundredths / 100);
  const frac = hundredths % 100;
  return frac === 0 ? String(whole) : `${whole}.${String(frac).padStart(2, '0').replace(/0$/, '')}`;
}

/**
 * Encode a rendered config for the apply script. The header is `key=value`
 * lines in a fixed order so plain POSIX shell reads it without a JSON parser:
 *
 *   v1: lbsync=1, generation=, sha256=, servers=, ---, <gzip+base64 line>
 *   v2: lbsync=2, generation=, sha256=, servers=,
 *       max-removal-percent=<0-100|none>, force=<0|1>, ---, <gzip+base64 line>
 *
 * Without `options` the payload is v1 (understood by every deployed script);
 * with them, v2.
 */
export function encodePayload(
  config: string,
  generation: number,
  servers: number,
  options?: PayloadOptions,
): Payload {
  if (!Number.isSafeInteger(generation) || generation < 0) {
    throw new TransportError(`generation must be a non-negative integer, got ${generation}`);
  }
  if (!Number.isSafeInteger(servers) || servers < 0) {
    throw new TransportError(`servers must be a non-negative integer, got ${servers}`);
  }
  const level = options?.gzipLevel ?? PAYLOAD_GZIP_LEVEL;
  if (!Number.isInteger(level) || level < 1 || level > 9) {
    throw new TransportError(`gzipLevel must be 1-9, got ${level}`);
  }
  const sha256 = sha256Hex(config);
  const body = gzipSync(Buffer.from(config, 'utf8'), { level }).toString('base64');
  const head = [`generation=${generation}`, `sha256=${sha256}`, `servers=${servers}`];
  const header =
    options === undefined
      ? [`lbsync=${PAYLOAD_VERSION}`, ...head]
      : [
          `lbsync=${PAYLOAD_VERSION_V2}`,
          ...head,
          `max-removal-percent=${guardValue(options.maxRemovalPercent)}`,
          `force=${options.force === true ? 1 : 0}`,
        ];
  const text = `${header.join('\n')}\n---\n${body}\n`;
  return { generation, sha256, servers, text };
}
