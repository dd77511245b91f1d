import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import {
  type Authenticator,
  type Identity,
  type PolicyRule,
  Rbac,
  type Subject,
  TokenTable,
} from './auth.js';
import { discoveryDocument } from './discovery.js';
import { type Armed, type Fault, type Outage, type RequestMatch, take } from './faults.js';
import { ResourceApi } from './handlers.js';
import { ClusterObjects } from './helpers.js';
import { readJsonBody, type SeenRequest, seenRequest, sendJson } from './http.js';
import { parseRoute, serve } from './router.js';
import * as S from './status.js';
import { Store } from './store.js';
import { makePki } from './tls.js';
import { Watches } from './watch.js';

/*
 * A protocol-level fake of kube-apiserver for the slice lbsync uses: HTTPS
 * with a CA made at start, bearer-token authentication through a pluggable
 * authenticator, RBAC-style authorization, Nodes/Services/Events/Namespaces
 * with the real list, watch, patch, conflict and finalizer semantics, and
 * opt-in faults. The real @kubernetes/client-node and kubectl talk to it.
 * Cluster state is seeded and changed through `objects` (ClusterObjects),
 * which goes through the same code as API writes, so watches see it.
 */

/** Options for `FakeKubernetes.start`. */
export interface FakeKubernetesOptions {
  readonly port: number;
  /** Loopback address to listen on (default 127.0.0.1); it is in the certificate. */
  readonly host?: string;
  /** Changes kept for watches and continue tokens before compaction (default 100,000). */
  readonly historyLimit?: number;
  /** Longest a watch stays open (default 60 s; timeoutSeconds may ask for less). */
  readonly maxWatchSeconds?: number;
}

/** The fake API server. */
export class FakeKubernetes {
  /** The default authenticator's token table. */
  public readonly tokens = new TokenTable();
  public readonly rbac = new Rbac();
  /** Seed and mutate cluster state (nodes, services, events), emitting watch events. */
  public readonly objects: ClusterObjects;
  public readonly requests: SeenRequest[] = [];
  private authenticator: Authenticator = this.tokens.authenticate;
  private readonly store: Store;
  private readonly api: ResourceApi;
  private readonly watches: Watches;
  private readonly faults: Armed<Fault>[] = [];
  private readonly hooks: Armed<() => void | Promise<void>>[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly hung = new Set<ServerResponse>();
  private outage: Outage | null = null;
  private seq = 0;

  private constructor(
    private readonly server: Server,
    /** https://host:port */
    public readonly url: string,
    /** The CA that signed the server certificate (PEM), for clients to trust. */
    public readonly caPem: string,
    private readonly host: string,
    private readonly port: number,
    private readonly maxWatchSeconds: number,
    historyLimit: number,
  ) {
    this.store = new Store(historyLimit);
    this.api = new ResourceApi(this.store);
    this.watches = new Watches(this.store);
    this.objects = new ClusterObjects(this.api, this.store, this.watches);
    server.on('connection', (s: Socket) => {
      if (this.outage === 'reset') {
        s.destroy();
        return;
      }
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent)
          sendJson(res, 500, S.status(500, 'InternalError', `fake: ${String(err)}`));
        else res.destroy();
      });
    });
  }

  /** Make a CA and certificate, listen on host:`port`, create `default` and `kube-system`. */
  public static async start(options: FakeKubernetesOptions): Promise<FakeKubernetes> {
    const host = options.host ?? '127.0.0.1';
    const pki = makePki([host, 'localhost', 'kubernetes.default.svc']);
    const server = createServer({ key: pki.keyPem, cert: pki.certPem });
    const fake = new FakeKubernetes(
      server,
      `https://${host}:${options.port}`,
      pki.caPem,
      host,
      options.port,
      options.maxWatchSeconds ?? 60,
      options.historyLimit ?? 100_000,
    );
    await fake.listen();
    fake.objects.addNamespace('default');
    fake.objects.addNamespace('kube-system');
    return fake;
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, this.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /**
   * A kubeconfig (YAML text) with one context, `fake`, that reaches this
   * server trusting its CA and presents `token` as user `user`.
   */
  public kubeconfig(token: string, user = 'user'): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: fake\n  cluster:\n    server: ${this.url}\n    certificate-authority-data: ${Buffer.from(this.caPem).toString('base64')}`,
      'users:',
      `- name: ${user}\n  user:\n    token: ${token}`,
      'contexts:',
      `- name: fake\n  context:\n    cluster: fake\n    user: ${user}`,
      'current-context: fake',
      '',
    ].join('\n');
  }

  /** Accept `token` as `identity` (until `expiresAt`, epoch ms) with the default authenticator. */
  public addToken(token: string, identity: Identity, expiresAt?: number): void {
    this.tokens.add(token, identity, expiresAt);
  }

  /** Replace the authenticator (cloud fakes plug in their token validation here). */
  public setAuthenticator(authenticate: Authenticator): void {
    this.authenticator = authenticate;
  }

  /** Bind RBAC rules to a user or group. */
  public grant(subject: Subject, rules: readonly PolicyRule[]): void {
    this.rbac.grant(subject, rules);
  }

  /** Answer the next `times` (default 1) matching requests with the fault. */
  public fail(fault: Fault): void {
    this.faults.push({ match: fault, left: fault.times ?? 1, value: fault });
  }

  /** Run `action` before serving the next `times` matching requests (e.g. a concurrent writer). */
  public beforeRequest(
    match: RequestMatch & { readonly times?: number },
    action: () => void | Promise<void>,
  ): void {
    this.hooks.push({ match, left: match.times ?? 1, value: action });
  }

  /** Disarm every fault and hook not used up yet. */
  public clearFaults(): void {
    this.faults.length = 0;
    this.hooks.length = 0;
  }

  /** Become unreachable in the given way until `reachable()`. */
  public async unreachable(how: Outage): Promise<void> {
    this.outage = how;
    if (how === 'refuse') {
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.watches.closeAll();
        for (const s of this.sockets) s.destroy();
      });
    }
  }

  /** Serve again after `unreachable()`. */
  public async reachable(): Promise<void> {
    const was = this.outage;
    this.outage = null;
    for (const res of this.hung) res.destroy();
    this.hung.clear();
    if (was === 'refuse') await this.listen();
  }

  /** Requests seen (optionally only those matching), for counting API calls. */
  public countRequests(match?: Partial<RequestMatch> & { readonly status?: number }): number {
    return this.requests.filter(
      (r) =>
        (match?.method === undefined || r.method === match.method) &&
        (match?.path === undefined || match.path.test(r.path)) &&
        (match?.status === undefined || r.status === match.status),
    ).length;
  }

  /** Forget all history: every continue token and older watch resourceVersion becomes 410. */
  public compact(): void {
    this.store.compact();
  }

  /** Send a BOOKMARK to every watch that allows them. */
  public bookmark(): void {
    this.watches.bookmark();
  }

  /** Requests held unanswered by an `unreachable('hang')` outage. */
  public get stalledRequests(): number {
    return this.hung.size;
  }

  /** Watches currently open. */
  public get openWatches(): number {
    return this.watches.open;
  }

  /** The newest resourceVersion. */
  public get resourceVersion(): number {
    return this.store.resourceVersion;
  }

  /** End every watch and connection and stop listening. */
  public async stop(): Promise<void> {
    this.watches.closeAll();
    for (const res of this.hung) res.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    const query = url.search.replace(/^\?/, '');
    if (this.outage === 'hang') {
      this.hung.add(res);
      return;
    }
    let body: unknown;
    try {
      body = await readJsonBody(req);
    } catch {
      this.requests.push(seenRequest(++this.seq, req, url, 400, null, undefined));
      return sendJson(res, 400, S.badRequest('the request body is not valid JSON'));
    }
    const answer = (
      status: number,
      payload: unknown,
      user: string | null,
      headers?: Record<string, string>,
    ): void => {
      this.requests.push(seenRequest(++this.seq, req, url, status, user, body));
      sendJson(res, status, payload, headers);
    };
    const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const who = auth?.[1] === undefined ? null : await this.authenticator(auth[1]);
    if (who === null) return answer(401, S.unauthorized(), null);
    const fault = take(this.faults, method, url.pathname, query);
    if (fault !== undefined) {
      if (fault.status === 'reset') {
        this.requests.push(seenRequest(++this.seq, req, url, 0, who.user, body));
        req.socket.destroy();
        return;
      }
      if (fault.status === 429) {
        const after = fault.retryAfterSeconds ?? 1;
        return answer(429, S.tooManyRequests(after), who.user, { 'Retry-After': String(after) });
      }
      return answer(
        fault.status,
        fault.status === 410 ? S.continueExpired() : S.serverError(fault.status),
        who.user,
      );
    }
    const hook = take(this.hooks, method, url.pathname, query);
    if (hook !== undefined) await hook();
    const discovery = discoveryDocument(url.pathname, `${this.host}:${this.port}`);
    if (discovery !== undefined) {
      if (method !== 'GET')
        return answer(
          405,
          S.status(
            405,
            'MethodNotAllowed',
            'the server does not allow this method on the requested resource',
          ),
          who.user,
        );
      return answer(discovery === null ? 404 : 200, discovery ?? S.pathNotFound(), who.user);
    }
    const route = parseRoute(method, url.pathname, url.searchParams);
    if (route === null) return answer(404, S.pathNotFound(), who.user);
    if (!this.rbac.allows(who, route.attrs))
      return answer(403, S.forbidden(who.user, route.attrs), who.user);
    const result = serve(
      this.api,
      route,
      url.searchParams,
      req.headers['content-type'] ?? '',
      body,
      this.maxWatchSeconds,
    );
    if ('watch' in result) {
      this.requests.push(seenRequest(++this.seq, req, url, 200, who.user, undefined));
      this.watches.start(res, result.watch);
      return;
    }
    answer(result.status, result.body, who.user);
  }
}

export type { Fault, Outage, RequestMatch } from './faults.js';
export type { SeenRequest } from './http.js';
