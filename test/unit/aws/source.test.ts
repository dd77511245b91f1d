import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AwsClients,
  createAwsClients,
  destroyAwsClients,
} from '../../../adapters/aws/clients.js';
import { AsgSource, roleOf } from '../../../adapters/aws/source.js';
import { InputError, SourceError } from '../../../core/errors.js';
import { memoryLogger } from '../../../core/log.js';
import { canonicalWorkers } from '../../../core/render.js';
import { FakeAws } from '../../fakes/aws/fake-aws.js';

// This file owns port 22201.
const wid = (n: number): string => `i-0c${n.toString(16).padStart(15, '0')}`;

describe('AsgSource against the AWS fake', () => {
  let fake: FakeAws;
  let clients: AwsClients;
  const logs: Record<string, unknown>[] = [];

  beforeAll(async () => {
    fake = await FakeAws.start({ port: 22201, asgPageSize: 2, ec2PageSize: 5 });
    clients = createAwsClients({
      region: 'eu-west-1',
      endpoint: fake.url,
      credentials: { accessKeyId: 'AKIAFAKE', secretAccessKey: 'fake' },
      maxAttempts: 1,
    });
  });

  afterAll(async () => {
    destroyAwsClients(clients);
    await fake?.stop();
  });

  function source(groups: readonly string[], admit?: ReadonlySet<string>): AsgSource {
    return new AsgSource({
      autoScaling: clients.autoScaling,
      ec2: clients.ec2,
      groups,
      logger: memoryLogger(logs),
      consistencyDelayMs: 10,
      ...(admit !== undefined ? { admit } : {}),
    });
  }

  it.each([
    { state: 'InService', health: 'Healthy', admitted: false, role: 'serving' },
    { state: 'InService', health: 'Unhealthy', admitted: false, role: 'draining' },
    { state: 'Pending', health: 'Healthy', admitted: false, role: null },
    { state: 'Pending:Wait', health: 'Healthy', admitted: false, role: null },
    { state: 'Pending:Wait', health: 'Healthy', admitted: true, role: 'serving' },
    { state: 'Pending:Proceed', health: 'Healthy', admitted: false, role: 'serving' },
    { state: 'Terminating', health: 'Healthy', admitted: false, role: 'draining' },
    { state: 'Terminating:Wait', health: 'Healthy', admitted: false, role: 'draining' },
    { state: 'Terminating:Proceed', health: 'Healthy', admitted: false, role: null },
    { state: 'Standby', health: 'Healthy', admitted: false, role: null },
    { state: 'Warmed:Running', health: 'Healthy', admitted: false, role: null },
  ])('maps $state/$health (admitted: $admitted) to $role', ({ state, health, admitted, role }) => {
    expect(roleOf(state, health, admitted)).toBe(role);
  });

  it('resolves several groups across pages: in-service serve, Terminating:Wait drain, others are left out', async () => {
    // Prepare: 3 groups (pages of 2 groups), 12 instances (pages of 5 instances).
    for (const g of ['g1', 'g2', 'g3']) fake.addGroup(g);
    for (let i = 1; i <= 12; i++) fake.addMember(`g${(i % 3) + 1}`, wid(i), `10.1.0.${i}`);
    fake.setMember('g1', wid(3), { lifecycleState: 'Terminating:Wait' });
    fake.setMember('g2', wid(4), { lifecycleState: 'Pending' });
    fake.setMember('g3', wid(5), { lifecycleState: 'Standby' });

    // Act
    const workers = await source(['g1', 'g2', 'g3']).resolve();

    // Assess
    const byId = Object.fromEntries(workers.map((w) => [w.id, w.state]));
    expect(Object.keys(byId)).toHaveLength(10);
    expect(byId[wid(3)]).toBe('draining');
    expect(byId[wid(4)]).toBeUndefined();
    expect(byId[wid(5)]).toBeUndefined();
    expect(workers.find((w) => w.id === wid(1))).toMatchObject({
      address: '10.1.0.1',
      group: 'g2',
      zone: 'eu-west-1a',
    });
    expect(fake.count('DescribeAutoScalingGroups')).toBe(2);
    expect(fake.count('DescribeInstances')).toBe(2);
  });

  it('batches more than 50 group names into several DescribeAutoScalingGroups calls', async () => {
    const names = Array.from({ length: 51 }, (_, i) => `batch-${i}`);
    for (const n of names) fake.addGroup(n);
    fake.addMember('batch-50', wid(60), '10.1.1.60');
    const before = fake.count('DescribeAutoScalingGroups');
    const workers = await source(names).resolve();
    expect(workers.map((w) => w.id)).toEqual([wid(60)]);
    // 50 names in pages of 2 groups = 25 calls, then 1 for the 51st.
    expect(fake.count('DescribeAutoScalingGroups') - before).toBe(26);
  });

  it('serves an admitted Pending:Wait instance (launch hook) and no other', async () => {
    fake.addGroup('hooked');
    fake.addMember('hooked', wid(20), '10.1.2.20', { lifecycleState: 'Pending:Wait' });
    fake.addMember('hooked', wid(21), '10.1.2.21', { lifecycleState: 'Pending:Wait' });
    const workers = await source(['hooked'], new Set([wid(20)])).resolve();
    expect(workers.map((w) => [w.id, w.state])).toEqual([[wid(20), 'serving']]);
  });

  it('skips an instance without a private IP, with a warning', async () => {
    fake.addGroup('no-ip');
    fake.addMember('no-ip', wid(30), undefined);
    fake.addMember('no-ip', wid(31), '10.1.3.31');
    const workers = await source(['no-ip']).resolve();
    expect(workers.map((w) => w.id)).toEqual([wid(31)]);
    expect(
      logs.some(
        (l) => l.level === 'warn' && l.instance === wid(30) && /no private IP/.test(String(l.msg)),
      ),
    ).toBe(true);
  });

  it('passes what EC2 reports on to the core, which refuses an unspecified or link-local address', async () => {
    fake.addGroup('odd-ip');
    fake.addMember('odd-ip', wid(35), '10.1.3.35');
    fake.addMember('odd-ip', wid(36), '0.0.0.0');
    const workers = await source(['odd-ip']).resolve();
    expect(workers.map((w) => w.address).sort()).toEqual(['0.0.0.0', '10.1.3.35']);
    expect(() => canonicalWorkers(workers)).toThrowError(InputError);
    expect(() => canonicalWorkers(workers)).toThrowError(`worker ${wid(36)} address: "0.0.0.0"`);
  });

  it('retries briefly when EC2 does not show a just-launched instance yet', async () => {
    fake.addGroup('fresh');
    fake.addMember('fresh', wid(40), '10.1.4.40', { hiddenForCalls: 2 });
    const workers = await source(['fresh']).resolve();
    expect(workers.map((w) => w.address)).toEqual(['10.1.4.40']);
  });

  it('warns about a configured group that does not exist and resolves the rest', async () => {
    fake.addGroup('exists');
    fake.addMember('exists', wid(50), '10.1.5.50');
    const workers = await source(['exists', 'gone']).resolve();
    expect(workers.map((w) => w.id)).toEqual([wid(50)]);
    expect(logs.some((l) => l.group === 'gone' && /not found/.test(String(l.msg)))).toBe(true);
  });

  it('fails retryably on throttling and 5xx, permanently on validation errors', async () => {
    fake.fail('DescribeAutoScalingGroups', 'Throttling', 1);
    await expect(source(['exists']).resolve()).rejects.toMatchObject({
      name: 'SourceError',
      retryable: true,
    });
    fake.fail('DescribeInstances', 'RequestLimitExceeded', 1);
    await expect(source(['exists']).resolve()).rejects.toMatchObject({
      retryable: true,
      message: /RequestLimitExceeded/,
    });
    fake.fail('DescribeAutoScalingGroups', 'InternalFailure', 1, 500);
    await expect(source(['exists']).resolve()).rejects.toMatchObject({ retryable: true });
    fake.fail('DescribeAutoScalingGroups', 'ValidationError', 1);
    const err = await source(['exists'])
      .resolve()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as SourceError).retryable).toBe(false);
  });
});
