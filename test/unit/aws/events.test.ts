import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAwsEvent } from '../../../adapters/aws/events.js';
import { TriggerParseError } from '../../../core/errors.js';
import { eventFrom, fixture } from '../../fakes/aws/events.js';
import { eventFixture } from '../../helpers/fixtures.js';

const GROUPS = ['workers-a', 'workers-b'];

describe('parseAwsEvent', () => {
  it.each([
    { name: 'launch-successful', reason: 'event' },
    { name: 'launch-unsuccessful', reason: 'event' },
    { name: 'terminate-successful', reason: 'event' },
    { name: 'terminate-unsuccessful', reason: 'event' },
  ])('turns $name into a level-triggered sync of the group', ({ name, reason }) => {
    const t = parseAwsEvent(fixture(name), GROUPS);
    expect(t.kind).toBe('sync');
    if (t.kind !== 'sync') return;
    expect(t.request).toMatchObject({ reason, group: 'workers-a' });
    expect(t.request.eventId).toBe(fixture(name).id);
  });

  it.each([
    {
      name: 'launch-lifecycle-action',
      transition: 'launch',
      origin: 'EC2',
      destination: 'AutoScalingGroup',
    },
    {
      name: 'launch-lifecycle-action-from-warm-pool',
      transition: 'launch',
      origin: 'WarmPool',
      destination: 'AutoScalingGroup',
    },
    {
      name: 'terminate-lifecycle-action',
      transition: 'terminate',
      origin: 'AutoScalingGroup',
      destination: 'EC2',
    },
    {
      name: 'terminate-lifecycle-action-to-warm-pool',
      transition: 'terminate',
      origin: 'AutoScalingGroup',
      destination: 'WarmPool',
    },
    {
      name: 'launch-lifecycle-action-to-warm-pool',
      transition: 'launch',
      origin: 'EC2',
      destination: 'WarmPool',
    },
    {
      name: 'terminate-lifecycle-action-from-warm-pool',
      transition: 'terminate',
      origin: 'WarmPool',
      destination: 'EC2',
    },
  ])(
    'reads $name as a $transition lifecycle action with its token, origin and destination',
    ({ name, transition, origin, destination }) => {
      const t = parseAwsEvent(fixture(name), GROUPS);
      expect(t.kind).toBe('lifecycle');
      if (t.kind !== 'lifecycle') return;
      expect(t.request.reason).toBe('event');
      expect(t.action).toEqual({
        transition,
        group: 'workers-a',
        hook: transition === 'launch' ? 'lbsync-launch' : 'lbsync-drain',
        token: '87654321-4321-4321-4321-210987654321',
        instanceId: 'i-0aaaaaaaaaaaa0001',
        origin,
        destination,
      });
    },
  );

  it.each([
    ['warm-pool-1-new-instance-to-warm-pool', 'launch', 'EC2', 'WarmPool'],
    ['warm-pool-2-warm-pool-to-group', 'launch', 'WarmPool', 'AutoScalingGroup'],
    ['warm-pool-3-new-instance-to-group', 'launch', 'EC2', 'AutoScalingGroup'],
    ['warm-pool-4-group-to-warm-pool-on-scale-in', 'terminate', 'AutoScalingGroup', 'WarmPool'],
  ])(
    "reads AWS's documented %s as a %s lifecycle action from %s to %s",
    (name, transition, origin, destination) => {
      const event = eventFixture('aws', `documented/${name}`) as unknown;
      const t = parseAwsEvent(event, ['my-asg']);
      expect(t).toMatchObject({
        kind: 'lifecycle',
        request: { reason: 'event', group: 'my-asg' },
        action: {
          transition,
          group: 'my-asg',
          instanceId: 'i-1234567890abcdef0',
          origin,
          destination,
        },
      });
    },
  );

  it('turns a scheduled event into a schedule resync', () => {
    const t = parseAwsEvent(fixture('scheduled'), GROUPS);
    expect(t).toMatchObject({ kind: 'sync', request: { reason: 'schedule' } });
  });

  it('accepts the manual resync body directly and as a custom EventBridge event', () => {
    expect(parseAwsEvent(fixture('manual-direct'), GROUPS)).toMatchObject({
      kind: 'sync',
      request: { reason: 'manual', force: false, dryRun: false },
    });
    expect(parseAwsEvent(fixture('manual-custom-event'), GROUPS)).toMatchObject({
      kind: 'sync',
      request: { reason: 'manual', dryRun: true, eventId: 'a1b2c3d4-0000-4000-8000-00000000000a' },
    });
  });

  it('ignores events for groups not in the spec', () => {
    const t = parseAwsEvent(
      eventFrom('launch-successful', { AutoScalingGroupName: 'other' }),
      GROUPS,
    );
    expect(t).toMatchObject({ kind: 'ignore', reason: 'group other is not in the spec' });
  });

  it('ignores unknown events, test notifications and lifecycle events missing fields', () => {
    expect(parseAwsEvent(fixture('unknown-ec2-state-change'), GROUPS).kind).toBe('ignore');
    expect(parseAwsEvent(fixture('lifecycle-test-notification'), GROUPS).kind).toBe('ignore');
    expect(
      parseAwsEvent(eventFrom('terminate-lifecycle-action', { LifecycleActionToken: '' }), GROUPS)
        .kind,
    ).toBe('ignore');
    expect(
      parseAwsEvent(eventFrom('launch-successful', { AutoScalingGroupName: 7 }), GROUPS).kind,
    ).toBe('ignore');
  });

  it('rejects a manual body with bad option types as a TriggerParseError', () => {
    expect(() => parseAwsEvent({ lbsync: 'resync', force: 'yes' }, GROUPS)).toThrow(
      TriggerParseError,
    );
  });

  it('never throws on null, undefined, primitives or arbitrary values, nor on any event shape', () => {
    const base = fixture('terminate-lifecycle-action-to-warm-pool');
    const detail = base.detail as Record<string, unknown>;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.constantFrom(null, undefined, 0, '', 'resync', true, [], {}),
          fc.anything(),
          fc.dictionary(fc.constantFrom(...Object.keys(base)), fc.anything()).map((p) => ({
            ...base,
            ...p,
          })),
          fc.dictionary(fc.constantFrom(...Object.keys(detail)), fc.anything()).map((p) => ({
            ...base,
            detail: { ...detail, ...p },
          })),
        ),
        (v) => {
          // A malformed manual body, direct or as a detail, is a TriggerParseError by design.
          const manualish = (x: unknown): boolean =>
            typeof x === 'object' &&
            x !== null &&
            (x as Record<string, unknown>).lbsync === 'resync';
          if (manualish(v) || manualish((v as { detail?: unknown } | null)?.detail)) return;
          expect(['sync', 'lifecycle', 'ignore']).toContain(parseAwsEvent(v, GROUPS).kind);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never throws on arbitrary JSON other than a malformed manual body', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const isManualish =
          typeof v === 'object' && v !== null && (v as Record<string, unknown>).lbsync === 'resync';
        if (isManualish) return;
        expect(['sync', 'lifecycle', 'ignore']).toContain(parseAwsEvent(v, GROUPS).kind);
      }),
      { numRuns: 300 },
    );
  });
});
