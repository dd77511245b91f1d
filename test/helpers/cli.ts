import { spawn } from 'node:child_process';
import { join } from 'node:path';

/** The repository root, where the CLI runs from. */
export const ROOT = join(import.meta.dirname, '../..');
/** The `lbsync` executable users run (bin/lbsync.js). */
export const LBSYNC_BIN = join(ROOT, 'bin/lbsync.js');

/** What a finished CLI run printed and how it exited. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Run the CLI as a user does, in its own process, and collect its output.
 * Async on purpose: the fakes the CLI talks to answer from the test's process.
 */
export function runLbsync(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<CliRun> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [LBSYNC_BIN, ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    p.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
