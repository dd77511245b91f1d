import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { Logger } from '../../core/log.js';
import type { Reporter, RunResult } from '../../core/trigger.js';
import { describeAwsError } from './errors.js';

/** Source of lbsync's summary events. */
export const REPORT_SOURCE = 'lbsync';

/** What one invocation did, as published to EventBridge. */
export type RunSummary = Pick<RunResult, 'report' | 'error' | 'lifecycle'>;

/** `Sync Applied` | `Sync Unchanged` | `Sync Planned` | `Sync Failed`. */
export function detailTypeOf(summary: RunSummary): string {
  const r = summary.report;
  if (summary.error !== undefined || r === undefined || !r.ok) return 'Sync Failed';
  if (r.dryRun) return 'Sync Planned';
  return r.results.some((x) => x.outcome === 'applied') ? 'Sync Applied' : 'Sync Unchanged';
}

/** The event detail: the report without per-LB plans' id lists (EventBridge caps entries at 256 KB). */
export function detailOf(summary: RunSummary): Record<string, unknown> {
  const r = summary.report;
  return {
    ...(r !== undefined
      ? {
          ...r,
          results: r.results.map(({ plan, ...rest }) => ({
            ...rest,
            ...(plan !== null
              ? {
                  plan: {
                    action: plan.action,
                    reason: plan.reason,
                    added: plan.added?.length ?? null,
                    removed: plan.removed?.length ?? null,
                    draining: plan.draining.length,
                    liveServers: plan.liveServers,
                    desiredServers: plan.desiredServers,
                  },
                }
              : {}),
          })),
        }
      : {}),
    ...(summary.error !== undefined ? { error: summary.error } : {}),
    ...(summary.lifecycle !== undefined ? { lifecycle: summary.lifecycle } : {}),
  };
}

/** Publish the summary; a failure to publish is logged, never fatal to the sync. */
export async function publishSummary(
  client: EventBridgeClient,
  bus: string | null,
  summary: RunSummary,
  logger: Logger,
): Promise<void> {
  if (bus === null) return;
  const detailType = detailTypeOf(summary);
  try {
    const res = await client.send(
      new PutEventsCommand({
        Entries: [
          {
            Source: REPORT_SOURCE,
            DetailType: detailType,
            Detail: JSON.stringify(detailOf(summary)),
            EventBusName: bus,
          },
        ],
      }),
    );
    if ((res.FailedEntryCount ?? 0) > 0) {
      const e = res.Entries?.[0];
      logger.warn(
        { stage: 'report', bus, detailType, error: `${e?.ErrorCode}: ${e?.ErrorMessage}` },
        'summary event rejected by EventBridge',
      );
    }
  } catch (err) {
    logger.warn(
      { stage: 'report', bus, detailType, error: describeAwsError(err) },
      'could not publish the summary event',
    );
  }
}

/** The AWS Reporter: one summary event per run on the spec's report bus (none when null). */
export class EventBridgeReporter implements Reporter {
  public constructor(
    private readonly client: EventBridgeClient,
    private readonly bus: string | null,
  ) {}

  /** Publish; ignored triggers and invalid requests are not runs and publish nothing. */
  public async publish(result: RunResult, logger: Logger): Promise<void> {
    if (result.outcome === 'ignored' || result.outcome === 'invalid') return;
    await publishSummary(this.client, this.bus, result, logger);
  }
}
