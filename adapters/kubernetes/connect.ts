import { Agent } from 'node:https';
import type { ConfigurationOptions } from '@kubernetes/client-node';
import {
  CoreV1Api,
  createConfiguration,
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  type RequestContext,
  type ResponseContext,
  ServerConfiguration,
  wrapHttpLibrary,
} from '@kubernetes/client-node';
import { InputError } from '../../core/errors.js';

/*
 * How lbsync reaches a cluster. Functions get an endpoint, its CA and a
 * token provider from their cloud adapter (EKS, AKS, GKE tokens: this module
 * imports no cloud SDK); the CLI and local runs read a kubeconfig as kubectl
 * does, exec credential plugins included. Every request goes through one
 * transport that counts it, applies the caller's AbortSignal plus a
 * per-request timeout, and (for token providers) sets a cached bearer token.
 */

/** A bearer token and when it stops working (epoch ms), if known. */
export interface TokenGrant {
  readonly token: string;
  readonly expiresAt?: number;
}

/** Mints a cluster token (EKS presigned STS, Entra for AKS, Google for GKE, ...). */
export type TokenProvider = (signal?: AbortSignal) => Promise<TokenGrant>;

/** Where the cluster is and how lbsync proves who it is. */
export type ClusterConnection =
  | {
      /** `https://host[:port]` of the API server. */
      readonly endpoint: string;
      /** The cluster CA (PEM) that signed the API server's certificate. */
      readonly caPem: string;
      readonly tokenProvider: TokenProvider;
      /** SNI / certificate name when it differs from the endpoint's host. */
      readonly tlsServerName?: string;
    }
  | { readonly kubeconfigPath: string; readonly context?: string }
  /** A loaded KubeConfig (the watcher: in-cluster service account, or the default kubeconfig). */
  | { readonly kubeConfig: KubeConfig };

/** Options for `CachedToken`. */
export interface CachedTokenOptions {
  /** Refresh this long before expiry (default 60 s, at most half the token's lifetime). */
  readonly refreshBeforeMs?: number;
  readonly now?: () => number;
}

/** A token provider's last token, refreshed before it expires and on demand after a 401. */
export class CachedToken {
  private current: { token: string; refreshAt: number } | undefined;
  private inflight: Promise<string> | undefined;
  private asked = 0;

  public constructor(
    private readonly provider: TokenProvider,
    private readonly options: CachedTokenOptions = {},
  ) {}

  /** How many times the provider was asked. */
  public get fetches(): number {
    return this.asked;
  }

  /** A token that is not about to expire; asks the provider at most once at a time. */
  public async get(signal?: AbortSignal): Promise<string> {
    const now = (this.options.now ?? Date.now)();
    if (this.current !== undefined && now < this.current.refreshAt) return this.current.token;
    this.inflight ??= this.fetch(now, signal).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async fetch(now: number, signal?: AbortSignal): Promise<string> {
    this.asked++;
    const grant = await this.provider(signal);
    if (typeof grant.token !== 'string' || grant.token === '')
      throw new InputError('the Kubernetes token provider returned an empty token');
    const margin =
      grant.expiresAt === undefined
        ? 0
        : Math.min(this.options.refreshBeforeMs ?? 60_000, Math.max(0, grant.expiresAt - now) / 2);
    this.current = {
      token: grant.token,
      refreshAt:
        grant.expiresAt === undefined ? Number.POSITIVE_INFINITY : grant.expiresAt - margin,
    };
    return grant.token;
  }

  /** Forget the token (the API refused it); the next get() asks the provider. */
  public invalidate(): void {
    this.current = undefined;
  }
}

/** A connected CoreV1 client and its transport. */
export interface Connection {
  readonly core: CoreV1Api;
  /** The API server URL. */
  readonly server: string;
  /** Per-call options: the caller's signal and, for PATCH, the patch content type. */
  options(signal: AbortSignal | undefined, contentType?: string): ConfigurationOptions;
  /** HTTP requests sent so far. */
  readonly requests: number;
  /** Forget the cached token after a 401; false when a fresh one cannot be asked for. */
  refreshCredentials(): boolean;
  /** Close pooled connections. */
  close(): void;
}

/** Options for `connect`. */
export interface ConnectOptions {
  /** Per-request timeout (default 30 s). */
  readonly requestTimeoutMs?: number;
  readonly tokenRefreshBeforeMs?: number;
}

/** Build a client for `c`. Throws InputError for an unusable kubeconfig or endpoint. */
export function connect(c: ClusterConnection, o: ConnectOptions = {}): Connection {
  const timeoutMs = o.requestTimeoutMs ?? 30_000;
  const fetchLib = new IsomorphicFetchHttpLibrary();
  let sent = 0;
  let server: string;
  let authMethods: { default?: KubeConfig } = {};
  let prepare: (req: RequestContext, signal: AbortSignal) => Promise<void> = async () => {};
  let token: CachedToken | undefined;
  let agent: Agent | undefined;

  if ('kubeConfig' in c) {
    const cluster = c.kubeConfig.getCurrentCluster();
    if (cluster === null) throw new InputError('the kubeconfig names no current cluster');
    server = cluster.server;
    authMethods = { default: c.kubeConfig };
  } else if ('kubeconfigPath' in c) {
    const kc = new KubeConfig();
    try {
      kc.loadFromFile(c.kubeconfigPath);
    } catch (err) {
      throw new InputError(`cannot read kubeconfig ${c.kubeconfigPath}: ${String(err)}`, {
        cause: err,
      });
    }
    if (c.context !== undefined) {
      if (kc.getContextObject(c.context) === null)
        throw new InputError(`kubeconfig ${c.kubeconfigPath} has no context "${c.context}"`);
      kc.setCurrentContext(c.context);
    }
    const cluster = kc.getCurrentCluster();
    if (cluster === null)
      throw new InputError(`kubeconfig ${c.kubeconfigPath}: the current context names no cluster`);
    server = cluster.server;
    authMethods = { default: kc };
  } else {
    let url: URL;
    try {
      url = new URL(c.endpoint);
    } catch (err) {
      throw new InputError(`Kubernetes endpoint "${c.endpoint}" is not a URL`, { cause: err });
    }
    if (url.protocol !== 'https:')
      throw new InputError(`Kubernetes endpoint "${c.endpoint}" must be https`);
    if (!c.caPem.includes('-----BEGIN CERTIFICATE-----'))
      throw new InputError('the Kubernetes cluster CA is not a PEM certificate');
    server = c.endpoint.replace(/\/+$/, '');
    agent = new Agent({
      ca: c.caPem,
      keepAlive: true,
      maxSockets: 8,
      ...(c.tlsServerName === undefined ? {} : { servername: c.tlsServerName }),
    });
    const cached = new CachedToken(c.tokenProvider, {
      ...(o.tokenRefreshBeforeMs === undefined ? {} : { refreshBeforeMs: o.tokenRefreshBeforeMs }),
    });
    token = cached;
    const tlsAgent = agent;
    prepare = async (req, signal) => {
      req.setAgent(tlsAgent);
      req.setHeaderParam('Authorization', `Bearer ${await cached.get(signal)}`);
    };
  }

  const core = new CoreV1Api(
    createConfiguration({ baseServer: new ServerConfiguration(server, {}), authMethods }),
  );

  return {
    core,
    server,
    get requests() {
      return sent;
    },
    options(signal, contentType) {
      const httpApi = wrapHttpLibrary({
        send: async (req: RequestContext): Promise<ResponseContext> => {
          const timeout = AbortSignal.timeout(timeoutMs);
          const combined = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
          await prepare(req, combined);
          if (contentType !== undefined) req.setHeaderParam('Content-Type', contentType);
          req.setSignal(combined);
          sent++;
          return fetchLib.send(req).toPromise();
        },
      });
      return { httpApi };
    },
    refreshCredentials() {
      if (token === undefined) return false;
      token.invalidate();
      return true;
    },
    close() {
      agent?.destroy();
    },
  };
}
