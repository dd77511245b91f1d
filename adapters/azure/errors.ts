/*
 * How Azure SDK errors map to lbsync's retry semantics. The SDK pipeline
 * already retried throttling (429/503 honouring Retry-After) and 5xx a few
 * times; what still reaches us is classified here: throttling, conflicts,
 * 5xx, timeouts and dropped connections are worth another invocation,
 * anything else (403, 404, bad request) is a fact a retry won't change.
 */

interface AzureErrorShape {
  readonly name?: string;
  readonly code?: string;
  readonly statusCode?: number;
  readonly message?: string;
  readonly details?: { readonly error?: { readonly code?: string; readonly message?: string } };
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'REQUEST_SEND_ERROR',
  'TooManyRequests',
  'Conflict',
  'OperationPreempted',
  'RetryableError',
  'InternalServerError',
  'ServiceUnavailable',
  'GatewayTimeout',
  'VMAgentStatusCommunicationError',
]);

/** The HTTP status of an Azure SDK error, if it has one. */
export function azureStatus(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null ? (err as AzureErrorShape).statusCode : undefined;
}

/** The ARM error code (`error.code` of the body, or the SDK's code). */
export function azureErrorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as AzureErrorShape;
  return e.details?.error?.code ?? e.code;
}

/**
 * True for a long-running operation that ended `Failed` (core-lro throws a
 * plain Error for it). For Run Command that is the VM agent failing or
 * restarting, which the next attempt usually survives.
 */
export function isFailedOperation(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('The long-running operation has failed');
}

/** True when another attempt later could succeed. */
export function isRetryableAzureError(err: unknown): boolean {
  if (isFailedOperation(err)) return true;
  if (typeof err === 'object' && err !== null && (err as AzureErrorShape).name === 'AbortError') {
    return true;
  }
  const status = azureStatus(err);
  if (status !== undefined)
    return status === 408 || status === 409 || status === 429 || status >= 500;
  const code = azureErrorCode(err);
  return code !== undefined && TRANSIENT_CODES.has(code);
}

/** One line naming status, code and message, for logs and reports. */
export function describeAzureError(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const e = err as AzureErrorShape;
  const parts = [
    e.statusCode !== undefined ? String(e.statusCode) : undefined,
    azureErrorCode(err),
    e.details?.error?.message ?? e.message,
  ].filter((p): p is string => p !== undefined && p !== '');
  return parts.join(' ');
}
