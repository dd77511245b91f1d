import { type ApplyScriptOptions, manifestArgLines } from '../../core/apply-contract.js';
import { TransportError } from '../../core/errors.js';
import type { Payload } from '../../core/payload.js';
import { sha256Hex } from '../../core/payload.js';
import type { LbApplySpec } from '../../core/spec.js';

/*
 * How a payload is laid out in instance metadata. The documented limits: a
 * value holds at most 262,144 bytes (256 KiB) and all keys plus values stay
 * under 512 KB. So the payload text is split into chunk keys
 * `lbsync-payload-<i>`, and `lbsync-manifest` (the key the agent long-polls)
 * names the generation, the sha256 of the whole payload and of every chunk,
 * and the apply script's arguments. One setMetadata call writes them all, so
 * the agent never sees a manifest without its chunks.
 */

/** The key the agent long-polls. */
export const MANIFEST_KEY = 'lbsync-manifest';
/** Prefix of every key lbsync owns; other keys (ssh-keys, startup-script …) are kept. */
export const OWNED_PREFIX = 'lbsync-';
/** Largest metadata value, in bytes. */
export const MAX_VALUE_BYTES = 262_144;
/** Keys plus values must stay below this, in bytes. */
export const MAX_TOTAL_BYTES = 512 * 1024;

/** One metadata entry. */
export interface MetadataItem {
  readonly key: string;
  readonly value: string;
}

/** The manifest plus chunks for one payload. */
export interface MetadataPayload {
  readonly items: readonly MetadataItem[];
  readonly chunks: number;
  readonly bytes: number;
}

/** Split `payload` into manifest + chunk items of at most `chunkBytes` each. */
export function layoutPayload(
  payload: Payload,
  apply: LbApplySpec | ApplyScriptOptions,
  chunkBytes: number = MAX_VALUE_BYTES,
): MetadataPayload {
  // The payload is ASCII (header + base64), so characters are bytes.
  const text = payload.text;
  const size = Math.max(1, Math.min(chunkBytes, MAX_VALUE_BYTES));
  const chunks: MetadataItem[] = [];
  for (let i = 0; i < text.length || i === 0; i += size) {
    chunks.push({ key: `${OWNED_PREFIX}payload-${chunks.length}`, value: text.slice(i, i + size) });
  }
  const manifest = [
    'lbsync-gcp=1',
    `generation=${payload.generation}`,
    `sha256=${sha256Hex(text)}`,
    `bytes=${text.length}`,
    `chunks=${chunks.length}`,
    ...chunks.map((c, i) => `chunk.${i}=${sha256Hex(c.value)}`),
    // The apply arguments in the contract's one encoding (the agent checks each flag) ...
    ...manifestArgLines(apply),
    // ... and as the keys agents installed before it read, so existing LB VMs keep working.
    `config=${apply.configPath}`,
    `state-dir=${apply.stateDir}`,
    `reload=${apply.reload}`,
    ...(apply.masterSocket !== undefined ? [`master-socket=${apply.masterSocket}`] : []),
    '',
  ].join('\n');
  return {
    items: [{ key: MANIFEST_KEY, value: manifest }, ...chunks],
    chunks: chunks.length,
    bytes: text.length,
  };
}

/** Bytes metadata items count against the 512 KB total. */
export function metadataBytes(items: readonly MetadataItem[]): number {
  let n = 0;
  for (const it of items) n += Buffer.byteLength(it.key) + Buffer.byteLength(it.value ?? '');
  return n;
}

/**
 * The new item list for an instance: its foreign items unchanged, lbsync's
 * replaced by `ours`. Throws a permanent `TransportError` when the result
 * would break the limits (retrying cannot shrink a config).
 */
export function mergeMetadata(
  lb: string,
  current: readonly MetadataItem[],
  ours: MetadataPayload,
): readonly MetadataItem[] {
  const foreign = current.filter((it) => !it.key.startsWith(OWNED_PREFIX));
  const items = [...foreign, ...ours.items];
  const total = metadataBytes(items);
  if (total >= MAX_TOTAL_BYTES) {
    throw new TransportError(
      `payload of ${ours.bytes} bytes does not fit ${lb}'s metadata: ${total} bytes with its other keys (${metadataBytes(foreign)} bytes), the limit is ${MAX_TOTAL_BYTES}; reduce services or workers per LB`,
      { retryable: false },
    );
  }
  return items;
}

/** The generation named by the `lbsync-manifest` among `items`; 0 when there is none. */
export function manifestGeneration(items: readonly MetadataItem[]): number {
  const manifest = items.find((it) => it.key === MANIFEST_KEY)?.value ?? '';
  const m = /^generation=(\d{1,16})$/m.exec(manifest);
  return m?.[1] === undefined ? 0 : Number(m[1]);
}
