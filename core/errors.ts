/**
 * Every error lbsync throws is an `LbsyncError`. `retryable` tells the entry
 * point whether to fail the invocation (so the platform retries) or to report
 * and stop: retrying a bad spec forever helps nobody.
 */
export interface LbsyncErrorOptions extends ErrorOptions {
  readonly retryable?: boolean;
}

/** Base class: carries `cause` and whether a retry could help. */
export class LbsyncError extends Error {
  public readonly retryable: boolean;

  public constructor(message: string, options: LbsyncErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LbsyncError';
    this.retryable = options.retryable ?? false;
  }
}

/** The spec file is missing, unparsable or invalid. Never retryable. */
export class SpecError extends LbsyncError {
  public readonly file: string;
  public readonly problems: readonly string[];

  public constructor(file: string, problems: readonly string[], options: ErrorOptions = {}) {
    super(problems.map((p) => `${file}: ${p}`).join('\n'), { ...options, retryable: false });
    this.name = 'SpecError';
    this.file = file;
    this.problems = problems;
  }
}

/** A value that would reach a config file or a shell is unsafe or malformed. */
export class InputError extends LbsyncError {
  public constructor(message: string, options: ErrorOptions = {}) {
    super(message, { ...options, retryable: false });
    this.name = 'InputError';
  }
}

/** The template failed to render, or rendered something unusable. */
export class RenderError extends LbsyncError {
  public constructor(message: string, options: ErrorOptions = {}) {
    super(message, { ...options, retryable: false });
    this.name = 'RenderError';
  }
}

/** A safety guard refused the plan (empty or sharply shrunken worker set). */
export class GuardError extends LbsyncError {
  public constructor(message: string, options: ErrorOptions = {}) {
    super(message, { ...options, retryable: false });
    this.name = 'GuardError';
  }
}

/** Resolving workers from a cloud API failed. Throttling and 5xx are retryable. */
export class SourceError extends LbsyncError {
  public constructor(message: string, options: LbsyncErrorOptions = {}) {
    super(message, options);
    this.name = 'SourceError';
  }
}

/** Carrying a payload to an LB, or reading its result, failed. */
export class TransportError extends LbsyncError {
  public constructor(message: string, options: LbsyncErrorOptions = {}) {
    super(message, options);
    this.name = 'TransportError';
  }
}

/** The trigger (event, request body) could not be understood. */
export class TriggerParseError extends LbsyncError {
  public constructor(message: string, options: ErrorOptions = {}) {
    super(message, { ...options, retryable: false });
    this.name = 'TriggerParseError';
  }
}

/** True when `err` is an lbsync error that a retry could fix. Unknown errors count as retryable. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof LbsyncError) return err.retryable;
  return true;
}

/** The message of any thrown value, for logs and one-line CLI reasons. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
