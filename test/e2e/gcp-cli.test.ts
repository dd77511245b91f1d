import type { Server } from 'node:http';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateSpec } from '../../adapters/spec.js';
import { GcpCliError, resyncGcp } from '../../cli/gcp.js';
import { statusOf } from '../../cli/lb-status.js';
import { memoryLogger } from '../../core/log.js';
import { configureGcpFunction } from '../../functions/gcp.js';
import { FakeCompute } from '../fakes/gcp/compute.js';

// Ports 24300-24399 belong to this file; no LB VMs (dry runs and status only).
const COMPUTE_PORT = 24301;
const FUNCTION_PORT = 24302;

describe('lbsync resync/status --cloud gcp', () => {
  let compute: FakeCompute;
  let server: Server;
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: 'fake-token', expiry_date: Date.now() + 3_600_000 });
  const clientOptions = {
    apiEndpoint: '127.0.0.1',
    port: COMPUTE_PORT,
    protocol: 'http',
    authClient,
  } as const;
  const spec = validateSpec({
    name: 'gcp-cli',
    cloud: 'gcp',
    workers: {
      gcp: { project: 'lbsync-demo', groups: [{ name: 'web-a', zone: 'europe-west1-b' }] },
    },
    loadBalancers: {
      gcp: {
        instances: [
          { name: 'lb-1', zone: 'europe-west1-b' },
          { name: 'lb-2', zone: 'europe-west1-b' },
        ],
      },
    },
    services: [{ name: 'http', bind: '127.0.0.1:24350', nodePort: 30080 }],
  });
  const url = `http://127.0.0.1:${FUNCTION_PORT}/`;

  beforeAll(async () => {
    compute = await FakeCompute.start(COMPUTE_PORT);
    compute.addMig({ name: 'web-a', zone: 'europe-west1-b' });
    compute.addInstance({
      name: 'web-a-1',
      zone: 'europe-west1-b',
      ip: '10.1.0.1',
      mig: 'zones/europe-west1-b/web-a',
    });
    compute.addInstance({ name: 'lb-1', zone: 'europe-west1-b', ip: '10.0.0.1' });
    compute.addInstance({ name: 'lb-2', zone: 'europe-west1-b', ip: '10.0.0.2' });
    compute
      .instance('lb-1')
      .guest.set(
        'lbsync/status',
        '{"lbsync":1,"result":"status","generation":1700000000000,"sha256":"ab12","servers":6,"ms":3,"message":""}\n',
      );
    configureGcpFunction({ spec, logger: memoryLogger([]), tuning: { gcp: { clientOptions } } });
    server = getTestServer('lbsyncGcpResync');
    await new Promise<void>((resolve) =>
      server.listen(FUNCTION_PORT, '127.0.0.1', () => resolve()),
    );
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await compute.stop();
  });

  it('resync --dry-run returns the per-LB plans of the function, guards included, and writes nothing', async () => {
    const report = (await resyncGcp({ url, dryRun: true, idToken: 'id-token' })) as {
      dryRun: boolean;
      results: { lb: string; outcome: string }[];
    };
    expect(report.dryRun).toBe(true);
    expect(report.results.map((r) => [r.lb, r.outcome])).toEqual([
      // lb-1 reports 6 live servers; dropping to 1 trips the removal guard.
      ['lb-1', 'refused'],
      ['lb-2', 'planned'],
    ]);
    expect(compute.count(/setMetadata$/)).toBe(0);
  });

  it('resync fails with a clear error when the function refuses the request', async () => {
    const err = await resyncGcp({
      url: `http://127.0.0.1:${FUNCTION_PORT}/nope`,
      idToken: ' ',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GcpCliError);
    expect((err as Error).message).toMatch(/answered 401/);
  });

  it('status reads what each agent published to guest attributes', async () => {
    const status = await statusOf(spec, {
      tuning: { gcp: { clientOptions, retry: { attempts: 2, baseMs: 200 } } },
    });
    expect(status).toEqual([
      { lb: 'lb-1', generation: 1700000000000, sha256: 'ab12', servers: 6 },
      { lb: 'lb-2', generation: 0, sha256: null, servers: 0 },
    ]);
  });
});
