import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EventGridEvent, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import { validateSpec } from '../../adapters/spec.js';
import { AKS_AUDIENCE, ARM_AUDIENCE, FakeManagedIdentity } from '../fakes/azure/entra.js';
import { FakeArm } from '../fakes/azure/fake-arm.js';
import { FakeKubernetes } from '../fakes/kubernetes/fake-kubernetes.js';
import { BOOT_CONFIG, LbVm } from '../fakes/lb-vm.js';
import {
  type ClusterHarness,
  clusterScenario,
  errorLines,
  LBSYNC_RULES,
} from '../helpers/kubernetes-scenario.js';

// Ports 18200-18299 and workers on 127.0.35.x belong to this file.
const ARM_PORT = 18201;
const IDENTITY_PORT = 18202;
const API_PORT = 18203;
const SERVICE_PORT = 18280;
const NODE_PORT = 31351;
const HEALTH = 10256;
// The subscription and scale set the Event Grid fixture names.
const SUB = '00000000-0000-4000-8000-0000000000a4';
const VMSS = { resourceGroup: 'mc-weu', name: 'aks-system-vmss' } as const;
// The LB VM's private IP, which the function reads from ARM (VM -> NIC) for Service status.
const LB_IP = '10.1.34.4';
// What a spec's kubernetes.ingress publishes instead, when set.
const PINNED_INGRESS = '192.0.2.34';
const PINNED_PORT = 18281;
const PINNED_NODE_PORT = 31352;
const FIXTURE = new URL('../fixtures/events/azure/vmss-write-success.json', import.meta.url);

describe('AKS: Event Grid event -> Azure Function -> Entra token -> cluster API -> Run Command -> HAProxy -> Service status', () => {
  let dir: string;
  let arm: FakeArm;
  let identity: FakeManagedIdentity;
  let k8s: FakeKubernetes;
  let lb: LbVm;
  let fn: typeof import('../../functions/azure.js');
  const logs: Record<string, unknown>[] = [];
  const nodes: { node: string; worker: string; server: WorkerServer }[] = [];
  const saved = { ...process.env };
  let h: ClusterHarness;

  /** The function's spec; no kubernetes.ingress unless given, so Service status shows the LB VM's ARM address. */
  const configure = (ingress?: string): void =>
    fn.configureAzureFunction({
      spec: validateSpec({
        name: 'e2e-k8s-azure',
        workers: {
          source: 'azure-vmss',
          subscriptionId: SUB,
          scaleSets: [{ ...VMSS, orchestration: 'uniform' }],
        },
        loadBalancers: {
          transport: 'azure-run-command',
          vms: [{ resourceGroup: 'rg-edge', name: 'lb-aks' }],
        },
        kubernetes: {
          cluster: { aks: { resourceGroup: 'rg-aks', name: 'prod' } },
          bindAddress: '127.0.0.1',
          ...(ingress !== undefined ? { ingress: [{ ip: ingress }] } : {}),
        },
        healthCheck: { port: HEALTH, interval: '1s', rise: 1, fall: 1 },
        guards: { minWorkers: 1, maxRemovalPercent: 50 },
        drain: { seconds: 5 },
        tuning: { maxconn: 4000 },
      }),
    });

  const context = (): InvocationContext =>
    new InvocationContext({
      invocationId: `k8s-${logs.length}`,
      functionName: 'lbsyncEvents',
      logHandler: (_level, ...args) => {
        for (const a of args) {
          try {
            logs.push(JSON.parse(String(a)) as Record<string, unknown>);
          } catch {
            // not one of lbsync's JSON lines
          }
        }
      },
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-e2e-k8s-azure-'));
    [arm, identity, k8s] = await Promise.all([
      FakeArm.start({ port: ARM_PORT }),
      FakeManagedIdentity.start(IDENTITY_PORT),
      FakeKubernetes.start({ port: API_PORT }),
    ]);
    // ARM accepts only the identity's tokens (clients with a custom endpoint scope them to it).
    arm.acceptToken = (t) =>
      identity.validate(t, ARM_AUDIENCE) !== null || identity.validate(t, arm.url) !== null;
    lb = await LbVm.start('lb-aks', join(dir, 'lb'), BOOT_CONFIG);
    arm.addLbVm({
      subscriptionId: SUB,
      resourceGroup: 'rg-edge',
      name: 'lb-aks',
      vm: lb,
      ip: LB_IP,
    });
    arm.addScaleSet(SUB, VMSS.resourceGroup, VMSS.name, 'uniform');
    // The cluster: AKS-managed Entra ID; its API server trusts the identity's AKS tokens.
    arm.managedClusters.add({
      subscriptionId: SUB,
      resourceGroup: 'rg-aks',
      name: 'prod',
      server: k8s.url,
      caPem: k8s.caPem,
    });
    k8s.setAuthenticator(identity.aksAuthenticator(['lbsync:syncers']));
    k8s.grant({ group: 'lbsync:syncers' }, LBSYNC_RULES);
    for (const n of [0, 1, 2]) {
      const worker = `${VMSS.name}_${n}`;
      const address = `127.0.35.${11 + n}`;
      const server = await startWorkerServer({
        id: worker,
        address,
        ports: [NODE_PORT],
        healthPort: HEALTH,
        delayMs: n === 2 ? 800 : 0,
      });
      arm.addInstance(VMSS.resourceGroup, VMSS.name, {
        instanceId: String(n),
        ip: address,
        name: worker,
      });
      const node = `aks-system-${n}`;
      k8s.objects.addNode({
        name: node,
        internalIP: address,
        providerID: `azure:///subscriptions/${SUB}/resourceGroups/${VMSS.resourceGroup}/providers/Microsoft.Compute/virtualMachineScaleSets/${VMSS.name}/virtualMachines/${n}`,
      });
      nodes.push({ node, worker, server });
    }
    // What App Service gives a Function App with a managed identity, plus lbsync's knobs;
    // no LBSYNC_AZURE_ACCESS_TOKEN, so the function uses DefaultAzureCredential.
    delete process.env.LBSYNC_AZURE_ACCESS_TOKEN;
    Object.assign(process.env, identity.env, {
      LBSYNC_AZURE_ENDPOINT: arm.url,
      LBSYNC_AZURE_CA_FILE: arm.caFile,
      LBSYNC_AZURE_POLL_MS: '25',
      LBSYNC_AZURE_BUSY_BACKOFF_MS: '200',
    });
    fn = await import('../../functions/azure.js');
    configure();
    const event = JSON.parse(readFileSync(FIXTURE, 'utf8')) as EventGridEvent;
    h = {
      k8s,
      nodes,
      port: SERVICE_PORT,
      nodePort: NODE_PORT,
      ingress: LB_IP,
      clusterUser: identity.objectId,
      lbConfig: () => readFileSync(lb.configPath, 'utf8'),
      async sync() {
        const from = logs.length;
        try {
          await fn.onEventGrid(event, context());
          return { redelivered: false, errors: errorLines(logs, from) };
        } catch {
          return { redelivered: true, errors: errorLines(logs, from) };
        }
      },
      // The cluster's view: the identity's AKS token expired early (revoked); the credential
      // still caches it, so the fresh token the function asks for is the same one.
      refuseTokens: () => identity.expireIssued(AKS_AUDIENCE),
    };
  });

  afterAll(async () => {
    process.env = saved;
    await lb?.stop();
    await Promise.all([
      arm?.stop(),
      identity?.stop(),
      k8s?.stop(),
      ...nodes.map((n) => n.server.close()),
    ]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('discovers the cluster through ARM once and signs in with a token for the AKS server application', async () => {
    // Act: the cold start and a first run (no Service yet).
    const out = await h.sync();

    // Assess
    expect(out).toEqual({ redelivered: false, errors: [] });
    const gets = arm.requests.filter((r) => r.path.endsWith('/managedclusters/prod'));
    expect(gets).toHaveLength(1);
    expect(identity.requests.map((r) => r.resource)).toContain(AKS_AUDIENCE);
    await h.sync();
    expect(arm.requests.filter((r) => r.path.endsWith('/managedclusters/prod'))).toHaveLength(1);
    // The LB VM's address for Service status: its VM and NIC read once per cold start.
    expect(arm.nicReads().map((r) => r.path)).toEqual([
      `/subscriptions/${SUB}/resourcegroups/rg-edge/providers/microsoft.network/networkinterfaces/lb-aks-nic`,
    ]);
  });

  it("publishes kubernetes.ingress when the spec sets it, over the LB VM's address from ARM, and that address once it is gone", async () => {
    // Prepare: a cold start with kubernetes.ingress, and a Service of its own.
    const nicReads = arm.nicReads().length;
    configure(PINNED_INGRESS);
    k8s.objects.addService({
      name: 'pinned',
      namespace: 'shop',
      type: 'LoadBalancer',
      loadBalancerClass: 'lbsync.io/haproxy',
      ports: [{ name: 'http', port: PINNED_PORT, nodePort: PINNED_NODE_PORT }],
    });
    const pinned = (): unknown =>
      (k8s.objects.service('shop', 'pinned')?.status as { loadBalancer?: { ingress?: unknown } })
        ?.loadBalancer?.ingress;

    // Act
    const withIngress = await h.sync();

    // Assess: the spec's address, and no NIC read for it.
    expect(withIngress).toEqual({ redelivered: false, errors: [] });
    expect(pinned()).toEqual([{ ip: PINNED_INGRESS, ipMode: 'Proxy' }]);
    expect(arm.nicReads()).toHaveLength(nicReads);

    // Act: the next cold start has no kubernetes.ingress.
    configure();
    const without = await h.sync();

    // Assess: the LB VM's private IP, read from its NIC once.
    expect(without).toEqual({ redelivered: false, errors: [] });
    expect(pinned()).toEqual([{ ip: LB_IP, ipMode: 'Proxy' }]);
    expect(arm.nicReads()).toHaveLength(nicReads + 1);
    // It stays: deleting the cluster's only Service would empty every backend, which the
    // removal guard refuses; the scenario below only looks at its own Service.
  });

  clusterScenario(() => h);
});
