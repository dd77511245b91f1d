import { describe, expect, it } from 'vitest';
import { parseDuration, readAnnotations } from '../../../adapters/kubernetes/annotations.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['24d', 2_073_600_000],
    ['2147483647ms', 2_147_483_647],
    ['007s', 7_000],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    '2147483648ms',
    '25d',
    '30d',
    '0s',
    '0ms',
    '5',
    '5 s',
    '1.5s',
    '5us',
    '-1s',
    '1S',
    ' 5s',
    '99999999999s',
  ])('refuses %j (HAProxy would reject it, or it means no timeout)', (text) => {
    expect(parseDuration(text)).toBeNull();
  });
});

describe('readAnnotations', () => {
  it('reads every known lbsync.io key', () => {
    const { settings, problems } = readAnnotations({
      'lbsync.io/mode': 'http',
      'lbsync.io/proxy-protocol': 'v1',
      'lbsync.io/profile': 'web',
      'lbsync.io/timeout-connect': '2s',
      'lbsync.io/timeout-client': '1m',
      'lbsync.io/timeout-server': '1m',
      'lbsync.io/timeout-tunnel': '1h',
      'kubectl.kubernetes.io/last-applied-configuration': '{}',
    });
    expect(problems).toEqual([]);
    expect(settings).toEqual({
      mode: 'http',
      proxyProtocol: 'v1',
      profile: 'web',
      timeouts: { connect: '2s', client: '1m', server: '1m', tunnel: '1h' },
    });
  });

  it('returns no settings and no problems for a Service without annotations', () => {
    expect(readAnnotations(undefined)).toEqual({ settings: {}, problems: [] });
  });

  it('names the key, the value and the allowed values of a bad value, and blocks', () => {
    const { problems } = readAnnotations({
      'lbsync.io/profile': 'gaming',
      'lbsync.io/timeout-client': '5 min',
    });
    expect(problems).toEqual([
      {
        key: 'lbsync.io/profile',
        blocking: true,
        message: 'annotation lbsync.io/profile: "gaming" is not one of web, api, iot',
      },
      {
        key: 'lbsync.io/timeout-client',
        blocking: true,
        message:
          'annotation lbsync.io/timeout-client: "5 min" is not an HAProxy duration: digits then ms, s, m, h or d (e.g. 30s), from 1ms to 2147483647ms (about 24.8 days)',
      },
    ]);
  });

  it('reports an unknown lbsync.io key without blocking, and does not guess what was meant', () => {
    const { settings, problems } = readAnnotations({ 'lbsync.io/proxyprotocol': 'v2' });
    expect(settings).toEqual({});
    expect(problems).toEqual([
      expect.objectContaining({ key: 'lbsync.io/proxyprotocol', blocking: false }),
    ]);
    expect(problems[0]?.message).toContain('known: lbsync.io/mode, lbsync.io/proxy-protocol');
  });
});
