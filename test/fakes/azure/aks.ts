/*
 * The AKS slice of the ARM fake (FakeArm routes these here), as
 * @azure/arm-containerservice calls it:
 *
 *   GET  …/providers/Microsoft.ContainerService/managedClusters/<name>
 *   POST …/providers/Microsoft.ContainerService/managedClusters/<name>/listClusterUserCredential
 *
 * The managed cluster carries fqdn / privateFQDN, aadProfile (Entra
 * integration) and the private-cluster switch; the credentials are a
 * kubeconfig (base64 in `value`, as ARM sends byte arrays) whose cluster
 * entry names the API server and its certificate-authority-data, and whose
 * user is the exec plugin kubelogin that Entra-integrated clusters get.
 */

/** A managed cluster the fake knows. */
export interface FakeManagedCluster {
  readonly subscriptionId: string;
  readonly resourceGroup: string;
  readonly name: string;
  /** Public API server FQDN (an IP literal for the fake, so it needs no DNS). */
  fqdn?: string;
  privateFqdn?: string;
  privateCluster: boolean;
  /** The API server URL the user kubeconfig names (https://<fqdn>:<port>). */
  server: string;
  caPem: string;
  /** AKS-managed Entra ID integration. */
  aad: boolean;
  provisioningState: string;
}

/** The JSON FakeArm sends, or null when the path is not an AKS call. */
export type ArmAnswer = { readonly status: number; readonly body: unknown } | null;

const key = (rg: string, name: string): string => `${rg.toLowerCase()}/${name.toLowerCase()}`;

/** Managed clusters in the ARM fake. */
export class FakeManagedClusters {
  private readonly clusters = new Map<string, FakeManagedCluster>();

  /** Add a cluster (Entra-integrated, public, Succeeded unless told otherwise). */
  public add(
    c: Pick<FakeManagedCluster, 'subscriptionId' | 'resourceGroup' | 'name' | 'server' | 'caPem'> &
      Partial<FakeManagedCluster>,
  ): FakeManagedCluster {
    const cluster: FakeManagedCluster = {
      privateCluster: false,
      aad: true,
      provisioningState: 'Succeeded',
      fqdn: new URL(c.server).hostname,
      ...c,
    };
    this.clusters.set(key(c.resourceGroup, c.name), cluster);
    return cluster;
  }

  /** Serve `method path` (lowercased path) if it is a managed cluster call. */
  public handle(method: string, path: string): ArmAnswer {
    const m =
      /^\/subscriptions\/([^/]+)\/resourcegroups\/([^/]+)\/providers\/microsoft\.containerservice\/managedclusters\/([^/]+)(\/listclusterusercredential)?$/.exec(
        path,
      );
    if (m === null) return null;
    const c = this.clusters.get(key(m[2] ?? '', m[3] ?? ''));
    if (c === undefined || c.subscriptionId.toLowerCase() !== m[1]) {
      return {
        status: 404,
        body: {
          error: {
            code: 'ResourceNotFound',
            message: `The Resource 'Microsoft.ContainerService/managedClusters/${m[3]}' under resource group '${m[2]}' was not found.`,
          },
        },
      };
    }
    if (m[4] !== undefined) {
      if (method !== 'POST') return { status: 405, body: { error: { code: 'MethodNotAllowed' } } };
      return {
        status: 200,
        body: { kubeconfigs: [{ name: 'clusterUser', value: this.kubeconfig(c) }] },
      };
    }
    if (method !== 'GET') return { status: 405, body: { error: { code: 'MethodNotAllowed' } } };
    return { status: 200, body: this.json(c) };
  }

  private json(c: FakeManagedCluster): unknown {
    return {
      id: `/subscriptions/${c.subscriptionId}/resourcegroups/${c.resourceGroup}/providers/Microsoft.ContainerService/managedClusters/${c.name}`,
      name: c.name,
      type: 'Microsoft.ContainerService/ManagedClusters',
      location: 'westeurope',
      properties: {
        provisioningState: c.provisioningState,
        powerState: { code: 'Running' },
        kubernetesVersion: '1.33.2',
        dnsPrefix: c.name,
        ...(c.fqdn !== undefined && !c.privateCluster ? { fqdn: c.fqdn } : {}),
        ...(c.privateFqdn !== undefined ? { privateFQDN: c.privateFqdn } : {}),
        ...(c.aad
          ? { aadProfile: { managed: true, enableAzureRBAC: false, tenantID: 'fake-tenant' } }
          : {}),
        apiServerAccessProfile: { enablePrivateCluster: c.privateCluster },
        enableRBAC: true,
      },
    };
  }

  private kubeconfig(c: FakeManagedCluster): string {
    const yaml = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: ${c.name}`,
      '  cluster:',
      `    certificate-authority-data: ${Buffer.from(c.caPem).toString('base64')}`,
      `    server: ${c.server}`,
      'contexts:',
      `- name: ${c.name}`,
      '  context:',
      `    cluster: ${c.name}`,
      `    user: clusterUser_${c.resourceGroup}_${c.name}`,
      `current-context: ${c.name}`,
      'users:',
      `- name: clusterUser_${c.resourceGroup}_${c.name}`,
      '  user:',
      '    exec:',
      '      apiVersion: client.authentication.k8s.io/v1beta1',
      '      command: kubelogin',
      '      args: [get-token, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630, --login, devicecode]',
      '',
    ].join('\n');
    return Buffer.from(yaml).toString('base64');
  }
}
