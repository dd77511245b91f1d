import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createGcpEntry } from '../../../adapters/gcp/entry.js';
import { decideAuditLogEvent } from '../../../adapters/gcp/event.js';
import { validateSpec } from '../../../adapters/spec.js';
import { memoryLogger } from '../../../core/log.js';
import { eventFixture, fixtureNames } from '../../helpers/fixtures.js';

const load = (name: string): Record<string, unknown> => eventFixture('gcp', name);

const spec = validateSpec({
  name: 'gcp-unit',
  cloud: 'gcp',
  workers: {
    gcp: {
      project: 'lbsync-demo',
      groups: [
        { name: 'web-a', zone: 'europe-west1-b' },
        { name: 'web-r', region: 'europe-west1' },
      ],
    },
  },
  loadBalancers: { gcp: { instances: [{ name: 'lb-1', zone: 'europe-west1-b' }] } },
  services: [{ name: 'http', bind: ':80', nodePort: 30080 }],
});

describe('decideAuditLogEvent', () => {
  it.each([
    { name: 'instance-insert-first.json', group: 'web-a' },
    { name: 'instance-insert-last.json', group: 'web-a' },
    { name: 'instance-delete-last.json', group: 'web-r' },
    { name: 'mig-resize.json', group: 'web-a' },
    { name: 'regional-mig-recreate.json', group: 'web-r' },
  ])('resyncs on $name, naming group $group', ({ name, group }) => {
    const d = decideAuditLogEvent(load(name), spec.workers);
    expect(d).toMatchObject({ action: 'sync', request: { reason: 'event', group } });
  });

  it('carries the CloudEvent id for log correlation', () => {
    const d = decideAuditLogEvent(load('mig-resize.json'), spec.workers);
    expect(d.action === 'sync' && d.request.eventId).toBe('lbsync-demo-1003');
  });

  it.each([
    { name: 'instance-insert-other-zone.json', reason: /zone us-central1-a has no configured MIG/ },
    { name: 'mig-resize-unconfigured.json', reason: /batch-jobs is not configured/ },
    { name: 'instance-set-metadata.json', reason: /does not change MIG membership/ },
    { name: 'other-project-insert.json', reason: /project someone-else is not ours/ },
  ])('ignores $name', ({ name, reason }) => {
    const d = decideAuditLogEvent(load(name), spec.workers);
    expect(d.action).toBe('ignore');
    expect(d.action === 'ignore' && d.reason).toMatch(reason);
  });

  it('ignores events that are not audit logs, or not from Compute Engine', () => {
    const e = load('mig-resize.json');
    expect(
      decideAuditLogEvent(
        { ...e, type: 'google.cloud.pubsub.topic.v1.messagePublished' },
        spec.workers,
      ),
    ).toMatchObject({ action: 'ignore' });
    const data = e.data as { protoPayload: Record<string, unknown> };
    const storage = {
      ...e,
      data: {
        ...data,
        protoPayload: { ...data.protoPayload, serviceName: 'storage.googleapis.com' },
      },
    };
    expect(decideAuditLogEvent(storage, spec.workers)).toMatchObject({ action: 'ignore' });
  });

  it('has a fixture for every case it documents', () => {
    expect(fixtureNames('events/gcp', '.json')).toHaveLength(9);
  });

  it.each([
    [null, 'not a CloudEvent object (null)'],
    [undefined, 'not a CloudEvent object (undefined)'],
    [0, 'not a CloudEvent object (number)'],
    ['google.cloud.audit.log.v1.written', 'not a CloudEvent object (string)'],
    [true, 'not a CloudEvent object (boolean)'],
    [[], 'not a CloudEvent object (a list)'],
  ])('ignores %j, which is not an event at all, without throwing', (event, reason) => {
    expect(decideAuditLogEvent(event, spec.workers)).toEqual({ action: 'ignore', reason });
  });

  it('the CloudEvent handler ignores a null event too, and syncs nothing', async () => {
    const lines: Record<string, unknown>[] = [];
    // Only the spec is read: an ignored event runs no sync (no source, no transport).
    const entry = createGcpEntry({ spec } as Parameters<typeof createGcpEntry>[0]);
    await expect(entry.cloudEvent(null, memoryLogger(lines))).resolves.toMatchObject({
      ok: true,
      outcome: 'ignored',
    });
    await expect(entry.cloudEvent(undefined, memoryLogger(lines))).resolves.toMatchObject({
      outcome: 'ignored',
    });
    expect(lines.map((l) => l.msg)).toEqual(['event ignored', 'event ignored']);
  });

  it('never throws on arbitrary JSON, null or primitives as the whole event', () => {
    const base = load('mig-resize.json');
    fc.assert(
      fc.property(
        fc.oneof(
          fc.constantFrom(null, undefined, 0, '', true, [], {}),
          fc.jsonValue(),
          fc.anything(),
          fc.dictionary(fc.constantFrom(...Object.keys(base)), fc.anything()).map((patch) => ({
            ...base,
            ...patch,
          })),
        ),
        (event) => {
          expect(['sync', 'ignore']).toContain(decideAuditLogEvent(event, spec.workers).action);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), (type, data) => {
        const d = decideAuditLogEvent({ type: type as string, data }, spec.workers);
        expect(['sync', 'ignore']).toContain(d.action);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.string(), fc.string(), (methodName, resourceName) => {
        const d = decideAuditLogEvent(
          {
            type: 'google.cloud.audit.log.v1.written',
            data: {
              protoPayload: { serviceName: 'compute.googleapis.com', methodName, resourceName },
            },
          },
          spec.workers,
        );
        expect(['sync', 'ignore']).toContain(d.action);
      }),
      { numRuns: 300 },
    );
  });
});
