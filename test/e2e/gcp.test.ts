import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { OAuth2Client } from 'google-auth-library';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { layoutPayload } from '../../adapters/gcp/metadata.js';
import { type LoadLoop, startLoad } from '../../adapters/local/load.js';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import { type Spec, validateSpec } from '../../adapters/spec.js';
import { statusOf } from '../../cli/lb-status.js';
import { memoryLogger } from '../../core/log.js';
import { encodePayload } from '../../core/payload.js';
import { configureGcpFunction } from '../../functions/gcp.js';
import { type RunningAgent, startAgent } from '../fakes/gcp/agent.js';
import { FakeCompute } from '../fakes/gcp/compute.js';
import { FakeMetadataServer } from '../fakes/gcp/metadata-server.js';
import { BOOT_CONFIG, LbVm } from '../fakes/lb-vm.js';
import { eventFixture } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/wait.js';

// Ports 24000-24099 and workers on 127.0.24.1-99 belong to this file.
const COMPUTE_PORT = 24001;
const FRONT = 24050;
const NODE_PORT = 30080;
const HEALTH = 24090;
const PROJECT = 'lbsync-demo';
const ZONE_B = 'europe-west1-b';
const ZONE_C = 'europe-west1-c';
const addr = (n: number): string => `127.0.24.${n}`;
const fixture = (name: string): Record<string, unknown> => eventFixture('gcp', name);

describe('GCP: audit-log event -> function -> setMetadata -> agent -> HAProxy', () => {
  let dir: string;
  let compute: FakeCompute;
  const vms = new Map<string, LbVm>();
  const mds = new Map<string, FakeMetadataServer>();
  const agents = new Map<string, RunningAgent>();
  const workers = new Map<string, WorkerServer>();
  const logs: Record<string, unknown>[] = [];
  let load: LoadLoop | undefined;

  const specFor = (lbs: readonly string[]): Spec =>
    validateSpec({
      name: 'gcp-e2e',
      cloud: 'gcp',
      workers: {
        gcp: {
          project: PROJECT,
          groups: [
            { name: 'web-a', zone: ZONE_B },
            { name: 'web-r', region: 'europe-west1' },
          ],
        },
      },
      loadBalancers: { gcp: { instances: lbs.map((name) => ({ name, zone: ZONE_B })) } },
      services: [{ name: 'http', bind: `127.0.0.1:${FRONT}`, nodePort: NODE_PORT }],
      healthCheck: { port: HEALTH, interval: '1s', rise: 1 },
      guards: { minWorkers: 1, maxRemovalPercent: 60 },
      drain: { seconds: 5 },
      lbApply: { reload: 'master-socket' },
      // The machine's FD limit (20,000) is below the web profile's maxconn.
      tuning: { maxconn: 4000 },
    });

  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: 'fake-token', expiry_date: Date.now() + 3_600_000 });
  const clientOptions = {
    apiEndpoint: '127.0.0.1',
    port: COMPUTE_PORT,
    protocol: 'http',
    fallback: true,
    authClient,
  } as const;
  const configure = (lbs: readonly string[], agentTimeoutMs = 30_000): void => {
    configureGcpFunction({
      spec: specFor(lbs),
      logger: memoryLogger(logs),
      tuning: {
        gcp: { clientOptions, agentTimeoutMs, pollMs: 100, retry: { attempts: 4, baseMs: 50 } },
      },
    });
  };

  async function launch(n: number, mig: 'web-a' | 'web-r', zone = ZONE_B): Promise<string> {
    const name = `${mig}-w${n}`;
    workers.set(
      name,
      await startWorkerServer({
        id: name,
        address: addr(n),
        ports: [NODE_PORT],
        healthPort: HEALTH,
      }),
    );
    compute.addInstance({
      name,
      zone,
      ip: addr(n),
      mig: mig === 'web-a' ? `zones/${ZONE_B}/web-a` : 'regions/europe-west1/web-r',
    });
    return name;
  }

  async function sendEvent(name: string, status = 204): Promise<void> {
    await request(getTestServer('lbsyncGcpEvent'))
      .post('/')
      .set('content-type', 'application/cloudevents+json')
      .send(JSON.stringify(fixture(name)))
      .expect(status);
  }

  async function resync(
    body: Record<string, unknown>,
    userAgent = 'lbsync-cli',
  ): Promise<request.Response> {
    return request(getTestServer('lbsyncGcpResync'))
      .post('/')
      .set('authorization', 'Bearer id-token')
      .set('user-agent', userAgent)
      .send(body);
  }

  const serversIn = (lb: string): string[] =>
    readFileSync(vms.get(lb)?.configPath ?? '', 'utf8')
      .split('\n')
      .filter((l) => /^\s+server /.test(l))
      .map((l) => l.trim());

  async function expectTrafficOnExactly(serving: readonly string[]): Promise<void> {
    const probe = startLoad({
      host: '127.0.0.1',
      port: FRONT,
      concurrency: 2,
      maxRequests: serving.length * 30,
      maxMs: 5000,
    });
    const summary = await probe.done;
    expect(summary.failed).toBe(0);
    expect(Object.keys(summary.byWorker).sort()).toEqual([...serving].sort());
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-e2e-gcp-'));
    compute = await FakeCompute.start(COMPUTE_PORT);
    compute.addMig({ name: 'web-a', zone: ZONE_B });
    compute.addMig({ name: 'web-r', region: 'europe-west1', paginated: true });
    const names = ['lb-1', 'lb-2', 'lb-3'];
    for (const [i, name] of names.entries()) {
      compute.addInstance({
        name,
        zone: ZONE_B,
        ip: `10.0.0.${10 + i}`,
        items: [{ key: 'ssh-keys', value: 'ops:ssh-ed25519 AAAA ops' }],
      });
      vms.set(name, await LbVm.start(name, join(dir, name), BOOT_CONFIG));
      mds.set(name, await FakeMetadataServer.start(compute, name, COMPUTE_PORT + 10 + i));
    }
    // lb-3's agent stays down until the test that needs it.
    for (const name of ['lb-1', 'lb-2']) {
      const vm = vms.get(name);
      const md = mds.get(name);
      if (vm && md) agents.set(name, await startAgent(vm, md.url));
    }
    configure(['lb-1', 'lb-2']);
  });

  afterAll(async () => {
    await load?.stop();
    await Promise.all([...agents.values()].map((a) => a.stop()));
    await Promise.all([...mds.values()].map((m) => m.stop()));
    await Promise.all([...vms.values()].map((v) => v.stop()));
    await Promise.all([...workers.values()].map((w) => w.close()));
    await compute?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('carries an instance insert event to both LBs and the traffic reaches exactly the MIG workers', async () => {
    // Prepare: three running instances in the zonal MIG.
    for (const n of [1, 2, 3]) await launch(n, 'web-a');
    // Act
    await sendEvent('instance-insert-last.json');
    // Assess: config live on both LBs, result read back from guest attributes, traffic.
    for (const lb of ['lb-1', 'lb-2']) {
      expect(compute.instance(lb).guest.get('lbsync/result')).toMatch(/"result":"applied"/);
      expect(serversIn(lb)).toEqual([
        `server web-a-w1 ${addr(1)}:${NODE_PORT}`,
        `server web-a-w2 ${addr(2)}:${NODE_PORT}`,
        `server web-a-w3 ${addr(3)}:${NODE_PORT}`,
      ]);
      const result = JSON.parse(compute.instance(lb).guest.get('lbsync/result') ?? '{}');
      expect(result).toMatchObject({ lbsync: 1, result: 'applied', servers: 3 });
      // Foreign metadata survives our writes.
      expect(compute.instance(lb).items.map((i) => i.key)).toEqual([
        'ssh-keys',
        'lbsync-manifest',
        'lbsync-payload-0',
      ]);
    }
    await expectTrafficOnExactly(['web-a-w1', 'web-a-w2', 'web-a-w3']);
    const pushes = logs.filter((l) => l.stage === 'push' && l.result === 'applied');
    expect(pushes.map((l) => l.lb).sort()).toEqual(['lb-1', 'lb-2']);
    expect(logs.every((l) => l.cloud === 'gcp' || l.stage === 'trigger')).toBe(true);
  });

  it('treats the first and last entries of one operation as harmless duplicates: no second reload', async () => {
    const vm = vms.get('lb-1');
    const before = await vm?.reloadCount();
    const config = readFileSync(vm?.configPath ?? '', 'utf8');
    await sendEvent('instance-insert-first.json');
    await sendEvent('instance-insert-last.json');
    expect(await vm?.reloadCount()).toBe(before);
    expect(readFileSync(vm?.configPath ?? '', 'utf8')).toBe(config);
    const result = JSON.parse(compute.instance('lb-1').guest.get('lbsync/result') ?? '{}');
    expect(result.result).toBe('unchanged');
  });

  it('scales out into the regional MIG, drains a DELETING instance, then removes it', async () => {
    // Prepare: a regional MIG member in another zone; scale out.
    load = startLoad({
      host: '127.0.0.1',
      port: FRONT,
      concurrency: 2,
      maxRequests: 50_000,
      maxMs: 60_000,
    });
    await launch(11, 'web-r', ZONE_C);
    await launch(12, 'web-r', ZONE_B);
    await sendEvent('regional-mig-recreate.json');
    expect(serversIn('lb-1')).toContain(`server web-r-w11 ${addr(11)}:${NODE_PORT}`);
    expect(serversIn('lb-2')).toContain(`server web-r-w12 ${addr(12)}:${NODE_PORT}`);

    // Act 1: the MIG starts deleting w11: weight 0, sessions drain.
    compute.setAction('web-r-w11', 'DELETING');
    await sendEvent('instance-delete-last.json');
    expect(serversIn('lb-1')).toContain(`server web-r-w11 ${addr(11)}:${NODE_PORT} weight 0`);

    // Act 2: it is gone.
    compute.deleteInstance('web-r-w11');
    await sendEvent('instance-delete-last.json');
    await workers.get('web-r-w11')?.close();
    workers.delete('web-r-w11');

    // Assess
    for (const lb of ['lb-1', 'lb-2']) {
      expect(serversIn(lb).map((l) => l.split(' ')[1])).toEqual([
        'web-a-w1',
        'web-a-w2',
        'web-a-w3',
        'web-r-w12',
      ]);
    }
    const summary = await load.stop();
    load = undefined;
    expect(summary.failed).toBe(0);
    expect(summary.requests).toBeGreaterThan(20);
    await expectTrafficOnExactly(['web-a-w1', 'web-a-w2', 'web-a-w3', 'web-r-w12']);
  });

  it('ignores events for other zones, other MIGs, other projects and its own setMetadata', async () => {
    const requestsBefore = compute.requests.length;
    for (const f of [
      'instance-insert-other-zone.json',
      'mig-resize-unconfigured.json',
      'instance-set-metadata.json',
      'other-project-insert.json',
    ]) {
      await sendEvent(f);
    }
    expect(compute.requests.length).toBe(requestsBefore);
    expect(logs.filter((l) => l.msg === 'event ignored').length).toBeGreaterThanOrEqual(4);
  });

  it('reports an LB whose agent is down as timed out while the other LBs apply', async () => {
    // Prepare: lb-3 joins the spec; its agent is not running. A real change.
    configure(['lb-1', 'lb-2', 'lb-3'], 6000);
    await launch(4, 'web-a');
    // Act
    const res = await resync({ lbsync: 'resync' });
    // Assess: a permanent failure is 422 on every cloud (core/trigger.ts answerOf).
    expect(res.status).toBe(422);
    const byLb = Object.fromEntries(
      (res.body.results as { lb: string; outcome: string; message?: string }[]).map((r) => [
        r.lb,
        r,
      ]),
    );
    expect(byLb['lb-1']?.outcome).toBe('applied');
    expect(byLb['lb-2']?.outcome).toBe('applied');
    expect(byLb['lb-3']?.outcome).toBe('error');
    expect(byLb['lb-3']?.message).toMatch(/agent on lb-3 did not report generation \d+ within 6s/);
    expect(res.body.retryable).toBe(false);
    expect(serversIn('lb-1')).toContain(`server web-a-w4 ${addr(4)}:${NODE_PORT}`);
    expect(serversIn('lb-3')).toEqual([]);
  });

  it('lets the agent apply what waited in metadata once it comes up', async () => {
    // Prepare: the payload from the last test still sits in lb-3's metadata.
    const vm = vms.get('lb-3');
    const md = mds.get('lb-3');
    if (!vm || !md) throw new Error('lb-3 missing');
    // Act
    agents.set('lb-3', await startAgent(vm, md.url));
    // Assess: bounded wait for the agent's result.
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !compute.instance('lb-3').guest.has('lbsync/result')) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(JSON.parse(compute.instance('lb-3').guest.get('lbsync/result') ?? '{}').result).toBe(
      'applied',
    );
    expect(serversIn('lb-3')).toContain(`server web-a-w4 ${addr(4)}:${NODE_PORT}`);
    const res = await resync({ lbsync: 'resync' });
    expect(res.status, JSON.stringify(res.body.results)).toBe(200);
    expect((res.body.results as { outcome: string }[]).map((r) => r.outcome)).toEqual([
      'unchanged',
      'unchanged',
      'unchanged',
    ]);
  });

  it("retries setMetadata after a 412 from a concurrent writer and keeps that writer's key", async () => {
    compute.concurrentMetadataWriter('lb-2', 2);
    await launch(5, 'web-a');
    const res = await resync({ lbsync: 'resync' });
    expect(res.status, JSON.stringify(res.body.results)).toBe(200);
    expect(compute.count(/instances\/lb-2\/setMetadata$/)).toBeGreaterThanOrEqual(3);
    expect(
      compute.requests.filter((r) => r.path.endsWith('lb-2/setMetadata') && r.status === 412),
    ).toHaveLength(2);
    expect(compute.instance('lb-2').items.map((i) => i.key)).toContain('other-writer-1');
    expect(serversIn('lb-2')).toContain(`server web-a-w5 ${addr(5)}:${NODE_PORT}`);
  });

  it('rides out throttling, a 503, late operations and an instance that vanished mid-resolve', async () => {
    // Prepare
    compute.fail(429, /listManagedInstances$/, 1);
    compute.fail(503, /\/instances$/, 1, 'GET');
    compute.setOperationDelay(1500);
    await launch(6, 'web-a');
    await launch(7, 'web-a');
    compute.hideFromInstanceList('web-a-w7');
    // Act
    const res = await resync({ lbsync: 'resync' });
    compute.setOperationDelay(0);
    // Assess: w6 applied everywhere; w7 (listed but gone) left out.
    expect(res.status, JSON.stringify(res.body.results)).toBe(200);
    for (const lb of ['lb-1', 'lb-2', 'lb-3']) {
      expect(serversIn(lb)).toContain(`server web-a-w6 ${addr(6)}:${NODE_PORT}`);
      expect(serversIn(lb).join('\n')).not.toContain('web-a-w7');
    }
    expect(compute.requests.some((r) => r.status === 429)).toBe(true);
    expect(compute.count(/operations\/[^/]+\/wait$/)).toBeGreaterThan(0);
  });

  it('fails the event invocation (for a platform retry) when the Compute API keeps throttling', async () => {
    compute.fail(429, /listManagedInstances$/, 20);
    await sendEvent('mig-resize.json', 500);
    compute.clearFaults();
  });

  it('refuses a resync without an identity token; a scheduled dry run pushes nothing', async () => {
    await request(getTestServer('lbsyncGcpResync'))
      .post('/')
      .send({ lbsync: 'resync' })
      .expect(401);
    const bad = await resync({ lbsync: 'resync', force: 'yes' });
    expect(bad.status).toBe(400);
    compute.deleteInstance('web-a-w6');
    const writes = compute.count(/setMetadata$/);
    const dry = await resync({ lbsync: 'resync', dryRun: true }, 'Google-Cloud-Scheduler');
    expect(dry.status).toBe(200);
    expect(dry.body.dryRun).toBe(true);
    expect(dry.body.reason).toBe('schedule');
    expect((dry.body.results as { outcome: string }[]).every((r) => r.outcome === 'planned')).toBe(
      true,
    );
    expect(compute.count(/setMetadata$/)).toBe(writes);
  });

  it('backs off while the metadata server fails and applies when it recovers', async () => {
    // Prepare: the next 4 metadata requests on lb-1 fail; give the agent time to back off.
    configure(['lb-1', 'lb-2', 'lb-3'], 20_000);
    mds.get('lb-1')?.fail(4, 503);
    compute.instance('lb-1').guest.delete('lbsync/result');
    // Act: a real change, pushed to all three.
    const res = await resync({ lbsync: 'resync' });
    // Assess
    expect(res.status, JSON.stringify(res.body.results)).toBe(200);
    const failures = (mds.get('lb-1')?.requests ?? [])
      .filter((r) => r.status === 503)
      .map((r) => r.at);
    expect(failures).toHaveLength(4);
    // Exponential backoff of the manifest poll (1 s, then 2 s, capped by
    // --max-backoff 2), up to the first poll answered again. The agent sleeps
    // at least that long before each retry, so these are lower bounds that a
    // loaded machine can only exceed: they hold however slow it is.
    const polls = (mds.get('lb-1')?.requests ?? []).filter((r) =>
      r.path.endsWith('/lbsync-manifest'),
    );
    const firstFailed = polls.findIndex((r) => r.status === 503);
    const recovered = polls.findIndex((r, i) => i > firstFailed && r.status === 200);
    const retries = polls.slice(firstFailed, recovered + 1);
    expect(retries.length).toBeGreaterThanOrEqual(4);
    expect(retries.map((r) => r.status)).toEqual([...retries.slice(1).map(() => 503), 200]);
    const gaps = retries.slice(1).map((r, i) => r.at - (retries[i]?.at ?? r.at));
    expect(gaps[0]).toBeGreaterThanOrEqual(990);
    for (const gap of gaps.slice(1)) expect(gap).toBeGreaterThanOrEqual(1990);
    expect(serversIn('lb-1').join('\n')).not.toContain('web-a-w6');
  });

  it('never applies the same generation twice, across long-poll timeouts and an agent restart, and stops promptly', async () => {
    // Prepare: short long-poll timeouts so the agent wakes with an unchanged manifest.
    const vm = vms.get('lb-2');
    const md = mds.get('lb-2');
    if (!vm || !md) throw new Error('lb-2 missing');
    // The agent sits in a 10 s long poll: TERM must end it at once, not after
    // the poll. Proof by order: the metadata server never answered that poll,
    // the agent hung up on it.
    await waitFor(() => md.hanging() > 0, 'the agent to sit in a long poll');
    const abandoned = md.abandoned.length;
    await agents.get('lb-2')?.stop();
    await waitFor(() => md.abandoned.length > abandoned, 'the long poll to be cut');
    expect(md.hanging()).toBe(0);
    const result = compute.instance('lb-2').guest.get('lbsync/result');
    const reloads = await vm.reloadCount();
    // Act: restart, let it wake up a few times, stop it.
    const agent = await startAgent(vm, md.url, { timeoutSec: 1 });
    const polls = (): number =>
      md.requests.filter((r) => r.path.endsWith('/lbsync-manifest')).length;
    const before = polls();
    await waitFor(() => polls() >= before + 3, 'the agent to wake up three times');
    await agent.stop();
    agents.set('lb-2', await startAgent(vm, md.url));
    // Assess
    expect(await vm.reloadCount()).toBe(reloads);
    expect(compute.instance('lb-2').guest.get('lbsync/result')).toBe(result);
    expect(agent.log()).toMatch(/already handled/);
    expect(agent.log()).not.toMatch(/applying generation/);
  });

  it('lets overlapping syncs both finish: the newer generation wins and metadata never goes back', async () => {
    // Prepare: a real change, then two syncs racing for the same fingerprints.
    await launch(8, 'web-a');
    // Act
    const [a, b] = await Promise.all([resync({ lbsync: 'resync' }), resync({ lbsync: 'resync' })]);
    // Assess: no LB timed out; each ended applied, unchanged or stale.
    for (const res of [a, b]) {
      expect(res.status, JSON.stringify(res.body.results)).toBe(200);
      for (const r of res.body.results as { outcome: string }[]) {
        expect(['applied', 'unchanged', 'stale']).toContain(r.outcome);
      }
    }
    const newest = Math.max(a.body.generation as number, b.body.generation as number);
    for (const lb of ['lb-1', 'lb-2', 'lb-3']) {
      const manifest = compute.instance(lb).items.find((i) => i.key === 'lbsync-manifest')?.value;
      expect(manifest).toContain(`generation=${newest}`);
      expect(serversIn(lb)).toContain(`server web-a-w8 ${addr(8)}:${NODE_PORT}`);
    }
  });

  it('checks sha256 on the LB: a torn chunk and a tampered config are reported invalid, nothing applied', async () => {
    // Prepare: payloads written straight into lb-1's metadata, as a broken or hostile writer would.
    const vm = vms.get('lb-1');
    const live = readFileSync(vm?.configPath ?? '', 'utf8');
    const reloads = await vm?.reloadCount();
    const apply = specFor(['lb-1']).lbApply;
    const waitForResult = async (generation: number): Promise<Record<string, unknown>> => {
      const deadline = Date.now() + 15_000;
      let r: Record<string, unknown> = {};
      while (Date.now() < deadline && r.generation !== generation) {
        r = JSON.parse(compute.instance('lb-1').guest.get('lbsync/result') ?? '{}');
        await new Promise((res) => setTimeout(res, 100));
      }
      return r;
    };
    const foreign = compute.instance('lb-1').items.filter((i) => !i.key.startsWith('lbsync-'));

    // Act 1: a chunk that does not match the manifest's sha256.
    const g1 = Date.now();
    const torn = layoutPayload(encodePayload(`${live}# torn\n`, g1, 1), apply);
    compute.writeMetadata('lb-1', [
      ...foreign,
      ...torn.items.map((i) => (i.key === 'lbsync-payload-0' ? { ...i, value: 'garbage' } : i)),
    ]);
    const r1 = await waitForResult(g1);

    // Act 2: chunks consistent, but the config does not match the payload header's sha256.
    const g2 = Date.now();
    const good = encodePayload(`${live}# tampered\n`, g2, 1);
    const tampered = {
      ...good,
      text: good.text.replace(/^sha256=[0-9a-f]{64}$/m, `sha256=${'0'.repeat(64)}`),
    };
    compute.writeMetadata('lb-1', [...foreign, ...layoutPayload(tampered, apply).items]);
    const r2 = await waitForResult(g2);

    // Assess
    expect(r1).toMatchObject({ result: 'invalid', generation: g1 });
    expect(r1.message).toMatch(/does not match its sha256/);
    expect(r2).toMatchObject({ result: 'invalid', generation: g2 });
    expect(readFileSync(vm?.configPath ?? '', 'utf8')).toBe(live);
    expect(await vm?.reloadCount()).toBe(reloads);
  });

  it('lbsync status reads the live sha256 and server count each agent published', async () => {
    const status = await statusOf(specFor(['lb-1', 'lb-2', 'lb-3']), {
      tuning: { gcp: { clientOptions, retry: { attempts: 2, baseMs: 200 } } },
    });
    for (const s of status) {
      const live = readFileSync(vms.get(s.lb)?.configPath ?? '', 'utf8');
      expect(s.sha256).toBe(createHash('sha256').update(live).digest('hex'));
      expect(s.servers).toBe(serversIn(s.lb).length);
      expect(s.generation).toBeGreaterThan(0);
    }
    expect(status.map((s) => s.lb)).toEqual(['lb-1', 'lb-2', 'lb-3']);
  });
  it('issues exactly one metadata write per LB per sync, and reads no status first', async () => {
    // Prepare
    await launch(9, 'web-a');
    const writes = (lb: string): number =>
      compute.count(new RegExp(`instances/${lb}/setMetadata$`));
    const before = [writes('lb-1'), writes('lb-2')];
    const readsBefore = compute.requests.length;

    // Act
    await sendEvent('instance-insert-first.json');

    // Assess: one setMetadata each; guest attributes read only for the result.
    expect([writes('lb-1') - (before[0] ?? 0), writes('lb-2') - (before[1] ?? 0)]).toEqual([1, 1]);
    expect(serversIn('lb-1')).toContain(`server web-a-w9 ${addr(9)}:${NODE_PORT}`);
    const keysRead = compute.requests
      .slice(readsBefore)
      .filter((r) => r.path.endsWith('/getGuestAttributes'))
      .map((r) => r.query.get('variableKey'));
    expect(keysRead.length).toBeGreaterThan(0);
    expect(keysRead.every((k) => k === 'lbsync/result')).toBe(true);
  });
});
