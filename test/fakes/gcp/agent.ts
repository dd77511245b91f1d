import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLbScriptSync } from '../../../core/lb-scripts.js';
import type { LbVm } from '../lb-vm.js';

// The agent and the apply script in the form cloud-init installs them (the
// shell library inlined), in a host directory every LbVm sees (only
// /etc/haproxy, /var/lib/lbsync and /run are private to a VM).
const SHIPPED = mkdtempSync(join(tmpdir(), 'lbsync-gcp-agent-scripts-'));
process.once('exit', () => rmSync(SHIPPED, { recursive: true, force: true }));

/** The real agent script, shipped form. */
export const AGENT_SCRIPT = join(SHIPPED, 'lbsync-gcp-agent.sh');
/** The apply script the agent runs, shipped form. */
export const APPLY_SCRIPT = join(SHIPPED, 'lbsync-apply.sh');
writeFileSync(AGENT_SCRIPT, loadLbScriptSync('gcp-agent'));
writeFileSync(APPLY_SCRIPT, loadLbScriptSync('apply'));

/** A running agent inside an LbVm. */
export interface RunningAgent {
  /** The agent's stderr so far (its log). */
  log(): string;
  /** TERM the agent and wait for it to exit. */
  stop(): Promise<void>;
}

/**
 * Start templates/lbsync-gcp-agent.sh inside `vm` as a long-running exec (as
 * systemd would on a real LB), pointed at a fake metadata server. Bounded by
 * `--max-runtime` so a crashed test run leaves nothing behind for long.
 */
export async function startAgent(
  vm: LbVm,
  metadataUrl: string,
  opts: {
    readonly timeoutSec?: number;
    readonly idleSec?: number;
    readonly maxRuntimeSec?: number;
  } = {},
): Promise<RunningAgent> {
  const pidFile = '/run/lbsync-gcp-agent.pid';
  const hostPidFile = join(vm.root, 'run/lbsync-gcp-agent.pid');
  const args = [
    '--metadata-url',
    metadataUrl,
    '--apply',
    APPLY_SCRIPT,
    '--pid-file',
    pidFile,
    '--timeout-sec',
    String(opts.timeoutSec ?? 10),
    '--idle',
    String(opts.idleSec ?? 1),
    '--max-backoff',
    '2',
    '--max-runtime',
    String(opts.maxRuntimeSec ?? 300),
  ];
  rmSync(hostPidFile, { force: true });
  let stderr = '';
  const done = vm
    .exec(`exec sh '${AGENT_SCRIPT}' ${args.map((a) => `'${a}'`).join(' ')}`, {
      timeoutMs: (opts.maxRuntimeSec ?? 300) * 1000 + 30_000,
    })
    .then((r) => {
      stderr = r.stderr;
    });
  // Wait for the pid file: the agent is then past its argument checks.
  let pid = 0;
  for (let i = 0; i < 100 && pid === 0; i++) {
    try {
      pid = Number(readFileSync(hostPidFile, 'utf8').trim()) || 0;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  if (pid === 0) throw new Error(`agent in ${vm.name} did not start`);
  return {
    log: () => stderr,
    stop: async () => {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await done;
    },
  };
}
