import { describe, expect, it } from 'vitest';
import type { SyncReport } from '../../core/sync.js';
import { SyncCoalescer } from '../../core/trigger.js';

function report(n: number): SyncReport {
  return { generation: n } as unknown as SyncReport;
}

describe('SyncCoalescer', () => {
  it('runs one sync at a time and merges triggers that wait into one follow-up', async () => {
    // Prepare: each sync runs until the test releases it, so the order is explicit.
    const c = new SyncCoalescer();
    let running = 0;
    let maxRunning = 0;
    let calls = 0;
    const releases: (() => void)[] = [];
    const fn = async (): Promise<SyncReport> => {
      const n = ++calls;
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise<void>((r) => releases.push(r));
      running--;
      return report(n);
    };

    // Act: three triggers arrive while the first sync runs.
    const first = c.run({ reason: 'event' }, fn);
    while (calls < 1) await Promise.resolve();
    const waiting = [1, 2, 3].map(() => c.run({ reason: 'event' }, fn));
    releases[0]?.();
    while (calls < 2) await new Promise((r) => setImmediate(r));
    releases[1]?.();
    const results = await Promise.all([first, ...waiting]);

    // Assess
    expect(calls).toBe(2);
    expect(maxRunning).toBe(1);
    expect(results.map((r) => r.generation)).toEqual([1, 2, 2, 2]);
  });

  it('does not merge a dry run into a real sync', async () => {
    // Prepare
    const c = new SyncCoalescer();
    let calls = 0;
    const fn = async (): Promise<SyncReport> => report(++calls);

    // Act
    await Promise.all([
      c.run({ reason: 'manual' }, fn),
      c.run({ reason: 'manual', dryRun: true }, fn),
    ]);

    // Assess
    expect(calls).toBe(2);
  });

  it('keeps going after a failed sync', async () => {
    // Prepare
    const c = new SyncCoalescer();

    // Act
    const failed = c.run({ reason: 'event' }, async () => {
      throw new Error('boom');
    });
    const next = c.run({ reason: 'event', force: true }, async () => report(7));

    // Assess
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toMatchObject({ generation: 7 });
  });
});
