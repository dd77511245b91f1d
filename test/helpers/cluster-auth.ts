import { createClusterClient } from '../../adapters/kubernetes/client.js';

/**
 * List Nodes of the cluster at `api` with `token` as the bearer token, through
 * lbsync's own client, and return the HTTP status the API answered (200 when
 * it listed). How the token tests ask "does this cluster accept the token".
 */
export async function listNodesStatus(
  api: { readonly url: string; readonly caPem: string },
  token: string,
): Promise<number> {
  const client = createClusterClient(
    { endpoint: api.url, caPem: api.caPem, tokenProvider: async () => ({ token }) },
    { retry: { attempts: 1 } },
  );
  try {
    await client.listNodes();
    return 200;
  } catch (err) {
    // The client's SourceError keeps the API's answer as its cause.
    return (err as { cause?: { code?: number } }).cause?.code ?? -1;
  } finally {
    client.close();
  }
}
