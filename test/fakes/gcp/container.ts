/*
 * The GKE slice of the Google API fake (FakeCompute serves it on the same
 * port, as a second googleapis host would be): `clusters.get` of the
 * Container API v1,
 *
 *   GET /v1/projects/<project>/locations/<location>/clusters/<name>
 *
 * with `endpoint` (an address; the fake's carries its port, which a real
 * one, always 443, does not), `privateClusterConfig.privateEndpoint`,
 * `masterAuth.clusterCaCertificate` (base64 PEM) and `status`.
 */

/** A GKE cluster the fake knows. */
export interface FakeGkeCluster {
  readonly project: string;
  readonly location: string;
  readonly name: string;
  /** `host:port` of the API server (the Kubernetes fake's). */
  endpoint?: string;
  privateEndpoint?: string;
  caPem: string;
  status: 'PROVISIONING' | 'RUNNING' | 'RECONCILING' | 'STOPPING' | 'ERROR';
}

/** GKE clusters in the fake. */
export class FakeGkeClusters {
  private readonly clusters = new Map<string, FakeGkeCluster>();

  /** Add a RUNNING cluster unless told otherwise. */
  public add(
    c: Pick<FakeGkeCluster, 'project' | 'location' | 'name' | 'caPem'> & Partial<FakeGkeCluster>,
  ): FakeGkeCluster {
    const cluster: FakeGkeCluster = { status: 'RUNNING', ...c };
    this.clusters.set(`${c.project}/${c.location}/${c.name}`, cluster);
    return cluster;
  }

  /** The answer to `GET path`, or null when the path is not a clusters.get. */
  public handle(
    method: string,
    path: string,
  ): { readonly status: number; readonly body: unknown } | null {
    const m = /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/clusters\/([^/]+)$/.exec(path);
    if (m === null || method !== 'GET') return null;
    const c = this.clusters.get(`${m[1]}/${m[2]}/${m[3]}`);
    if (c === undefined) {
      const message = `Not found: projects/${m[1]}/locations/${m[2]}/clusters/${m[3]}.`;
      return { status: 404, body: { error: { code: 404, message, status: 'NOT_FOUND' } } };
    }
    return {
      status: 200,
      body: {
        name: c.name,
        location: c.location,
        selfLink: `https://container.googleapis.com/v1/projects/${c.project}/locations/${c.location}/clusters/${c.name}`,
        status: c.status,
        currentMasterVersion: '1.33.2-gke.1000',
        ...(c.status !== 'PROVISIONING' && c.endpoint !== undefined
          ? { endpoint: c.endpoint }
          : {}),
        ...(c.privateEndpoint !== undefined
          ? { privateClusterConfig: { privateEndpoint: c.privateEndpoint } }
          : {}),
        ...(c.status !== 'PROVISIONING'
          ? { masterAuth: { clusterCaCertificate: Buffer.from(c.caPem).toString('base64') } }
          : {}),
      },
    };
  }
}
