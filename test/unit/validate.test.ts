import { describe, expect, it } from 'vitest';
import { StaticSource } from '../../adapters/local/source.js';
import { type Spec, validateSpec } from '../../adapters/spec.js';
import { InputError } from '../../core/errors.js';
import { memoryLogger } from '../../core/log.js';
import type { LbTarget, Worker } from '../../core/model.js';
import type { Transport } from '../../core/ports.js';
import { canonicalWorkers, loadTemplate, renderConfig } from '../../core/render.js';
import { runSync } from '../../core/sync.js';
import {
  bindsOverlap,
  canonicalBind,
  durationMs,
  durationProblem,
  MAX_HAPROXY_TIMER_MS,
  readBind,
  workerAddressProblem,
} from '../../core/validate.js';
import { haproxyCheck } from '../helpers/haproxy-check.js';
import { EDGE_SPEC } from '../helpers/specs.js';

const base = EDGE_SPEC;
const template = await loadTemplate(validateSpec(base));
const worker = (address: string): Worker => ({ id: 'i-1', address, state: 'serving' });

/** A two-line config around one server line, for asking HAProxy how it reads a form. */
function configWith(bind: string, server: string, timeout = '5s'): string {
  return [
    'defaults',
    '    mode tcp',
    `    timeout connect ${timeout}`,
    '    timeout client 5s',
    '    timeout server 5s',
    'frontend fe',
    `    bind ${bind}`,
    '    default_backend be',
    'backend be',
    `    server a ${server}`,
    '',
  ].join('\n');
}

describe('worker addresses', () => {
  it.each([
    ['a private IPv4 address', '10.0.0.1'],
    ['a CGNAT address', '100.64.0.1'],
    ['a subnet address ending in 255 (a host in anything wider than a /24)', '10.0.0.255'],
    ['loopback, used by the demo and the tests', '127.0.30.5'],
    ['IPv6 loopback', '::1'],
    ['a unique local IPv6 address', 'fd00::13'],
    ['a global IPv6 address', '2001:db8::1'],
    ['the first address past 0.0.0.0/8', '1.0.0.0'],
    ['the neighbours of 169.254.0.0/16', '169.253.255.255'],
    ['the address after 169.254.0.0/16', '169.255.0.0'],
    ['a 169.x address outside link-local', '169.25.4.1'],
    ['the last address below multicast', '223.255.255.255'],
  ])('accepts %s', (_what, address) => {
    expect(workerAddressProblem(address)).toBeNull();
    expect(canonicalWorkers([worker(address)])).toHaveLength(1);
  });

  it.each([
    ['unspecified IPv4 (HAProxy: the original destination)', '0.0.0.0', /unspecified/],
    ['unspecified IPv6', '::', /unspecified/],
    ['"this network"', '0.1.2.3', /0\.0\.0\.0\/8/],
    ['the cloud metadata server', '169.254.169.254', /link-local.*metadata/],
    ['IPv4 link-local', '169.254.10.1', /link-local/],
    ['IPv4 multicast', '224.0.0.1', /multicast/],
    ['the last multicast address', '239.255.255.255', /multicast/],
    ['the first link-local address', '169.254.0.0', /link-local/],
    ['the last link-local address', '169.254.255.255', /link-local/],
    ['the first "this network" address above 0.0.0.0', '0.0.0.1', /0\.0\.0\.0\/8/],
    ['the limited broadcast address', '255.255.255.255', /broadcast/],
    ['reserved class E', '240.0.0.1', /reserved/],
    ['IPv4-mapped IPv6', '::ffff:10.0.0.1', /IPv4-mapped.*10\.0\.0\.1/],
    ['IPv4-mapped unspecified', '::ffff:0.0.0.0', /IPv4-mapped/],
    ['deprecated IPv4-compatible IPv6', '::10.0.0.1', /IPv4-compatible/],
    ['IPv6 link-local', 'fe80::1', /link-local/],
    ['an IPv6 zone id', 'fe80::1%eth0', /zone id/],
    ['IPv6 multicast', 'ff02::1', /multicast/],
    ['an octal-looking IPv4 address', '010.0.0.1', /leading zero.*octal/],
    ['zero-padded octets', '127.000.000.001', /leading zero/],
    ['a short IPv4 form inet_aton would accept', '10.1', /not an IPv4 or IPv6 address/],
    ['a hostname', 'metadata.google.internal', /not an IPv4 or IPv6 address/],
  ])('refuses %s, saying why', (_what, address, why) => {
    expect(workerAddressProblem(address)).toMatch(why);
    expect(() => canonicalWorkers([worker(address)])).toThrowError(InputError);
    expect(() => canonicalWorkers([worker(address)])).toThrowError(JSON.stringify(address));
  });

  it('refuses the same addresses in the spec, naming the field', () => {
    for (const address of ['0.0.0.0', '::', '169.254.169.254', '::ffff:10.0.0.1']) {
      expect(() =>
        validateSpec({
          ...base,
          workers: { local: { static: [{ id: 'w1', address }] } },
        }),
      ).toThrowError(/workers\.local\.static\[0\]\.address: cannot be a worker address/);
    }
  });

  it('spells each IPv6 address one way, so two spellings render the same bytes', () => {
    const spec = validateSpec(base);
    const upper = renderConfig(spec, [worker('FD00:0:0::0001')], template);
    const lower = renderConfig(spec, [worker('fd00::1')], template);
    expect(upper.text).toBe(lower.text);
    expect(lower.text).toContain('server i-1 [fd00::1]:30080');
    // Two spellings of one address for one id are not a conflict.
    expect(canonicalWorkers([worker('fd00::1'), worker('FD00::1')])).toHaveLength(1);
  });

  it('shows why: HAProxy accepts a server at 0.0.0.0 and at an octal-looking address without complaint', () => {
    // The config is valid to HAProxy, which is why lbsync must refuse these itself.
    expect(haproxyCheck(configWith(':80', '0.0.0.0:30080')).ok).toBe(true);
    expect(haproxyCheck(configWith(':80', '010.0.0.1:30080')).ok).toBe(true);
  });

  it('refuses an unspecified address from any source before anything is pushed', async () => {
    // Prepare: every source (spec, --workers, file, AWS, Azure, GCP) reaches runSync.
    const calls: string[] = [];
    const transport: Transport = {
      targets: async (): Promise<readonly LbTarget[]> => {
        calls.push('targets');
        return [{ id: 'lb' }];
      },
      status: async () => {
        calls.push('status');
        throw new Error('not reached');
      },
      apply: async () => {
        calls.push('apply');
        throw new Error('not reached');
      },
    };
    const source = new StaticSource([
      { id: 'i-good', address: '10.0.0.1', state: 'serving' },
      { id: 'i-bad', address: '0.0.0.0', state: 'serving' },
    ]);

    // Act
    const run = runSync(
      { reason: 'event' },
      {
        spec: validateSpec(base),
        template,
        source,
        transport,
        logger: memoryLogger([]),
      },
    );

    // Assess
    await expect(run).rejects.toThrowError(/worker i-bad address: "0\.0\.0\.0" is unspecified/);
    await expect(run).rejects.toMatchObject({ name: 'InputError', retryable: false });
    expect(calls).toEqual([]);
  });
});

describe('binds', () => {
  it.each([
    [':80', '0.0.0.0:80', true],
    ['*:80', '0.0.0.0:80', true],
    ['0.0.0.0:80', '0.0.0.0:80', true],
    ['127.0.0.1:8080', '127.0.0.1:8080', false],
    ['[::]:443', '[::]:443', true],
    ['[::1]:443', '[::1]:443', false],
    ['[FD00:0:0::1]:65535', '[fd00::1]:65535', false],
    ['10.0.0.5:1', '10.0.0.5:1', false],
  ])('reads %s as the listener %s', (text, key, wildcard) => {
    expect(canonicalBind(text, 'bind')).toMatchObject({ key, wildcard });
  });

  it.each([
    ['80', /must be "\[address\]:port"/],
    [':0', /port must be 1-65535/],
    [':65536', /port must be 1-65535/],
    [':080', /without leading zeros/],
    [':80-81', /port must be 1-65535/],
    ['999.999.999.999:80', /not an IPv4 or IPv6 address/],
    ['[:::::]:80', /not an IPv4 or IPv6 address/],
    ['[.]:80', /not an IPv4 or IPv6 address/],
    ['010.0.0.1:80', /octal/],
    ['127.000.000.001:8080', /leading zero/],
    ['fd00::1:80', /must be "\[address\]:port"/],
    ['[10.0.0.1]:80', /in brackets must be IPv6/],
    ['[::ffff:127.0.0.1]:80', /IPv4-mapped/],
    ['[fe80::1%lo]:80', /zone id/],
    ['[fe80::1]:80', /link-local/],
    ['224.0.0.1:80', /multicast/],
    ['255.255.255.255:80', /broadcast/],
    ['localhost:80', /not an IPv4 or IPv6 address/],
    [' :80', /not an IPv4 or IPv6 address/],
  ])('refuses %s', (text, why) => {
    const read = readBind(text);
    expect(read.ok).toBe(false);
    expect(read.ok ? '' : read.problem).toMatch(why);
  });

  it('shows why: HAProxy rejects some of these and silently misreads others', () => {
    for (const bind of ['999.999.999.999:80', '[:::::]:80', '[.]:80', ':0']) {
      expect(haproxyCheck(configWith(bind, '10.0.0.1:30080')).ok, bind).toBe(false);
    }
    // Accepted by HAProxy, but not as written: octal, a port with a zero, a port range.
    for (const bind of ['010.0.0.1:80', ':080', ':80-81', '[::ffff:127.0.0.1]:80']) {
      expect(haproxyCheck(configWith(bind, '10.0.0.1:30080')).ok, bind).toBe(true);
    }
  });

  it.each([
    [':8080', '0.0.0.0:8080', true, 'the same listener spelled twice'],
    ['*:8080', ':8080', true, 'the star and the empty wildcard'],
    ['[::1]:80', '[0:0::1]:80', true, 'two spellings of one IPv6 address'],
    [':8080', '127.0.0.1:8080', true, 'a wildcard and a specific IPv4 address'],
    ['[::]:80', '10.0.0.5:80', true, 'the dual-stack IPv6 wildcard and an IPv4 address'],
    ['[::]:80', ':80', true, 'both wildcards'],
    [':80', '[::1]:80', false, 'the IPv4 wildcard and an IPv6 address'],
    ['127.0.0.1:80', '127.0.0.2:80', false, 'two specific addresses'],
    ['127.0.0.1:80', '[::1]:80', false, 'IPv4 and IPv6 loopback'],
    [':80', ':81', false, 'two ports'],
  ])('%s and %s overlap: %s (%s)', (a, b, overlap) => {
    expect(bindsOverlap(canonicalBind(a, 'a'), canonicalBind(b, 'b'))).toBe(overlap);
    expect(bindsOverlap(canonicalBind(b, 'b'), canonicalBind(a, 'a'))).toBe(overlap);
  });

  it('refuses two services on one listener, naming both', () => {
    expect(() =>
      validateSpec({
        ...base,
        services: [
          { name: 'web', bind: '127.0.0.1:8080', nodePort: 30080 },
          { name: 'api', bind: ':8080', nodePort: 30081 },
        ],
      }),
    ).toThrowError(/services\[1\]\.bind: .*service api.*service web/);
  });

  it('accepts specific addresses sharing a port, and HAProxy accepts the config', () => {
    const spec = validateSpec({
      ...base,
      services: [
        { name: 'a', bind: '127.0.0.1:8080', nodePort: 30080 },
        { name: 'b', bind: '127.0.0.2:8080', nodePort: 30081 },
        { name: 'c', bind: '[::1]:8080', nodePort: 30082 },
        { name: 'd', bind: ':8081', nodePort: 30083 },
        { name: 'e', bind: '[::]:8082', nodePort: 30084 },
      ],
      stats: { bind: '127.0.0.1:8404' },
    });
    const out = renderConfig(spec, [worker('10.0.0.1')], template);
    expect(haproxyCheck(out.text)).toMatchObject({ ok: true });
  });
});

describe('durations', () => {
  it.each([
    ['1ms', 1],
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['24d', 2_073_600_000],
    ['2147483647ms', MAX_HAPROXY_TIMER_MS],
    ['2147483s', 2_147_483_000],
    ['35791m', 2_147_460_000],
    ['596h', 2_145_600_000],
  ])('accepts %s (%d ms)', (text, ms) => {
    expect(durationProblem(text)).toBeNull();
    expect(durationMs(text)).toBe(ms);
  });

  it.each([
    ['9999999d', /at most 2147483647ms/],
    ['2147483648ms', /at most/],
    ['2147484s', /at most/],
    ['35792m', /at most/],
    ['597h', /at most/],
    ['25d', /at most/],
    ['0s', /at least 1ms/],
    ['0ms', /at least 1ms/],
    ['05s', /leading zero/],
    ['1.5s', /must be a duration/],
    ['30', /must be a duration/],
    ['30us', /must be a duration/],
    ['', /must be a duration/],
  ])('refuses %s', (text, why) => {
    expect(durationProblem(text)).toMatch(why);
  });

  it("matches HAProxy's timer limit exactly, as the real haproxy -c reads it", () => {
    for (const ok of ['2147483647ms', '2147483s', '35791m', '596h', '24d']) {
      expect(haproxyCheck(configWith(':80', '10.0.0.1:30080', ok)).ok, ok).toBe(true);
    }
    for (const over of ['2147483648ms', '2147484s', '35792m', '597h', '25d', '9999999d']) {
      const check = haproxyCheck(configWith(':80', '10.0.0.1:30080', over));
      expect(check.ok, over).toBe(false);
      expect(check.output).toMatch(/timer overflow/);
    }
  });

  it('renders every duration at the limit into a config haproxy -c accepts', () => {
    const limit = '2147483647ms';
    const spec: Spec = validateSpec({
      ...base,
      services: [
        { name: 'tcp', bind: ':80', nodePort: 30080 },
        { name: 'web', bind: ':81', nodePort: 30081, mode: 'http' },
      ],
      tuning: {
        timeouts: {
          connect: limit,
          client: limit,
          server: limit,
          tunnel: '24d',
          httpKeepAlive: limit,
          clientFin: limit,
        },
      },
      healthCheck: { interval: limit },
      drain: { seconds: 3600 },
    });
    const check = haproxyCheck(renderConfig(spec, [worker('10.0.0.1')], template).text);
    expect(check.output).not.toMatch(/ALERT/);
    expect(check.ok).toBe(true);
  });

  it('refuses every duration field of the spec above the limit, naming the field', () => {
    const cases: readonly [Record<string, unknown>, string][] = [
      [{ tuning: { timeouts: { connect: '25d' } } }, 'tuning.timeouts.connect'],
      [{ tuning: { timeouts: { client: '25d' } } }, 'tuning.timeouts.client'],
      [{ tuning: { timeouts: { server: '25d' } } }, 'tuning.timeouts.server'],
      [{ tuning: { timeouts: { tunnel: '25d' } } }, 'tuning.timeouts.tunnel'],
      [{ tuning: { timeouts: { httpKeepAlive: '25d' } } }, 'tuning.timeouts.httpKeepAlive'],
      [{ tuning: { timeouts: { clientFin: '25d' } } }, 'tuning.timeouts.clientFin'],
      [{ healthCheck: { interval: '25d' } }, 'healthCheck.interval'],
    ];
    for (const [patch, path] of cases) {
      expect(() => validateSpec({ ...base, ...patch })).toThrowError(
        `${path}: must be at most 2147483647ms`,
      );
    }
  });
});
