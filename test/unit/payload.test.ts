import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { TransportError } from '../../core/errors.js';
import {
  encodePayload,
  PAYLOAD_GZIP_LEVEL,
  PAYLOAD_VERSION,
  PAYLOAD_VERSION_V2,
  type PayloadOptions,
  parseApplyResult,
} from '../../core/payload.js';

describe('Function: encodePayload', () => {
  const config = 'global\n    maxconn 100\n# ünïcode survives\n';

  it('writes the five header lines the apply script expects, in order, then one base64 line', () => {
    const p = encodePayload(config, 1_795_000_000_000, 3);
    const lines = p.text.split('\n');
    expect(lines.slice(0, 5)).toEqual([
      `lbsync=${PAYLOAD_VERSION}`,
      'generation=1795000000000',
      `sha256=${p.sha256}`,
      'servers=3',
      '---',
    ]);
    expect(lines[5]).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(lines.slice(6)).toEqual(['']);
  });

  it('round-trips the config bytes and hashes them as UTF-8', () => {
    const p = encodePayload(config, 7, 0);
    const body = p.text.split('\n')[5] ?? '';
    const decoded = gunzipSync(Buffer.from(body, 'base64'));
    expect(decoded.toString('utf8')).toBe(config);
    expect(p.sha256).toBe(createHash('sha256').update(decoded).digest('hex'));
    expect(p).toMatchObject({ generation: 7, servers: 0 });
  });

  it('writes format 2 with the removal guard and force flag when given options', () => {
    const p = encodePayload(config, 9, 3, { maxRemovalPercent: 50 });
    expect(p.text.split('\n').slice(0, 7)).toEqual([
      `lbsync=${PAYLOAD_VERSION_V2}`,
      'generation=9',
      `sha256=${p.sha256}`,
      'servers=3',
      'max-removal-percent=50',
      'force=0',
      '---',
    ]);
    const line = (o: PayloadOptions): string | undefined =>
      encodePayload(config, 9, 3, o).text.split('\n')[4];
    expect(line({ maxRemovalPercent: 33.333 })).toBe('max-removal-percent=33.33');
    expect(line({ maxRemovalPercent: 12.5 })).toBe('max-removal-percent=12.5');
    expect(line({ maxRemovalPercent: 0 })).toBe('max-removal-percent=0');
    expect(line({ maxRemovalPercent: null })).toBe('max-removal-percent=none');
    expect(encodePayload(config, 9, 3, { force: true }).text.split('\n')[5]).toBe('force=1');
    expect(() => encodePayload(config, 9, 3, { maxRemovalPercent: 101 })).toThrow(TransportError);
  });

  it('compresses at the measured default level and honours another', () => {
    const big = `${'server i-0123456789abcdef 10.1.2.3:30080\n'.repeat(2000)}`;
    const body = (level?: number): string =>
      encodePayload(big, 1, 0, level === undefined ? {} : { gzipLevel: level }).text.split(
        '\n',
      )[7] ?? '';
    expect(body()).toBe(body(PAYLOAD_GZIP_LEVEL));
    expect(gunzipSync(Buffer.from(body(1), 'base64')).toString('utf8')).toBe(big);
    expect(() => encodePayload(big, 1, 0, { gzipLevel: 10 })).toThrow(TransportError);
  });

  it.each([-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 2])(
    'refuses generation %s, which the script could not compare safely',
    (generation) => {
      expect(() => encodePayload(config, generation, 0)).toThrow(TransportError);
    },
  );
});

describe('Function: parseApplyResult', () => {
  const line =
    '{"lbsync":1,"result":"applied","generation":42,"sha256":"ab","servers":3,"ms":61,"message":""}';

  it('takes the last result line and ignores transport noise around it', () => {
    const stdout = `Run Command output follows\n{"other":true}\n${line}\n\n`;
    expect(parseApplyResult(stdout)).toEqual({
      result: 'applied',
      generation: 42,
      sha256: 'ab',
      servers: 3,
      ms: 61,
    });
  });

  it('keeps a non-empty message and maps an empty sha256 to null', () => {
    const r = parseApplyResult(
      '{"lbsync":1,"result":"invalid","generation":0,"sha256":"","servers":0,"ms":1,"message":"bad header"}',
    );
    expect(r).toEqual({
      result: 'invalid',
      generation: 0,
      sha256: null,
      servers: 0,
      ms: 1,
      message: 'bad header',
    });
  });

  it('skips lines with another format version or an unknown result', () => {
    const stdout = `${line}\n{"lbsync":2,"result":"applied"}\n{"lbsync":1,"result":"exploded"}\n`;
    expect(parseApplyResult(stdout).result).toBe('applied');
  });

  it('throws a permanent TransportError quoting the output tail when no result line exists', () => {
    let err: unknown;
    try {
      parseApplyResult('sh: 1: syntax error\n');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).retryable).toBe(false);
    expect((err as TransportError).message).toMatch(/no result line.*syntax error/);
  });
});
