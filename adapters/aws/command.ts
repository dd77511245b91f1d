/*
 * The shell text an SSM Run Command (AWS-RunShellScript) carries to an LB,
 * built by core/command.ts. GetCommandInvocation returns only the first
 * 24,000 characters of stdout and 8,000 of stderr, hence these tails.
 */
import {
  applyCommand as buildApplyCommand,
  scriptCommand as buildScriptCommand,
  type OutputLimits,
  type PayloadDelivery,
} from '../../core/command.js';

export { shellQuote } from '../../core/command.js';

/** Where the apply script gets its payload. */
export type PayloadSource = PayloadDelivery;

const SSM_LIMITS: OutputLimits = { stderrTail: 4000, stdoutTail: 2000, curlTail: 2000 };

/** A command that runs `script` with `args` (status, drain: no payload). */
export function scriptCommand(script: string, args: readonly string[]): string {
  return buildScriptCommand(script, args, SSM_LIMITS);
}

/** A command that delivers a payload (inline or by URL) and runs the apply script on it. */
export function applyCommand(
  applyScript: string,
  args: readonly string[],
  payload: PayloadSource,
): string {
  return buildApplyCommand(applyScript, args, payload, SSM_LIMITS);
}
