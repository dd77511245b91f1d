import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Spec, validateSpec } from '../../adapters/spec.js';
import { InputError, LbsyncError, SpecError } from '../../core/errors.js';
import { isManualRequest, parseManualRequest } from '../../core/manual.js';
import type { Worker } from '../../core/model.js';
import { parseApplyResult } from '../../core/payload.js';
import { canonicalWorkers, loadTemplate, renderConfig, type Template } from '../../core/render.js';
import { bindsOverlap, readBind } from '../../core/validate.js';
import { haproxyCheck } from '../helpers/haproxy-check.js';
import { EDGE_SPEC } from '../helpers/specs.js';

/** Random valid specs: 1..20 services, any profile, random tuning and health settings. */
const specArb: fc.Arbitrary<Spec> = fc
  .record({
    profile: fc.constantFrom('web', 'api', 'iot'),
    services: fc.uniqueArray(
      fc.record({
        port: fc.integer({ min: 1024, max: 65000 }),
        nodePort: fc.integer({ min: 30000, max: 32767 }),
        mode: fc.constantFrom('tcp', 'http'),
        proxyProtocol: fc.constantFrom('none', 'v1', 'v2'),
      }),
      { minLength: 1, maxLength: 20, selector: (s) => s.port },
    ),
    health: fc.record({ enabled: fc.boolean(), port: fc.integer({ min: 1, max: 65535 }) }),
    maxconn: fc.option(fc.integer({ min: 1, max: 1_000_000 }), { nil: undefined }),
    balance: fc.option(fc.constantFrom('roundrobin', 'leastconn', 'source', 'first'), {
      nil: undefined,
    }),
    stats: fc.boolean(),
    drain: fc.integer({ min: 0, max: 600 }),
  })
  .map((r) =>
    validateSpec({
      name: 'prop',
      cloud: 'local',
      workers: { local: { static: [] } },
      loadBalancers: {
        local: [
          { name: 'lb', configPath: '/etc/haproxy/haproxy.cfg', stateDir: '/var/lib/lbsync' },
        ],
      },
      profile: r.profile,
      services: r.services.map((s, i) => ({
        name: `svc-${i}`,
        bind: `127.0.0.1:${s.port}`,
        nodePort: s.nodePort,
        mode: s.mode,
        proxyProtocol: s.proxyProtocol,
      })),
      healthCheck: { enabled: r.health.enabled, port: r.health.port },
      tuning: {
        ...(r.maxconn ? { maxconn: r.maxconn } : {}),
        ...(r.balance ? { balance: r.balance } : {}),
      },
      ...(r.stats ? { stats: { bind: '127.0.0.1:65100' } } : {}),
      drain: { seconds: r.drain },
      runtimeSocket: null,
    }),
  );

/** Random worker sets of 1..2,000 with unique ids, IPv4 and IPv6, some draining. */
const workersArb: fc.Arbitrary<Worker[]> = fc
  .record({
    n: fc.oneof(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 2000 })),
    seed: fc.integer({ min: 0, max: 1_000_000 }),
    v6every: fc.integer({ min: 0, max: 10 }),
    drainEvery: fc.integer({ min: 0, max: 10 }),
  })
  .map(({ n, seed, v6every, drainEvery }) =>
    Array.from({ length: n }, (_, i) => {
      const k = seed + i;
      const v6 = v6every > 0 && i % v6every === 0;
      return {
        id: `i-${k.toString(16).padStart(17, '0')}`,
        address: v6
          ? `fd00::${(k % 65535).toString(16)}`
          : `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`,
        state: drainEvery > 0 && i % drainEvery === 1 ? 'draining' : 'serving',
      } satisfies Worker;
    }),
  );

describe('renderConfig (property)', () => {
  it('renders random valid specs and worker sets (1..2,000 workers, 1..20 services) into configs haproxy -c accepts', async () => {
    const template = await loadTemplate(
      validateSpec({
        name: 'x',
        cloud: 'local',
        workers: { local: { static: [] } },
        loadBalancers: { local: [{ name: 'lb', configPath: '/a', stateDir: '/b' }] },
        services: [{ name: 'a', bind: ':80', nodePort: 30000 }],
      }),
    );
    await fc.assert(
      fc.asyncProperty(specArb, workersArb, async (spec, workers) => {
        const out = renderConfig(spec, workers, template);
        expect(out.servers).toBe(workers.length * spec.services.length);
        const check = haproxyCheck(out.text);
        expect(check.output).not.toMatch(/ALERT/);
        expect(check.ok).toBe(true);
      }),
      { numRuns: 40 },
    );
  });
});

describe('parsers (property)', () => {
  it('parseApplyResult never throws anything but an LbsyncError on arbitrary output', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json().map((j) => `noise\n${j}\n`),
        ),
        (out) => {
          try {
            parseApplyResult(out);
          } catch (e) {
            expect(e).toBeInstanceOf(LbsyncError);
          }
        },
      ),
    );
  });

  it('parseManualRequest never throws anything but an LbsyncError on arbitrary JSON, null and primitives', () => {
    fc.assert(
      fc.property(anyInput, (v) => {
        expect(typeof isManualRequest(v)).toBe('boolean');
        try {
          const r = parseManualRequest(v);
          expect(r.reason).toBe('manual');
        } catch (e) {
          expect(e).toBeInstanceOf(LbsyncError);
        }
      }),
    );
  });
});

/** Arbitrary JSON plus the non-JSON values a platform can hand over (undefined, NaN). */
const anyInput: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, undefined, 0, -1, Number.NaN, '', 'resync', true, false, [], {}),
  fc.jsonValue(),
  fc.anything(),
);

/*
 * Edge forms. The principle: anything the spec accepts, `haproxy -c` accepts,
 * and reads as written. Each property varies one kind of value, mixing
 * well-formed values with the forms a hostile or careless spec holds, and
 * checks the validator against an independent oracle written from the rules
 * in the README, then the accepted values against the real HAProxy.
 */

const baseSpec = EDGE_SPEC;
let edgeTemplate: Template | undefined;
async function template(): Promise<Template> {
  edgeTemplate ??= await loadTemplate(validateSpec(baseSpec));
  return edgeTemplate;
}

const octet = fc.integer({ min: 0, max: 255 });
const v4Arb: fc.Arbitrary<string> = fc.oneof(
  fc.ipV4(),
  fc.ipV4Extended(),
  fc
    .tuple(fc.constantFrom(0, 10, 127, 169, 224, 239, 240, 255), octet, octet, octet)
    .map((o) => o.join('.')),
  fc.constantFrom(
    '0.0.0.0',
    '127.0.0.1',
    '169.254.169.254',
    '255.255.255.255',
    '010.0.0.1',
    '127.000.000.001',
    '999.999.999.999',
    '1.2.3',
    '10.1',
    '1.2.3.4.5',
    ' 10.0.0.1',
    '.',
  ),
);
const v6Arb: fc.Arbitrary<string> = fc.oneof(
  fc.ipV6(),
  fc.ipV6().map((a) => a.toUpperCase()),
  fc.constantFrom(
    '::',
    '::1',
    '0:0:0:0:0:0:0:0',
    '::ffff:10.0.0.1',
    '::ffff:0.0.0.0',
    '::10.0.0.1',
    'fe80::1',
    'fe80::1%eth0',
    'febf::1',
    'fec0::1',
    'ff02::1',
    'fd00::13',
    'FD00:0:0::1',
    ':::::',
    '.',
    '1::2::3',
    'fd00::1%25',
  ),
);
const addressArb = fc.oneof(v4Arb, v6Arb);

const V4_CANONICAL =
  /^(0|[1-9]\d?|1\d\d|2[0-4]\d|25[0-5])(\.(0|[1-9]\d?|1\d\d|2[0-4]\d|25[0-5])){3}$/;

/** The oracle's reading of an address: family and canonical text, or null when it is not one. */
function oracleAddress(a: string): { family: 4 | 6; canonical: string } | null {
  if (V4_CANONICAL.test(a)) return { family: 4, canonical: a };
  if (a.includes('%') || !a.includes(':')) return null;
  try {
    // The WHATWG URL parser is an independent IPv6 reader (RFC 5952 output).
    const host = new URL(`http://[${a}]/`).hostname;
    return { family: 6, canonical: host.slice(1, -1) };
  } catch {
    return null;
  }
}

/** The README's rule for a worker address, written independently of core/validate.ts. */
function oracleWorkerOk(a: string): boolean {
  const r = oracleAddress(a);
  if (r === null) return false;
  if (r.family === 4) {
    const [o0 = 0, o1 = 0] = r.canonical.split('.').map(Number);
    return o0 !== 0 && !(o0 === 169 && o1 === 254) && o0 < 224;
  }
  const c = r.canonical;
  if (c === '::') return false;
  if (c.startsWith('::ffff:')) return false;
  if (/^::[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(c)) return false; // IPv4-compatible ::a.b.c.d
  if (/^::[0-9a-f]{1,4}$/.test(c) && c !== '::1') return false;
  const first = Number.parseInt(c.split(':')[0] || '0', 16);
  if ((first & 0xffc0) === 0xfe80) return false;
  if ((first & 0xff00) === 0xff00) return false;
  return true;
}

describe('worker addresses (property)', () => {
  it('accepts exactly the usable unicast literals, in the spec and in the core alike, and haproxy -c accepts what is accepted', async () => {
    const t = await template();
    const spec = validateSpec(baseSpec);
    await fc.assert(
      fc.asyncProperty(addressArb, async (address) => {
        const ok = oracleWorkerOk(address);
        const w: Worker = { id: 'i-edge', address, state: 'serving' };
        let core: readonly Worker[] | undefined;
        try {
          core = canonicalWorkers([w]);
        } catch (e) {
          expect(e).toBeInstanceOf(InputError);
        }
        expect(core !== undefined, address).toBe(ok);
        let inSpec = true;
        try {
          validateSpec({ ...baseSpec, workers: { local: { static: [{ id: 'w', address }] } } });
        } catch (e) {
          expect(e).toBeInstanceOf(SpecError);
          inSpec = false;
        }
        expect(inSpec, address).toBe(ok);
        if (core === undefined) return;
        expect(core[0]?.address).toBe(oracleAddress(address)?.canonical);
        const check = haproxyCheck(renderConfig(spec, core, t).text);
        expect(check.output).not.toMatch(/ALERT/);
        expect(check.ok).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

const portArb: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: 1, max: 65535 }).map(String),
  fc.constantFrom(
    '1',
    '80',
    '65535',
    '0',
    '080',
    '00080',
    '65536',
    '99999',
    '80-81',
    '',
    ' 80',
    '8o',
  ),
);
const bindArb: fc.Arbitrary<string> = fc.oneof(
  portArb.map((p) => `:${p}`),
  portArb.map((p) => `*:${p}`),
  fc.tuple(v4Arb, portArb).map(([a, p]) => `${a}:${p}`),
  fc.tuple(v6Arb, portArb).map(([a, p]) => `[${a}]:${p}`),
  fc.tuple(v6Arb, portArb).map(([a, p]) => `${a}:${p}`),
  fc.tuple(v4Arb, portArb).map(([a, p]) => `[${a}]:${p}`),
  fc.string({ maxLength: 12 }),
);

/** The oracle's listener for a bind: family, address ('*' for a wildcard), port; null if invalid. */
function oracleBind(text: string): { family: 4 | 6; address: string; port: number } | null {
  const m = /^(?:\[([^\]]*)\]|([^[\]]*))?:([1-9]\d{0,4})$/.exec(text);
  if (m === null || Number(m[3]) > 65535) return null;
  const port = Number(m[3]);
  if (m[1] === undefined) {
    const a = m[2] ?? '';
    if (a === '' || a === '*' || a === '0.0.0.0') return { family: 4, address: '*', port };
    if (!V4_CANONICAL.test(a)) return null;
    return oracleWorkerOk(a) ? { family: 4, address: a, port } : null;
  }
  const r = oracleAddress(m[1]);
  if (r === null || r.family !== 6) return null;
  if (r.canonical === '::') return { family: 6, address: '*', port };
  return oracleWorkerOk(m[1]) ? { family: 6, address: r.canonical, port } : null;
}

/** Two listeners share connections: same port, and same address or a covering wildcard ([::] is dual stack). */
function oracleOverlap(
  a: { family: 4 | 6; address: string; port: number },
  b: { family: 4 | 6; address: string; port: number },
): boolean {
  if (a.port !== b.port) return false;
  if (a.family === b.family && a.address === b.address) return true;
  const covers = (w: typeof a, o: typeof a): boolean =>
    w.address === '*' && (w.family === 6 || o.family === 4);
  return covers(a, b) || covers(b, a);
}

describe('binds (property)', () => {
  it('accepts exactly the canonical literal binds, and haproxy -c accepts each one accepted', async () => {
    const t = await template();
    await fc.assert(
      fc.asyncProperty(bindArb, async (bind) => {
        const expected = oracleBind(bind);
        const read = readBind(bind);
        expect(read.ok, bind).toBe(expected !== null);
        let spec: Spec | undefined;
        try {
          spec = validateSpec({
            ...baseSpec,
            services: [{ name: 'edge', bind, nodePort: 30080 }],
          });
        } catch (e) {
          expect(e).toBeInstanceOf(SpecError);
          expect((e as SpecError).message).toMatch(/services\[0\]\.bind: /);
        }
        expect(spec !== undefined, bind).toBe(expected !== null);
        if (spec === undefined) return;
        const check = haproxyCheck(
          renderConfig(spec, [{ id: 'i-1', address: '10.0.0.1', state: 'serving' }], t).text,
        );
        expect(check.output).not.toMatch(/ALERT/);
        expect(check.ok).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses two binds exactly when they can take the same connections, naming both services', () => {
    const sameishPort = fc.constantFrom('80', '443');
    const nearBind = fc.oneof(
      sameishPort.map((p) => `:${p}`),
      sameishPort.map((p) => `*:${p}`),
      sameishPort.map((p) => `0.0.0.0:${p}`),
      sameishPort.map((p) => `[::]:${p}`),
      sameishPort.map((p) => `[0:0::0]:${p}`),
      fc
        .tuple(fc.constantFrom('127.0.0.1', '10.0.0.5', '10.0.0.6'), sameishPort)
        .map(([a, p]) => `${a}:${p}`),
      fc
        .tuple(fc.constantFrom('::1', '0:0::1', 'fd00::5', 'FD00::5'), sameishPort)
        .map(([a, p]) => `[${a}]:${p}`),
    );
    fc.assert(
      fc.property(fc.oneof(nearBind, bindArb), fc.oneof(nearBind, bindArb), (a, b) => {
        const oa = oracleBind(a);
        const ob = oracleBind(b);
        if (oa === null || ob === null) return;
        const ra = readBind(a);
        const rb = readBind(b);
        if (!ra.ok || !rb.ok) throw new Error('oracle and readBind disagree');
        expect(bindsOverlap(ra.bind, rb.bind), `${a} ${b}`).toBe(oracleOverlap(oa, ob));
        let problem: string | undefined;
        try {
          validateSpec({
            ...baseSpec,
            services: [
              { name: 'first', bind: a, nodePort: 30080 },
              { name: 'second', bind: b, nodePort: 30081 },
            ],
          });
        } catch (e) {
          expect(e).toBeInstanceOf(SpecError);
          problem = (e as SpecError).message;
        }
        expect(problem !== undefined, `${a} ${b}`).toBe(oracleOverlap(oa, ob));
        if (problem !== undefined) expect(problem).toMatch(/service second.*service first/);
      }),
      { numRuns: 500 },
    );
  });
});

const UNITS: Readonly<Record<string, bigint>> = {
  ms: 1n,
  s: 1000n,
  m: 60_000n,
  h: 3_600_000n,
  d: 86_400_000n,
};
const LIMIT_MS = 2_147_483_647n;
const unitArb = fc.constantFrom('ms', 's', 'm', 'h', 'd');
/** Durations around each unit's limit, small and huge counts, and malformed forms. */
const durationArb: fc.Arbitrary<string> = fc.oneof(
  unitArb.chain((u) => {
    const max = Number(LIMIT_MS / (UNITS[u] as bigint));
    return fc.integer({ min: max - 2, max: max + 2 }).map((n) => `${n}${u}`);
  }),
  fc.tuple(fc.integer({ min: 0, max: 1000 }), unitArb).map(([n, u]) => `${n}${u}`),
  fc.tuple(fc.integer({ min: 0, max: 2 ** 31 }), unitArb).map(([n, u]) => `${n}${u}`),
  fc.constantFrom(
    '9999999d',
    '9999999999ms',
    '0',
    '0s',
    '05s',
    '1.5s',
    '30',
    '30us',
    's',
    '',
    '-1s',
    '1e3ms',
  ),
);

function oracleDurationOk(d: string): boolean {
  const m = /^([1-9]\d*)(ms|s|m|h|d)$/.exec(d);
  if (m === null) return false;
  return BigInt(m[1] as string) * (UNITS[m[2] as string] as bigint) <= LIMIT_MS;
}

describe('durations (property)', () => {
  it('accepts exactly 1ms..2147483647ms in every duration field, and haproxy -c accepts what is accepted', async () => {
    const t = await template();
    await fc.assert(
      fc.asyncProperty(durationArb, async (d) => {
        let spec: Spec | undefined;
        try {
          spec = validateSpec({
            ...baseSpec,
            services: [
              { name: 'tcp', bind: ':80', nodePort: 30080 },
              { name: 'web', bind: ':81', nodePort: 30081, mode: 'http' },
            ],
            tuning: {
              timeouts: {
                connect: d,
                client: d,
                server: d,
                tunnel: d,
                httpKeepAlive: d,
                clientFin: d,
              },
            },
            healthCheck: { interval: d },
          });
        } catch (e) {
          expect(e).toBeInstanceOf(SpecError);
          // Every field is named: none lets a bad value through.
          expect((e as SpecError).problems).toHaveLength(7);
        }
        expect(spec !== undefined, d).toBe(oracleDurationOk(d));
        if (spec === undefined) return;
        const check = haproxyCheck(
          renderConfig(spec, [{ id: 'i-1', address: '10.0.0.1', state: 'serving' }], t).text,
        );
        expect(check.output).not.toMatch(/ALERT/);
        expect(check.ok).toBe(true);
      }),
      { numRuns: 150 },
    );
  });
});
