import { RESOURCES } from './resources.js';

/*
 * The discovery documents clients read before they touch a resource: kubectl
 * maps `nodes,svc` to resources through /api and /api/v1 (legacy discovery:
 * it asks for the aggregated v2 format first and falls back when the answer
 * is plain application/json), and reads /version.
 */

/** /version of a v1.32 server. */
export function versionInfo(): Record<string, string> {
  return {
    major: '1',
    minor: '32',
    gitVersion: 'v1.32.4',
    gitCommit: '59526cd4867447956156ae3a602fcbac10a2c335',
    gitTreeState: 'clean',
    buildDate: '2025-04-22T16:02:27Z',
    goVersion: 'go1.23.6',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

/** /api: the legacy group's versions. */
export function apiVersions(serverAddress: string): Record<string, unknown> {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

/** /apis: no named groups are served. */
export function apiGroupList(): Record<string, unknown> {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [] };
}

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

/** /api/v1: what the fake serves, subresources included. */
export function coreV1Resources(): Record<string, unknown> {
  const resources: Record<string, unknown>[] = [];
  for (const r of RESOURCES.values()) {
    resources.push({
      name: r.name,
      singularName: r.singularName,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs:
        r.name === 'events'
          ? VERBS
          : VERBS.filter((v) => v !== 'deletecollection' || r.name !== 'services'),
      shortNames: r.shortNames,
      storageVersionHash: Buffer.from(r.kind).toString('base64').slice(0, 11),
    });
    for (const sub of r.subresources) {
      resources.push({
        name: `${r.name}/${sub}`,
        singularName: '',
        namespaced: r.namespaced,
        kind: r.kind,
        verbs: ['get', 'patch', 'update'],
      });
    }
  }
  return { kind: 'APIResourceList', groupVersion: 'v1', resources };
}

/** The discovery document at `path` (any authenticated user may read them); null: a known 404; undefined: not discovery. */
export function discoveryDocument(path: string, serverAddress: string): unknown {
  const p = path.replace(/\/$/, '');
  if (p === '/version') return versionInfo();
  if (p === '/api') return apiVersions(serverAddress);
  if (p === '/apis') return apiGroupList();
  if (p === '/api/v1') return coreV1Resources();
  if (p === '/healthz' || p === '/livez' || p === '/readyz') return 'ok';
  if (p.startsWith('/openapi/') || p.startsWith('/apis/')) return null;
  return undefined;
}
