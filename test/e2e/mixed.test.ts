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
import { startLoad } from '../../adapters/local/load.js';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import { validateSpec } from '../../adapters/spec.js';
import { memoryLogger } from '../../core/log.js';
import { workerIdsOf } from '../../core/plan.js';
import { FakeAws } from '../fakes/aws/fake-aws.js';
import { BOOT_CONFIG, LbVm } from '../fakes/lb-vm.js';
import { awsHandlerFor } from '../helpers/functions.js';

// Ports 26500-26599 and workers on 127.0.40.x belong to this file.
const FAKE_PORT = 26501;
const FRONT = 26510;
const NODE_PORT = 30265;
const LB = 'i-0e2e00000000000a1';

describe('a source of one kind with a transport of another: static workers through SSM', () => {
  let dir: string;
  let fake: FakeAws;
  let vm: LbVm;
  let clients: AwsClients;
  const workers: WorkerServer[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lbsync-e2e-mixed-'));
    fake = await FakeAws.start({ port: FAKE_PORT, invocationNotFoundPolls: 1 });
    vm = await LbVm.start('mixed-lb', join(dir, 'lb'), BOOT_CONFIG);
    fake.addLbInstance(LB, vm);
    for (const n of [1, 2]) {
      workers.push(
        await startWorkerServer({ id: `w${n}`, address: `127.0.40.${n}`, ports: [NODE_PORT] }),
      );
    }
    clients = createAwsClients({
      region: 'eu-west-1',
      endpoint: fake.url,
      credentials: { accessKeyId: 'AKIAFAKE', secretAccessKey: 'fake-secret' },
      maxAttempts: 1,
    });
  });

  afterAll(async () => {
    destroyAwsClients(clients);
    await vm?.stop();
    await fake?.stop();
    await Promise.all(workers.map((w) => w.close()));
    await rm(dir, { recursive: true, force: true });
  });

  it('runs end to end through the AWS function: no Auto Scaling group, the LB reached with SSM', async () => {
    // Prepare: the spec names no ASG; the AWS function still carries the static source.
    const spec = validateSpec({
      name: 'mixed',
      workers: {
        source: 'static',
        workers: [
          { id: 'w1', address: '127.0.40.1' },
          { id: 'w2', address: '127.0.40.2' },
        ],
      },
      loadBalancers: { transport: 'ssm', region: 'eu-west-1', instanceIds: [LB], reportBus: null },
      services: [{ name: 'http', bind: `127.0.0.1:${FRONT}`, nodePort: NODE_PORT }],
      healthCheck: { enabled: false },
      tuning: { maxconn: 4000 },
    });
    expect(spec.cloud).toBe('aws');
    const handle = await awsHandlerFor(spec, { clients, logger: memoryLogger() });

    // Act: the manual resync (as `lbsync resync --cloud aws` sends it).
    const r = await handle({ lbsync: 'resync' });

    // Assess: applied over SSM, and the traffic reaches exactly the static workers.
    expect(r).toMatchObject({ ok: true, outcome: 'synced' });
    expect(r.report?.results.map((x) => [x.lb, x.outcome])).toEqual([[LB, 'applied']]);
    expect(fake.count('SendCommand')).toBeGreaterThan(0);
    expect(fake.count('DescribeAutoScalingGroups')).toBe(0);
    expect(workerIdsOf(readFileSync(vm.configPath, 'utf8'))).toEqual(['w1', 'w2']);
    const s = await startLoad({
      host: '127.0.0.1',
      port: FRONT,
      concurrency: 2,
      maxRequests: 40,
      maxMs: 10_000,
    }).done;
    expect(s.failed).toBe(0);
    expect(Object.keys(s.byWorker).sort()).toEqual(['w1', 'w2']);
  });
});
