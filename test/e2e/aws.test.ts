import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AwsClients,
  createAwsClients,
  destroyAwsClients,
} from '../../adapters/aws/clients.js';
import { type LoadLoop, startLoad } from '../../adapters/local/load.js';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import { type Spec, validateSpec } from '../../adapters/spec.js';
import { resyncAws } from '../../cli/aws.js';
import { statusOf } from '../../cli/lb-status.js';
import { memoryLogger } from '../../core/log.js';
import { sha256Hex } from '../../core/payload.js';
import { workerIdsOf } from '../../core/plan.js';
import { type RunResult, SyncFailedError } from '../../core/trigger.js';
import { fixture, instanceEvent, lifecycleEvent } from '../fakes/aws/events.js';
import { FakeAws } from '../fakes/aws/fake-aws.js';
import { BOOT_CONFIG, LbVm } from '../fakes/lb-vm.js';
import { awsHandlerFor, runResultOf } from '../helpers/functions.js';
import { waitFor } from '../helpers/wait.js';

// This file owns port 22001 (fake AWS), 22010 (LB frontend) and workers on 127.0.22.11-20.
const FAKE_PORT = 22001;
const FRONT = 22010;
const NODE_PORT = 31220;
const HEALTH = 10256;
const GROUP = 'workers-a';
const LB1 = 'i-0e2e000000000bb1';
const LB2 = 'i-0e2e000000000bb2';

const wid = (n: number): string => `i-0a${n.toString(16).padStart(15, '0')}`;
const addr = (n: number): string => `127.0.22.${n}`;

describe('AWS: Auto Scaling event -> Lambda handler -> SSM -> apply -> traffic', () => {
  let dir: string;
  let fake: FakeAws;
  let lb1: LbVm;
  let lb2: LbVm;
  let clients: AwsClients;
  let spec: Spec;
  let specInput: Record<string, unknown>;
  let handle: (event: unknown) => Promise<RunResult>;
  let load: LoadLoop | undefined;
  const logs: Record<string, unknown>[] = [];
  const workers = new Map<string, WorkerServer>();
  const saved = { ...process.env };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lbsync-e2e-aws-'));
    fake = await FakeAws.start({ port: FAKE_PORT, invocationNotFoundPolls: 1 });
    fake.addGroup(GROUP, [
      { name: 'lbsync-launch', transition: 'launch', heartbeat: 300 },
      { name: 'lbsync-drain', transition: 'terminate', heartbeat: 300 },
    ]);
    fake.addGroup('workers-b');
    lb1 = await LbVm.start('lb1', join(dir, 'lb1'), BOOT_CONFIG);
    lb2 = await LbVm.start('lb2', join(dir, 'lb2'), BOOT_CONFIG);
    fake.addLbInstance(LB1, lb1);
    fake.addLbInstance(LB2, lb2, { tags: { lbsync: 'e2e-aws' } });
    // Standard SDK configuration, exactly as on a laptop pointed at a local endpoint.
    process.env.AWS_ENDPOINT_URL = fake.url;
    process.env.AWS_ACCESS_KEY_ID = 'AKIAFAKE';
    process.env.AWS_SECRET_ACCESS_KEY = 'fake-secret';
    process.env.AWS_MAX_ATTEMPTS = '2';
    specInput = {
      name: 'e2e-aws',
      cloud: 'aws',
      workers: { aws: { region: 'eu-west-1', autoScalingGroups: [GROUP, 'workers-b'] } },
      loadBalancers: {
        aws: { instanceIds: [LB1], tags: { lbsync: 'e2e-aws' }, commandTimeoutSeconds: 30 },
      },
      services: [{ name: 'http', bind: `127.0.0.1:${FRONT}`, nodePort: NODE_PORT }],
      healthCheck: { port: HEALTH, interval: '1s' },
      guards: { minWorkers: 1, maxRemovalPercent: 60 },
      drain: { seconds: 8 },
      // The machine's FD limit (20,000) is below the web profile's maxconn.
      tuning: { maxconn: 4000 },
    };
    spec = validateSpec(specInput);
    clients = createAwsClients({ region: 'eu-west-1' });
    handle = await awsHandlerFor(spec, {
      clients,
      logger: memoryLogger(logs),
      poll: { initialMs: 40, maxMs: 200 },
    });
  });

  afterAll(async () => {
    await load?.stop();
    destroyAwsClients(clients);
    await Promise.all([lb1?.stop(), lb2?.stop()]);
    await fake?.stop();
    await Promise.all([...workers.values()].map((w) => w.close()));
    process.env = saved;
    await rm(dir, { recursive: true, force: true });
  });

  async function launch(
    n: number,
    opts: { delayMs?: number; group?: string } = {},
  ): Promise<string> {
    const id = wid(n);
    workers.set(
      id,
      await startWorkerServer({
        id,
        address: addr(n),
        ports: [NODE_PORT],
        healthPort: HEALTH,
        ...opts,
      }),
    );
    fake.addMember(opts.group ?? GROUP, id, addr(n));
    return id;
  }

  function liveIds(vm: LbVm): readonly string[] {
    return workerIdsOf(readFileSync(vm.configPath, 'utf8'));
  }

  function groupIds(): readonly string[] {
    return [...fake.membersOf(GROUP), ...fake.membersOf('workers-b')]
      .filter((m) => m.lifecycleState === 'InService')
      .map((m) => m.id)
      .sort();
  }

  /** Requests started after `since` reach exactly `serving`. */
  async function expectTrafficOnExactly(since: number, serving: readonly string[]): Promise<void> {
    const loop = load;
    if (loop === undefined) throw new Error('no load loop');
    const deadline = Date.now() + 8000;
    let seen: string[] = [];
    while (Date.now() < deadline) {
      const after = loop.samples.filter((s) => s.startedAt > since);
      seen = [...new Set(after.map((s) => s.worker ?? 'failed'))].sort();
      if (after.length >= serving.length * 6 && serving.every((w) => seen.includes(w))) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(seen).toEqual([...serving].sort());
  }

  it('scales out: a launch event puts the new worker into traffic on both LBs', async () => {
    // Prepare: two workers, first sync from the periodic schedule.
    await launch(11);
    await launch(12);
    const first = await handle(fixture('scheduled'));
    expect(
      first.report?.results.map((r) => [r.lb, r.outcome]),
      JSON.stringify(first.report?.results),
    ).toEqual([
      [LB1, 'applied'],
      [LB2, 'applied'],
    ]);
    load = startLoad({
      host: '127.0.0.1',
      port: FRONT,
      concurrency: 6,
      maxRequests: 200_000,
      maxMs: 100_000,
    });
    await expectTrafficOnExactly(Date.now(), [wid(11), wid(12)]);

    // Act: Auto Scaling launches a third worker (slow, so drains later have work).
    const id = await launch(13, { delayMs: 1200 });
    const before = Date.now();
    const r = await handle(instanceEvent('launch-successful', GROUP, id));

    // Assess
    expect(r.ok).toBe(true);
    expect(r.report?.results.map((x) => x.outcome)).toEqual(['applied', 'applied']);
    expect(liveIds(lb1)).toEqual(groupIds());
    expect(liveIds(lb2)).toEqual(groupIds());
    await expectTrafficOnExactly(before, [wid(11), wid(12), id]);
    const applied = fake.events.filter(
      (e) => e.source === 'lbsync' && e.detailType === 'Sync Applied',
    );
    expect(applied.length).toBe(2);
    const stages = new Set(logs.map((l) => l.stage));
    expect([...stages]).toEqual(
      expect.arrayContaining(['trigger', 'resolve', 'render', 'plan', 'push', 'report']),
    );
    expect(
      logs
        .filter((l) => l.stage === 'push')
        .every(
          (l) => l.cloud === 'aws' && typeof l.generation === 'number' && typeof l.lb === 'string',
        ),
    ).toBe(true);
    // The first poll of every invocation hit InvocationDoesNotExist and was retried.
    expect(fake.count('GetCommandInvocation')).toBeGreaterThan(fake.count('SendCommand'));
  });

  it('drains a worker on scale-in: in-flight requests finish before CompleteLifecycleAction CONTINUE', async () => {
    // Prepare: the slow worker has requests in flight most of the time.
    const victim = wid(13);
    await waitFor(
      () => (workers.get(victim)?.openConnections() ?? 0) > 0,
      'a request in flight to the slow worker',
    );
    const action = fake.beginLifecycleAction(GROUP, victim, 'terminate');
    const started = Date.now();

    // Act
    const r = await handle(lifecycleEvent(action));

    // Assess: drained on both LBs, then completed with CONTINUE.
    expect(r.lifecycle?.drain?.map((d) => d.result)).toEqual(['drained', 'drained']);
    const done = fake.completions.find((c) => c.instanceId === victim);
    expect(done?.result).toBe('CONTINUE');
    const completedAt = done?.at ?? 0;
    const toVictim = load?.samples.filter((s) => s.worker === victim) ?? [];
    const inFlightAtDrain = toVictim.filter((s) => s.startedAt < started && s.at > started);
    expect(inFlightAtDrain.length).toBeGreaterThan(0);
    expect(toVictim.every((s) => s.at <= completedAt)).toBe(true);
    expect(load?.samples.filter((s) => s.error !== null)).toEqual([]);
    // The config marks it draining (weight 0) until Auto Scaling reports the termination.
    expect(readFileSync(lb1.configPath, 'utf8')).toMatch(
      new RegExp(`server ${victim} \\S+ weight 0`),
    );

    // Act: the instance terminated; its event removes it.
    const before = Date.now();
    const gone = await handle(instanceEvent('terminate-successful', GROUP, victim));
    expect(gone.report?.results.map((x) => x.outcome)).toEqual(['applied', 'applied']);
    expect(liveIds(lb1)).toEqual([wid(11), wid(12)]);
    await expectTrafficOnExactly(before, [wid(11), wid(12)]);
    await workers.get(victim)?.close();
    workers.delete(victim);
    expect(load?.samples.filter((s) => s.error !== null)).toEqual([]);
  });

  it('adds a launching worker to every LB before continuing its launch lifecycle action', async () => {
    // Prepare: Auto Scaling holds a new instance in Pending:Wait behind the launch hook.
    const id = await launch(19);
    fake.setMember(GROUP, id, { lifecycleState: 'Pending' });
    const action = fake.beginLifecycleAction(GROUP, id, 'launch');

    // Act 1: the LBs cannot be reached yet (SendCommand throttled past the SDK's retries).
    fake.fail('SendCommand', 'ThrottlingException', 4);
    await expect(handle(lifecycleEvent(action))).rejects.toMatchObject({ retryable: true });
    expect(fake.completions.some((c) => c.instanceId === id)).toBe(false);
    expect(logs.some((l) => /launch lifecycle action left pending/.test(String(l.msg)))).toBe(true);
    fake.clearFaults();

    // Act 2: Lambda retries the same event.
    const before = Date.now();
    const r = await handle(lifecycleEvent(action));

    // Assess: applied on both LBs, and only then continued.
    expect(r.report?.results.map((x) => x.outcome)).toEqual(['applied', 'applied']);
    const done = fake.completions.find((c) => c.instanceId === id);
    expect(done?.result).toBe('CONTINUE');
    const applies = fake
      .invocationLog()
      .filter((i) => i.sentAt >= before && i.comment.startsWith('lbsync apply'));
    expect(applies.map((i) => i.instanceId).sort()).toEqual([LB1, LB2]);
    expect(applies.every((i) => (i.endedAt ?? Number.POSITIVE_INFINITY) <= (done?.at ?? 0))).toBe(
      true,
    );
    expect(fake.membersOf(GROUP).find((m) => m.id === id)?.lifecycleState).toBe('InService');
    expect(liveIds(lb1)).toContain(id);
    await expectTrafficOnExactly(before + 200, groupIds());
  });

  it('does not drop serving workers on warm-pool lifecycle actions, duplicated or out of order', async () => {
    // Prepare: w14 serving, w15 parked in the warm pool.
    const w14 = await launch(14);
    const w15 = wid(15);
    workers.set(
      w15,
      await startWorkerServer({
        id: w15,
        address: addr(15),
        ports: [NODE_PORT],
        healthPort: HEALTH,
      }),
    );
    fake.addWarm(GROUP, w15, addr(15));
    await handle(fixture('scheduled'));
    const serving = groupIds();
    expect(serving).toContain(w14);
    expect(liveIds(lb1)).toEqual(serving);

    // Act 1: a warm-pool instance is terminated (origin WarmPool): nothing serving may change.
    const warmGone = fake.beginLifecycleAction(GROUP, w15, 'terminate', {
      origin: 'WarmPool',
      destination: 'EC2',
    });
    const r1 = await handle(lifecycleEvent(warmGone));
    expect(r1.lifecycle?.drain).toEqual([]);
    expect(r1.lifecycle?.completed).toBe('CONTINUE');
    expect(r1.report?.results.map((x) => x.outcome)).toEqual(['unchanged', 'unchanged']);
    expect(liveIds(lb1)).toEqual(serving);

    // Act 2: w14 returns to the warm pool on scale-in (destination WarmPool): drained, then gone.
    const toWarm = fake.beginLifecycleAction(GROUP, w14, 'terminate', { destination: 'WarmPool' });
    const toWarmEvent = lifecycleEvent(toWarm);
    const r2 = await handle(toWarmEvent);
    expect(r2.lifecycle?.drain?.map((d) => d.result)).toEqual(['drained', 'drained']);
    await handle(fixture('scheduled'));
    expect(liveIds(lb1)).toEqual(serving.filter((w) => w !== w14));

    // Act 3: scale-out takes w14 back from the warm pool through the launch hook.
    const back = fake.beginLifecycleAction(GROUP, w14, 'launch', {
      origin: 'WarmPool',
      destination: 'AutoScalingGroup',
    });
    const r3 = await handle(lifecycleEvent(back));
    expect(r3.lifecycle?.completed).toBe('CONTINUE');
    expect(fake.membersOf(GROUP).find((m) => m.id === w14)?.lifecycleState).toBe('InService');
    expect(liveIds(lb1)).toEqual(serving);

    // Act 4: the old "to warm pool" event arrives again, late. The group says
    // InService, so nothing drains and the worker keeps serving.
    const before = Date.now();
    const r4 = await handle(toWarmEvent);
    expect(r4.lifecycle?.drain).toEqual([]);
    expect(r4.lifecycle?.note).toMatch(/InService/);
    expect(r4.lifecycle?.completed).toBeNull();
    expect(readFileSync(lb1.configPath, 'utf8')).not.toMatch(/weight 0/);
    expect(liveIds(lb2)).toEqual(serving);
    await expectTrafficOnExactly(before, serving);
    expect(logs.some((l) => String(l.msg).includes('no such action is waiting'))).toBe(true);
  });

  it('never admits an instance whose launch hook parks it in the warm pool, and lets the launch go on', async () => {
    // Prepare: a new instance launches into the warm pool (Origin EC2, Destination WarmPool).
    const w19 = wid(19);
    fake.addMember(GROUP, w19, addr(19));
    const action = fake.beginLifecycleAction(GROUP, w19, 'launch', {
      origin: 'EC2',
      destination: 'WarmPool',
    });

    // Act
    const r = await handle(lifecycleEvent(action));

    // Assess: the LBs did not learn it, and Auto Scaling was told to continue.
    expect(r.lifecycle?.completed).toBe('CONTINUE');
    expect(liveIds(lb1)).not.toContain(w19);
    expect(liveIds(lb1)).toEqual(groupIds().filter((id) => id !== w19));
    fake.terminate(GROUP, w19);
  });

  it('fails the invocation for a retry when CompleteLifecycleAction keeps failing, and completes on redelivery', async () => {
    // Prepare: a warm-pool instance is being terminated; Auto Scaling throttles.
    const w20 = wid(20);
    fake.addWarm(GROUP, w20, addr(20));
    const action = fake.beginLifecycleAction(GROUP, w20, 'terminate', { origin: 'WarmPool' });
    fake.fail('CompleteLifecycleAction', 'Throttling', 2);

    // Act + Assess: the first delivery fails retryably with a log line saying why.
    await expect(handle(lifecycleEvent(action))).rejects.toMatchObject({ retryable: true });
    expect(
      logs.some((l) => /failing the invocation so Lambda retries it/.test(String(l.msg))),
    ).toBe(true);
    expect(fake.completions.some((c) => c.instanceId === w20)).toBe(false);
    const again = await handle(lifecycleEvent(action));
    expect(again.lifecycle?.completed).toBe('CONTINUE');
  });

  it('applies on the healthy LB and reports the other when one of two LBs fails', async () => {
    // Prepare: LB2's SSM agent goes offline.
    fake.setManaged(LB2, false);
    const id = await launch(16);

    // Act
    const r = await handle(instanceEvent('launch-successful', GROUP, id));

    // Assess: LB1 applied, LB2 failed with a clear reason, not retried forever.
    expect(r.ok).toBe(false);
    const byLb = Object.fromEntries((r.report?.results ?? []).map((x) => [x.lb, x]));
    expect(byLb[LB1]?.outcome).toBe('applied');
    expect(byLb[LB2]?.outcome).toBe('error');
    expect(byLb[LB2]?.message).toMatch(/not managed by SSM/);
    expect(liveIds(lb1)).toContain(id);
    expect(liveIds(lb2)).not.toContain(id);
    const last = fake.events.at(-1);
    expect(last?.detailType).toBe('Sync Failed');
    expect(JSON.stringify(last?.detail)).toContain('not managed by SSM');

    // Act: the agent is back and a command on it fails once; then the schedule heals.
    fake.setManaged(LB2, true);
    fake.failCommands(LB2, {
      status: 'Failed',
      stderr: 'sh: 1: cannot create /tmp: No space left on device',
      count: 1,
    });
    // The command ended without a result line: what LB2 runs is unknown, so
    // the invocation fails for a retry (the next run finds out).
    const failed = await handle(fixture('scheduled')).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(SyncFailedError);
    expect((failed as SyncFailedError).retryable).toBe(true);
    const lb2Result = (failed as SyncFailedError).result.report?.results.find((x) => x.lb === LB2);
    expect(lb2Result?.message).toMatch(
      /(status|apply generation \d+) command ended .* state is unknown/,
    );
    expect(lb2Result?.message).toMatch(/No space left/);
    const healed = await handle(fixture('scheduled'));
    expect(healed.ok).toBe(true);
    expect(liveIds(lb2)).toEqual(liveIds(lb1));
  });

  it('fails retryably under a throttling storm, absorbs short bursts, and applies once it passes', async () => {
    // Act 1: a storm longer than the SDK's retries fails the invocation as retryable.
    const id = await launch(17);
    fake.fail('DescribeAutoScalingGroups', 'Throttling', 50);
    const storm = handle(instanceEvent('launch-successful', GROUP, id));
    await expect(storm).rejects.toMatchObject({ retryable: true });
    expect(fake.events.at(-1)?.detailType).toBe('Sync Failed');
    fake.clearFaults();

    // Act 2: short bursts on every API are absorbed by SDK retries and lbsync's polling.
    fake.fail('DescribeAutoScalingGroups', 'Throttling', 1);
    fake.fail('DescribeInstances', 'RequestLimitExceeded', 1);
    fake.fail('SendCommand', 'ThrottlingException', 1);
    fake.fail('GetCommandInvocation', 'ThrottlingException', 3);
    fake.fail('PutEvents', 'ThrottlingException', 1);
    const r = await handle(instanceEvent('launch-successful', GROUP, id));

    // Assess
    expect(r.ok).toBe(true);
    expect(liveIds(lb1)).toContain(id);
    expect(liveIds(lb2)).toContain(id);
  });

  it('converges on the group state whatever the order of duplicate and late events', async () => {
    // Prepare: one worker joins, one leaves, events arrive shuffled and twice.
    const added = await launch(18);
    const leaving = wid(16);
    fake.terminate(GROUP, leaving);
    const events = [
      instanceEvent('terminate-successful', GROUP, leaving),
      instanceEvent('launch-successful', GROUP, added),
      instanceEvent('launch-successful', GROUP, wid(12)), // a very late one
      instanceEvent('terminate-successful', GROUP, leaving),
      instanceEvent('launch-successful', GROUP, added),
    ];

    // Act: delivered concurrently, as Lambda would with several instances.
    const results = await Promise.all(events.map((e) => handle(e)));

    // Assess: every LB ends equal to the group; extra runs were unchanged or stale, never errors.
    expect(liveIds(lb1)).toEqual(groupIds());
    expect(liveIds(lb2)).toEqual(groupIds());
    const outcomes = results.flatMap((r) => r.report?.results.map((x) => x.outcome) ?? []);
    expect(outcomes.every((o) => ['applied', 'unchanged', 'stale'].includes(o))).toBe(true);
    const before = Date.now();
    await expectTrafficOnExactly(before, groupIds());
    await workers.get(leaving)?.close();
    workers.delete(leaving);
  });

  it('sends exactly one Run Command per LB per sync: no status probe before the apply', async () => {
    // Prepare
    const id = await launch(21);
    const sent = fake.count('SendCommand');

    // Act
    const r = await handle(instanceEvent('launch-successful', GROUP, id));

    // Assess: two LBs, two commands; each LB planned against its own live config.
    expect(r.report?.results.map((x) => x.outcome)).toEqual(['applied', 'applied']);
    expect(fake.count('SendCommand') - sent).toBe(2);
    expect(liveIds(lb1)).toContain(id);
  });

  it('ignores events for groups not in the spec and unknown events, without throwing', async () => {
    const other = await handle(instanceEvent('launch-successful', 'someone-elses-group', wid(99)));
    const unknown = await handle(fixture('unknown-ec2-state-change'));
    const test = await handle(fixture('lifecycle-test-notification'));
    expect(other.ignored).toMatch(/not in the spec/);
    expect(unknown.ignored).toMatch(/unknown event/);
    expect(test.ignored).toMatch(/TEST_NOTIFICATION/);
    const ignoredLines = logs.filter((l) => l.stage === 'trigger' && typeof l.ignored === 'string');
    expect(ignoredLines.length).toBeGreaterThanOrEqual(3);
  });

  it('serves a dry run from a custom EventBridge event without touching the LBs', async () => {
    const reloads = await lb1.reloadCount();
    const r = await handle(fixture('manual-custom-event'));
    expect(r.report?.dryRun).toBe(true);
    expect(r.report?.results.map((x) => x.outcome)).toEqual(['planned', 'planned']);
    expect(await lb1.reloadCount()).toBe(reloads);
    expect(fake.events.at(-1)?.detailType).toBe('Sync Planned');
    const summary = await load?.stop();
    load = undefined;
    expect(summary?.failed).toBe(0);
    expect(summary?.requests).toBeGreaterThan(300);
  });

  it('runs the deployed entry point from LBSYNC_SPEC with the standard SDK configuration', async () => {
    process.env.LBSYNC_LOG_LEVEL = 'silent';
    const { handler } = await import('../../functions/aws.js');
    // A bad spec is reported, not thrown: retrying cannot fix it.
    process.env.LBSYNC_SPEC = JSON.stringify({ ...specInput, services: [] });
    const bad = runResultOf(await handler(fixture('scheduled')));
    expect(bad).toMatchObject({ ok: false, error: { type: 'SpecError', retryable: false } });
    expect(bad.error?.message).toMatch(/services: define at least one service/);
    // Fixed and redeployed: the next invocation builds afresh.
    process.env.LBSYNC_SPEC = JSON.stringify(specInput);
    const r = runResultOf(
      await handler(fixture('scheduled'), { getRemainingTimeInMillis: () => 60_000 }),
    );
    expect(r.ok).toBe(true);
    expect(r.report?.results.map((x) => x.outcome)).toEqual(['unchanged', 'unchanged']);
  });

  it("resyncs through Lambda Invoke for the CLI and reads each LB's live state", async () => {
    // Prepare: the fake's Lambda runs this handler, as the deployed function would.
    fake.addFunction('lbsync-e2e', (e) => handle(e));
    fake.addFunction('lbsync-broken', async () => {
      throw new Error('spec is unreadable');
    });

    // Act
    const out = (await resyncAws({
      function: 'lbsync-e2e',
      region: 'eu-west-1',
      dryRun: true,
    })) as RunResult;
    const status = await statusOf(spec);

    // Assess
    expect(out.report?.results.map((x) => [x.lb, x.outcome])).toEqual([
      [LB1, 'planned'],
      [LB2, 'planned'],
    ]);
    const sha = sha256Hex(readFileSync(lb1.configPath, 'utf8'));
    expect(status).toEqual([
      { lb: LB1, generation: expect.any(Number), sha256: sha, servers: groupIds().length },
      { lb: LB2, generation: expect.any(Number), sha256: sha, servers: groupIds().length },
    ]);
    expect(status[0]?.generation).toBeGreaterThan(0);
    await expect(resyncAws({ function: 'lbsync-broken', region: 'eu-west-1' })).rejects.toThrow(
      /spec is unreadable/,
    );
  });
});
