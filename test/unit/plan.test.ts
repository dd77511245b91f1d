import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { validateSpec } from '../../adapters/spec.js';
import type { LiveState, Worker } from '../../core/model.js';
import { diffSections, planLb, workerIdsOf } from '../../core/plan.js';
import { compileTemplate, DEFAULT_TEMPLATE_PATH, renderConfig } from '../../core/render.js';

const spec = validateSpec({
  name: 'plan',
  cloud: 'local',
  workers: { local: { static: [] } },
  loadBalancers: {
    local: [{ name: 'lb', configPath: '/etc/haproxy/haproxy.cfg', stateDir: '/var/lib/lbsync' }],
  },
  services: [
    { name: 'http', bind: ':80', nodePort: 32080 },
    { name: 'https', bind: ':443', nodePort: 32443 },
  ],
  guards: { minWorkers: 1, maxRemovalPercent: 50 },
});
const template = compileTemplate(readFileSync(DEFAULT_TEMPLATE_PATH, 'utf8'));

const w = (n: number, state: Worker['state'] = 'serving'): Worker => ({
  id: `i-${String(n).padStart(3, '0')}`,
  address: `10.0.0.${n}`,
  state,
});
const fleet = (...ns: number[]): Worker[] => ns.map((n) => w(n));
/** What an LB reports after a config for `workers` was applied there. */
function liveOf(
  workers: readonly Worker[],
  opts: { ids?: boolean; text?: boolean } = {},
): LiveState {
  const r = renderConfig(spec, workers, template);
  return {
    generation: 1,
    sha256: r.sha256,
    servers: r.servers,
    ...(opts.ids !== false ? { workerIds: r.workerIds } : {}),
    ...(opts.text ? { text: r.text } : {}),
  };
}
const EMPTY_LB: LiveState = { generation: 0, sha256: null, servers: 0 };

describe('planLb', () => {
  const cases: readonly {
    readonly name: string;
    readonly live: LiveState;
    readonly desired: readonly Worker[];
    readonly force?: boolean;
    readonly action: 'apply' | 'noop' | 'refuse';
    readonly reason: RegExp;
    readonly added?: readonly string[] | null;
    readonly removed?: readonly string[] | null;
    readonly draining?: readonly string[];
  }[] = [
    {
      name: 'first sync on a fresh LB',
      live: EMPTY_LB,
      desired: fleet(1, 2),
      action: 'apply',
      reason: /first sync/,
      added: null,
      removed: null,
    },
    {
      name: 'no change',
      live: liveOf(fleet(1, 2, 3)),
      desired: fleet(3, 2, 1),
      action: 'noop',
      reason: /in sync/,
      added: [],
      removed: [],
    },
    {
      name: 'scale out',
      live: liveOf(fleet(1, 2)),
      desired: fleet(1, 2, 3, 4),
      action: 'apply',
      reason: /config differs/,
      added: ['i-003', 'i-004'],
      removed: [],
    },
    {
      name: 'scale in within the guard',
      live: liveOf(fleet(1, 2, 3, 4)),
      desired: fleet(1, 2, 3),
      action: 'apply',
      reason: /config differs/,
      added: [],
      removed: ['i-004'],
    },
    {
      name: 'drain before removal',
      live: liveOf(fleet(1, 2, 3)),
      desired: [w(1), w(2), w(3, 'draining')],
      action: 'apply',
      reason: /config differs/,
      added: [],
      removed: [],
      draining: ['i-003'],
    },
    {
      name: 'replace half the fleet (rolling update)',
      live: liveOf(fleet(1, 2, 3, 4)),
      desired: fleet(1, 2, 5, 6),
      action: 'apply',
      reason: /config differs/,
      added: ['i-005', 'i-006'],
      removed: ['i-003', 'i-004'],
    },
    {
      name: 'empty worker set refused',
      live: liveOf(fleet(1, 2)),
      desired: [],
      action: 'refuse',
      reason: /refusing an empty worker set \(guards\.minWorkers=1\)/,
    },
    {
      name: 'empty worker set refused even on a fresh LB',
      live: EMPTY_LB,
      desired: [],
      action: 'refuse',
      reason: /empty worker set/,
    },
    {
      name: 'only draining workers counts as empty',
      live: liveOf(fleet(1)),
      desired: [w(1, 'draining')],
      action: 'refuse',
      reason: /empty worker set/,
      draining: ['i-001'],
    },
    {
      name: 'sharp shrink refused',
      live: liveOf(fleet(1, 2, 3, 4)),
      desired: fleet(1),
      action: 'refuse',
      reason: /would remove 3 of 4 live workers \(75% > guards\.maxRemovalPercent=50\)/,
    },
    {
      name: 'sharp shrink refused from counts when ids are unknown',
      live: liveOf(fleet(1, 2, 3, 4), { ids: false }),
      desired: fleet(1),
      action: 'refuse',
      reason: /would remove 3 of 4/,
      added: null,
      removed: null,
    },
    {
      name: 'empty worker set applied when forced',
      live: liveOf(fleet(1, 2)),
      desired: [],
      force: true,
      action: 'apply',
      reason: /forced past guard: refusing an empty worker set/,
    },
    {
      name: 'sharp shrink applied when forced',
      live: liveOf(fleet(1, 2, 3, 4)),
      desired: fleet(1),
      force: true,
      action: 'apply',
      reason: /forced past guard/,
    },
    {
      name: 'in sync wins over guards',
      live: liveOf([]),
      desired: [],
      action: 'noop',
      reason: /in sync/,
    },
  ];

  for (const c of cases)
    it(c.name, () => {
      // Prepare
      const desired = renderConfig(spec, c.desired, template);
      // Act
      const plan = planLb({
        desired,
        workers: [...c.desired].sort((a, b) => a.id.localeCompare(b.id)),
        live: c.live,
        guards: spec.guards,
        serviceCount: spec.services.length,
        force: c.force ?? false,
      });
      // Assess
      expect(plan.action).toBe(c.action);
      expect(plan.reason).toMatch(c.reason);
      if (c.added !== undefined) expect(plan.added).toEqual(c.added);
      if (c.removed !== undefined) expect(plan.removed).toEqual(c.removed);
      expect(plan.draining).toEqual(c.draining ?? []);
      expect(plan.desiredServers).toBe(desired.servers);
    });

  it('names the config sections that changed when the live text is known', () => {
    const desired = renderConfig(spec, fleet(1, 2, 3), template);
    const plan = planLb({
      desired,
      workers: fleet(1, 2, 3),
      live: liveOf(fleet(1, 2), { text: true }),
      guards: spec.guards,
      serviceCount: 2,
      force: false,
    });
    expect(plan.sectionsChanged).toEqual(['backend be_http', 'backend be_https']);
  });
});

describe('diffSections', () => {
  it('reports added, removed and changed sections, ignoring comments', () => {
    const a = '# a\nglobal\n    maxconn 1\nfrontend f\n    bind :80\n';
    const b = '# b\nglobal\n    maxconn 2\nbackend x\n    mode tcp\n';
    expect(diffSections(a, b)).toEqual(['backend x', 'frontend f', 'global']);
    expect(diffSections(a, a.replace('# a', '# c'))).toEqual([]);
  });
});

describe('workerIdsOf', () => {
  it('reads the worker ids back from a rendered config', () => {
    const text = renderConfig(spec, fleet(3, 1, 2), template).text;
    expect(workerIdsOf(text)).toEqual(['i-001', 'i-002', 'i-003']);
  });
});
