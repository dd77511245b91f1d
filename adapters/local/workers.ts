import { createServer, type Server } from 'node:http';

/**
 * A stand-in for a Kubernetes worker node: answers on the service's NodePort
 * with its own id, and on the kube-proxy health port with 200 /healthz. Used
 * by the demo and by end-to-end tests; workers live on distinct 127.x.y.z
 * addresses so they can share port numbers like real nodes do.
 */
export interface WorkerServer {
  readonly id: string;
  readonly address: string;
  /** Requests served on the service ports. */
  served(): number;
  /** Connections currently open on the service ports. */
  openConnections(): number;
  /** Make /healthz fail (503) or pass again. */
  setHealthy(healthy: boolean): void;
  close(): Promise<void>;
}

/** Options for `startWorkerServer`. */
export interface WorkerServerOptions {
  readonly id: string;
  readonly address: string;
  /** NodePorts to answer on (one per service). */
  readonly ports: readonly number[];
  /** kube-proxy health port; omit to skip. */
  readonly healthPort?: number;
  /** Delay each response, to keep requests in flight (drain tests). */
  readonly delayMs?: number;
}

/** Start a worker on its address; resolves when every port listens. */
export async function startWorkerServer(opts: WorkerServerOptions): Promise<WorkerServer> {
  let served = 0;
  let healthy = true;
  let open = 0;
  const servers: Server[] = [];
  const body = `${opts.id}\n`;
  for (let i = 0; i < opts.ports.length; i++) {
    const s = createServer((_req, res) => {
      const reply = (): void => {
        served++;
        res.writeHead(200, {
          'content-type': 'text/plain',
          'x-worker': opts.id,
          connection: 'close',
        });
        res.end(body);
      };
      if (opts.delayMs) setTimeout(reply, opts.delayMs);
      else reply();
    });
    s.on('connection', (sock) => {
      open++;
      sock.on('close', () => {
        open--;
      });
    });
    servers.push(s);
  }
  if (opts.healthPort !== undefined) {
    servers.push(
      createServer((req, res) => {
        const ok = healthy && req.url === '/healthz';
        res.writeHead(ok ? 200 : 503, { connection: 'close' });
        res.end(ok ? 'ok\n' : 'unhealthy\n');
      }),
    );
  }
  const ports = [...opts.ports, ...(opts.healthPort !== undefined ? [opts.healthPort] : [])];
  try {
    await Promise.all(
      servers.map(
        (s, i) =>
          new Promise<void>((resolve, reject) => {
            s.once('error', reject);
            s.listen(ports[i], opts.address, () => resolve());
          }),
      ),
    );
  } catch (err) {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(() => r(undefined)))));
    throw err;
  }
  return {
    id: opts.id,
    address: opts.address,
    served: () => served,
    openConnections: () => open,
    setHealthy: (h) => {
      healthy = h;
    },
    close: async () => {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.closeAllConnections();
              s.close(() => resolve());
            }),
        ),
      );
    },
  };
}
