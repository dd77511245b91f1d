import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { type HttpAnswer, httpBody, refusedAnswer } from '../../core/answer.js';
import { initFailure, initResult } from '../../core/cold-start.js';
import type { Logger } from '../../core/log.js';
import {
  answerOf,
  type RunResult,
  runTrigger,
  SyncFailedError,
  type Trigger,
  type TriggerDeps,
} from '../../core/trigger.js';
import type { Spec } from '../spec.js';
import type { aksClusterAccess as Access } from './aks.js';
import { type EventScope, eventGridTrigger, httpTrigger } from './events.js';
import { invocationLogger } from './log.js';
import type { RunCommandTransportSpec, VmssSourceSpec } from './provider.js';

/**
 * The function's own identity for `kubernetes.cluster` (handed to
 * buildFunctionRuntime). Loaded on first use: this module is in the entry
 * point's static graph, and aks.js (the ARM container service client, yaml)
 * would add to every cold import.
 */
export const aksClusterAccess: typeof Access = async (request, ctx, signal) =>
  (await import('./aks.js')).aksClusterAccess(request, ctx, signal);

/** How an HTTP caller of the Azure function forces past a guard. */
export const AZURE_FORCE_HINT = 'POST {"lbsync":"resync","force":true} to apply anyway';

/** The Azure entry points, independent of @azure/functions so they are plain to test. */
export interface AzureEntry {
  /** Event Grid (or a queued copy): throws when the platform should retry. */
  eventGrid(event: unknown, logger: Logger): Promise<RunResult>;
  /** HTTP: manual resync or the autoscale webhook payload. */
  http(body: unknown, logger: Logger): Promise<HttpAnswer>;
  /** Timer: periodic resync; throws when the platform should retry. */
  timer(logger: Logger): Promise<RunResult>;
}

/** What Event Grid events are matched against: the spec's scale sets and LB VMs. */
export function eventScope(spec: Spec): EventScope {
  const workers = spec.workers as Partial<VmssSourceSpec>;
  const lbs = spec.loadBalancers as Partial<RunCommandTransportSpec>;
  const vmss = workers.source === 'azure-vmss' ? (workers as VmssSourceSpec) : undefined;
  return {
    subscriptionId: vmss?.subscriptionId ?? lbs.subscriptionId ?? '',
    scaleSets: vmss?.scaleSets ?? [],
    lbVms: (lbs.transport === 'azure-run-command' ? (lbs.vms ?? []) : []).filter(
      (v) => v.scaleSet === undefined,
    ),
  };
}

/** The Azure entry points over trigger deps. */
export function createAzureEntry(deps: TriggerDeps & { readonly spec: Spec }): AzureEntry {
  const scope = eventScope(deps.spec);
  const run = (t: Trigger, logger: Logger): Promise<RunResult> => runTrigger(t, deps, logger);
  const orThrow = (r: RunResult): RunResult => {
    if (answerOf(r).retry) throw new SyncFailedError(r);
    return r;
  };
  return {
    async eventGrid(event, logger) {
      return orThrow(await run(eventGridTrigger(event, scope), logger));
    },
    async timer(logger) {
      return orThrow(
        await run({ kind: 'sync', detail: 'timer', request: { reason: 'schedule' } }, logger),
      );
    },
    async http(body, logger) {
      const result = await run(httpTrigger(body, scope), logger);
      return { status: answerOf(result).status, body: httpBody(result) };
    },
  };
}

/** The Azure additions to a runtime: the autoscale settle window (LBSYNC_AZURE_SETTLE_*). */
export function azureTriggerDeps<R extends TriggerDeps & { readonly spec: Spec }>(
  rt: R,
  env: NodeJS.ProcessEnv = process.env,
): R {
  const n = (name: string): number | undefined => {
    const v = Number(env[name]);
    return env[name] !== undefined && env[name] !== '' && Number.isFinite(v) && v >= 0
      ? v
      : undefined;
  };
  const intervalMs = n('LBSYNC_AZURE_SETTLE_INTERVAL_MS');
  const maxChecks = n('LBSYNC_AZURE_SETTLE_CHECKS');
  if (intervalMs === undefined && maxChecks === undefined) return rt;
  return { ...rt, settle: { intervalMs: intervalMs ?? 20_000, maxChecks: maxChecks ?? 5 } };
}

/** The @azure/functions handlers over a (lazily built) entry: parsing and logging per invocation. */
export function azureFunctionHandlers(entry: () => Promise<AzureEntry>): {
  readonly onEventGrid: (event: unknown, context: InvocationContext) => Promise<void>;
  readonly onHttp: (req: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;
  readonly onQueuedEvent: (message: unknown, context: InvocationContext) => Promise<void>;
  readonly onTimer: (timer: unknown, context: InvocationContext) => Promise<void>;
} {
  const log = (c: InvocationContext): Logger =>
    invocationLogger(c, { cloud: 'azure', invocationId: c.invocationId });
  // A bad spec is answered, not retried; a transient cold-start failure throws so Azure retries.
  const ready = (): Promise<AzureEntry | null> =>
    entry().catch((err: unknown) => {
      initFailure(err, 'azure');
      return null;
    });
  const onEventGrid = async (event: unknown, context: InvocationContext): Promise<void> => {
    await (await ready())?.eventGrid(event, log(context));
  };
  return {
    onEventGrid,
    async onHttp(req, context) {
      let body: unknown;
      try {
        body = JSON.parse(await req.text());
      } catch {
        const refused = refusedAnswer(400, 'the request body must be JSON');
        return { status: refused.status, jsonBody: refused.body };
      }
      const e = await entry().catch((err: unknown) => initResult(err, 'azure'));
      if ('ok' in e) return { status: answerOf(e).status, jsonBody: httpBody(e) };
      const answer = await e.http(body, log(context));
      return { status: answer.status, jsonBody: answer.body };
    },
    async onQueuedEvent(message, context) {
      let parsed = message;
      if (typeof message === 'string') {
        try {
          parsed = JSON.parse(message);
        } catch {
          parsed = message; // not JSON: the classifier ignores it with a reason
        }
      }
      for (const e of Array.isArray(parsed) ? parsed : [parsed]) await onEventGrid(e, context);
    },
    async onTimer(_timer, context) {
      await (await ready())?.timer(log(context));
    },
  };
}
