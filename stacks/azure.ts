import type * as AzureNamespace from '@pulumi/azure-native';
import type * as PulumiTypes from '@pulumi/pulumi';
import {
  AZURE_EVENT_TYPES,
  lbAddressesNeeded,
  runCommandSection,
  vmssSection,
} from '../adapters/azure/provider.js';
import type { Spec } from '../adapters/spec.js';
import { type AzureKubernetesOptions, azureKubernetes } from './azure-kubernetes.js';
import {
  assertDeployable,
  assertPackage,
  directoryDigest,
  functionEnvironment,
  type PulumiNs,
  StackConfigError,
  type StackResource,
  type StackResult,
} from './shared.js';

/*
 * Azure (azure-native): a Linux Function App on Node 22 running the package
 * built from functions/azure.ts (run from a read-only SAS URL of its blob),
 * with a system-assigned identity and custom roles assigned at the narrowest
 * scopes (Run Command on each LB VM alone; reading the scale sets where they
 * live; reading the LB VMs' NICs when Service status needs their addresses);
 * the timer comes from the function's own registration
 * (LBSYNC_SCHEDULE). When the workers come from azure-vmss, an Event Grid
 * subscription on the subscription's Microsoft.Resources system topic,
 * filtered by event type and subject to the scale sets (and to the VMs of
 * Flexible scale sets' groups), never the LB VMs. Any other deployable
 * source (static, kubernetes) gets neither the subscription nor the scale
 * set roles: its changes arrive by the timer, a manual resync or the
 * cluster watcher.
 */

/** The `@pulumi/azure-native` namespace (SST's global `azurenative`). */
export type AzureNs = typeof AzureNamespace;

/** Function names registered by functions/azure.ts (`app.eventGrid/http/timer`). */
export const AZURE_FUNCTIONS = {
  eventGrid: 'lbsyncEvents',
  http: 'lbsync',
  timer: 'lbsyncSchedule',
} as const;

/** The Event Grid event types the handler acts on, from the provider (one list for both). */
export { AZURE_EVENT_TYPES };

/** Actions to list scale set members and their IPs, assigned on the scale sets (Uniform). */
export const AZURE_UNIFORM_READ_ACTIONS: readonly string[] = [
  'Microsoft.Compute/virtualMachineScaleSets/read',
  'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read',
  'Microsoft.Compute/virtualMachineScaleSets/networkInterfaces/read',
  'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces/read',
];

/** Actions to list a Flexible scale set's VMs and NICs, assigned on its resource group. */
export const AZURE_FLEXIBLE_READ_ACTIONS: readonly string[] = [
  'Microsoft.Compute/virtualMachineScaleSets/read',
  'Microsoft.Compute/virtualMachines/read',
  'Microsoft.Network/networkInterfaces/read',
];

/** Actions on the LB VMs: Run Command (plain VM or scale set instance). */
export const AZURE_PUSH_ACTIONS: readonly string[] = [
  'Microsoft.Compute/virtualMachines/read',
  'Microsoft.Compute/virtualMachines/runCommand/action',
  'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read',
  'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommand/action',
];

/**
 * Reading a plain LB VM's NIC for its private IP (Service status without
 * kubernetes.ingress), assigned on the VM's resource group: the NIC's name is
 * not in the spec. The VM read itself is in the Run Command role.
 */
export const AZURE_LB_NIC_READ_ACTIONS: readonly string[] = [
  'Microsoft.Network/networkInterfaces/read',
];

/** The same for an LB that is a scale set VM, assigned on that VM alone (its NICs are children). */
export const AZURE_LB_SCALE_SET_NIC_READ_ACTIONS: readonly string[] = [
  'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces/read',
];

/** Reading the status of Run Command's long-running operations (subscription-level resources). */
export const AZURE_OPERATION_ACTIONS: readonly string[] = [
  'Microsoft.Compute/locations/operations/read',
];

/** Built-in role: read, write and delete blobs (assigned on the staging container only). */
export const STORAGE_BLOB_DATA_CONTRIBUTOR = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe';

/** Signing user-delegation SAS URLs for staged payloads; Azure checks it on the account. */
export const AZURE_STAGING_KEY_ACTIONS: readonly string[] = [
  'Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action',
];

/** Event Grid allows 25 advanced filter values in all. */
const MAX_FILTER_VALUES = 25;

/** Deployment choices outside the spec. */
export interface AzureStackOptions {
  /** Azure region of the resource group, Function App and storage (e.g. westeurope). */
  readonly location: string;
  /** NCRONTAB schedule of the periodic resync; default every 5 minutes. */
  readonly schedule?: string;
  /**
   * Use this existing Microsoft.Resources.Subscriptions system topic (a
   * subscription holds at most one) instead of creating one. Only for
   * workers.source azure-vmss (no other source subscribes to events).
   */
  readonly existingSystemTopic?: { readonly resourceGroup: string; readonly name: string };
  /**
   * Resource id of the storage account behind `loadBalancers.azure.staging`
   * (`/subscriptions/…/resourceGroups/…/providers/Microsoft.Storage/storageAccounts/<name>`);
   * required when the spec stages payloads, since a container URL does not say
   * which subscription and resource group hold the account.
   */
  readonly stagingStorageAccountId?: string;
  /** Expiry of the package URL's read-only SAS; default 2035-01-01 (fixed, so deploys are stable). */
  readonly packageSasExpiry?: string;
  /**
   * Integrate the Function App with this VNet subnet (delegated to
   * Microsoft.Web/serverFarms), e.g. to reach a private AKS API server; all
   * outbound traffic then routes through the VNet. Consumption plans cannot
   * do that, so the app moves to an Elastic Premium (EP1) plan.
   */
  readonly vnetSubnetId?: string;
  /** AKS access (stacks/azure-kubernetes.ts). */
  readonly kubernetes?: AzureKubernetesOptions;
}

/** Arguments of {@link azureStack}. */
export interface AzureStackArgs {
  readonly pulumi: PulumiNs;
  readonly azure: AzureNs;
  readonly spec: Spec;
  /** dist/package/azure from `npm run build`. */
  readonly packageDir: string;
  readonly options: AzureStackOptions;
}

/** An advanced filter on the event subject. */
export interface SubjectFilter {
  readonly operatorType: 'StringBeginsWith' | 'StringNotBeginsWith';
  readonly key: 'subject';
  readonly values: readonly string[];
}

function armId(sub: string, rg: string, rest: string): string {
  return `/subscriptions/${sub}/resourceGroups/${rg}/providers/${rest}`;
}

/**
 * Subject filters: begins with a Uniform scale set's id, or with the
 * `virtualMachines/` of a Flexible scale set's resource group (its VMs are
 * plain VMs there); and never an LB VM inside one of those prefixes, or our
 * own Run Commands would trigger syncs. Event Grid compares case-insensitively.
 */
export function azureSubjectFilters(spec: Spec): readonly SubjectFilter[] {
  const workers = vmssSection(spec);
  const lb = runCommandSection(spec);
  if (workers === undefined || lb === undefined) {
    throw new StackConfigError(
      'Event Grid subject filters need workers.source azure-vmss and loadBalancers.transport azure-run-command',
    );
  }
  const sub = workers.subscriptionId;
  const prefixes = new Set<string>();
  for (const ss of workers.scaleSets) {
    prefixes.add(
      armId(sub, ss.resourceGroup, `Microsoft.Compute/virtualMachineScaleSets/${ss.name}`),
    );
    if (ss.orchestration === 'flexible') {
      prefixes.add(armId(sub, ss.resourceGroup, 'Microsoft.Compute/virtualMachines/'));
    }
  }
  const lbSub = lb.subscriptionId ?? sub;
  const lbIds = lb.vms
    .map((vm) =>
      vm.scaleSet !== undefined
        ? armId(
            lbSub,
            vm.resourceGroup,
            `Microsoft.Compute/virtualMachineScaleSets/${vm.scaleSet}/virtualMachines/${vm.name}`,
          )
        : armId(lbSub, vm.resourceGroup, `Microsoft.Compute/virtualMachines/${vm.name}`),
    )
    .filter((id) => [...prefixes].some((p) => id.toLowerCase().startsWith(p.toLowerCase())));
  const filters: SubjectFilter[] = [
    { operatorType: 'StringBeginsWith', key: 'subject', values: [...prefixes] },
  ];
  if (lbIds.length > 0) {
    filters.push({ operatorType: 'StringNotBeginsWith', key: 'subject', values: lbIds });
  }
  const count = filters.reduce((n, f) => n + f.values.length, 0);
  if (count > MAX_FILTER_VALUES) {
    throw new StackConfigError(
      `workers.azure.scaleSets: the Event Grid filter would need ${count} values (at most ${MAX_FILTER_VALUES}); group the scale sets into fewer resource groups`,
    );
  }
  return filters;
}

/** Deploy lbsync's Azure path for a validated spec. */
export function azureStack(args: AzureStackArgs): StackResult {
  const { pulumi, azure, spec, packageDir, options: o } = args;
  assertDeployable(spec, 'azure');
  assertPackage(packageDir, 'azure');
  const lb = runCommandSection(spec);
  if (lb === undefined) {
    throw new StackConfigError(
      'loadBalancers.transport: the azure stack reaches the LBs with azure-run-command',
    );
  }
  // The event wiring (Event Grid, scale set roles) only for azure-vmss.
  const workers = vmssSection(spec);
  if (workers === undefined && o.existingSystemTopic !== undefined) {
    throw new StackConfigError(
      `options.existingSystemTopic: only the azure-vmss source subscribes to events, not ${spec.workers.source}`,
    );
  }
  if (!/^[a-z0-9]+$/.test(o.location)) {
    throw new StackConfigError(
      'options.location (LBSYNC_AZURE_LOCATION) must be an Azure region name like westeurope',
    );
  }
  const sub = workers?.subscriptionId ?? lb.subscriptionId;
  if (sub === undefined) {
    // The spec refuses this already; a spec object built by hand may not.
    throw new StackConfigError(
      `loadBalancers.subscriptionId: required when workers.source is ${spec.workers.source}, not azure-vmss`,
    );
  }
  const lbSub = lb.subscriptionId ?? sub;
  const name = `lbsync-${spec.name}`;
  const resources: StackResource[] = [];
  const keep = <T extends StackResource>(r: T): T => {
    resources.push(r);
    return r;
  };

  // An explicit provider pins the deployment to the workers' subscription
  // (the LBs' without azure-vmss), whatever the deployer's login defaults to.
  const provider = keep(new azure.Provider(`${name}-provider`, { subscriptionId: sub }));
  const inSub = { provider };
  const group = keep(
    new azure.resources.ResourceGroup(
      `${name}-rg`,
      {
        resourceGroupName: name,
        location: o.location,
      },
      inSub,
    ),
  );
  const account = keep(
    new azure.storage.StorageAccount(
      `${name}-storage`,
      {
        // 3-24 lowercase letters and digits, globally unique: Pulumi adds a suffix.
        resourceGroupName: group.name,
        location: o.location,
        kind: 'StorageV2',
        sku: { name: 'Standard_LRS' },
        allowBlobPublicAccess: false,
        minimumTlsVersion: 'TLS1_2',
        enableHttpsTrafficOnly: true,
      },
      inSub,
    ),
  );
  const container = keep(
    new azure.storage.BlobContainer(
      `${name}-packages`,
      {
        resourceGroupName: group.name,
        accountName: account.name,
        publicAccess: 'None',
      },
      inSub,
    ),
  );
  // The blob name carries the content digest: a new build changes the URL,
  // which restarts the app on the new package.
  const blobName = `lbsync-azure-${directoryDigest(packageDir)}.zip`;
  const blob = keep(
    new azure.storage.Blob(
      `${name}-package`,
      {
        resourceGroupName: group.name,
        accountName: account.name,
        containerName: container.name,
        blobName,
        type: 'Block',
        source: new pulumi.asset.FileArchive(packageDir),
      },
      inSub,
    ),
  );
  const sas = azure.storage.listStorageAccountServiceSASOutput(
    {
      resourceGroupName: group.name,
      accountName: account.name,
      protocols: 'https',
      sharedAccessStartTime: '2024-01-01',
      sharedAccessExpiryTime: o.packageSasExpiry ?? '2035-01-01',
      resource: 'c',
      permissions: 'r',
      canonicalizedResource: pulumi.interpolate`/blob/${account.name}/${container.name}`,
    },
    inSub,
  );
  const packageUrl = pulumi.secret(
    pulumi.interpolate`https://${account.name}.blob.core.windows.net/${container.name}/${blobName}?${sas.serviceSasToken}`,
  );
  const keys = azure.storage.listStorageAccountKeysOutput(
    {
      resourceGroupName: group.name,
      accountName: account.name,
    },
    inSub,
  );
  const hostStorage = pulumi.secret(
    pulumi.interpolate`DefaultEndpointsProtocol=https;AccountName=${account.name};AccountKey=${keys.keys[0]?.value};EndpointSuffix=core.windows.net`,
  );

  const plan = keep(
    new azure.web.AppServicePlan(
      `${name}-plan`,
      {
        resourceGroupName: group.name,
        location: o.location,
        kind: 'Linux',
        reserved: true,
        sku:
          o.vnetSubnetId === undefined
            ? { name: 'Y1', tier: 'Dynamic' }
            : { name: 'EP1', tier: 'ElasticPremium' },
      },
      inSub,
    ),
  );
  const appSettings: Record<string, PulumiTypes.Input<string>> = {
    FUNCTIONS_EXTENSION_VERSION: '~4',
    FUNCTIONS_WORKER_RUNTIME: 'node',
    AzureWebJobsStorage: hostStorage,
    WEBSITE_RUN_FROM_PACKAGE: packageUrl,
    LBSYNC_SCHEDULE: o.schedule ?? '0 */5 * * * *',
    ...functionEnvironment(spec),
  };
  const app = keep(
    new azure.web.WebApp(
      `${name}-app`,
      {
        name,
        resourceGroupName: group.name,
        location: o.location,
        kind: 'functionapp,linux',
        serverFarmId: plan.id,
        httpsOnly: true,
        identity: { type: 'SystemAssigned' },
        ...(o.vnetSubnetId !== undefined ? { virtualNetworkSubnetId: o.vnetSubnetId } : {}),
        siteConfig: {
          ...(o.vnetSubnetId !== undefined ? { vnetRouteAllEnabled: true } : {}),
          linuxFxVersion: 'Node|22',
          ftpsState: 'Disabled',
          minTlsVersion: '1.2',
          appSettings: Object.entries(appSettings).map(([n, value]) => ({ name: n, value })),
        },
      },
      // The package URL names the blob: it must exist before the app starts.
      { ...inSub, dependsOn: [blob] },
    ),
  );
  const principalId = app.identity.apply((i) => {
    if (i?.principalId === undefined)
      throw new StackConfigError('the Function App has no identity');
    return i.principalId;
  });

  const k8s = azureKubernetes({
    azure,
    spec,
    name,
    subscriptionId: sub,
    principalId,
    opts: inSub,
    ...(o.kubernetes !== undefined ? { options: o.kubernetes } : {}),
  });
  resources.push(...k8s.resources);

  const scopes = [...new Set([`/subscriptions/${sub}`, `/subscriptions/${lbSub}`])];
  const role = (id: string, title: string, actions: readonly string[]) =>
    keep(
      new azure.authorization.RoleDefinition(
        `${name}-${id}`,
        {
          roleName: `lbsync ${spec.name} ${title}`,
          description: `lbsync ${spec.name}: ${title}`,
          roleType: 'CustomRole',
          scope: `/subscriptions/${sub}`,
          assignableScopes: scopes,
          permissions: [
            { actions: [...actions], notActions: [], dataActions: [], notDataActions: [] },
          ],
        },
        inSub,
      ),
    );
  const assign = (id: string, def: AzureNamespace.authorization.RoleDefinition, scope: string) =>
    keep(
      new azure.authorization.RoleAssignment(
        `${name}-${id}`,
        {
          principalId,
          principalType: 'ServicePrincipal',
          roleDefinitionId: def.id,
          scope,
        },
        inSub,
      ),
    );

  const scaleSets = workers?.scaleSets ?? [];
  const uniform = scaleSets.filter((s) => s.orchestration === 'uniform');
  const flexible = scaleSets.filter((s) => s.orchestration === 'flexible');
  if (uniform.length > 0) {
    const def = role('read-uniform', 'scale set reader', AZURE_UNIFORM_READ_ACTIONS);
    for (const ss of uniform) {
      assign(
        `read-${ss.resourceGroup}-${ss.name}`,
        def,
        armId(sub, ss.resourceGroup, `Microsoft.Compute/virtualMachineScaleSets/${ss.name}`),
      );
    }
  }
  if (flexible.length > 0) {
    // Flexible members are plain VMs listed (with their NICs) in the resource group.
    const def = role('read-flexible', 'flexible scale set reader', AZURE_FLEXIBLE_READ_ACTIONS);
    for (const rg of [...new Set(flexible.map((s) => s.resourceGroup))]) {
      assign(`read-rg-${rg}`, def, `/subscriptions/${sub}/resourceGroups/${rg}`);
    }
  }
  const push = role('push', 'LB Run Command', AZURE_PUSH_ACTIONS);
  for (const vm of lb.vms) {
    const scope =
      vm.scaleSet !== undefined
        ? armId(
            lbSub,
            vm.resourceGroup,
            `Microsoft.Compute/virtualMachineScaleSets/${vm.scaleSet}/virtualMachines/${vm.name}`,
          )
        : armId(lbSub, vm.resourceGroup, `Microsoft.Compute/virtualMachines/${vm.name}`);
    assign(`push-${vm.resourceGroup}-${vm.name}`, push, scope);
  }
  if (lbAddressesNeeded(spec)) {
    // Service status publishes the LB VMs' private IPs, read through their NICs.
    const plain = lb.vms.filter((vm) => vm.scaleSet === undefined);
    const pooled = lb.vms.filter((vm) => vm.scaleSet !== undefined);
    if (plain.length > 0) {
      const def = role('lb-nic-read', 'LB NIC reader', AZURE_LB_NIC_READ_ACTIONS);
      for (const rg of [...new Set(plain.map((vm) => vm.resourceGroup))]) {
        assign(`lb-nic-read-${rg}`, def, `/subscriptions/${lbSub}/resourceGroups/${rg}`);
      }
    }
    if (pooled.length > 0) {
      const def = role(
        'lb-vmss-nic-read',
        'LB scale set NIC reader',
        AZURE_LB_SCALE_SET_NIC_READ_ACTIONS,
      );
      for (const vm of pooled) {
        assign(
          `lb-vmss-nic-read-${vm.resourceGroup}-${vm.scaleSet}-${vm.name}`,
          def,
          armId(
            lbSub,
            vm.resourceGroup,
            `Microsoft.Compute/virtualMachineScaleSets/${vm.scaleSet}/virtualMachines/${vm.name}`,
          ),
        );
      }
    }
  }
  if (lb.staging !== undefined) {
    const accountId = o.stagingStorageAccountId;
    const url = new URL(lb.staging.containerUrl);
    const accountName = url.hostname.split('.')[0] ?? '';
    const containerName = url.pathname.split('/').filter(Boolean)[0] ?? '';
    if (
      accountId === undefined ||
      !/^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Storage\/storageAccounts\/[a-z0-9]{3,24}$/.test(
        accountId,
      ) ||
      !accountId.endsWith(`/${accountName}`)
    ) {
      throw new StackConfigError(
        `loadBalancers.azure.staging: set options.stagingStorageAccountId to the resource id of storage account ${accountName}`,
      );
    }
    const accountSub = accountId.split('/')[2] ?? sub;
    const key = keep(
      new azure.authorization.RoleDefinition(
        `${name}-staging-key`,
        {
          roleName: `lbsync ${spec.name} staging key`,
          description: `lbsync ${spec.name}: sign read-only SAS URLs for staged payloads`,
          roleType: 'CustomRole',
          scope: accountId,
          assignableScopes: [accountId],
          permissions: [
            {
              actions: [...AZURE_STAGING_KEY_ACTIONS],
              notActions: [],
              dataActions: [],
              notDataActions: [],
            },
          ],
        },
        inSub,
      ),
    );
    assign('staging-key', key, accountId);
    keep(
      new azure.authorization.RoleAssignment(
        `${name}-staging-blobs`,
        {
          principalId,
          principalType: 'ServicePrincipal',
          roleDefinitionId: `/subscriptions/${accountSub}/providers/Microsoft.Authorization/roleDefinitions/${STORAGE_BLOB_DATA_CONTRIBUTOR}`,
          scope: `${accountId}/blobServices/default/containers/${containerName}`,
        },
        inSub,
      ),
    );
  }
  const ops = role('operations', 'operation status', AZURE_OPERATION_ACTIONS);
  for (const s of new Set([sub, lbSub])) assign(`operations-${s}`, ops, `/subscriptions/${s}`);

  // Scale set changes reach the event function; no other source has events to subscribe to.
  let eventSubscription: PulumiTypes.Output<string> | undefined;
  if (workers !== undefined) {
    const topicGroup = o.existingSystemTopic?.resourceGroup ?? group.name;
    const topicName =
      o.existingSystemTopic?.name ??
      keep(
        new azure.eventgrid.SystemTopic(
          `${name}-topic`,
          {
            resourceGroupName: group.name,
            location: 'global',
            source: `/subscriptions/${sub}`,
            topicType: 'Microsoft.Resources.Subscriptions',
          },
          inSub,
        ),
      ).name;
    const subscription = keep(
      new azure.eventgrid.SystemTopicEventSubscription(
        `${name}-events`,
        {
          resourceGroupName: topicGroup,
          systemTopicName: topicName,
          eventSubscriptionName: `${name}-scale-sets`,
          eventDeliverySchema: 'EventGridSchema',
          destination: {
            endpointType: 'AzureFunction',
            resourceId: pulumi.interpolate`${app.id}/functions/${AZURE_FUNCTIONS.eventGrid}`,
            maxEventsPerBatch: 1,
          },
          filter: {
            includedEventTypes: [...AZURE_EVENT_TYPES],
            advancedFilters: azureSubjectFilters(spec).map((f) =>
              f.operatorType === 'StringBeginsWith'
                ? { operatorType: 'StringBeginsWith' as const, key: f.key, values: [...f.values] }
                : {
                    operatorType: 'StringNotBeginsWith' as const,
                    key: f.key,
                    values: [...f.values],
                  },
            ),
          },
          // Events older than an hour are stale: the timer has resynced by then.
          retryPolicy: { maxDeliveryAttempts: 10, eventTimeToLiveInMinutes: 60 },
        },
        { ...inSub, dependsOn: [app] },
      ),
    );
    eventSubscription = subscription.name;
  }

  return {
    outputs: {
      functionApp: app.name,
      resourceGroup: group.name,
      resyncUrl: pulumi.interpolate`https://${app.defaultHostName}/api/${AZURE_FUNCTIONS.http}`,
      identityPrincipalId: principalId,
      ...(eventSubscription !== undefined ? { eventSubscription } : {}),
      ...k8s.outputs,
    },
    resources,
  };
}
