import { describe, expect, it } from 'vitest';
import { AWS_FORCE_HINT, createAwsHandler } from '../../adapters/aws/entry.js';
import { StaticSource } from '../../adapters/local/source.js';
import { validateSpec } from '../../adapters/spec.js';
import { createLogger } from '../../core/log.js';
import type { ApplyResult, LbTarget, LiveState } from '../../core/model.js';
import type { Payload } from '../../core/payload.js';
import { compileTemplate } from '../../core/render.js';

/** Top-level keys of one JSON line, in order, duplicates kept (JSON.parse would drop them). */
function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') {
      let j = i + 1;
      while (j < line.length && line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      if (depth === 1 && line[j + 1] === ':') keys.push(JSON.parse(line.slice(i, j + 1)) as string);
      i = j;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return keys;
}

describe('structured logs', () => {
  it('carry each key once per line, with cloud, group, lb and generation where known', async () => {
    // Prepare: a real pino logger, bound the way the functions bind it.
    const lines: string[] = [];
    const logger = createLogger({
      base: { cloud: 'aws' },
      destination: { write: (l: string) => lines.push(...l.trim().split('\n')) },
    });
    const spec = validateSpec({
      name: 'logs',
      workers: { source: 'static', workers: [{ id: 'w1', address: '10.0.0.1' }] },
      loadBalancers: {
        transport: 'local',
        lbs: [{ name: 'lb-1', configPath: '/x/h.cfg', stateDir: '/x' }],
      },
      services: [{ name: 'http', bind: ':80', nodePort: 30080 }],
    });
    const transport = {
      targets: async (): Promise<readonly LbTarget[]> => [{ id: 'lb-1' }],
      status: async (): Promise<LiveState> => ({ generation: 0, sha256: null, servers: 0 }),
      apply: async (_t: LbTarget, p: Payload): Promise<ApplyResult> => ({
        result: 'applied',
        generation: p.generation,
        sha256: p.sha256,
        servers: p.servers,
        ms: 1,
      }),
    };
    const handle = createAwsHandler(
      {
        spec,
        template: compileTemplate('global\n'),
        source: new StaticSource([{ id: 'w1', address: '10.0.0.1', state: 'serving' }]),
        transport,
        logger,
        forceHint: AWS_FORCE_HINT,
      },
      logger,
    );
    const event = {
      version: '0',
      id: 'e-1',
      source: 'aws.autoscaling',
      'detail-type': 'EC2 Instance Launch Successful',
      detail: { AutoScalingGroupName: 'g', EC2InstanceId: 'i-1' },
    };

    // Act: a manual resync and an ignored event.
    await handle({ lbsync: 'resync' }, { awsRequestId: 'req-1' });
    await handle(event);

    // Assess
    expect(lines.length).toBeGreaterThanOrEqual(5);
    for (const line of lines) {
      const keys = topLevelKeys(line);
      expect(
        keys.filter((k, i) => keys.indexOf(k) !== i),
        line,
      ).toEqual([]);
      expect(
        keys.filter((k) => k === 'cloud'),
        line,
      ).toEqual(['cloud']);
    }
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const stages = parsed.map((l) => l.stage);
    expect(stages).toEqual(
      expect.arrayContaining(['trigger', 'resolve', 'render', 'plan', 'push', 'report']),
    );
    for (const l of parsed.filter((x) => x.stage === 'push' || x.stage === 'plan')) {
      expect(l).toMatchObject({
        cloud: 'aws',
        lb: 'lb-1',
        generation: expect.any(Number),
        requestId: 'req-1',
      });
    }
  });
});
