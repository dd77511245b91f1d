import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AzureClients,
  createAzureClients,
  staticTokenCredential,
} from '../../../adapters/azure/clients.js';
import type { RunCommandTransportSpec } from '../../../adapters/azure/provider.js';
import {
  RunCommandShell,
  type RunCommandShellOptions,
  splitContainerUrl,
} from '../../../adapters/azure/shell.js';
import { VmssSource } from '../../../adapters/azure/source.js';
import { validateSpec } from '../../../adapters/spec.js';
import { InputError } from '../../../core/errors.js';
import { encodePayload } from '../../../core/payload.js';
import { RemoteScriptTransport } from '../../../core/remote-script.js';
import { canonicalWorkers } from '../../../core/render.js';
import type { LbApplySpec } from '../../../core/spec.js';
import { FakeArm } from '../../fakes/azure/fake-arm.js';

// Port 23002 belongs to this file (no worker addresses: nothing is dialled).
const SUB = '00000000-0000-4000-8000-0000000000a4';

/** The Run Command transport as the factory builds it, from the parts a test varies. */
function runCommandTransport(
  o: Omit<RunCommandShellOptions, 'lb'> & {
    readonly lb: Pick<RunCommandTransportSpec, 'vms'>;
    readonly lbApply: LbApplySpec;
    readonly applyScript: string;
    readonly commandTimeoutMs?: number;
  },
): RemoteScriptTransport {
  const { lbApply, applyScript, commandTimeoutMs, lb, ...shell } = o;
  return new RemoteScriptTransport(
    new RunCommandShell({ ...shell, lb: { transport: 'azure-run-command', ...lb } }),
    {
      lbApply,
      runtimeSocket: null,
      applyScript,
      drainScript: '',
      ...(commandTimeoutMs !== undefined ? { commandTimeoutMs } : {}),
    },
  );
}

describe('VmssSource and RunCommandTransport against the ARM fake', () => {
  let arm: FakeArm;
  let clients: AzureClients;
  const lbApply = validateSpec({
    name: 'u',
    cloud: 'local',
    workers: { local: { static: [] } },
    loadBalancers: {
      local: [{ name: 'lb', configPath: '/etc/haproxy/haproxy.cfg', stateDir: '/var/lib/lbsync' }],
    },
    services: [{ name: 'http', bind: ':80', nodePort: 30080 }],
  }).lbApply;

  beforeAll(async () => {
    arm = await FakeArm.start({ port: 23002, pageSize: 3 });
    clients = createAzureClients({
      credential: staticTokenCredential('t'),
      endpoint: arm.url,
      ca: arm.caPem,
      maxRetries: 0,
    });
    arm.addScaleSet(SUB, 'rg-a', 'uni', 'uniform');
    arm.addScaleSet(SUB, 'rg-b', 'flex', 'flexible');
    arm.addScaleSet(SUB, 'rg-b', 'flex-other', 'flexible');
    for (let i = 0; i < 7; i++)
      arm.addInstance('rg-a', 'uni', { instanceId: String(i), ip: `10.1.0.${i + 4}` });
    for (let i = 0; i < 5; i++)
      arm.addInstance('rg-b', 'flex', { instanceId: `f${i}`, ip: `10.2.0.${i + 4}` });
    arm.addInstance('rg-b', 'flex-other', { instanceId: 'x0', ip: '10.3.0.4' });
  });

  afterAll(async () => {
    await arm?.stop();
  });

  it('lists Uniform and Flexible scale sets across resource groups, following nextLink', async () => {
    // Prepare
    const source = new VmssSource({
      subscriptionId: SUB,
      clients,
      scaleSets: [
        { resourceGroup: 'rg-a', name: 'uni', orchestration: 'uniform' },
        { resourceGroup: 'rg-b', name: 'flex', orchestration: 'flexible' },
      ],
    });

    // Act
    const workers = await source.resolve();

    // Assess
    expect(workers).toHaveLength(12);
    expect(workers).toContainEqual({
      id: 'uni_6',
      address: '10.1.0.10',
      state: 'serving',
      group: 'rg-a/uni',
      // The node name AKS gives this VM: its ARM id.
      providerId: expect.stringMatching(
        /^azure:\/\/\/subscriptions\/.+\/virtualMachineScaleSets\/uni\/virtualMachines\/6$/i,
      ),
    });
    expect(workers).toContainEqual({
      id: 'flex_f4',
      address: '10.2.0.8',
      state: 'serving',
      group: 'rg-b/flex',
      providerId: expect.stringMatching(
        /^azure:\/\/\/subscriptions\/.+\/virtualMachines\/flex_f4$/i,
      ),
    });
    // The other Flexible scale set in the same resource group stays out.
    expect(workers.map((w) => w.id)).not.toContain('flex-other_x0');
    expect(arm.requests.filter((r) => r.query.includes('skiptoken')).length).toBeGreaterThan(0);
  });

  it('leaves out VMs that are not both Succeeded and running', async () => {
    // Prepare
    arm.updateInstance('rg-a', 'uni', '1', { provisioningState: 'Deleting' });
    arm.updateInstance('rg-b', 'flex', 'f1', { power: 'stopped' });
    const source = new VmssSource({
      subscriptionId: SUB,
      clients,
      scaleSets: [
        { resourceGroup: 'rg-a', name: 'uni', orchestration: 'uniform' },
        { resourceGroup: 'rg-b', name: 'flex', orchestration: 'flexible' },
      ],
    });

    // Act
    const ids = (await source.resolve()).map((w) => w.id);

    // Assess
    expect(ids).not.toContain('uni_1');
    expect(ids).not.toContain('flex_f1');
    expect(ids).toHaveLength(10);
  });

  it('passes what ARM reports on to the core, which refuses an unspecified IPv6 address', async () => {
    // Prepare
    arm.addScaleSet(SUB, 'rg-a', 'odd', 'uniform');
    arm.addInstance('rg-a', 'odd', { instanceId: '0', ip: '::' });
    const source = new VmssSource({
      subscriptionId: SUB,
      clients,
      scaleSets: [{ resourceGroup: 'rg-a', name: 'odd', orchestration: 'uniform' }],
    });

    // Act
    const workers = await source.resolve();

    // Assess
    expect(workers.map((w) => w.address)).toEqual(['::']);
    expect(() => canonicalWorkers(workers)).toThrowError(InputError);
    expect(() => canonicalWorkers(workers)).toThrowError(/"::" is unspecified/);
  });

  it('reports a missing scale set as a permanent SourceError and 5xx as retryable', async () => {
    // Prepare
    const missing = new VmssSource({
      subscriptionId: SUB,
      clients,
      scaleSets: [{ resourceGroup: 'rg-a', name: 'nope', orchestration: 'uniform' }],
    });
    const flaky = new VmssSource({
      subscriptionId: SUB,
      clients,
      scaleSets: [{ resourceGroup: 'rg-a', name: 'uni', orchestration: 'uniform' }],
    });
    arm.fault({ method: 'GET', path: /uni\/networkinterfaces$/, status: 503, times: 1 });

    // Act + Assess
    await expect(missing.resolve()).rejects.toMatchObject({
      name: 'SourceError',
      retryable: false,
    });
    await expect(flaky.resolve()).rejects.toMatchObject({ name: 'SourceError', retryable: true });
  });

  it('refuses a payload over the inline limit when no staging container is configured', async () => {
    // Prepare
    const transport = runCommandTransport({
      clients,
      subscriptionId: SUB,
      lb: { vms: [{ resourceGroup: 'rg-edge', name: 'lb-1' }] },
      lbApply,
      applyScript: '#!/bin/sh\n',
      inlineLimitBytes: 1024,
    });

    // Act
    const run = transport.apply(
      { id: 'lb-1' },
      encodePayload(randomBytes(4096).toString('hex'), 1, 1),
    );

    // Assess
    await expect(run).rejects.toMatchObject({ name: 'TransportError', retryable: false });
    await expect(run).rejects.toThrow(/staging\.containerUrl/);
  });

  it('gives up on a VM that stays busy (409) after its bounded attempts, as retryable', async () => {
    // Prepare
    arm.fault({
      method: 'POST',
      path: /lb-1\/runcommand$/,
      status: 409,
      code: 'Conflict',
      times: 3,
    });
    const transport = runCommandTransport({
      clients,
      subscriptionId: SUB,
      lb: { vms: [{ resourceGroup: 'rg-edge', name: 'lb-1' }] },
      lbApply,
      applyScript: '#!/bin/sh\n',
      busyAttempts: 3,
      busyBackoffMs: 10,
    });

    // Act
    const run = transport.status({ id: 'lb-1' });

    // Assess
    await expect(run).rejects.toMatchObject({ name: 'TransportError', retryable: true });
    expect(arm.requests.filter((r) => r.status === 409)).toHaveLength(3);
  });

  it('reports an unknown LB VM (404) as permanent', async () => {
    // Prepare
    const transport = runCommandTransport({
      clients,
      subscriptionId: SUB,
      lb: { vms: [{ resourceGroup: 'rg-edge', name: 'ghost' }] },
      lbApply,
      applyScript: '#!/bin/sh\n',
    });

    // Act + Assess
    await expect(transport.status({ id: 'ghost' })).rejects.toMatchObject({
      name: 'TransportError',
      retryable: false,
    });
  });

  it('times out a command that never finishes, as retryable', async () => {
    // Prepare: throttled with a Retry-After longer than the whole deadline.
    arm.fault({
      method: 'POST',
      path: /slow\/runcommand$/,
      status: 429,
      times: 1,
      retryAfterSeconds: 5,
    });
    const transport = runCommandTransport({
      clients,
      subscriptionId: SUB,
      lb: { vms: [{ resourceGroup: 'rg-edge', name: 'slow' }] },
      lbApply,
      applyScript: '#!/bin/sh\n',
      commandTimeoutMs: 300,
    });

    // Act + Assess
    await expect(transport.status({ id: 'slow' })).rejects.toMatchObject({
      name: 'TransportError',
      retryable: true,
      message: expect.stringContaining('did not finish within 300 ms'),
    });
  });
});

describe('splitContainerUrl', () => {
  it.each([
    {
      url: 'https://acct.blob.core.windows.net/lbsync',
      want: {
        accountUrl: 'https://acct.blob.core.windows.net',
        accountName: 'acct',
        container: 'lbsync',
      },
    },
    {
      url: 'https://127.0.0.1:10000/devstore/lbsync',
      want: {
        accountUrl: 'https://127.0.0.1:10000/devstore',
        accountName: 'devstore',
        container: 'lbsync',
      },
    },
  ])('splits $url', ({ url, want }) => {
    expect(splitContainerUrl(url)).toEqual(want);
  });
});
