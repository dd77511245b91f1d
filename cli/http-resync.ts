import { errorMessage } from '../core/errors.js';
import {
  classifyAnswer,
  type ResyncDelivery,
  type ResyncTarget,
  unreachable,
} from '../core/resync.js';

/** Options for `postResync`. */
export interface PostResyncOptions {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly force: boolean;
  readonly dryRun: boolean;
  readonly timeoutMs: number;
  /** Extra words for an HTTP status, e.g. how to fix a 401. */
  readonly hint?: (status: number) => string;
  /** Builds the caller's own error class (AzureCliError, GcpCliError). */
  readonly makeError: (message: string, options: { cause?: unknown; retryable: boolean }) => Error;
}

/**
 * POST a manual resync body to a deployed HTTP function and return its JSON
 * report. A report (per-LB results) is the answer even when some LB failed;
 * anything else is an error naming the URL and status (5xx retryable).
 */
export async function postResync(o: PostResyncOptions): Promise<unknown> {
  const body = { lbsync: 'resync', force: o.force, dryRun: o.dryRun };
  let res: Response;
  try {
    res = await fetch(o.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...o.headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(o.timeoutMs),
    });
  } catch (err) {
    throw o.makeError(`cannot reach ${o.url}: ${errorMessage(err)}`, {
      cause: err,
      retryable: true,
    });
  }
  const text = await res.text();
  const hint = o.hint?.(res.status) ?? '';
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw o.makeError(`${o.url} answered ${res.status}${hint}: ${text.slice(0, 300)}`, {
      retryable: res.status >= 500,
    });
  }
  if (typeof json === 'object' && json !== null && 'results' in json) return json;
  const error = (json as { error?: unknown } | null)?.error;
  throw o.makeError(
    `${o.url} answered ${res.status}${hint}: ${String(error ?? text.slice(0, 300))}`,
    {
      retryable: res.status >= 500,
    },
  );
}

/** Options for `httpResyncTarget`. */
export interface HttpResyncTargetOptions {
  readonly url: string;
  /** For logs: how it authenticates and where it posts (never the credential). */
  readonly description: string;
  /** The auth headers, asked per request (tokens expire; keys may rotate). */
  readonly headers: () => Promise<Readonly<Record<string, string>>>;
}

/** POST `body` (JSON text) with `headers` and read the function's answer; never throws. */
export async function postForDelivery(
  url: string,
  headers: Readonly<Record<string, string>>,
  body: string,
  signal?: AbortSignal,
): Promise<ResyncDelivery> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      ...(signal !== undefined ? { signal } : {}),
    });
    text = await res.text();
  } catch (err) {
    return unreachable(url, err);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return classifyAnswer(res.status, json, text);
}

/**
 * A ResyncTarget that POSTs the manual body to an HTTP function and reads
 * its answer with classifyAnswer (core/resync.ts). Never throws: failing to
 * get a token or to reach the URL is a delivery that may be retried.
 */
export function httpResyncTarget(o: HttpResyncTargetOptions): ResyncTarget {
  return {
    description: o.description,
    async send(body, signal) {
      let auth: Readonly<Record<string, string>>;
      try {
        auth = await o.headers();
      } catch (err) {
        return {
          ...unreachable(o.url, err),
          detail: `no credentials for ${o.url}: ${errorMessage(err)}`,
        };
      }
      return postForDelivery(o.url, auth, JSON.stringify(body), signal);
    },
  };
}
