import { describe, expect, it } from 'vitest';
import { AWS_FORCE_HINT, createAwsHandler } from '../../adapters/aws/entry.js';
import { createAzureEntry } from '../../adapters/azure/entry.js';
import { createGcpEntry } from '../../adapters/gcp/entry.js';
import { StaticSource } from '../../adapters/local/source.js';
import { type Spec, validateSpec } from '../../adapters/spec.js';
import { TransportError } from '../../core/errors.js';
import { memoryLogger } from '../../core/log.js';
import type { ApplyResult, LbTarget, LiveState } from '../../core/model.js';
import type { Payload } from '../../core/payload.js';
import type { Transport } from '../../core/ports.js';
import { compileTemplate } from '../../core/render.js';
import { answerOf, type SyncFailedError, type TriggerDeps } from '../../core/trigger.js';
import { runResultOf } from '../helpers/functions.js';

/*
 * What every cloud's entry point answers for the same run outcome: one HTTP
 * status, one retry verdict, the same report fields. The LB side is an
 * in-memory transport that answers what each case needs; the entry points,
 * the trigger layer and runSync are the real ones.
 */

type Outcome = 'applied' | 'rejected' | 'lost' | 'refused-by-guard';

/** An LB that answers with `outcome`: the script's result, or a lost result line. */
class ScriptedTransport implements Transport {
  public constructor(private readonly outcome: Outcome) {}

  public async targets(): Promise<readonly LbTarget[]> {
    return [{ id: 'lb-1' }];
  }

  public async status(): Promise<LiveState> {
    if (this.outcome === 'refused-by-guard') {
      return { generation: 1, sha256: 'f'.repeat(64), servers: 10, workerIds: [...'abcdefghij'] };
    }
    return { generation: 0, sha256: null, servers: 0 };
  }

  public async apply(_t: LbTarget, p: Payload): Promise<ApplyResult> {
    if (this.outcome === 'lost') {
      throw new TransportError('lb-1: the apply command ended without a result line', {
        retryable: true,
      });
    }
    if (this.outcome === 'refused-by-guard') {
      // What the LB answers when the push would remove too many of its live workers.
      return {
        result: 'refused',
        generation: p.generation,
        sha256: p.sha256,
        servers: 10,
        ms: 1,
        message: 'would remove 10 of 10 live workers (100% > guards.maxRemovalPercent=50)',
      };
    }
    const result = this.outcome === 'applied' ? 'applied' : 'rejected';
    return { result, generation: p.generation, sha256: p.sha256, servers: p.servers, ms: 1 };
  }
}

const spec: Spec = validateSpec({
  name: 'answers',
  workers: { source: 'static', workers: [{ id: 'w1', address: '10.0.0.1' }] },
  loadBalancers: {
    transport: 'local',
    lbs: [{ name: 'lb-1', configPath: '/x/h.cfg', stateDir: '/x' }],
  },
  services: [{ name: 'http', bind: ':80', nodePort: 30080 }],
});

function deps(outcome: Outcome): TriggerDeps & { readonly spec: Spec } {
  return {
    spec,
    template: compileTemplate('global\n{{#each services}}# {{name}}\n{{/each}}'),
    source: new StaticSource([{ id: 'w1', address: '10.0.0.1', state: 'serving' }]),
    transport: new ScriptedTransport(outcome),
    logger: memoryLogger(),
    forceHint: AWS_FORCE_HINT,
  };
}

const manual = { lbsync: 'resync' };
const badManual = { lbsync: 'resync', force: 'yes' };
const foreign = { source: 'aws.ec2', 'detail-type': 'EC2 Instance State-change Notification' };

/** Every cloud's answer to one input: status code and whether the platform retries. */
async function answers(
  outcome: Outcome,
  body: unknown,
): Promise<Record<'aws' | 'azure' | 'gcp', { status: number; retry: boolean }>> {
  const log = memoryLogger();
  const aws = await createAwsHandler(
    deps(outcome),
    log,
  )(body).then(
    (r) => ({ status: answerOf(runResultOf(r)).status, retry: false }),
    (e: unknown) => ({
      status: (e as SyncFailedError).name === 'SyncFailedError' ? 503 : 500,
      retry: true,
    }),
  );
  const azure = await createAzureEntry(deps(outcome)).http(body, log);
  const gcp = await createGcpEntry(deps(outcome)).http(
    {
      method: 'POST',
      body,
      header: (n) => (n === 'authorization' ? 'Bearer id-token' : undefined),
    },
    log,
  );
  return {
    aws,
    azure: { status: azure.status, retry: azure.status === 503 },
    gcp: { status: gcp.status, retry: gcp.status === 503 },
  };
}

describe('answers: one status and one retry verdict on every cloud', () => {
  it.each([
    { outcome: 'applied' as const, body: manual, status: 200, retry: false },
    { outcome: 'rejected' as const, body: manual, status: 422, retry: false },
    { outcome: 'refused-by-guard' as const, body: manual, status: 422, retry: false },
    { outcome: 'lost' as const, body: manual, status: 503, retry: true },
    { outcome: 'applied' as const, body: badManual, status: 400, retry: false },
  ])('answers $status (retry $retry) when the LB ends $outcome for $body', async (c) => {
    const a = await answers(c.outcome, c.body);
    expect(a).toEqual({
      aws: { status: c.status, retry: c.retry },
      azure: { status: c.status, retry: c.retry },
      gcp: { status: c.status, retry: c.retry },
    });
  });

  it('marks an input that is not for lbsync ignored with ok true on the event paths, and names the reason', async () => {
    const log = memoryLogger();
    const aws = runResultOf(await createAwsHandler(deps('applied'), log)(foreign));
    const azure = await createAzureEntry(deps('applied')).eventGrid(
      { eventType: 'Other.Event' },
      log,
    );
    const gcp = await createGcpEntry(deps('applied')).cloudEvent({ type: 'other' }, log);
    for (const r of [aws, azure, gcp]) {
      expect(r).toMatchObject({ ok: true, outcome: 'ignored', retryable: false });
      expect(typeof r.ignored).toBe('string');
    }
  });

  it('answers a malformed manual body ok false, outcome invalid, never ignored', async () => {
    const r = runResultOf(await createAwsHandler(deps('applied'), memoryLogger())(badManual));
    expect(r).toMatchObject({ ok: false, outcome: 'invalid', retryable: false });
    expect(r.ignored).toBeUndefined();
    expect(r.error?.message).toMatch(/force must be true or false/);
  });

  it('tells a function caller how to force past a guard in its own terms', async () => {
    const r = runResultOf(await createAwsHandler(deps('refused-by-guard'), memoryLogger())(manual));
    const refusal = r.report?.results[0];
    expect(refusal?.outcome).toBe('refused');
    expect(refusal?.message).toContain('{"lbsync":"resync","force":true}');
    expect(refusal?.message).not.toContain('--force');
  });
});
