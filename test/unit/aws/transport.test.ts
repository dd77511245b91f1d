import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AwsClients,
  createAwsClients,
  destroyAwsClients,
} from '../../../adapters/aws/clients.js';
import type { SsmTransportSpec } from '../../../adapters/aws/provider.js';
import { ssmSection } from '../../../adapters/aws/provider.js';
import { SsmShell } from '../../../adapters/aws/shell.js';
import { startLoad } from '../../../adapters/local/load.js';
import { startWorkerServer } from '../../../adapters/local/workers.js';
import { type Spec, validateSpec } from '../../../adapters/spec.js';
import { TransportError } from '../../../core/errors.js';
import { loadApplyScript, loadDrainScript } from '../../../core/lb-scripts.js';
import { memoryLogger } from '../../../core/log.js';
import { encodePayload, type Payload } from '../../../core/payload.js';
import { RemoteScriptTransport } from '../../../core/remote-script.js';
import { loadTemplate, renderConfig } from '../../../core/render.js';
import { FakeAws } from '../../fakes/aws/fake-aws.js';
import { BOOT_CONFIG, LbVm } from '../../fakes/lb-vm.js';
import { waitFor } from '../../helpers/wait.js';

// This file owns port 22202 (fake AWS), 22210 (LB frontend) and one worker on 127.0.22.60:31240.
const LB = 'i-0a0a0a0a0a0a0a0a1';
const TAGGED = 'i-0a0a0a0a0a0a0a0a2';
const UNMANAGED = 'i-0a0a0a0a0a0a0a0a3';
const BUCKET = 'lbsync-unit';

describe('SsmTransport against the AWS fake and a real LB VM', () => {
  let dir: string;
  let fake: FakeAws;
  let vm: LbVm;
  let clients: AwsClients;
  let spec: Spec;
  let applyScript: string;
  let drainScript: string;
  const logs: Record<string, unknown>[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lbsync-unit-aws-transport-'));
    fake = await FakeAws.start({ port: 22202, invocationNotFoundPolls: 3 });
    vm = await LbVm.start('unit-lb', join(dir, 'lb'), BOOT_CONFIG);
    fake.addLbInstance(LB, vm, { tags: { role: 'lb' }, privateIp: '10.9.0.11' });
    fake.addLbInstance(TAGGED, vm, { tags: { role: 'lb' }, privateIp: '10.9.0.12' });
    fake.addLbInstance(UNMANAGED, vm, { managed: false, privateIp: '10.9.0.13' });
    fake.addBucket(BUCKET);
    clients = createAwsClients({
      region: 'eu-west-1',
      endpoint: fake.url,
      credentials: { accessKeyId: 'AKIAFAKE', secretAccessKey: 'fake' },
      maxAttempts: 1,
    });
    spec = validateSpec({
      name: 'unit',
      cloud: 'aws',
      workers: { aws: { region: 'eu-west-1', autoScalingGroups: ['g'] } },
      loadBalancers: {
        aws: { instanceIds: [LB], tags: { role: 'lb' }, commandTimeoutSeconds: 20 },
      },
      services: [{ name: 'http', bind: '127.0.0.1:22210', nodePort: 31240 }],
      healthCheck: { enabled: false },
      tuning: { maxconn: 1000 },
    });
    applyScript = await loadApplyScript();
    drainScript = await loadDrainScript();
  });

  afterAll(async () => {
    destroyAwsClients(clients);
    await vm?.stop();
    await fake?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** The SSM transport as the factory builds it, with the parts a test varies. */
  function transport(
    patch: { readonly inlineLimitBytes?: number; readonly applyScript?: string } = {},
    lb: Partial<SsmTransportSpec> = {},
  ): RemoteScriptTransport {
    const section = { ...(ssmSection(spec) as SsmTransportSpec), ...lb };
    return new RemoteScriptTransport(
      new SsmShell({
        ssm: clients.ssm,
        ec2: clients.ec2,
        s3: clients.s3,
        lb: section,
        logger: memoryLogger(logs),
        poll: { initialMs: 20, maxMs: 100, factor: 1.5 },
        ...(patch.inlineLimitBytes !== undefined
          ? { inlineLimitBytes: patch.inlineLimitBytes }
          : {}),
      }),
      {
        lbApply: spec.lbApply,
        runtimeSocket: spec.runtimeSocket,
        applyScript: patch.applyScript ?? applyScript,
        drainScript,
        logger: memoryLogger(logs),
        commandTimeoutMs: section.commandTimeoutSeconds * 1000,
      },
    );
  }

  async function payloadFor(workers: number, generation: number): Promise<Payload> {
    // Real instance ids and IPs are random, which is what makes configs compress poorly.
    const hex = (i: number): string =>
      createHash('sha256').update(`${generation}/${i}`).digest('hex');
    const ws = Array.from({ length: workers }, (_, i) => ({
      id: i < 2 ? `i-0d${i.toString(16).padStart(15, '0')}` : `i-0${hex(i).slice(0, 16)}`,
      address: `10.${parseInt(hex(i).slice(16, 18), 16)}.${parseInt(hex(i).slice(18, 20), 16)}.${parseInt(hex(i).slice(20, 22), 16)}`,
      state: 'serving' as const,
    }));
    const r = renderConfig(spec, ws, await loadTemplate(spec));
    return encodePayload(r.text, generation, r.servers);
  }

  it('finds LB instances by id and by tag, sorted and without duplicates', async () => {
    const targets = await transport().targets();
    expect(targets.map((t) => t.id)).toEqual([LB, TAGGED]);
  });

  it("reports each LB's private IP: tagged ones from the tag query, listed ids by one lookup", async () => {
    // Act
    const tagged = await transport().targets();
    const before = fake.count('DescribeInstances');
    const byId = await transport({}, { tags: {}, instanceIds: [TAGGED, LB] }).targets();

    // Assess
    expect(tagged).toEqual([
      { id: LB, address: '10.9.0.11' },
      { id: TAGGED, address: '10.9.0.12' },
    ]);
    expect(byId).toEqual(tagged);
    expect(fake.count('DescribeInstances') - before).toBe(1);
  });

  it('leaves the address out, not the LB, when the id lookup fails', async () => {
    const section = { tags: {}, instanceIds: [LB, 'i-0ffffffffffffffff'] };
    const targets = await transport({}, section).targets();
    expect(targets).toEqual([{ id: LB }, { id: 'i-0ffffffffffffffff' }]);
    expect(logs.some((l) => /private IPs/.test(String(l.msg)))).toBe(true);
  });

  it('waits through InvocationDoesNotExist right after SendCommand and reads the status', async () => {
    const polls = fake.count('GetCommandInvocation');
    const live = await transport().status({ id: LB });
    expect(live).toMatchObject({ generation: 0, servers: 0 });
    expect(fake.count('GetCommandInvocation') - polls).toBeGreaterThanOrEqual(4);
  });

  it('applies an inline payload and reports the result line', async () => {
    const p = await payloadFor(3, 1000);
    const r = await transport().apply({ id: LB }, p);
    expect(r).toMatchObject({ result: 'applied', generation: 1000, sha256: p.sha256, servers: 3 });
    expect(fake.objects(BUCKET)).toEqual([]);
  });

  it('names an LB that SSM does not manage, without retrying it forever', async () => {
    const err = await transport()
      .status({ id: UNMANAGED })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).retryable).toBe(false);
    expect((err as Error).message).toMatch(
      /i-0a0a0a0a0a0a0a0a3 is not managed by SSM or its agent is not online \(InvalidInstanceId\)/,
    );
  });

  it('refuses a payload too big for one command when no staging bucket is set, before sending anything', async () => {
    const sent = fake.commands.length;
    const p = await payloadFor(3000, 2000);
    const err = await transport()
      .apply({ id: LB }, p)
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      /does not fit in one Run Command .* set loadBalancers\.staging\.bucket/,
    );
    expect((err as TransportError).retryable).toBe(false);
    expect(fake.commands.length).toBe(sent);
  });

  it('is refused by SSM (MaxDocumentSizeExceeded) when the inline limit is set above 64 KiB', async () => {
    const p = await payloadFor(3000, 2100);
    const err = await transport({ inlineLimitBytes: 10_000_000 })
      .apply({ id: LB }, p)
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/MaxDocumentSizeExceeded/);
  });

  it('stages a large payload in S3 behind a presigned URL and applies it', async () => {
    const p = await payloadFor(3000, 3000);
    const r = await transport(
      {},
      { staging: { bucket: BUCKET, prefix: 'unit/', urlExpiresSeconds: 120 } },
    ).apply({ id: LB }, p);
    expect(r).toMatchObject({ result: 'applied', servers: 3000 });
    expect(fake.objects(BUCKET)).toEqual([`unit/3000-${p.sha256}.payload`]);
    expect(fake.commands.at(-1)?.parameterBytes).toBeLessThan(48 * 1024);
  });

  it('lets the LB refuse a corrupted staged download (sha256 checked there)', async () => {
    fake.corruptObjects = true;
    try {
      const p = await payloadFor(3001, 3100);
      const r = await transport(
        {},
        { staging: { bucket: BUCKET, prefix: 'unit/', urlExpiresSeconds: 120 } },
      ).apply({ id: LB }, p);
      expect(r.result).toBe('invalid');
    } finally {
      fake.corruptObjects = false;
    }
  });

  it('keeps the result line when the script prints more than the 24,000 characters SSM returns', async () => {
    const noisy =
      "yes 'noise from a chatty script' | head -c 40000; echo\n" +
      'echo \'{"lbsync":1,"result":"status","generation":7,"sha256":"","servers":0,"ms":1}\'\n';
    const live = await transport({ applyScript: noisy }).status({ id: LB });
    expect(live.generation).toBe(7);
  });

  it('waits for a slow command, and reports a timed-out one as retryable', async () => {
    fake.setCommandDelay(1200);
    try {
      await expect(transport().status({ id: LB })).resolves.toMatchObject({ generation: 3000 });
    } finally {
      fake.setCommandDelay(20);
    }
    fake.failCommands(LB, { status: 'TimedOut', statusDetails: 'Delivery Timed Out', count: 1 });
    await expect(transport().status({ id: LB })).rejects.toMatchObject({
      retryable: true,
      message: /Delivery Timed Out/,
    });
  });

  it('reports a command that ended without a result line as retryable, naming the command and its stderr', async () => {
    fake.failCommands(LB, { status: 'Failed', stderr: 'sh: socat: not found', count: 1 });
    await expect(transport().status({ id: LB })).rejects.toMatchObject({
      retryable: true,
      message:
        /the status command ended .* without a result line, so the LB's state is unknown.*socat: not found/,
    });
  });

  it('drains a server through the runtime socket, and says absent for one the LB does not know', async () => {
    const p = await payloadFor(2, 4000);
    expect((await transport().apply({ id: LB }, p)).result).toBe('applied');
    const drained = await transport().drain({ id: LB }, 'i-0d000000000000000', 3);
    expect(drained).toMatchObject({ result: 'drained', backends: 1, sessions: 0 });
    const absent = await transport().drain({ id: LB }, 'i-0ffffffffffffffff', 3);
    expect(absent.result).toBe('absent');
  });

  it('waits for sessions an old HAProxy worker still holds after a reload before calling a drain done', async () => {
    // Prepare: a slow worker behind the LB, one request in flight, then a reload.
    const slow = await startWorkerServer({
      id: 'slow',
      address: '127.0.22.60',
      ports: [31240],
      delayMs: 1500,
    });
    try {
      const ws = (n: number) =>
        Array.from({ length: n }, (_, i) => ({
          id: `i-0e${i.toString(16).padStart(15, '0')}`,
          address: i === 0 ? '127.0.22.60' : `10.0.0.${i}`,
          state: 'serving' as const,
        }));
      const template = await loadTemplate(spec);
      const one = renderConfig(spec, ws(1), template);
      expect(
        (await transport().apply({ id: LB }, encodePayload(one.text, 5000, one.servers))).result,
      ).toBe('applied');
      const inFlight = startLoad({
        host: '127.0.0.1',
        port: 22210,
        concurrency: 1,
        maxRequests: 1,
        maxMs: 10_000,
      });
      // The request is in flight once the slow worker holds its connection.
      await waitFor(() => slow.openConnections() > 0, 'the request to reach the slow worker');
      const two = renderConfig(spec, ws(2), template);
      expect(
        (await transport().apply({ id: LB }, encodePayload(two.text, 5001, two.servers))).result,
      ).toBe('applied');

      // Act
      const started = Date.now();
      const drained = await transport().drain({ id: LB }, 'i-0e000000000000000', 10);
      const returnedAt = Date.now();

      // Assess: the drain returned only once the old worker's request was done:
      // the request started before the drain and completed before it returned.
      const summary = await inFlight.done;
      expect(summary.failed).toBe(0);
      expect(summary.byWorker).toEqual({ slow: 1 });
      expect(drained).toMatchObject({ result: 'drained', sessions: 0 });
      const request = inFlight.samples[0];
      expect(request?.startedAt ?? Infinity).toBeLessThan(started);
      expect(request?.at ?? Infinity).toBeLessThanOrEqual(returnedAt);
    } finally {
      await slow.close();
    }
  });

  it('lbsync-drain.sh refuses a hostile server name and an unusable socket with one JSON line', async () => {
    const hostile = await vm.exec(
      `cat > /tmp/lbsync-drain-test.sh <<'EOF'\n${drainScript}\nEOF\nsh /tmp/lbsync-drain-test.sh --server 'x;reboot'`,
    );
    expect(hostile.code).toBe(2);
    expect(JSON.parse(hostile.stdout.trim())).toMatchObject({ lbsyncDrain: 1, result: 'failed' });
    const noSocket = await vm.exec(
      'sh /tmp/lbsync-drain-test.sh --server i-1 --socket /run/nope.sock',
    );
    expect(noSocket.code).toBe(5);
    expect(JSON.parse(noSocket.stdout.trim())).toMatchObject({ result: 'failed', server: 'i-1' });
  });
});
