import { LbsyncError } from '../core/errors.js';

/** Exit codes of the CLI. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Thrown inside actions to end with a one-line reason and an exit code. */
export class CliExitError extends LbsyncError {
  public constructor(
    message: string,
    public readonly code: number,
  ) {
    super(message);
    this.name = 'CliExitError';
  }
}
