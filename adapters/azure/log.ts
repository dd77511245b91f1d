import type { LogFields, Logger } from '../../core/log.js';

/** The logging half of an @azure/functions `InvocationContext`. */
export interface InvocationLogSink {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/**
 * A Logger writing one JSON line per call through the invocation context, so
 * Application Insights correlates every stage line with its invocation.
 */
export function invocationLogger(sink: InvocationLogSink, base: LogFields = {}): Logger {
  const at =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (fields: LogFields, msg: string): void => {
      sink[level](JSON.stringify({ level, service: 'lbsync', ...base, ...fields, msg }));
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (fields) => invocationLogger(sink, { ...base, ...fields }),
    bindings: () => base,
  };
}
