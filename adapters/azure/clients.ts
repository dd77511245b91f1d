import { ComputeManagementClient } from '@azure/arm-compute';
import type { ContainerServiceClient } from '@azure/arm-containerservice';
import { NetworkManagementClient } from '@azure/arm-network';
import type { TokenCredential } from '@azure/core-auth';
import { createDefaultHttpClient, type HttpClient } from '@azure/core-rest-pipeline';
import { DefaultAzureCredential } from '@azure/identity';
import { BlobServiceClient, newPipeline } from '@azure/storage-blob';

/*
 * The Azure SDK clients the Azure path uses, built once per cold start.
 * In Azure the credential is DefaultAzureCredential (the Function App's
 * managed identity); tests and sovereign clouds inject a credential, an ARM
 * endpoint and, for a private CA, the CA bundle, which is passed to each
 * client's own pipeline (never to the whole process).
 */

/** How to reach ARM (and Blob storage, for staged payloads). */
export interface AzureClientOptions {
  /** Defaults to `new DefaultAzureCredential()` (managed identity in Azure). */
  readonly credential?: TokenCredential;
  /** ARM endpoint; defaults to https://management.azure.com. */
  readonly endpoint?: string;
  /** Extra trusted CA certificates (PEM) for ARM and Blob, e.g. a test fake's. */
  readonly ca?: string;
  /** SDK-level retries for throttling (429/503 with Retry-After) and 5xx; default 3. */
  readonly maxRetries?: number;
}

/** SDK clients per subscription, created lazily and cached. */
export interface AzureClients {
  readonly credential: TokenCredential;
  compute(subscriptionId: string): ComputeManagementClient;
  network(subscriptionId: string): NetworkManagementClient;
  /** AKS managed clusters (loaded on first use: only specs naming an AKS cluster need it). */
  containerService(subscriptionId: string): Promise<ContainerServiceClient>;
  /** A Blob service client for the account of `containerUrl` (staged payloads). */
  blobService(accountUrl: string): BlobServiceClient;
}

/** A TokenCredential that always returns the same bearer token (local runs, tests). */
export function staticTokenCredential(token: string): TokenCredential {
  return {
    getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }),
  };
}

/** Build the Azure clients; nothing is contacted until the first call. */
export function createAzureClients(options: AzureClientOptions = {}): AzureClients {
  const credential = options.credential ?? new DefaultAzureCredential();
  const tls = options.ca !== undefined ? { tlsOptions: { ca: options.ca } } : {};
  const retryOptions = { maxRetries: options.maxRetries ?? 3 };
  const endpoint = options.endpoint !== undefined ? { endpoint: options.endpoint } : {};
  const computes = new Map<string, ComputeManagementClient>();
  const networks = new Map<string, NetworkManagementClient>();
  const blobs = new Map<string, BlobServiceClient>();
  const containers = new Map<string, Promise<ContainerServiceClient>>();
  return {
    credential,
    compute(subscriptionId: string): ComputeManagementClient {
      let c = computes.get(subscriptionId);
      if (c === undefined) {
        c = new ComputeManagementClient(credential, subscriptionId, {
          ...endpoint,
          ...tls,
          retryOptions,
        });
        computes.set(subscriptionId, c);
      }
      return c;
    },
    network(subscriptionId: string): NetworkManagementClient {
      let c = networks.get(subscriptionId);
      if (c === undefined) {
        c = new NetworkManagementClient(credential, subscriptionId, {
          ...endpoint,
          ...tls,
          retryOptions,
        });
        networks.set(subscriptionId, c);
      }
      return c;
    },
    containerService(subscriptionId: string): Promise<ContainerServiceClient> {
      let c = containers.get(subscriptionId);
      if (c === undefined) {
        c = import('@azure/arm-containerservice').then(
          (m) =>
            new m.ContainerServiceClient(credential, subscriptionId, {
              ...endpoint,
              ...tls,
              retryOptions,
            }),
        );
        containers.set(subscriptionId, c);
      }
      return c;
    },
    blobService(accountUrl: string): BlobServiceClient {
      let c = blobs.get(accountUrl);
      if (c === undefined) {
        const pipeline = newPipeline(credential, {
          retryOptions: { maxTries: (options.maxRetries ?? 3) + 1 },
        });
        if (options.ca !== undefined) {
          // The storage pipeline takes only a v1 HttpClient; it keeps the
          // converted core client here, so setting it is how a CA gets in.
          (pipeline as unknown as { _coreHttpClient: HttpClient })._coreHttpClient =
            trustingHttpClient(options.ca);
        }
        c = new BlobServiceClient(accountUrl, pipeline);
        blobs.set(accountUrl, c);
      }
      return c;
    },
  };
}

/**
 * The storage SDK has no `tlsOptions`, so its requests get the CA through a
 * wrapping HttpClient that sets the same per-request TLS settings.
 */
function trustingHttpClient(ca: string): HttpClient {
  const inner = createDefaultHttpClient();
  // One settings object, so the SDK reuses one https.Agent for it.
  const tlsSettings = { ca };
  return {
    sendRequest: (request) => {
      request.tlsSettings = tlsSettings;
      return inner.sendRequest(request);
    },
  };
}

/**
 * The primary entry of an ARM list (a VM's NICs, a NIC's ipConfigurations),
 * or the first when none says it is primary, as Azure itself picks it.
 */
export function primaryOf<T extends { readonly primary?: boolean }>(
  xs: readonly T[] | undefined,
): T | undefined {
  return xs?.find((x) => x.primary === true) ?? xs?.[0];
}
