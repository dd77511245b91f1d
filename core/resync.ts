import type { ManualRequestBody } from './trigger.js';

/*
 * Sending a manual resync to a deployed lbsync function, as the cluster
 * watcher does: each cloud's way of reaching its function (a Lambda function
 * URL or Invoke, an Azure function key, a GCP identity token) implements
 * ResyncTarget, and every answer is read the same way. The function answers
 * an HTTP resync with its RunResult (core/answer.ts): that is a delivery,
 * even when some LB failed; anything else is the path to it failing.
 */

/** How one resync request ended, as its sender sees it. */
export interface ResyncDelivery {
  /** The function ran the resync and answered (its report may still say an LB failed). */
  readonly delivered: boolean;
  /** Worth sending again after a backoff. */
  readonly retry: boolean;
  /** The HTTP status (200 for a successful Invoke); 0 when nothing answered. */
  readonly status: number;
  /** One line for the log: the outcome, or what went wrong (never a key or token). */
  readonly detail: string;
}

/** Where resync requests go: one deployed function, authenticated. */
export interface ResyncTarget {
  /** For logs, e.g. `gcp identity token -> https://...` (never a credential). */
  readonly description: string;
  /** Send one resync request; never throws for an answer, only for a bug. */
  send(body: ManualRequestBody, signal?: AbortSignal): Promise<ResyncDelivery>;
  /** Release clients. */
  close?(): void;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Read a function's answer: a RunResult body (it has `outcome`) is a
 * delivery, retried only when the function says its sync failed retryably
 * (HTTP triggers have no platform retry, so the caller retries); without one,
 * 408/429/5xx are worth retrying and 401/403 mean the credentials are wrong.
 */
export function classifyAnswer(status: number, body: unknown, text = ''): ResyncDelivery {
  if (isRecord(body) && typeof body.outcome === 'string') {
    const error = isRecord(body.error) && typeof body.error.message === 'string';
    return {
      delivered: body.outcome !== 'invalid',
      retry: body.retryable === true,
      status,
      detail: `HTTP ${status}: outcome ${body.outcome}${error ? `: ${(body.error as { message: string }).message}` : ''}`,
    };
  }
  const retry = status === 0 || status === 408 || status === 429 || status >= 500;
  const hint =
    status === 401 || status === 403
      ? ' (the function refused the credentials: check the key, IAM permission or invoker role)'
      : '';
  const said =
    isRecord(body) && typeof (body.message ?? body.Message) === 'string'
      ? String(body.message ?? body.Message)
      : text.slice(0, 200);
  return {
    delivered: false,
    retry,
    status,
    detail: `HTTP ${status}${hint}${said === '' ? '' : `: ${said}`}`,
  };
}

/** A delivery that never reached the function (network, timeout). */
export function unreachable(what: string, err: unknown): ResyncDelivery {
  const message = err instanceof Error ? err.message : String(err);
  return { delivered: false, retry: true, status: 0, detail: `cannot reach ${what}: ${message}` };
}
