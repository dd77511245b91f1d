import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Spec, validateSpec } from '../../adapters/spec.js';
import { parseManualRequest } from '../../core/entry.js';
import { LbsyncError } from '../../core/errors.js';
import type { Worker } from '../../core/model.js';
import { parseApplyResult } from '../../core/payload.js';
import { loadTemplate, renderConfig } from '../../core/render.js';
import { haproxyCheck } from '../helpers/haproxy-check.js';

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

  it('parseManualRequest never throws anything but an LbsyncError on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
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
