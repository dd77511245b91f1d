import { pino } from 'pino';

/** Fields every pipeline log line carries where known. */
export interface LogFields {
  readonly cloud?: string;
  readonly group?: string;
  readonly lb?: string;
  readonly generation?: number;
  readonly stage?: string;
  readonly [key: string]: unknown;
}

/** The logger core uses: structured JSON, one line per pipeline stage. */
export interface Logger {
  debug(fields: LogFields, msg: string): void;
  info(fields: LogFields, msg: string): void;
  warn(fields: LogFields, msg: string): void;
  error(fields: LogFields, msg: string): void;
  child(fields: LogFields): Logger;
  /** Fields every line of this logger already carries (so callers never bind a key twice). */
  bindings?(): LogFields;
}

/** A child bound with those of `fields` the logger does not carry yet: one binding per key. */
export function bindOnce(logger: Logger, fields: LogFields): Logger {
  const bound = logger.bindings?.() ?? {};
  const fresh = Object.fromEntries(Object.entries(fields).filter(([k]) => !(k in bound)));
  return Object.keys(fresh).length === 0 ? logger : logger.child(fresh);
}

/** Options for `createLogger`. */
export interface LoggerOptions {
  readonly level?: string;
  /** File descriptor: 1 for stdout (functions), 2 for stderr (CLI, where stdout is output). */
  readonly fd?: 1 | 2;
  readonly base?: LogFields;
  /** Where lines go instead of `fd` (tests read them back). */
  readonly destination?: { write(line: string): unknown };
}

/** A pino-backed JSON logger; level from the option, `LBSYNC_LOG_LEVEL`, or `info`. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LBSYNC_LOG_LEVEL ?? 'info';
  const p = pino(
    {
      level,
      base: { service: 'lbsync', ...options.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ fd: options.fd ?? 1, sync: true }),
  );
  return p as unknown as Logger;
}

/** A logger that drops everything; for callers that want silence. */
export function silentLogger(): Logger {
  const l: Logger = {
    debug: () => {},
    info: () => {},
    warn: () => {},
    error: () => {},
    child: () => l,
  };
  return l;
}

/** A logger that keeps lines in memory; for tests that assert on logs. */
export function memoryLogger(
  lines: Record<string, unknown>[] = [],
  base: LogFields = {},
): Logger & {
  readonly lines: Record<string, unknown>[];
} {
  const at =
    (level: string) =>
    (fields: LogFields, msg: string): void => {
      lines.push({ level, ...base, ...fields, msg });
    };
  return {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (fields) => memoryLogger(lines, { ...base, ...fields }),
    bindings: () => base,
  };
}
