import { httpBody } from '../../core/answer.js';
import {
  answerOf,
  invalidResult,
  manualTrigger,
  type RunResult,
  type Trigger,
} from '../../core/trigger.js';

/*
 * The Lambda function URL the cluster watcher POSTs to (stacks/aws-kubernetes.ts
 * creates it with AuthType AWS_IAM). Lambda hands such a request over as a
 * payload-format-2.0 event, with the body as a string, and turns a returned
 * `{statusCode, headers, body}` into the HTTP answer. Only a manual resync
 * body is accepted here. AWS checks the SigV4 signature and the caller's
 * lambda:InvokeFunctionUrl permission before the function runs; a request
 * that arrives without the IAM authorizer context (a URL deployed with
 * AuthType NONE) is refused anyway, as the GCP handler refuses one without
 * a token.
 */

/** The parts of a function URL event (payload format 2.0) lbsync reads. */
export interface FunctionUrlEvent {
  readonly version: '2.0';
  readonly rawPath: string;
  readonly body?: string;
  readonly isBase64Encoded?: boolean;
  readonly requestContext: {
    readonly http: { readonly method: string };
    readonly authorizer?: { readonly iam?: { readonly userArn?: string } };
  };
}

/** What a function URL invocation returns. */
export interface FunctionUrlResponse {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** True for a function URL (or API Gateway HTTP API) event. */
export function isFunctionUrlEvent(event: unknown): event is FunctionUrlEvent {
  if (typeof event !== 'object' || event === null) return false;
  const e = event as Record<string, unknown>;
  const ctx = e.requestContext as Record<string, unknown> | undefined;
  return (
    e.version === '2.0' &&
    typeof e.rawPath === 'string' &&
    typeof ctx === 'object' &&
    ctx !== null &&
    typeof ctx.http === 'object' &&
    ctx.http !== null
  );
}

function refusal(statusCode: number, message: string): FunctionUrlResponse {
  return { ...functionUrlResponse(invalidResult(message)), statusCode };
}

/** The trigger of a function URL request, or the answer that refuses it. */
export function functionUrlTrigger(
  event: FunctionUrlEvent,
): { readonly trigger: Trigger } | { readonly refused: FunctionUrlResponse } {
  if (event.requestContext.http.method !== 'POST') return { refused: refusal(405, 'use POST') };
  if (event.requestContext.authorizer?.iam === undefined) {
    return { refused: refusal(401, 'the function URL must use AuthType AWS_IAM') };
  }
  const text =
    event.isBase64Encoded === true
      ? Buffer.from(event.body ?? '', 'base64').toString('utf8')
      : (event.body ?? '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { refused: refusal(400, 'the request body must be JSON') };
  }
  return { trigger: manualTrigger(body) };
}

/**
 * The HTTP answer for a run: the same status and body as the Azure and GCP
 * HTTP functions. Never thrown: Lambda does not retry a synchronous
 * invocation, the caller reads the status (503: retry) and retries itself.
 * Only the keys of Lambda's response format: the run's fields are in the
 * body, and AWS documents no behaviour for other top-level keys.
 */
export function functionUrlResponse(result: RunResult): FunctionUrlResponse {
  return {
    statusCode: answerOf(result).status,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(httpBody(result)),
  };
}
