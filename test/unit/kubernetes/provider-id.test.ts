import { describe, expect, it } from 'vitest';
import {
  type MembershipDecision,
  matchWorkers,
  providerKey,
  workersFromNodes,
} from '../../../adapters/kubernetes/provider-id.js';
import { loadMembers, loadNodes } from '../../helpers/kubernetes-fixtures.js';
import { makeNode, tweakExclude, tweakInternalIp, tweakToBeDeleted } from './node-tweaks.js';

const SUB = '3f2a6b1c-8d4e-4f5a-9b6c-7d8e9f0a1b2c';
const VMSS = `azure:///subscriptions/${SUB}/resourceGroups/mc_rg_aks_westeurope/providers/Microsoft.Compute/virtualMachineScaleSets/aks-pool-vmss/virtualMachines/3`;
const VM = `azure:///subscriptions/${SUB}/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/worker-7`;

describe('providerKey', () => {
  // cloud-provider-aws TestMapToAWSInstanceIDs rows; lbsync's answer beside each.
  it.each([
    ['aws:///us-east-1a/i-12345678', 'aws/i-12345678'],
    ['aws:////i-12345678', 'aws/i-12345678'],
    ['i-12345678', 'aws/i-12345678'],
    ['aws:///us-east-1a/i-12345678abcdef01', 'aws/i-12345678abcdef01'],
    ['aws:////i-12345678abcdef01', 'aws/i-12345678abcdef01'],
    ['i-12345678abcdef01', 'aws/i-12345678abcdef01'],
    ['vol-123456789', null],
    ['aws:///us-east-1a/vol-12345678abcdef01', null],
    ['aws://accountid/us-east-1a/vol-12345678abcdef01', null],
    ['aws:///us-east-1a/vol-12345678abcdef01/suffix', null],
    ['', null],
    // Upstream accepts Fargate ids; they are no group member and have no NodePort.
    ['aws:///us-west-2c/1abc-2def/fargate-ip-192-168-164-88.internal', null],
    ['aws:///us-west-2c/1abc-2def/fargate-192.168.164.88', null],
  ])('maps the AWS form %j to %j', (id, key) => {
    expect(providerKey(id)).toBe(key);
  });

  it('keys an AWS instance the same with or without its zone', () => {
    expect(providerKey('aws:///eu-west-1a/i-0a1b2c3d4e5f60717')).toBe(
      providerKey('aws:////i-0a1b2c3d4e5f60717'),
    );
  });

  it.each([
    [VMSS, `azure/vmss/${SUB}/mc_rg_aks_westeurope/aks-pool-vmss/3`],
    [VM, `azure/vm/${SUB}/rg-prod/worker-7`],
  ])('maps the Azure form %s', (id, key) => {
    expect(providerKey(id)).toBe(key);
  });

  it('folds case in Azure ids, as ARM does (AKS lowercases the resource group)', () => {
    const shouted = VMSS.replace('mc_rg_aks_westeurope', 'MC_rg_aks_westeurope')
      .replace('Microsoft.Compute', 'microsoft.compute')
      .replace('resourceGroups', 'resourcegroups');
    expect(providerKey(shouted)).toBe(providerKey(VMSS));
  });

  it.each([
    `azure:///subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/pool/virtualMachines/abc`,
    `azure:///subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Compute/availabilitySets/as1`,
    `azure://subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm`,
  ])('refuses the malformed Azure id %s', (id) => {
    expect(providerKey(id)).toBeNull();
  });

  it.each([
    [
      'gce://prod-project-123456/europe-west1-b/gke-prod-workers-1a2b3c4d-x7k2',
      'gce/prod-project-123456/europe-west1-b/gke-prod-workers-1a2b3c4d-x7k2',
    ],
    [
      'gce://example.com:legacy-proj/us-central1-a/node-1',
      'gce/example.com:legacy-proj/us-central1-a/node-1',
    ],
    ['gce://project/zone', null],
    ['gce://project/zone/name/extra', null],
  ])('maps the GCE form %s (cloud-provider-gcp providerIDRE) to %j', (id, key) => {
    expect(providerKey(id)).toBe(key);
  });

  it.each(['kind://docker/kind/kind-worker', 'openstack:///8c9f0b8e', 'k3s://node-1', undefined])(
    'returns null for the unknown form %j',
    (id) => {
      expect(providerKey(id)).toBeNull();
    },
  );
});

const byWorker = (ds: readonly MembershipDecision[], id: string) => ds.find((d) => d.worker === id);
const byNode = (ds: readonly MembershipDecision[], name: string) => ds.find((d) => d.node === name);

describe('matchWorkers on EKS', () => {
  const members = loadMembers('members-aws.json');
  const nodes = loadNodes('nodes-aws.yaml');
  const m = matchWorkers(members, nodes);

  it('keeps serving, NotReady and lifecycle-draining members and drains the tainted one', () => {
    expect(m.workers.map((w) => [w.id, w.state])).toEqual([
      ['i-0a1b2c3d4e5f60717', 'serving'],
      ['i-0b1b2c3d4e5f60721', 'draining'],
      ['i-0c1b2c3d4e5f60730', 'serving'],
      ['i-0c1b2c3d4e5f60731', 'serving'],
      ['i-0c1b2c3d4e5f60733', 'draining'],
    ]);
  });

  it('names the rule for every excluded or draining member', () => {
    expect(byWorker(m.decisions, 'i-0a1b2c3d4e5f60718')).toMatchObject({
      verdict: 'excluded',
      rule: 'exclude-label',
    });
    expect(byWorker(m.decisions, 'i-0b1b2c3d4e5f60721')).toMatchObject({
      verdict: 'draining',
      rule: 'to-be-deleted-taint',
    });
    expect(byWorker(m.decisions, 'i-0b1b2c3d4e5f60722')).toMatchObject({
      verdict: 'excluded',
      rule: 'deletion-timestamp',
    });
    expect(byWorker(m.decisions, 'i-0c1b2c3d4e5f60733')).toMatchObject({
      verdict: 'draining',
      rule: 'lifecycle-draining',
    });
  });

  it('pairs an aws://// id with a zoned node id, and an uninitialised node by InternalIP', () => {
    expect(byWorker(m.decisions, 'i-0c1b2c3d4e5f60730')).toMatchObject({
      matchedBy: 'provider-id',
    });
    expect(byWorker(m.decisions, 'i-0c1b2c3d4e5f60731')).toMatchObject({
      node: 'ip-10-0-3-31.eu-west-1.compute.internal',
      matchedBy: 'internal-ip',
    });
  });

  it('never pairs across a reused IP when both providerIDs are known', () => {
    // i-0e…740 took 10.0.1.40 from the terminated i-0dead…, whose Node lingers.
    expect(byWorker(m.decisions, 'i-0e1b2c3d4e5f60740')).toMatchObject({ rule: 'no-node' });
    expect(byNode(m.decisions, 'ip-10-0-1-40.eu-west-1.compute.internal')).toMatchObject({
      rule: 'not-a-group-member',
    });
  });

  it('leaves group members without a Node out and lists them', () => {
    expect(m.withoutNode.map((w) => w.id)).toEqual(['i-0e1b2c3d4e5f60740', 'i-0e1b2c3d4e5f60750']);
  });

  it('reports nodes of other node groups as not group members', () => {
    expect(byNode(m.decisions, 'ip-10-0-9-5.eu-west-1.compute.internal')).toMatchObject({
      verdict: 'excluded',
      rule: 'not-a-group-member',
    });
  });

  it('makes one decision per node and per unmatched member', () => {
    expect(m.decisions).toHaveLength(nodes.length + m.withoutNode.length);
  });

  it('keeps the labelled node when ignoreExcludeLabel is set', () => {
    const ids = matchWorkers(members, nodes, { ignoreExcludeLabel: true }).workers.map((w) => w.id);
    expect(ids).toContain('i-0a1b2c3d4e5f60718');
  });
});

describe('matchWorkers on AKS and GKE', () => {
  it('matches VMSS members to AKS nodes whatever the case of the resource id', () => {
    const m = matchWorkers(loadMembers('members-azure.json'), loadNodes('nodes-azure.yaml'));
    expect(m.workers.map((w) => [w.id, w.state])).toEqual([
      ['aks-workers-12345678-vmss_0', 'serving'],
      ['aks-workers-12345678-vmss_1', 'serving'], // exclude label "false"
      ['aks-workers-12345678-vmss_2', 'draining'],
    ]);
    expect(m.withoutNode.map((w) => w.id)).toEqual(['aks-workers-12345678-vmss_3']);
    expect(byNode(m.decisions, 'aks-flex-23456789-vms1')?.rule).toBe('not-a-group-member');
  });

  it('matches MIG members by gce:// id, and by InternalIP when the member has none', () => {
    const m = matchWorkers(loadMembers('members-gcp.json'), loadNodes('nodes-gke.yaml'));
    expect(m.workers.map((w) => w.id)).toEqual([
      'gke-prod-workers-1a2b3c4d-x7k2',
      'gke-prod-workers-1a2b3c4d-h3p8',
    ]);
    expect(byWorker(m.decisions, 'gke-prod-workers-1a2b3c4d-q9m4')?.detail).toBe(
      'label node.kubernetes.io/exclude-from-external-load-balancers=""',
    );
    expect(byWorker(m.decisions, 'gke-prod-workers-1a2b3c4d-h3p8')?.matchedBy).toBe('internal-ip');
  });

  it('reports a second node claiming the same providerID and pairs only the first', () => {
    const twin = makeNode(tweakInternalIp('10.0.1.99'), (n) => {
      n.metadata = { ...n.metadata, name: 'zz-twin' };
    });
    const m = matchWorkers([], [makeNode(), twin]);
    expect(byNode(m.decisions, 'zz-twin')).toMatchObject({ rule: 'duplicate-provider-id' });
    expect(m.decisions).toHaveLength(2);
  });
});

describe('workersFromNodes', () => {
  it('makes one worker per eligible node: id = node name, address = InternalIP', () => {
    const { workers } = workersFromNodes(loadNodes('nodes-gke.yaml'));
    expect(workers).toEqual([
      {
        id: 'gke-prod-workers-1a2b3c4d-h3p8',
        address: '10.132.0.12',
        state: 'serving',
        zone: 'europe-west1-b',
        providerId: 'gce://prod-project-123456/europe-west1-b/gke-prod-workers-1a2b3c4d-h3p8',
      },
      expect.objectContaining({ id: 'gke-prod-workers-1a2b3c4d-t5w1', address: '10.132.0.13' }),
      expect.objectContaining({ id: 'gke-prod-workers-1a2b3c4d-x7k2', address: '10.132.0.10' }),
    ]);
  });

  it('drains tainted nodes and leaves out excluded ones with their rule', () => {
    const labelled = makeNode(tweakExclude('true'));
    const tainted = makeNode(tweakToBeDeleted, tweakInternalIp('10.0.1.20'), (n) => {
      n.metadata = { ...n.metadata, name: 'tainted' };
    });
    const { workers, decisions } = workersFromNodes([labelled, tainted]);
    expect(workers.map((w) => [w.id, w.state])).toEqual([['tainted', 'draining']]);
    expect(decisions.map((d) => d.rule)).toEqual(['exclude-label', 'to-be-deleted-taint']);
  });

  it('leaves out a node without an InternalIP instead of guessing an address', () => {
    const node = makeNode((n) => {
      n.status = { ...n.status, addresses: [{ type: 'Hostname', address: 'x' }] };
    });
    const { workers, decisions } = workersFromNodes([node]);
    expect(workers).toEqual([]);
    expect(decisions[0]).toMatchObject({ verdict: 'excluded', rule: 'no-internal-ip' });
  });

  it('leaves out a node whose name HAProxy cannot carry', () => {
    const node = makeNode((n) => {
      n.metadata = { ...n.metadata, name: `${'a'.repeat(130)}.example` };
    });
    expect(workersFromNodes([node]).decisions[0]?.rule).toBe('unsafe-node-name');
  });
});
