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
import { createAwsHandler } from '../../adapters/aws/handler.js';
import { startLoad } from '../../adapters/local/load.js';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import { loadApplyScript, loadDrainScript } from '../../core/entry.js';
import { memoryLogger } from '../../core/log.js';
import { sha256Hex } from '../../core/payload.js';
import { loadTemplate } from '../../core/render.js';
import { validateSpec } from '../../core/spec.js';
import { fixture } from '../fakes/aws/events.js';
import { FakeAws } from '../fakes/aws/fake-aws.js';
import { BOOT_CONFIG, LbVm } from '../fakes/lb-vm.js';

// This file owns port 22101 (fake AWS), 22110-22119 (frontends) and workers on 127.0.22.50-249.
const FAKE_PORT = 22101;
const WORKERS = 2000;
const SERVICES = 10;
const LB = 'i-0e2e00000000005ca';
const BUCKET = 'lbsync-scale-e2e';
const ADDRESSES = 200;
const addr = (i: number): string => `127.0.22.${50 + (i % ADDRESSES)}`;
const wid = (i: number): string => `i-0b${i.toString(16).padStart(15, '0')}`;

describe('AWS at scale: 2,000 workers x 10 services', () => {
  let dir: string;
  let fake: FakeAws;
  let lb: LbVm;
  let clients: AwsClients;
  const listeners: WorkerServer[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lbsync-e2e-aws-scale-'));
    // Small pages so both DescribeAutoScalingGroups and DescribeInstances paginate.
    fake = await FakeAws.start({ port: FAKE_PORT, asgPageSize: 1, ec2PageSize: 250 });
    fake.addGroup('scale-a');
    fake.addGroup('scale-b');
    for (let i = 0; i < WORKERS; i++)
      fake.addMember(i % 2 === 0 ? 'scale-a' : 'scale-b', wid(i), addr(i));
    fake.addBucket(BUCKET);
    lb = await LbVm.start('scale-lb', join(dir, 'lb'), BOOT_CONFIG);
    fake.addLbInstance(LB, lb);
    // Workers share 200 loopback addresses (like pods behind NodePorts); the
    // first service's NodePort answers on each, so real traffic can flow.
    for (let a = 0; a < ADDRESSES; a++) {
      listeners.push(
        await startWorkerServer({ id: `node-${a}`, address: addr(a), ports: [31300] }),
      );
    }
    clients = createAwsClients({
      region: 'eu-west-1',
      endpoint: fake.url,
      credentials: { accessKeyId: 'AKIAFAKE', secretAccessKey: 'fake-secret' },
    });
  });

  afterAll(async () => {
    destroyAwsClients(clients);
    await lb?.stop();
    await fake?.stop();
    await Promise.all(listeners.map((l) => l.close()));
    await rm(dir, { recursive: true, force: true });
  });

  it('stages the payload in S3 and applies 20,000 servers on the LB through SSM', async () => {
    // Prepare
    const spec = validateSpec({
      name: 'scale',
      cloud: 'aws',
      workers: { aws: { region: 'eu-west-1', autoScalingGroups: ['scale-a', 'scale-b'] } },
      loadBalancers: {
        aws: { instanceIds: [LB], staging: { bucket: BUCKET }, commandTimeoutSeconds: 120 },
      },
      services: Array.from({ length: SERVICES }, (_, i) => ({
        name: `svc${i}`,
        bind: `127.0.0.1:${22110 + i}`,
        nodePort: 31300 + i,
      })),
      // 20,000 health checks would only measure this machine's CPU.
      healthCheck: { enabled: false },
      tuning: { maxconn: 4000 },
      drain: { seconds: 5 },
    });
    const logs: Record<string, unknown>[] = [];
    const handle = createAwsHandler({
      spec,
      template: await loadTemplate(spec),
      clients,
      logger: memoryLogger(logs),
      applyScript: await loadApplyScript(),
      drainScript: await loadDrainScript(),
      transport: { pollInitialMs: 50, pollMaxMs: 500 },
    });

    // Act
    const r = await handle(fixture('scheduled'));

    // Assess: applied, staged (too big to send inline), verified on the LB.
    expect(r.ok, JSON.stringify(r.report?.results ?? r.error)).toBe(true);
    expect(r.report?.results[0]?.outcome).toBe('applied');
    expect(r.report?.servers).toBe(WORKERS * SERVICES);
    expect(r.report?.payloadBytes).toBeGreaterThan(64 * 1024);
    expect(fake.objects(BUCKET)).toHaveLength(1);
    expect(fake.objectGets).toHaveLength(1);
    expect(Math.max(...fake.commands.map((c) => c.parameterBytes))).toBeLessThan(64 * 1024);
    const live = readFileSync(lb.configPath, 'utf8');
    expect(sha256Hex(live)).toBe(r.report?.sha256);
    expect(live.match(/^\s+server /gm)).toHaveLength(WORKERS * SERVICES);
    expect(logs.some((l) => l.msg === 'staged payload in S3')).toBe(true);

    // Traffic through the first service reaches the workers.
    const load = startLoad({
      host: '127.0.0.1',
      port: 22110,
      concurrency: 4,
      maxRequests: 400,
      maxMs: 20_000,
    });
    const summary = await load.done;
    expect(summary.failed).toBe(0);
    expect(summary.requests).toBe(400);
    expect(Object.keys(summary.byWorker).length).toBeGreaterThan(50);

    // A second run finds the LB in sync and pushes nothing.
    const again = await handle(fixture('scheduled'));
    expect(again.report?.results[0]?.outcome).toBe('unchanged');
  });
});
