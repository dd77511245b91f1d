import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LbsyncError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { bindKey } from './net.js';
import type { WatcherHealth } from './watcher-health.js';

/*
 * The watcher's probe endpoints, as a Kubernetes controller serves them
 * (controller-runtime's --health-probe-bind-address, default :8081):
 * GET /readyz and GET /healthz answer 200 or 503 with a short JSON body;
 * other paths 404, other methods 405. node:http, because two fixed routes
 * need no framework. The answers come from the watcher's state only.
 */

/** The health server could not listen (address in use, not local, no permission). */
export class HealthServerError extends LbsyncError {
  public constructor(message: string, options: ErrorOptions = {}) {
    super(message, { ...options, retryable: false });
    this.name = 'HealthServerError';
  }
}

/** A running health server. */
export interface HealthServer {
  /** The address it listens on, e.g. `127.0.0.1:8081`. */
  readonly address: string;
  readonly port: number;
  /** Stop listening and end open connections. */
  close(): Promise<void>;
}

/** Where `bind` (`[address]:port`, `:port` for every interface) listens. */
export function healthListenAddress(bind: string): {
  readonly host?: string;
  readonly port: number;
} {
  const key = bindKey(bind);
  const at = key.lastIndexOf(':');
  const host = key.slice(0, at);
  const port = Number(key.slice(at + 1));
  if (host === '*') return { port };
  return { host: host.replace(/^\[|\]$/g, ''), port };
}

/** Serve /readyz and /healthz from `health` on `bind`; resolves once listening. */
export async function startHealthServer(o: {
  readonly bind: string;
  readonly health: () => WatcherHealth;
  readonly logger: Logger;
}): Promise<HealthServer> {
  const { host, port } = healthListenAddress(o.bind);
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://probe').pathname;
    if (path !== '/readyz' && path !== '/healthz') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not found: /readyz and /healthz are served"}\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'application/json', allow: 'GET, HEAD' });
      res.end('{"error":"method not allowed: use GET"}\n');
      return;
    }
    const h = o.health();
    const ok = path === '/readyz' ? h.ready : h.live;
    const body =
      path === '/readyz'
        ? { ready: h.ready, resources: h.resources }
        : { live: h.live, problems: h.problems, resources: h.resources, sends: h.sends };
    if (!ok) o.logger.debug({ path, ...body }, 'watch: health probe failing');
    res.writeHead(ok ? 200 : 503, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : `${JSON.stringify(body)}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new HealthServerError(
          `--health-addr ${o.bind}: cannot listen: ${err.code ?? err.message}${err.code === 'EADDRINUSE' ? ' (the port is taken; pick another or pass off)' : ''}`,
          { cause: err },
        ),
      ),
    );
    server.listen({ port, ...(host !== undefined ? { host } : {}) }, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  o.logger.info({ address }, 'watch: serving /readyz and /healthz');
  return {
    address,
    port: a.port,
    // closeAllConnections: a probe's kept-alive connection must not hold a stopping process.
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
