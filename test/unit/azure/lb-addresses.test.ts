import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type AzureClients,
  createAzureClients,
  staticTokenCredential,
} from '../../../adapters/azure/clients.js';
import { createTransport } from '../../../adapters/azure/factory.js';
import { parseNicId } from '../../../adapters/azure/lb-addresses.js';
import {
  lbAddressesNeeded,
  type RunCommandTransportSpec,
} from '../../../adapters/azure/provider.js';
import { RunCommandShell } from '../../../adapters/azure/shell.js';
import { validateSpec } from '../../../adapters/spec.js';
import { memoryLogger } from '../../../core/log.js';
import type { LbTarget } from '../../../core/model.js';
import type { ProviderContext } from '../../../core/provider.js';
import { FakeArm } from '../../fakes/azure/fake-arm.js';
import type { LbVm } from '../../fakes/lb-vm.js';

// Ports 20500-20599 belong to this file (nothing is dialled but the ARM fake).
const ARM_PORT = 20501;
const SUB = '00000000-0000-4000-8000-0000000000b5';
// Addresses are read, never dialled: no Run Command reaches these VMs.
const NO_VM = {} as LbVm;

const VMS: RunCommandTransportSpec['vms'] = [
  { resourceGroup: 'rg-edge', name: 'lb-1' },
  { resourceGroup: 'rg-edge', name: 'lb-2' },
  { resourceGroup: 'rg-edge', name: '3', scaleSet: 'lb-pool' },
];

const byId = (targets: readonly LbTarget[]): Record<string, string | undefined> =>
  Object.fromEntries(targets.map((t) => [t.id, t.address]));

describe('Run Command transport: LB VM private IPs from ARM (VM -> primary NIC -> primary ipConfiguration)', () => {
  let arm: FakeArm;
  let clients: AzureClients;

  const shell = (
    vms: RunCommandTransportSpec['vms'],
    logger = memoryLogger(),
    resolveAddresses = true,
  ): RunCommandShell =>
    new RunCommandShell({
      clients,
      subscriptionId: SUB,
      lb: { transport: 'azure-run-command', vms },
      logger,
      resolveAddresses,
    });

  beforeAll(async () => {
    arm = await FakeArm.start({ port: ARM_PORT });
    clients = createAzureClients({
      credential: staticTokenCredential('t'),
      endpoint: arm.url,
      ca: arm.caPem,
      maxRetries: 0,
    });
    arm.addLbVm({
      subscriptionId: SUB,
      resourceGroup: 'rg-edge',
      name: 'lb-1',
      vm: NO_VM,
      ip: '10.4.0.4',
    });
    // Two NICs, the second primary: the address is the primary one's, not the first's.
    arm.addLbVm({
      subscriptionId: SUB,
      resourceGroup: 'rg-edge',
      name: 'lb-2',
      vm: NO_VM,
      nics: [
        { name: 'lb-2-mgmt', ip: '10.9.9.9', primary: false },
        { name: 'lb-2-data', ip: '10.4.0.5', primary: true },
      ],
    });
    arm.addLbVm({
      subscriptionId: SUB,
      resourceGroup: 'rg-edge',
      name: '3',
      scaleSet: 'lb-pool',
      instanceId: '3',
      vm: NO_VM,
      ip: '10.4.1.7',
    });
    arm.addLbVm({
      subscriptionId: SUB,
      resourceGroup: 'rg-edge',
      name: 'lb-bad',
      vm: NO_VM,
      ip: '10.4.0.300',
    });
    arm.addLbVm({ subscriptionId: SUB, resourceGroup: 'rg-edge', name: 'lb-bare', vm: NO_VM });
  });

  afterAll(async () => {
    await arm?.stop();
  });

  beforeEach(() => {
    arm.requests.length = 0;
  });

  it('gives plain and scale set LB VMs the private IP of their primary NIC', async () => {
    // Act
    const targets = await shell(VMS).targets();

    // Assess
    expect(byId(targets)).toEqual({
      'lb-1': '10.4.0.4',
      'lb-2': '10.4.0.5',
      'lb-pool_3': '10.4.1.7',
    });
    const gets = arm.requests.filter((r) => r.method === 'GET').map((r) => r.path);
    expect(gets).toEqual(
      expect.arrayContaining([
        `/subscriptions/${SUB}/resourcegroups/rg-edge/providers/microsoft.compute/virtualmachines/lb-1`,
        `/subscriptions/${SUB}/resourcegroups/rg-edge/providers/microsoft.network/networkinterfaces/lb-1-nic`,
        `/subscriptions/${SUB}/resourcegroups/rg-edge/providers/microsoft.network/networkinterfaces/lb-2-data`,
        `/subscriptions/${SUB}/resourcegroups/rg-edge/providers/microsoft.compute/virtualmachinescalesets/lb-pool/virtualmachines/3`,
        `/subscriptions/${SUB}/resourcegroups/rg-edge/providers/microsoft.compute/virtualmachinescalesets/lb-pool/virtualmachines/3/networkinterfaces/lb-pool-nic`,
      ]),
    );
    // The non-primary NIC is never read.
    expect(gets.some((p) => p.endsWith('/lb-2-mgmt'))).toBe(false);
    expect(gets).toHaveLength(6);
  });

  it('looks each address up once per transport (cold start), not once per run', async () => {
    // Prepare
    const s = shell(VMS);
    await s.targets();
    const reads = arm.requests.length;
    arm.setLbVmIp('rg-edge', 'lb-1', '10.4.0.44');

    // Act
    const again = await s.targets();

    // Assess: no ARM call; the address found first stays until the next cold start.
    expect(arm.requests.length).toBe(reads);
    expect(byId(again)['lb-1']).toBe('10.4.0.4');
    expect(byId(await shell(VMS).targets())['lb-1']).toBe('10.4.0.44');
    arm.setLbVmIp('rg-edge', 'lb-1', '10.4.0.4');
  });

  it.each([
    [404, /404 NotFound/],
    [500, /500 InjectedFault/],
  ])(
    'leaves out the address of an LB whose NIC answers %i, logs one line naming it, and reads it again on the next run',
    async (status, why) => {
      // Prepare
      const log = memoryLogger();
      const s = shell(VMS, log);
      arm.failNicReads('rg-edge', 'lb-2', status, 1);

      // Act
      const first = await s.targets();
      const second = await s.targets();

      // Assess: the others have theirs; a single warning names lb-2 and what ARM said.
      expect(byId(first)).toEqual({
        'lb-1': '10.4.0.4',
        'lb-2': undefined,
        'lb-pool_3': '10.4.1.7',
      });
      const warnings = log.lines.filter((l) => l.level === 'warn');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ lb: 'lb-2', msg: expect.stringContaining('lb-2') });
      expect(String(warnings[0]?.error)).toMatch(/network interface lb-2-data/);
      expect(String(warnings[0]?.error)).toMatch(why);
      // Only the failed one is read again, and now found.
      expect(byId(second)['lb-2']).toBe('10.4.0.5');
      expect(
        arm
          .nicReads()
          .map((r) => r.path.split('/').pop())
          .sort(),
      ).toEqual(['lb-1-nic', 'lb-2-data', 'lb-2-data', 'lb-pool-nic']);
    },
  );

  it('leaves out, with a line saying why, a VM that is gone, has no NIC, or whose NIC gives no IP address', async () => {
    // Prepare
    const log = memoryLogger();
    const s = shell(
      [
        { resourceGroup: 'rg-edge', name: 'lb-1' },
        { resourceGroup: 'rg-edge', name: 'lb-gone' },
        { resourceGroup: 'rg-edge', name: 'lb-bare' },
        { resourceGroup: 'rg-edge', name: 'lb-bad' },
      ],
      log,
    );

    // Act
    const targets = await s.targets();

    // Assess: nothing thrown; each failure its own line.
    expect(byId(targets)).toEqual({
      'lb-1': '10.4.0.4',
      'lb-bad': undefined,
      'lb-bare': undefined,
      'lb-gone': undefined,
    });
    const why = Object.fromEntries(
      log.lines.filter((l) => l.level === 'warn').map((l) => [l.lb, String(l.error)]),
    );
    expect(why).toEqual({
      'lb-gone': expect.stringMatching(/^reading the VM failed: 404 ResourceNotFound/),
      'lb-bare': 'the VM lists no network interface',
      'lb-bad': expect.stringMatching(/"10\.4\.0\.300" is not an IP address/),
    });
  });

  it('reads nothing from ARM unless asked to', async () => {
    // Act
    const targets = await shell(VMS, memoryLogger(), false).targets();

    // Assess
    expect(byId(targets)).toEqual({ 'lb-1': undefined, 'lb-2': undefined, 'lb-pool_3': undefined });
    expect(arm.requests).toEqual([]);
  });

  describe('through the azure-run-command factory', () => {
    const transportFor = async (kubernetes: Record<string, unknown> | undefined) => {
      const spec = validateSpec({
        name: 'addr',
        workers: {
          source: 'azure-vmss',
          subscriptionId: SUB,
          scaleSets: [{ resourceGroup: 'mc', name: 'pool' }],
        },
        loadBalancers: {
          transport: 'azure-run-command',
          vms: [{ resourceGroup: 'rg-edge', name: 'lb-1' }],
        },
        ...(kubernetes !== undefined ? { kubernetes } : {}),
        ...(kubernetes === undefined
          ? { services: [{ name: 'http', bind: ':80', nodePort: 30080 }] }
          : {}),
      });
      const ctx: ProviderContext = {
        spec,
        env: {},
        logger: memoryLogger(),
        scripts: async () => ({ apply: 'true', drain: 'true' }),
        tuning: { azure: { clients } },
        onClose: () => {},
      };
      return createTransport?.('azure-run-command', spec.loadBalancers, ctx);
    };
    const cluster = { aks: { resourceGroup: 'rg-aks', name: 'prod' } };

    it.each([
      ['a kubernetes section without kubernetes.ingress', { cluster }, '10.4.0.4', 2],
      ['kubernetes.ingress (it wins)', { cluster, ingress: [{ ip: '192.0.2.10' }] }, undefined, 0],
      ['no kubernetes section (nothing publishes it)', undefined, undefined, 0],
    ] as const)(
      'with %s, gives the LB the address %s after %i ARM reads',
      async (_what, kubernetes, address, reads) => {
        // Act
        const transport = await transportFor(kubernetes);
        const targets = (await transport?.targets()) ?? [];

        // Assess
        expect(targets.map((t) => t.address)).toEqual([address]);
        expect(arm.requests.filter((r) => r.method === 'GET')).toHaveLength(reads);
      },
    );
  });
});

describe('lbAddressesNeeded', () => {
  it('is true only for a kubernetes section without ingress', () => {
    expect(lbAddressesNeeded({ kubernetes: { cluster: {} } })).toBe(true);
    expect(lbAddressesNeeded({ kubernetes: { ingress: [{ ip: '192.0.2.1' }] } })).toBe(false);
    expect(lbAddressesNeeded({})).toBe(false);
  });
});

describe('parseNicId', () => {
  it('reads a standalone NIC id and a scale set VM NIC id, whatever their case', () => {
    expect(
      parseNicId(
        `/subscriptions/${SUB}/resourceGroups/RG-Edge/providers/Microsoft.Network/networkInterfaces/lb-1-nic`,
      ),
    ).toEqual({ kind: 'nic', subscriptionId: SUB, resourceGroup: 'RG-Edge', name: 'lb-1-nic' });
    expect(
      parseNicId(
        `/subscriptions/${SUB}/resourceGroups/rg/providers/microsoft.compute/virtualMachineScaleSets/pool/virtualMachines/7/networkInterfaces/pool-nic`,
      ),
    ).toEqual({
      kind: 'scale-set-nic',
      subscriptionId: SUB,
      resourceGroup: 'rg',
      scaleSet: 'pool',
      instanceId: '7',
      name: 'pool-nic',
    });
  });

  it('refuses ids of anything else', () => {
    expect(
      parseNicId(
        `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/x`,
      ),
    ).toBeUndefined();
    expect(parseNicId('lb-1-nic')).toBeUndefined();
  });
});
