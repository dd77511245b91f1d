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
// Run Command cannot tell an LB VM's address cheaply: Service status takes kubernetes.ingress.
const LB_INGRESS = '10.1.34.4';
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
    arm.addLbVm({ subscriptionId: SUB, resourceGroup: 'rg-edge', name: 'lb-aks', vm: lb });
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
          ingress: [{ ip: LB_INGRESS }],
        },
        healthCheck: { port: HEALTH, interval: '1s', rise: 1, fall: 1 },
        guards: { minWorkers: 1, maxRemovalPercent: 50 },
        drain: { seconds: 5 },
        tuning: { maxconn: 4000 },
      }),
    });
    const event = JSON.parse(readFileSync(FIXTURE, 'utf8')) as EventGridEvent;
    h = {
      k8s,
      nodes,
      port: SERVICE_PORT,
      nodePort: NODE_PORT,
      ingress: LB_INGRESS,
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
  });

  clusterScenario(() => h);
});
