import { describe, expect, it } from 'vitest';
import { detailOf, detailTypeOf } from '../../../adapters/aws/report.js';
import type { LbResult, SyncReport } from '../../../core/sync.js';

function report(
  outcomes: readonly LbResult['outcome'][],
  patch: Partial<SyncReport> = {},
): SyncReport {
  const ok = outcomes.every((o) => ['applied', 'unchanged', 'stale', 'planned'].includes(o));
  return {
    name: 'r',
    cloud: 'aws',
    reason: 'event',
    generation: 1,
    sha256: 'a'.repeat(64),
    workers: { serving: 2000, draining: 0 },
    servers: 20000,
    payloadBytes: 100,
    dryRun: false,
    forced: false,
    ok,
    retryable: false,
    ms: 5,
    services: [],
    results: outcomes.map((outcome, i) => ({
      lb: `i-${i}`,
      outcome,
      ok,
      retryable: false,
      ms: 1,
      plan: {
        action: 'apply',
        reason: 'config differs',
        added: Array.from({ length: 2000 }, (_, k) => `i-${k}`),
        removed: [],
        draining: [],
        liveServers: 0,
        desiredServers: 20000,
        sectionsChanged: null,
      },
    })),
    ...patch,
  };
}

describe('summary events', () => {
  it.each([
    {
      name: 'applied somewhere',
      outcomes: ['applied', 'unchanged'],
      dryRun: false,
      type: 'Sync Applied',
    },
    {
      name: 'nothing to do',
      outcomes: ['unchanged', 'stale'],
      dryRun: false,
      type: 'Sync Unchanged',
    },
    { name: 'a dry run', outcomes: ['planned'], dryRun: true, type: 'Sync Planned' },
    { name: 'one LB failed', outcomes: ['applied', 'error'], dryRun: false, type: 'Sync Failed' },
  ] as const)('names $name "$type"', ({ outcomes, dryRun, type }) => {
    expect(detailTypeOf({ report: report(outcomes, { dryRun }) })).toBe(type);
  });

  it('names a run that failed before reaching the LBs "Sync Failed"', () => {
    expect(
      detailTypeOf({ error: { message: 'Throttling', type: 'SourceError', retryable: true } }),
    ).toBe('Sync Failed');
  });

  it('keeps the detail small at 2,000 workers: plan id lists become counts', () => {
    const detail = detailOf({ report: report(['applied', 'applied']) });
    expect(JSON.stringify(detail).length).toBeLessThan(4096);
    expect(detail).toMatchObject({
      results: [{ plan: { added: 2000, removed: 0 } }, { lb: 'i-1' }],
    });
  });
});
