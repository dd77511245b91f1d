/*
 * How AWS SDK errors map to lbsync's retry semantics: throttling, 5xx,
 * timeouts and dropped connections are worth a retry (the invocation fails so
 * Lambda/EventBridge retry it); anything else is a fact a retry won't change.
 */

const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'SlowDown',
  'PriorRequestNotComplete',
  'EC2ThrottledException',
]);

const TRANSIENT = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'ServiceUnavailable',
  'InternalError',
  'InternalFailure',
  'InternalServerError',
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
]);

interface SdkErrorShape {
  readonly name?: string;
  readonly code?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
  readonly $retryable?: unknown;
}

/** The error's AWS code (`name` on SDK v3 service errors). */
export function awsErrorCode(err: unknown): string {
  const e = (err ?? {}) as SdkErrorShape;
  return e.name ?? e.code ?? 'Error';
}

/** True when a retry of the same call could succeed. */
export function isRetryableAwsError(err: unknown): boolean {
  const e = (err ?? {}) as SdkErrorShape;
  const status = e.$metadata?.httpStatusCode;
  if (THROTTLING.has(awsErrorCode(err)) || TRANSIENT.has(awsErrorCode(err))) return true;
  if (e.code !== undefined && TRANSIENT.has(e.code)) return true;
  if (status !== undefined && status >= 500) return true;
  return e.$retryable !== undefined && e.$retryable !== null && e.$retryable !== false;
}

/** `Code: message` for logs and one-line reasons. */
export function describeAwsError(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const code = awsErrorCode(err);
  return msg.startsWith(code) ? msg : `${code}: ${msg}`;
}
