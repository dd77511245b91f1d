import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifyAutoscaleNotification,
  classifyEventGridEvent,
  type EventScope,
} from '../../../adapters/azure/events.js';
import { eventFixture, fixtureJson, fixtureNames } from '../../helpers/fixtures.js';

const fixture = (name: string): Record<string, unknown> => eventFixture('azure', name);

const SCOPE: EventScope = {
  subscriptionId: '00000000-0000-4000-8000-0000000000a4',
  scaleSets: [
    { resourceGroup: 'MC-WEU', name: 'aks-system-vmss', orchestration: 'uniform' },
    { resourceGroup: 'mc-apps', name: 'aks-apps-flex', orchestration: 'flexible' },
  ],
  lbVms: [{ resourceGroup: 'rg-edge', name: 'lb-weu-1' }],
};

const SCHEMAS = ['', 'cloudevents-'] as const;
const both = <T extends { name: string }>(rows: readonly T[]): T[] =>
  SCHEMAS.flatMap((prefix) => rows.map((r) => ({ ...r, name: `${prefix}${r.name}` })));

describe('classifyEventGridEvent', () => {
  it.each(
    both([
      { name: 'vmss-write-success.json', group: 'MC-WEU/aks-system-vmss' },
      { name: 'vmss-vm-delete-success.json', group: 'MC-WEU/aks-system-vmss' },
      { name: 'vmss-scale-action-success.json', group: 'MC-WEU/aks-system-vmss' },
      { name: 'flex-vm-write-success.json', group: 'mc-apps/aks-apps-flex' },
      { name: 'flex-vm-delete-success.json', group: 'mc-apps/aks-apps-flex' },
    ]),
  )('syncs on $name for group $group', ({ name, group }) => {
    // Act
    const verdict = classifyEventGridEvent(fixture(name), SCOPE);

    // Assess
    expect(verdict).toEqual({ kind: 'sync', group, eventId: fixture(name).id });
  });

  it.each(
    both([
      { name: 'storage-write-success.json', reason: /not a configured scale set/ },
      { name: 'vmss-write-failure.json', reason: /ResourceWriteFailure is not handled/ },
      { name: 'lb-vm-runcommand-action.json', reason: /run command/ },
    ]),
  )('ignores $name', ({ name, reason }) => {
    // Act
    const verdict = classifyEventGridEvent(fixture(name), SCOPE);

    // Assess
    expect(verdict.kind).toBe('ignore');
    expect(verdict.kind === 'ignore' ? verdict.reason : '').toMatch(reason);
  });

  it('ignores events about an LB VM even when they are not run commands', () => {
    // Prepare
    const e = fixture('lb-vm-runcommand-action.json');
    e.data = { operationName: 'Microsoft.Compute/virtualMachines/write' };

    // Act
    const verdict = classifyEventGridEvent(e, SCOPE);

    // Assess
    expect(verdict).toMatchObject({ kind: 'ignore', reason: 'subject is an LB VM' });
  });

  it('ignores a scale set of the same name in another subscription', () => {
    // Prepare
    const e = fixture('vmss-write-success.json');
    e.subject = String(e.subject).replace(
      SCOPE.subscriptionId,
      '11111111-1111-4111-8111-111111111111',
    );

    // Act
    const verdict = classifyEventGridEvent(e, SCOPE);

    // Assess
    expect(verdict).toMatchObject({ kind: 'ignore' });
  });

  it('has a CloudEvents 1.0 twin of every Event Grid schema fixture, field for field', () => {
    const grid = fixtureNames('events/azure').filter(
      (f) => f.endsWith('.json') && !/^(cloudevents-|documented-|autoscale-)/.test(f),
    );
    expect(grid).toHaveLength(8);
    for (const name of grid) {
      const eg = fixture(name);
      const ce = fixture(`cloudevents-${name}`);
      expect(ce).toEqual({
        specversion: '1.0',
        id: eg.id,
        source: eg.topic,
        subject: eg.subject,
        type: eg.eventType,
        time: eg.eventTime,
        data: eg.data,
      });
    }
  });

  it("reads Microsoft's documented samples of both schemas alike, even the CloudEvents one with the page's slips", () => {
    // The samples use placeholders: scope them to their own "{subscription-id}".
    const docScope: EventScope = { ...SCOPE, subscriptionId: '{subscription-id}' };
    const verdicts = [
      'documented/eventgrid-resource-delete-success.json',
      'documented/cloudevents-resource-delete-success.json',
      'documented/cloudevents-resource-write-success.json',
    ].flatMap((name) =>
      fixtureJson<unknown[]>(`events/azure/${name}`).map((e) =>
        classifyEventGridEvent(e, docScope),
      ),
    );
    // Type and subject were understood; a storage account is simply not a scale set.
    expect(verdicts.map((v) => v.kind === 'ignore' && v.reason)).toEqual([
      'subject is not a configured scale set or its VMs',
      'subject is not a configured scale set or its VMs',
      'subject is not a configured scale set or its VMs',
    ]);
    expect(verdicts[0]?.eventId).toBe(verdicts[1]?.eventId);
  });

  it('prefers eventType when an event carries both names, and reports a missing type', () => {
    const e = fixture('vmss-write-success.json');
    expect(
      classifyEventGridEvent({ ...e, type: 'Microsoft.Storage.BlobCreated' }, SCOPE).kind,
    ).toBe('sync');
    const { eventType: _dropped, ...untyped } = e;
    expect(classifyEventGridEvent(untyped, SCOPE)).toMatchObject({
      kind: 'ignore',
      reason: 'event type missing (neither eventType nor type) is not handled',
    });
  });

  it('never throws on arbitrary JSON, null or primitives, in either schema', () => {
    const base = fixture('cloudevents-vmss-write-success.json');
    fc.assert(
      fc.property(
        fc.oneof(
          fc.constantFrom(null, undefined, 0, '', 'x', true, [], {}),
          fc.jsonValue(),
          fc.anything(),
          fc.record({ type: fc.anything(), subject: fc.anything(), data: fc.anything() }),
          fc.dictionary(fc.constantFrom(...Object.keys(base)), fc.anything()).map((patch) => ({
            ...base,
            ...patch,
          })),
        ),
        (v) => {
          expect(['sync', 'ignore']).toContain(classifyEventGridEvent(v, SCOPE).kind);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never throws on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const verdict = classifyEventGridEvent(v, SCOPE);
        expect(['sync', 'ignore']).toContain(verdict.kind);
      }),
      { numRuns: 300 },
    );
  });
});

describe('classifyAutoscaleNotification', () => {
  it('reads a scale out with its capacities', () => {
    // Act
    const verdict = classifyAutoscaleNotification(fixture('autoscale-scale-out.json'), SCOPE);

    // Assess
    expect(verdict).toEqual({
      kind: 'sync',
      notification: {
        operation: 'Scale Out',
        group: 'MC-WEU/aks-system-vmss',
        oldCapacity: 2,
        newCapacity: 4,
      },
    });
  });

  it('ignores a scale set that is not configured', () => {
    // Prepare
    const body = fixture('autoscale-scale-in.json');
    (body.context as Record<string, unknown>).resourceName = 'other';

    // Act
    const verdict = classifyAutoscaleNotification(body, SCOPE);

    // Assess
    expect(verdict).toMatchObject({
      kind: 'ignore',
      reason: expect.stringContaining('not configured'),
    });
  });

  it('drops capacities that are not non-negative integers', () => {
    // Prepare
    const body = fixture('autoscale-scale-in.json');
    Object.assign(body.context as Record<string, unknown>, { oldCapacity: 'x', newCapacity: '-1' });

    // Act
    const verdict = classifyAutoscaleNotification(body, SCOPE);

    // Assess
    expect(verdict).toEqual({
      kind: 'sync',
      notification: { operation: 'Scale In', group: 'MC-WEU/aks-system-vmss' },
    });
  });

  it('never throws on arbitrary JSON, null or primitives', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.constantFrom(null, undefined, 0, ''), fc.jsonValue(), fc.anything()),
        (v) => {
          expect(['sync', 'ignore']).toContain(classifyAutoscaleNotification(v, SCOPE).kind);
        },
      ),
      { numRuns: 300 },
    );
  });
});
