import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OAuth2Client } from 'google-auth-library';
import { FakeGkeClusters } from './container.js';

/**
 * A stateful, protocol-level fake of the Compute Engine v1 REST API: the real
 * `@google-cloud/compute` client talks to it through its REST fallback
 * (`fallback: true, protocol: 'http'`). It holds zonal and regional managed
 * instance groups, instances with internal IPs, instance metadata with
 * fingerprints and guest attributes, and zone operations. Faults are opt-in:
 * HTTP errors on matching requests, a concurrent metadata writer (412),
 * instances the MIG lists but `instances.list` no longer returns, and
 * operations that stay RUNNING for a while.
 */

/** `currentAction` values of a managed instance. */
export type ManagedAction =
  | 'NONE'
  | 'CREATING'
  | 'CREATING_WITHOUT_RETRIES'
  | 'RECREATING'
  | 'DELETING'
  | 'ABANDONING'
  | 'RESTARTING'
  | 'REFRESHING'
  | 'VERIFYING'
  | 'STOPPING'
  | 'SUSPENDING';

/** One metadata item. */
export interface MetadataItem {
  readonly key: string;
  readonly value: string;
}

/** An instance as the fake stores it. */
export interface FakeInstance {
  readonly name: string;
  readonly zone: string;
  readonly id: string;
  ip: string;
  status: string;
  /** Managed instance group key (`zones/<z>/<name>` or `regions/<r>/<name>`) when managed. */
  mig?: string;
  currentAction: ManagedAction;
  fingerprint: string;
  items: MetadataItem[];
  readonly guest: Map<string, string>;
}

interface FakeMig {
  readonly name: string;
  readonly scope: string;
  readonly paginated: boolean;
}

interface Fault {
  readonly method?: string;
  readonly path: RegExp;
  readonly status: number;
  remaining: number;
}

interface FakeOperation {
  readonly name: string;
  readonly zone: string;
  readonly doneAt: number;
  readonly targetLink: string;
  readonly operationType: string;
  /** Applies the change; runs once, when the operation finishes. */
  finish?: () => void;
  readonly error?: { readonly code: string; readonly message: string };
}

/** A listener told whenever an instance's metadata changes (the metadata server uses it). */
export type MetadataListener = (instance: FakeInstance) => void;

/** Every request the fake answered, for assertions on batching and retries. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly status: number;
}

/** The fake Compute API. */
export class FakeCompute {
  /** Requests in arrival order. */
  public readonly requests: RecordedRequest[] = [];
  /** GKE clusters (the Container API's clusters.get, on the same port). */
  public readonly gkeClusters = new FakeGkeClusters();
  /** Which bearer tokens the APIs accept: `fake-token` (clientOptions()) unless replaced. */
  public acceptToken: (token: string) => boolean = (t) => t === 'fake-token';
  private readonly migs = new Map<string, FakeMig>();
  private readonly instances = new Map<string, FakeInstance>();
  private readonly hidden = new Set<string>();
  private readonly faults: Fault[] = [];
  private readonly operations = new Map<string, FakeOperation>();
  private readonly listeners = new Set<MetadataListener>();
  private concurrentWriters = new Map<string, number>();
  private operationDelayMs = 0;
  private seq = 0;

  private constructor(private readonly server: Server) {}

  /** Start on 127.0.0.1:`port` (0 picks one). */
  public static async start(port = 0): Promise<FakeCompute> {
    const server = createServer();
    const fake = new FakeCompute(server);
    server.on('request', (req, res) => {
      fake.handle(req, res).catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 500, message: String(err) } }));
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return fake;
  }

  /** The port clients use (`apiEndpoint: '127.0.0.1', port`). */
  public get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /**
   * Options that point the real Compute clients at this fake: the REST
   * fallback over plain HTTP, with an OAuth2 client holding a fake token.
   */
  public clientOptions(): {
    readonly apiEndpoint: string;
    readonly port: number;
    readonly protocol: 'http';
    readonly fallback: true;
    readonly authClient: OAuth2Client;
  } {
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'fake-token', expiry_date: Date.now() + 3_600_000 });
    return {
      apiEndpoint: '127.0.0.1',
      port: this.port,
      protocol: 'http',
      fallback: true,
      authClient,
    };
  }

  /** Create a zonal (`zone`) or regional (`region`) MIG. */
  public addMig(m: {
    readonly name: string;
    readonly zone?: string;
    readonly region?: string;
    /** `listManagedInstancesResults: PAGINATED` (honours maxResults/pageToken). */
    readonly paginated?: boolean;
  }): void {
    const scope = m.zone !== undefined ? `zones/${m.zone}` : `regions/${m.region}`;
    this.migs.set(`${scope}/${m.name}`, {
      name: m.name,
      scope,
      paginated: m.paginated ?? false,
    });
  }

  /** Create an instance, optionally managed by a MIG (`mig` is `zones/z/name` or `regions/r/name`). */
  public addInstance(i: {
    readonly name: string;
    readonly zone: string;
    readonly ip: string;
    readonly mig?: string;
    readonly status?: string;
    readonly currentAction?: ManagedAction;
    readonly items?: readonly MetadataItem[];
  }): FakeInstance {
    const inst: FakeInstance = {
      name: i.name,
      zone: i.zone,
      id: String(1_000_000 + this.instances.size),
      ip: i.ip,
      status: i.status ?? 'RUNNING',
      currentAction: i.currentAction ?? 'NONE',
      fingerprint: this.nextFingerprint(),
      items: [...(i.items ?? [])],
      guest: new Map(),
      ...(i.mig !== undefined ? { mig: i.mig } : {}),
    };
    this.instances.set(i.name, inst);
    this.hidden.delete(i.name);
    return inst;
  }

  /** Look an instance up by name. */
  public instance(name: string): FakeInstance {
    const i = this.instances.get(name);
    if (i === undefined) throw new Error(`fake compute: no instance ${name}`);
    return i;
  }

  /** Set a managed instance's `currentAction` (and optionally its status). */
  public setAction(name: string, action: ManagedAction, status?: string): void {
    const i = this.instance(name);
    i.currentAction = action;
    if (status !== undefined) i.status = status;
  }

  /** Delete an instance (it leaves its MIG too). */
  public deleteInstance(name: string): void {
    this.instances.delete(name);
    this.hidden.delete(name);
  }

  /** Keep the instance in MIG listings but drop it from `instances.list` (deleted in between). */
  public hideFromInstanceList(name: string): void {
    this.hidden.add(name);
  }

  /** Answer the next `count` requests matching `path` (and `method`) with `status`. */
  public fail(status: number, path: RegExp, count = 1, method?: string): void {
    this.faults.push({ status, path, remaining: count, ...(method ? { method } : {}) });
  }

  /** Drop every pending injected fault. */
  public clearFaults(): void {
    this.faults.length = 0;
  }

  /** Before each of the next `count` setMetadata calls on `name`, someone else writes first (412). */
  public concurrentMetadataWriter(name: string, count = 1): void {
    this.concurrentWriters.set(name, count);
  }

  /** Operations stay RUNNING for `ms` before the change lands. */
  public setOperationDelay(ms: number): void {
    this.operationDelayMs = ms;
  }

  /** Replace an instance's metadata directly (as another tool would), bumping the fingerprint. */
  public writeMetadata(name: string, items: readonly MetadataItem[]): void {
    const i = this.instance(name);
    i.items = [...items];
    i.fingerprint = this.nextFingerprint();
    this.notify(i);
  }

  /** Subscribe to metadata changes; returns an unsubscribe function. */
  public onMetadataChange(listener: MetadataListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Number of recorded requests whose path matches. */
  public count(path: RegExp, method?: string): number {
    return this.requests.filter((r) => path.test(r.path) && (!method || r.method === method))
      .length;
  }

  /** Stop the server. */
  public async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private nextFingerprint(): string {
    this.seq += 1;
    return Buffer.from(`fp-${this.seq}-${Date.now()}`).toString('base64');
  }

  private notify(i: FakeInstance): void {
    for (const l of this.listeners) l(i);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const body = await readBody(req);
    const send = (status: number, json: unknown): void => {
      this.requests.push({ method, path: url.pathname, query: url.searchParams, status });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    };
    const error = (status: number, message: string, reason: string): void =>
      send(status, {
        error: { code: status, message, errors: [{ domain: 'global', reason, message }] },
      });

    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (bearer === undefined || !this.acceptToken(bearer)) {
      error(401, 'Request is missing required authentication credential.', 'required');
      return;
    }
    const fault = this.faults.find(
      (f) => f.remaining > 0 && f.path.test(url.pathname) && (!f.method || f.method === method),
    );
    if (fault !== undefined) {
      fault.remaining -= 1;
      const reason = fault.status === 429 ? 'rateLimitExceeded' : 'backendError';
      error(fault.status, `injected fault ${fault.status}`, reason);
      return;
    }

    const gke = this.gkeClusters.handle(method, url.pathname);
    if (gke !== null) {
      send(gke.status, gke.body);
      return;
    }
    const p = url.pathname.replace(/^\/compute\/v1\/projects\/[^/]+\//, '');
    const routes = {
      migList:
        /^((?:zones|regions)\/[^/]+)\/instanceGroupManagers\/([^/]+)\/listManagedInstances$/.exec(
          p,
        ),
      instanceList: /^zones\/([^/]+)\/instances$/.exec(p),
      instance: /^zones\/([^/]+)\/instances\/([^/]+)(?:\/([A-Za-z]+))?$/.exec(p),
      operation: /^zones\/([^/]+)\/operations\/([^/]+)(\/wait)?$/.exec(p),
    };
    let m = routes.migList;
    // listManagedInstances, zonal or regional
    if (method === 'POST' && m !== null) {
      const key = `${m[1]}/${m[2]}`;
      const mig = this.migs.get(key);
      if (mig === undefined) {
        error(404, `The resource '${key}' was not found`, 'notFound');
        return;
      }
      const all = [...this.instances.values()]
        .filter((i) => i.mig === key)
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((i) => ({
          instance: `https://www.googleapis.com/compute/v1/projects/fake/zones/${i.zone}/instances/${i.name}`,
          id: i.id,
          instanceStatus: i.status,
          currentAction: i.currentAction,
        }));
      if (!mig.paginated) {
        // PAGELESS ignores maxResults and pageToken and returns everything.
        send(200, { managedInstances: all });
        return;
      }
      const page = paginate(all, url.searchParams);
      send(200, { managedInstances: page.items, ...page.next });
      return;
    }
    // instances.list with the name filter the source sends
    m = routes.instanceList;
    if (method === 'GET' && m !== null) {
      const zone = m[1];
      const names = parseNameFilter(url.searchParams.get('filter'));
      const all = [...this.instances.values()]
        .filter((i) => i.zone === zone && !this.hidden.has(i.name))
        .filter((i) => names === null || names.has(i.name))
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((i) => this.instanceJson(i));
      const page = paginate(all, url.searchParams);
      send(200, { kind: 'compute#instanceList', items: page.items, ...page.next });
      return;
    }
    m = routes.instance;
    if (m !== null) {
      const [, zone, name, verb] = m;
      const inst = name === undefined ? undefined : this.instances.get(name);
      if (inst === undefined || inst.zone !== zone) {
        error(
          404,
          `The resource 'projects/fake/zones/${zone}/instances/${name}' was not found`,
          'notFound',
        );
        return;
      }
      if (method === 'GET' && verb === undefined) {
        send(200, this.instanceJson(inst));
        return;
      }
      if (method === 'GET' && verb === 'getGuestAttributes') {
        this.guestAttributes(inst, url.searchParams, send, error);
        return;
      }
      if (method === 'POST' && verb === 'setMetadata') {
        this.setMetadata(inst, body, send, error);
        return;
      }
    }
    m = routes.operation;
    if (m !== null) {
      const op = m[2] === undefined ? undefined : this.operations.get(m[2]);
      if (op === undefined) {
        error(404, `operation ${m[2]} not found`, 'notFound');
        return;
      }
      if (m[3] !== undefined) {
        // wait: block until done or at most ~2 s (the real one waits up to 2 minutes).
        const until = Math.min(op.doneAt, Date.now() + 2000);
        while (Date.now() < until) await sleep(Math.min(20, until - Date.now()));
      }
      send(200, this.operationJson(op));
      return;
    }
    error(404, `fake compute: no route for ${method} ${url.pathname}`, 'notFound');
  }

  private instanceJson(i: FakeInstance): Record<string, unknown> {
    return {
      kind: 'compute#instance',
      id: i.id,
      name: i.name,
      zone: `https://www.googleapis.com/compute/v1/projects/fake/zones/${i.zone}`,
      status: i.status,
      networkInterfaces: [{ name: 'nic0', networkIP: i.ip }],
      metadata: { kind: 'compute#metadata', fingerprint: i.fingerprint, items: i.items },
    };
  }

  private guestAttributes(
    i: FakeInstance,
    q: URLSearchParams,
    send: (s: number, j: unknown) => void,
    error: (s: number, m: string, r: string) => void,
  ): void {
    const key = q.get('variableKey');
    if (key !== null) {
      const v = i.guest.get(key);
      if (v === undefined) error(404, `The guest attribute '${key}' was not found`, 'notFound');
      else send(200, { kind: 'compute#guestAttributes', variableKey: key, variableValue: v });
      return;
    }
    const path = q.get('queryPath') ?? '';
    const items = [...i.guest.entries()]
      .filter(([k]) => k.startsWith(path))
      .map(([k, value]) => {
        const slash = k.indexOf('/');
        return { namespace: k.slice(0, slash), key: k.slice(slash + 1), value };
      });
    if (items.length === 0) {
      error(404, `The guest attributes at '${path}' were not found`, 'notFound');
      return;
    }
    send(200, { kind: 'compute#guestAttributes', queryPath: path, queryValue: { items } });
  }

  private setMetadata(
    i: FakeInstance,
    body: string,
    send: (s: number, j: unknown) => void,
    error: (s: number, m: string, r: string) => void,
  ): void {
    const writers = this.concurrentWriters.get(i.name) ?? 0;
    if (writers > 0) {
      // Someone else (a user, another sync) changed the metadata just before us.
      this.concurrentWriters.set(i.name, writers - 1);
      this.writeMetadata(i.name, [...i.items, { key: `other-writer-${writers}`, value: 'x' }]);
    }
    const parsed = JSON.parse(body || '{}') as { fingerprint?: string; items?: MetadataItem[] };
    if (parsed.fingerprint !== i.fingerprint) {
      error(
        412,
        'Supplied fingerprint does not match current metadata fingerprint.',
        'conditionNotMet',
      );
      return;
    }
    const items = parsed.items ?? [];
    const problem = metadataProblem(items);
    if (problem !== null) {
      error(400, problem, 'invalid');
      return;
    }
    // The fingerprint moves at once (a second writer gets 412); the guest sees
    // the new values when the operation finishes.
    i.fingerprint = this.nextFingerprint();
    const op = this.newOperation(i, 'setMetadata', () => {
      i.items = items;
      this.notify(i);
    });
    send(200, this.operationJson(op));
  }

  private newOperation(i: FakeInstance, type: string, change: () => void): FakeOperation {
    this.seq += 1;
    const op: FakeOperation = {
      name: `operation-${Date.now()}-${this.seq}`,
      zone: i.zone,
      doneAt: Date.now() + this.operationDelayMs,
      targetLink: `https://www.googleapis.com/compute/v1/projects/fake/zones/${i.zone}/instances/${i.name}`,
      operationType: type,
      finish: change,
    };
    this.operations.set(op.name, op);
    if (this.operationDelayMs === 0) this.finish(op);
    else setTimeout(() => this.finish(op), this.operationDelayMs).unref();
    return op;
  }

  private finish(op: FakeOperation): void {
    const f = op.finish;
    op.finish = undefined;
    f?.();
  }

  private operationJson(op: FakeOperation): Record<string, unknown> {
    const done = op.finish === undefined;
    return {
      kind: 'compute#operation',
      id: String(this.seq),
      name: op.name,
      zone: `https://www.googleapis.com/compute/v1/projects/fake/zones/${op.zone}`,
      operationType: op.operationType,
      targetLink: op.targetLink,
      status: done ? 'DONE' : 'RUNNING',
      progress: done ? 100 : 50,
    };
  }
}

/** The documented metadata limits: values ≤ 256 KiB, keys+values < 512 KB, keys `[a-zA-Z0-9-_]{1,127}`. */
export function metadataProblem(items: readonly MetadataItem[]): string | null {
  let total = 0;
  for (const it of items) {
    if (!/^[a-zA-Z0-9_-]{1,127}$/.test(it.key)) return `Invalid metadata key '${it.key}'`;
    const v = Buffer.byteLength(it.value ?? '', 'utf8');
    if (v > 262_144) return `Metadata value for key '${it.key}' exceeds 262144 bytes`;
    total += Buffer.byteLength(it.key) + v;
  }
  return total >= 512 * 1024 ? `Metadata total size ${total} exceeds the 512 KB limit` : null;
}

function paginate<T>(
  all: readonly T[],
  q: URLSearchParams,
): { readonly items: readonly T[]; readonly next: { nextPageToken?: string } } {
  const max = Math.min(Number(q.get('maxResults') ?? 500) || 500, 500);
  const start = Number(q.get('pageToken') ?? 0) || 0;
  const items = all.slice(start, start + max);
  return {
    items,
    next: start + max < all.length ? { nextPageToken: String(start + max) } : {},
  };
}

/** Parse `(name = "a") OR (name = "b")`; null when there is no filter. */
function parseNameFilter(filter: string | null): Set<string> | null {
  if (filter === null || filter === '') return null;
  const names = new Set<string>();
  for (const m of filter.matchAll(/name\s*=\s*"([^"]+)"/g)) if (m[1]) names.add(m[1]);
  return names;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A short stable hash, used as the metadata server's ETag. */
export function etagOf(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 16);
}
