import { invalidResult, type RunResult } from './trigger.js';

/*
 * How a RunResult travels over HTTP, the same on every cloud: the status
 * from `answerOf`, and a body that is the last sync's report (per-LB
 * results, generation, ...) with the run's own fields beside it.
 */

/** The JSON body of an HTTP answer: the report's fields at the top, plus ok/outcome/ignored/error. */
export function httpBody(result: RunResult): Record<string, unknown> {
  const { report, ...run } = result;
  return { ...(report ?? {}), ...run };
}

/** What an HTTP entry point answers: the status from `answerOf` and the body from `httpBody`. */
export interface HttpAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** The answer to an HTTP request refused before any run (wrong method, no token, body not JSON). */
export function refusedAnswer(status: number, message: string): HttpAnswer {
  return { status, body: httpBody(invalidResult(message)) };
}
