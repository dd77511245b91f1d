import { describe, expect, it } from 'vitest';
import {
  layoutPayload,
  MANIFEST_KEY,
  MAX_TOTAL_BYTES,
  manifestGeneration,
  mergeMetadata,
  metadataBytes,
} from '../../../adapters/gcp/metadata.js';
import { TransportError } from '../../../core/errors.js';
import { encodePayload, sha256Hex } from '../../../core/payload.js';

const APPLY = {
  configPath: '/etc/haproxy/haproxy.cfg',
  stateDir: '/var/lib/lbsync',
  reload: 'auto' as const,
  masterSocket: '/run/haproxy-master.sock',
};
const manifestOf = (items: readonly { key: string; value: string }[]): Map<string, string> =>
  new Map(
    (items.find((i) => i.key === MANIFEST_KEY)?.value ?? '')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

describe('layoutPayload', () => {
  it('puts a small payload in one chunk with a manifest naming its sha256 and generation', () => {
    const p = encodePayload('global\n', 42, 0);
    const out = layoutPayload(p, APPLY);
    expect(out.items.map((i) => i.key)).toEqual([MANIFEST_KEY, 'lbsync-payload-0']);
    const m = manifestOf(out.items);
    expect(m.get('lbsync-gcp')).toBe('1');
    expect(m.get('generation')).toBe('42');
    expect(m.get('sha256')).toBe(sha256Hex(p.text));
    expect(m.get('chunk.0')).toBe(sha256Hex(p.text));
    expect(m.get('config')).toBe('/etc/haproxy/haproxy.cfg');
    expect(m.get('reload')).toBe('auto');
  });

  it('splits a payload into chunks that concatenate back to it, each sha256 in the manifest', () => {
    const p = encodePayload(`global\n${'x'.repeat(5000)}\n`, 7, 0);
    const out = layoutPayload(p, APPLY, 100);
    const chunks = out.items.filter((i) => i.key !== MANIFEST_KEY);
    expect(chunks.length).toBe(Math.ceil(p.text.length / 100));
    expect(chunks.map((c) => c.value).join('')).toBe(p.text);
    const m = manifestOf(out.items);
    chunks.forEach((c, i) => {
      expect(m.get(`chunk.${i}`)).toBe(sha256Hex(c.value));
    });
    expect(m.get('chunks')).toBe(String(chunks.length));
  });

  it('never makes a value larger than 256 KiB, whatever chunk size is asked for', () => {
    const p = { generation: 1, sha256: 'x', servers: 0, text: 'a'.repeat(600_000) };
    const out = layoutPayload(p, APPLY, 10_000_000);
    expect(Math.max(...out.items.map((i) => i.value.length))).toBeLessThanOrEqual(262_144);
    expect(out.chunks).toBe(3);
  });
});

describe('mergeMetadata', () => {
  it("keeps other tools' keys and replaces lbsync's own", () => {
    const p = layoutPayload(encodePayload('global\n', 2, 0), APPLY);
    const merged = mergeMetadata(
      'lb-1',
      [
        { key: 'ssh-keys', value: 'ops:key' },
        { key: 'lbsync-payload-5', value: 'old' },
        { key: 'lbsync-manifest', value: 'old' },
      ],
      p,
    );
    expect(merged.map((i) => i.key)).toEqual(['ssh-keys', 'lbsync-manifest', 'lbsync-payload-0']);
  });

  it('refuses, permanently, a payload that would break the 512 KB total with the other keys', () => {
    const p = layoutPayload(
      { generation: 1, sha256: 'x', servers: 0, text: 'a'.repeat(400_000) },
      APPLY,
    );
    const foreign = [{ key: 'startup-script', value: 'b'.repeat(200_000) }];
    expect(metadataBytes([...foreign, ...p.items])).toBeGreaterThan(MAX_TOTAL_BYTES);
    expect(() => mergeMetadata('lb-1', foreign, p)).toThrow(TransportError);
    try {
      mergeMetadata('lb-1', foreign, p);
    } catch (err) {
      expect((err as TransportError).retryable).toBe(false);
      expect((err as Error).message).toMatch(/does not fit lb-1's metadata/);
    }
  });
});

describe('manifestGeneration', () => {
  it('reads the generation of the manifest lbsync wrote, 0 when there is none', () => {
    const p = layoutPayload(encodePayload('global\n', 1_700_000_000_123, 0), APPLY);
    expect(manifestGeneration(p.items)).toBe(1_700_000_000_123);
    expect(manifestGeneration([{ key: 'ssh-keys', value: 'generation=9' }])).toBe(0);
    expect(manifestGeneration([{ key: MANIFEST_KEY, value: 'generation=abc' }])).toBe(0);
  });
});
