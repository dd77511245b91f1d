import type { Command, Option } from 'commander';
import { CliExitError, EXIT } from './exit.js';

/** Register `demo [--kubernetes]`; the demo modules load only when it runs. */
export function addDemoCommand(program: Command, out: (s: string) => void, logLevel: Option): void {
  program
    .command('demo')
    .description(
      'run the whole pipeline on this machine: a real HAProxy on loopback, worker servers on 127.0.30.x, scale events, live traffic; --kubernetes: the Kubernetes act against a simulated API server',
    )
    .option(
      '--port <port>',
      'frontend port on 127.0.0.1 (+1: stats; with --kubernetes, +2: the second Service)',
      (v) => Number(v),
      18080,
    )
    .option('--subnet <a.b.c>', 'loopback /24 for the workers', '127.0.30')
    .option('--node-port <port>', 'NodePort the workers answer on', (v) => Number(v), 30080)
    .option(
      '--kubernetes',
      "the Kubernetes act: Services of type LoadBalancer get their external IP from a simulated API server (lbsync's test fake, on 127.0.0.1), a node tainted by the autoscaler drains, a deleted Service loses its frontend",
    )
    .option(
      '--api-port <port>',
      'with --kubernetes: port of the simulated API server on 127.0.0.1',
      (v) => Number(v),
      16443,
    )
    .option('--keep-dir', 'leave the temp dir (configs, state) behind for inspection')
    .addOption(logLevel)
    .action(
      async (opts: {
        port: number;
        subnet: string;
        nodePort: number;
        kubernetes?: boolean;
        apiPort: number;
        keepDir?: boolean;
        logLevel: string;
      }) => {
        const { kubernetes, apiPort, ...common } = opts;
        const ok = kubernetes
          ? await (await import('./demo-kubernetes.js')).runKubernetesDemo({
              ...common,
              apiPort,
              out,
            })
          : await (await import('./demo.js')).runDemo({ ...common, out });
        if (!ok) throw new CliExitError('demo saw failed requests or a failed sync', EXIT.failed);
      },
    );
}
