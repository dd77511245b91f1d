import type { CloudEvent, Request, Response } from '@google-cloud/functions-framework';
import { type HttpAnswer, httpBody, refusedAnswer } from '../../core/answer.js';
import { initFailure, initResult } from '../../core/cold-start.js';
import type { Logger } from '../../core/log.js';
import {
  answerOf,
  manualTrigger,
  type RunResult,
  runTrigger,
  SyncFailedError,
  type Trigger,
  type TriggerDeps,
} from '../../core/trigger.js';
import type { Spec } from '../spec.js';
import { auditLogTrigger } from './event.js';
import type { gkeClusterAccess as Access } from './gke.js';

/**
 * The function's own identity for `kubernetes.cluster` (handed to
 * buildFunctionRuntime). Loaded on first use: this module is in the entry
 * point's static graph, and gke.js (google-auth-library, the Container API)
 * would add to every cold import.
 */
export const gkeClusterAccess: typeof Access = async (request, ctx, signal) =>
  (await import('./gke.js')).gkeClusterAccess(request, ctx, signal);

/** How an HTTP caller of the GCP function forces past a guard. */
export const GCP_FORCE_HINT = 'POST {"lbsync":"resync","force":true} to apply anyway';

/** The parts of an HTTP request the resync handler reads. */
export interface ResyncHttpRequest {
  readonly method: string;
  readonly body: unknown;
  header(name: string): string | undefined;
}

/** The two GCP entry points, free of the Functions Framework. */
export interface GcpEntry {
  /** An Eventarc audit-log CloudEvent; throws when the platform should redeliver. */
  cloudEvent(event: unknown, logger: Logger): Promise<RunResult>;
  /** A manual or Cloud Scheduler resync over authenticated HTTP. */
  http(req: ResyncHttpRequest, logger: Logger): Promise<HttpAnswer>;
}

/** The GCP entry points over trigger deps. */
export function createGcpEntry(deps: TriggerDeps & { readonly spec: Spec }): GcpEntry {
  return {
    async cloudEvent(event, logger) {
      const result = await runTrigger(auditLogTrigger(event, deps.spec.workers), deps, logger);
      if (answerOf(result).retry) throw new SyncFailedError(result);
      return result;
    },
    async http(req, logger) {
      if (req.method !== 'POST') return refusedAnswer(405, 'use POST');
      // The platform verified the token; a request without one is refused here too.
      if (!/^Bearer \S+$/.test(req.header('authorization') ?? '')) {
        return refusedAnswer(401, 'an identity token (Authorization: Bearer) is required');
      }
      let trigger: Trigger = manualTrigger(req.body);
      // Cloud Scheduler identifies itself; its runs are the periodic safety net.
      if (
        trigger.kind === 'sync' &&
        /Google-Cloud-Scheduler/i.test(req.header('user-agent') ?? '')
      ) {
        trigger = {
          ...trigger,
          detail: 'Cloud Scheduler',
          request: { ...trigger.request, reason: 'schedule' },
        };
      }
      const result = await runTrigger(trigger, deps, logger);
      return { status: answerOf(result).status, body: httpBody(result) };
    },
  };
}

/** The Functions Framework handlers over a (lazily built) entry and its logger. */
export function gcpFunctionHandlers(
  entry: () => Promise<{ readonly gcp: GcpEntry; readonly log: Logger }>,
): {
  readonly onEvent: (event: CloudEvent<unknown>) => Promise<void>;
  readonly onHttp: (req: Request, res: Response) => Promise<void>;
} {
  return {
    async onEvent(event) {
      // A bad spec is answered, not redelivered; a transient cold-start failure throws.
      const e = await entry().catch((err: unknown) => void initFailure(err, 'gcp'));
      await e?.gcp.cloudEvent(event, e.log);
    },
    async onHttp(req, res) {
      const e = await entry().catch((err: unknown) => initResult(err, 'gcp'));
      if ('ok' in e) {
        res.status(answerOf(e).status).json(httpBody(e));
        return;
      }
      const header = (name: string): string | undefined => req.get(name);
      const answer = await e.gcp.http({ method: req.method, body: req.body, header }, e.log);
      res.status(answer.status).json(answer.body);
    },
  };
}
