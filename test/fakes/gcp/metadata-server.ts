import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { etagOf, type FakeCompute, type FakeInstance } from './compute.js';

/**
 * A fake GCE metadata server for one instance of a `FakeCompute`, on
 * 127.0.0.1:<port> instead of 169.254.169.254. It speaks what the LB agent
 * uses: `GET /computeMetadata/v1/instance/attributes/<key>` with
 * `wait_for_change=true&last_etag=<etag>&timeout_sec=<n>` long polls (the
 * value's ETag in the `ETag` header), and `PUT/GET
 * /computeMetadata/v1/instance/guest-attributes/<ns>/<key>`. Like the real
 * one it refuses requests without `Metadata-Flavor: Google`. Faults: answer
 * the next N requests with an error status.
 */
export class FakeMetadataServer {
  /** Requests in arrival order (`GET attributes/lbsync-manifest`, `PUT guest-attributes/...`). */
  public readonly requests: {
    readonly method: string;
    readonly path: string;
    readonly status: number;
    /** Epoch ms the answer was sent. */
    readonly at: number;
  }[] = [];
  /** Long polls the client gave up on (closed the connection) before they were answered. */
  public readonly abandoned: { readonly path: string; readonly at: number }[] = [];
  private readonly waiters = new Set<() => void>();
  private failures: { status: number; remaining: number } = { status: 503, remaining: 0 };
  private readonly unsubscribe: () => void;

  private constructor(
    private readonly server: Server,
    private readonly compute: FakeCompute,
    public readonly instanceName: string,
  ) {
    this.unsubscribe = compute.onMetadataChange((i) => {
      if (i.name !== this.instanceName) return;
      for (const w of [...this.waiters]) w();
    });
  }

  /** Serve `instanceName`'s metadata on 127.0.0.1:`port`. */
  public static async start(
    compute: FakeCompute,
    instanceName: string,
    port: number,
  ): Promise<FakeMetadataServer> {
    const server = createServer();
    const fake = new FakeMetadataServer(server, compute, instanceName);
    server.on('request', (req, res) => {
      fake.handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return fake;
  }

  /** Base URL the agent takes as `--metadata-url`. */
  public get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Answer the next `count` requests with `status` (503 by default). */
  public fail(count: number, status = 503): void {
    this.failures = { status, remaining: count };
  }

  /** Long polls waiting for a change right now. */
  public hanging(): number {
    return this.waiters.size;
  }

  /** Requests answered with `status`. */
  public countStatus(status: number): number {
    return this.requests.filter((r) => r.status === status).length;
  }

  /** Stop the server (pending long polls are cut). */
  public async stop(): Promise<void> {
    this.unsubscribe();
    for (const w of [...this.waiters]) w();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private instance(): FakeInstance | undefined {
    try {
      return this.compute.instance(this.instanceName);
    } catch {
      return undefined;
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://metadata');
    const method = req.method ?? 'GET';
    const reply = (status: number, body: string, etag?: string): void => {
      this.requests.push({ method, path: url.pathname, status, at: Date.now() });
      res.writeHead(status, {
        'content-type': 'application/text',
        'metadata-flavor': 'Google',
        ...(etag !== undefined ? { etag } : {}),
      });
      res.end(body);
    };
    const body = await readBody(req);
    if (req.headers['metadata-flavor'] !== 'Google') {
      reply(403, 'Missing required header "Metadata-Flavor": "Google"\n');
      return;
    }
    if (this.failures.remaining > 0) {
      this.failures.remaining -= 1;
      reply(this.failures.status, 'injected fault\n');
      return;
    }
    const inst = this.instance();
    if (inst === undefined) {
      reply(404, 'instance gone\n');
      return;
    }
    const guest = /^\/computeMetadata\/v1\/instance\/guest-attributes\/([^/]+\/[^/]+)$/.exec(
      url.pathname,
    );
    if (guest?.[1] !== undefined) {
      if (method === 'PUT') {
        inst.guest.set(guest[1], body);
        reply(200, '');
        return;
      }
      const v = inst.guest.get(guest[1]);
      if (v === undefined) reply(404, 'not found\n');
      else reply(200, v);
      return;
    }
    const attr = /^\/computeMetadata\/v1\/instance\/attributes\/([A-Za-z0-9_-]+)$/.exec(
      url.pathname,
    );
    if (method !== 'GET' || attr?.[1] === undefined) {
      reply(404, 'not found\n');
      return;
    }
    const key = attr[1];
    const current = (): { value: string; etag: string } | null => {
      const it = this.instance()?.items.find((i) => i.key === key);
      return it === undefined ? null : { value: it.value, etag: etagOf(it.value) };
    };
    let now = current();
    const waitForChange = url.searchParams.get('wait_for_change') === 'true';
    const lastEtag = url.searchParams.get('last_etag') ?? 'NONE';
    if (waitForChange && (now === null || now.etag === lastEtag)) {
      // Hang until the value changes or timeout_sec passes (real default: 60 s).
      const timeoutMs =
        Math.min(Number(url.searchParams.get('timeout_sec') ?? 60) || 60, 300) * 1000;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.waiters.delete(check);
          resolve();
        };
        const check = (): void => {
          const c = current();
          if (c !== null && c.etag !== lastEtag) done();
        };
        const timer = setTimeout(done, timeoutMs);
        this.waiters.add(check);
        res.once('close', done);
      });
      if (res.destroyed) {
        this.abandoned.push({ path: url.pathname, at: Date.now() });
        return;
      }
      now = current();
    }
    if (now === null) reply(404, 'not found\n');
    else reply(200, now.value, now.etag);
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
