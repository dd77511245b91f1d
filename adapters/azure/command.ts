/*
 * The shell text an Azure action Run Command (RunShellScript) carries to an
 * LB VM, built by core/command.ts. Run Command returns only the last 4,096
 * bytes of each stream, so the tails stay well under that.
 */
import {
  applyCommand as buildApplyCommand,
  scriptCommand as buildScriptCommand,
  type OutputLimits,
  type PayloadDelivery,
} from '../../core/command.js';

export { type PayloadDelivery, shellQuote } from '../../core/command.js';

const RUN_COMMAND_LIMITS: OutputLimits = { stderrTail: 1500, stdoutTail: 1500, curlTail: 1000 };

/** A command that runs `script` with `args` and no payload (`--status`). */
export function scriptCommand(script: string, args: readonly string[]): string {
  return buildScriptCommand(script, args, RUN_COMMAND_LIMITS);
}

/** A command that delivers a payload (inline or by URL) and runs the apply script on it. */
export function applyCommand(
  applyScript: string,
  args: readonly string[],
  payload: PayloadDelivery,
): string {
  return buildApplyCommand(applyScript, args, payload, RUN_COMMAND_LIMITS);
}

/**
 * Split Run Command's message into the two streams. RunShellScript on Linux
 * reports `Enable succeeded: \n[stdout]\n...\n[stderr]\n...`.
 */
export function splitRunCommandMessage(message: string): {
  readonly stdout: string;
  readonly stderr: string;
} {
  const o = message.indexOf('[stdout]\n');
  const e = message.lastIndexOf('\n[stderr]\n');
  if (o < 0) return { stdout: message, stderr: '' };
  const stdout = message.slice(o + '[stdout]\n'.length, e > o ? e : undefined);
  const stderr = e > o ? message.slice(e + '\n[stderr]\n'.length) : '';
  return { stdout, stderr };
}
