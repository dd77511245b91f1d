import * as azure from '@pulumi/azure-native';
import * as pulumi from '@pulumi/pulumi';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { classifyEventGridEvent } from '../../../adapters/azure/events.js';
import { runCommandSection, vmssSection } from '../../../adapters/azure/provider.js';
import { loadSpec, parseSpec, type Spec } from '../../../adapters/spec.js';
import {
  AZURE_EVENT_TYPES,
  AZURE_FUNCTIONS,
  type AzureStackOptions,
  azureStack,
} from '../../../stacks/azure.js';
import { AKS_CLUSTER_USER_ROLE } from '../../../stacks/azure-kubernetes.js';
import { StackConfigError } from '../../../stacks/shared.js';
import { fixtureJson, fixtureNames, fixturePath } from '../../helpers/fixtures.js';
import { installMocks, type Recorder, settle, stubPackage } from './pulumi-mocks.js';

const SUB = '00000000-0000-4000-8000-0000000000a4';
const fixtures: readonly { readonly file: string; readonly event: Record<string, unknown> }[] =
  fixtureNames('events/azure', '.json')
    .map((file) => {
      const raw = fixtureJson<unknown>(`events/azure/${file}`);
      return { file, event: (Array.isArray(raw) ? raw[0] : raw) as Record<string, unknown> };
    })
    .filter((f) => typeof f.event.eventType === 'string');

// The subscription, groups and LB VM of the fixtures.
function spec(lbVms = '[{ resourceGroup: rg-edge, name: lb-weu-1 }]'): Spec {
  return parseSpec(`
name: weu
cloud: azure
workers:
  azure:
    subscriptionId: ${SUB}
    scaleSets:
      - { resourceGroup: mc-weu, name: aks-system-vmss, orchestration: uniform }
      - { resourceGroup: mc-apps, name: aks-apps-flex, orchestration: flexible }
loadBalancers:
  azure:
    vms: ${lbVms}
services:
  - { name: https, bind: ":443", nodePort: 31443 }
`);
}

/** A spec the stack tests deploy or refuse (test/fixtures/stacks/). */
const stackFixture = (name: string): Promise<Spec> => loadSpec(fixturePath(`stacks/${name}.yaml`));

const T = {
  app: 'azure-native:web:WebApp',
  plan: 'azure-native:web:AppServicePlan',
  role: 'azure-native:authorization:RoleDefinition',
  assignment: 'azure-native:authorization:RoleAssignment',
  topic: 'azure-native:eventgrid:SystemTopic',
  subscription: 'azure-native:eventgrid:SystemTopicEventSubscription',
  blob: 'azure-native:storage:Blob',
} as const;

interface AdvancedFilter {
  readonly operatorType: string;
  readonly key: string;
  readonly values: string[];
}

/** Event Grid's filter: event type listed, and every advanced filter holds (case-insensitive). */
function delivered(
  filter: { includedEventTypes: string[]; advancedFilters: AdvancedFilter[] },
  event: Record<string, unknown>,
): boolean {
  if (!filter.includedEventTypes.includes(String(event.eventType))) return false;
  return filter.advancedFilters.every((f) => {
    if (f.key !== 'subject') throw new Error(`filter key ${f.key} not modelled`);
    const subject = String(event.subject).toLowerCase();
    const begins = f.values.some((v) => subject.startsWith(v.toLowerCase()));
    if (f.operatorType === 'StringBeginsWith') return begins;
    if (f.operatorType === 'StringNotBeginsWith') return !begins;
    throw new Error(`operator ${f.operatorType} not modelled`);
  });
}

describe('Azure stack (Pulumi mocks, real @pulumi/azure-native)', () => {
  let rec: Recorder;
  let pkg: ReturnType<typeof stubPackage>;
  const options: AzureStackOptions = { location: 'westeurope' };

  beforeAll(async () => {
    rec = await installMocks();
    pkg = stubPackage('azure');
  });
  afterAll(() => pkg.remove());
  beforeEach(() => rec.reset());

  function render(s: Spec, o: AzureStackOptions = options): Promise<Record<string, string>> {
    return settle(azureStack({ pulumi, azure, spec: s, packageDir: pkg.dir, options: o }));
  }

  function settings(): Record<string, string> {
    const app = rec.one(T.app).inputs;
    return Object.fromEntries(
      app.siteConfig.appSettings.map((s: { name: string; value: string }) => [s.name, s.value]),
    );
  }

  it('deploys a Node 22 Function App with a system-assigned identity, run from the built package', async () => {
    await render(spec());
    const app = rec.one(T.app).inputs;
    expect(app.kind).toBe('functionapp,linux');
    expect(app.siteConfig.linuxFxVersion).toBe('Node|22');
    expect(app.identity).toEqual({ type: 'SystemAssigned' });
    expect(app.httpsOnly).toBe(true);
    expect(rec.one(T.plan).inputs.sku).toEqual({ name: 'Y1', tier: 'Dynamic' });
    const blob = rec.one(T.blob).inputs;
    expect(await blob.source.path).toBe(pkg.dir);
    const s = settings();
    expect(s.FUNCTIONS_WORKER_RUNTIME).toBe('node');
    expect(s.FUNCTIONS_EXTENSION_VERSION).toBe('~4');
    expect(s.WEBSITE_RUN_FROM_PACKAGE).toMatch(
      new RegExp(`^https://.+\\.blob\\.core\\.windows\\.net/.+/${blob.blobName}\\?sv=.*sp=r`),
    );
  });

  it('deploys into the workers subscription through its own provider', async () => {
    await render(spec());
    expect(rec.one('pulumi:providers:azure-native').inputs.subscriptionId).toBe(SUB);
    const resources = rec.resources.filter((r) => r.type.startsWith('azure-native:'));
    expect(resources.length).toBeGreaterThan(10);
    for (const r of resources) expect(r.provider, r.name).toMatch(/::lbsync-weu-provider::/);
  });

  it('hands the function the spec in LBSYNC_SPEC and the timer schedule in LBSYNC_SCHEDULE', async () => {
    const s = spec();
    await render(s, { ...options, schedule: '0 */2 * * * *' });
    expect(parseSpec(settings().LBSYNC_SPEC ?? '')).toEqual(s);
    expect(settings().LBSYNC_SCHEDULE).toBe('0 */2 * * * *');
  });

  it('subscribes the Event Grid function to the subscription topic with the handled event types', async () => {
    await render(spec());
    expect(rec.one(T.topic).inputs).toMatchObject({
      source: `/subscriptions/${SUB}`,
      topicType: 'Microsoft.Resources.Subscriptions',
    });
    const sub = rec.one(T.subscription).inputs;
    expect(sub.destination).toMatchObject({ endpointType: 'AzureFunction', maxEventsPerBatch: 1 });
    expect(sub.destination.resourceId).toMatch(
      new RegExp(`/functions/${AZURE_FUNCTIONS.eventGrid}$`),
    );
    expect(sub.filter.includedEventTypes).toEqual(AZURE_EVENT_TYPES);
    expect(sub.retryPolicy).toEqual({ maxDeliveryAttempts: 10, eventTimeToLiveInMinutes: 60 });
  });

  it("delivers exactly the fixture events the handler acts on (never the LB VM's own Run Commands)", async () => {
    const s = spec(
      '[{ resourceGroup: mc-apps, name: lb-in-flex-group }, { resourceGroup: rg-edge, name: lb-weu-1 }]',
    );
    await render(s);
    const filter = rec.one(T.subscription).inputs.filter;
    const scope = {
      subscriptionId: SUB,
      scaleSets: vmssSection(s)?.scaleSets ?? [],
      lbVms: runCommandSection(s)?.vms ?? [],
    };
    let acted = 0;
    for (const f of fixtures) {
      const verdict = classifyEventGridEvent(f.event, scope);
      if (verdict.kind === 'sync') acted++;
      expect(delivered(filter, f.event), f.file).toBe(verdict.kind === 'sync');
    }
    expect(acted).toBeGreaterThanOrEqual(4);
    const ownRunCommand = {
      eventType: 'Microsoft.Resources.ResourceActionSuccess',
      subject: `/subscriptions/${SUB}/resourcegroups/mc-apps/providers/Microsoft.Compute/virtualMachines/lb-in-flex-group`,
    };
    expect(delivered(filter, ownRunCommand)).toBe(false);
  });

  it('assigns custom roles without wildcards at the narrowest scopes', async () => {
    await render(spec());
    const records = rec.ofType(T.role);
    const roles = records.map((r) => r.inputs);
    for (const r of roles) {
      expect(r.roleType).toBe('CustomRole');
      for (const p of r.permissions) {
        for (const a of [...p.actions, ...p.dataActions]) expect(a).not.toContain('*');
      }
    }
    const byRole = new Map<string, string[]>();
    for (const a of rec.ofType(T.assignment).map((x) => x.inputs)) {
      const role = records.find((r) => a.roleDefinitionId.endsWith(`/${r.name}`))?.inputs;
      expect(role, a.roleDefinitionId).toBeDefined();
      expect(a.principalId).toBe('principal-of-the-function-app');
      expect(a.principalType).toBe('ServicePrincipal');
      byRole.set(role?.roleName, [...(byRole.get(role?.roleName) ?? []), a.scope].sort());
    }
    const rg = (g: string) => `/subscriptions/${SUB}/resourceGroups/${g}`;
    expect(Object.fromEntries(byRole)).toEqual({
      'lbsync weu scale set reader': [
        `${rg('mc-weu')}/providers/Microsoft.Compute/virtualMachineScaleSets/aks-system-vmss`,
      ],
      'lbsync weu flexible scale set reader': [rg('mc-apps')],
      'lbsync weu LB Run Command': [
        `${rg('rg-edge')}/providers/Microsoft.Compute/virtualMachines/lb-weu-1`,
      ],
      'lbsync weu operation status': [`/subscriptions/${SUB}`],
    });
    const runCommand = roles.filter((r) =>
      r.permissions[0].actions.some((a: string) => a.endsWith('runCommand/action')),
    );
    expect(runCommand.map((r) => r.roleName)).toEqual(['lbsync weu LB Run Command']);
  });

  it('grants staging on the container and the delegation key on its account only', async () => {
    const s = spec();
    const withStaging = {
      ...s,
      loadBalancers: {
        ...s.loadBalancers,
        staging: {
          containerUrl: 'https://lbstage.blob.core.windows.net/payloads',
          sasMinutes: 15,
        },
      },
    };
    expect(() =>
      azureStack({ pulumi, azure, spec: withStaging, packageDir: pkg.dir, options }),
    ).toThrow(/stagingStorageAccountId/);
    rec.reset();
    const accountId = `/subscriptions/${SUB}/resourceGroups/rg-stage/providers/Microsoft.Storage/storageAccounts/lbstage`;
    await render(withStaging, { ...options, stagingStorageAccountId: accountId });
    const scopes = rec
      .ofType(T.assignment)
      .map((a) => [a.name, a.inputs.scope, a.inputs.roleDefinitionId]);
    expect(scopes).toContainEqual([
      'lbsync-weu-staging-blobs',
      `${accountId}/blobServices/default/containers/payloads`,
      `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe`,
    ]);
    const key = rec.ofType(T.role).find((r) => r.name === 'lbsync-weu-staging-key')?.inputs;
    expect(key?.assignableScopes).toEqual([accountId]);
    expect(key?.permissions[0].actions).toEqual([
      'Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action',
    ]);
    expect(scopes.find((x) => x[0] === 'lbsync-weu-staging-key')?.[1]).toBe(accountId);
  });

  it('uses an existing subscription system topic when given one', async () => {
    await render(spec(), {
      ...options,
      existingSystemTopic: { resourceGroup: 'rg-ops', name: 'sub-events' },
    });
    expect(rec.ofType(T.topic)).toEqual([]);
    expect(rec.one(T.subscription).inputs).toMatchObject({
      resourceGroupName: 'rg-ops',
      systemTopicName: 'sub-events',
    });
  });

  it.each([
    ['kubernetes', 1],
    ['static', 0],
  ] as const)(
    'deploys a %s-source spec: the app with its timer and Run Command on the LB VM, no Event Grid or scale set roles',
    async (source, aksGrants) => {
      const s = await stackFixture(`azure-${source}`);
      const out = await render(s);
      // The app in the LBs' subscription, with the spec and the timer's schedule.
      expect(rec.one('pulumi:providers:azure-native').inputs.subscriptionId).toBe(SUB);
      expect(rec.one(T.app).inputs.kind).toBe('functionapp,linux');
      expect(parseSpec(settings().LBSYNC_SPEC ?? '')).toEqual(s);
      expect(settings().LBSYNC_SCHEDULE).toBe('0 */5 * * * *');
      expect(out.resyncUrl).toMatch(new RegExp(`/api/${AZURE_FUNCTIONS.http}$`));
      // No event wiring.
      expect(rec.ofType(T.topic)).toEqual([]);
      expect(rec.ofType(T.subscription)).toEqual([]);
      expect(out.eventSubscription).toBeUndefined();
      // Run Command on the LB VM and the operation status, and for Service status (a
      // kubernetes section without kubernetes.ingress) its NIC; no scale set reads.
      const records = rec.ofType(T.role);
      expect(records.map((r) => r.inputs.roleName).sort()).toEqual([
        ...(source === 'kubernetes' ? ['lbsync weu LB NIC reader'] : []),
        'lbsync weu LB Run Command',
        'lbsync weu operation status',
      ]);
      const actions = records.flatMap((r) => r.inputs.permissions[0].actions as string[]);
      expect(actions.filter((a) => a.includes('virtualMachineScaleSets/read'))).toEqual([]);
      const scopeOf = (roleName: string) =>
        rec
          .ofType(T.assignment)
          .filter((a) =>
            records.some(
              (r) =>
                r.inputs.roleName === roleName && a.inputs.roleDefinitionId.endsWith(`/${r.name}`),
            ),
          )
          .map((a) => a.inputs.scope);
      expect(scopeOf('lbsync weu LB Run Command')).toEqual([
        `/subscriptions/${SUB}/resourceGroups/rg-edge/providers/Microsoft.Compute/virtualMachines/lb-weu-1`,
      ]);
      expect(scopeOf('lbsync weu operation status')).toEqual([`/subscriptions/${SUB}`]);
      expect(scopeOf('lbsync weu LB NIC reader')).toEqual(
        source === 'kubernetes' ? [`/subscriptions/${SUB}/resourceGroups/rg-edge`] : [],
      );
      // The kubernetes source reaches its cluster as before (stacks/azure-kubernetes.ts).
      const aks = rec
        .ofType(T.assignment)
        .filter((a) => String(a.inputs.roleDefinitionId).endsWith(AKS_CLUSTER_USER_ROLE));
      expect(aks.map((a) => a.inputs.scope)).toEqual(
        aksGrants === 0
          ? []
          : [
              `/subscriptions/${SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/prod-aks`,
            ],
      );
    },
  );

  it.each([
    ['without kubernetes.ingress', '', true],
    ['with kubernetes.ingress', ', ingress: [{ ip: 192.0.2.10 }]', false],
  ] as const)(
    "grants reading the LB VMs' NICs %s only where they are: a plain VM's resource group, a scale set LB VM alone",
    async (_what, ingress, granted) => {
      // Prepare: two plain LB VMs in one group, one in another, and a scale set instance.
      const s = parseSpec(`
name: weu
workers: { source: kubernetes }
loadBalancers:
  transport: azure-run-command
  subscriptionId: ${SUB}
  vms:
    - { resourceGroup: rg-edge, name: lb-1 }
    - { resourceGroup: rg-edge, name: lb-2 }
    - { resourceGroup: rg-dr, name: lb-3 }
    - { resourceGroup: rg-pool, name: "4", scaleSet: lb-pool }
kubernetes: { cluster: { aks: { resourceGroup: rg-aks, name: prod-aks } }${ingress} }
`);

      // Act
      await render(s);

      // Assess
      const records = rec.ofType(T.role);
      const scopesOf = (roleName: string): string[] => {
        const role = records.find((r) => r.inputs.roleName === roleName);
        return rec
          .ofType(T.assignment)
          .filter((a) => role !== undefined && a.inputs.roleDefinitionId.endsWith(`/${role.name}`))
          .map((a) => a.inputs.scope)
          .sort();
      };
      const actionsOf = (roleName: string): string[] =>
        records.find((r) => r.inputs.roleName === roleName)?.inputs.permissions[0].actions ?? [];
      const rg = (g: string) => `/subscriptions/${SUB}/resourceGroups/${g}`;
      expect(scopesOf('lbsync weu LB NIC reader')).toEqual(
        granted ? [rg('rg-dr'), rg('rg-edge')] : [],
      );
      expect(scopesOf('lbsync weu LB scale set NIC reader')).toEqual(
        granted
          ? [
              `${rg('rg-pool')}/providers/Microsoft.Compute/virtualMachineScaleSets/lb-pool/virtualMachines/4`,
            ]
          : [],
      );
      if (granted) {
        expect(actionsOf('lbsync weu LB NIC reader')).toEqual([
          'Microsoft.Network/networkInterfaces/read',
        ]);
        expect(actionsOf('lbsync weu LB scale set NIC reader')).toEqual([
          'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces/read',
        ]);
      }
      // The VM reads the lookup starts with come with Run Command, on each LB VM.
      expect(actionsOf('lbsync weu LB Run Command')).toEqual(
        expect.arrayContaining([
          'Microsoft.Compute/virtualMachines/read',
          'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read',
        ]),
      );
      expect(scopesOf('lbsync weu LB Run Command')).toHaveLength(4);
    },
  );

  it('refuses an existing system topic without an azure-vmss source, naming the option', async () => {
    const s = await stackFixture('azure-static');
    const o = { ...options, existingSystemTopic: { resourceGroup: 'rg-ops', name: 'sub-events' } };
    expect(() => azureStack({ pulumi, azure, spec: s, packageDir: pkg.dir, options: o })).toThrow(
      /^options\.existingSystemTopic: only the azure-vmss source subscribes to events, not static/,
    );
  });

  it('refuses a file source and a local transport, naming the field', async () => {
    const file = await stackFixture('azure-file');
    expect(() => azureStack({ pulumi, azure, spec: file, packageDir: pkg.dir, options })).toThrow(
      /^workers\.source: file cannot be deployed: the function receives only the spec/,
    );
    const local = await stackFixture('azure-local');
    expect(() => azureStack({ pulumi, azure, spec: local, packageDir: pkg.dir, options })).toThrow(
      /^loadBalancers\.transport: the azure stack reaches the LBs with azure-run-command, not local/,
    );
    expect(rec.resources).toEqual([]);
  });

  it('refuses a location that is not a region name', () => {
    expect(() =>
      azureStack({
        pulumi,
        azure,
        spec: spec(),
        packageDir: pkg.dir,
        options: { location: 'West Europe' },
      }),
    ).toThrow(StackConfigError);
  });
});
