import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsTriggerDeps, createAwsHandler } from '../../adapters/aws/entry.js';
import { buildRuntime } from '../../adapters/runtime.js';
import { type Spec, validateSpec } from '../../adapters/spec.js';
import { awsWatchTarget } from '../../cli/aws.js';
import { azureWatchTarget } from '../../cli/azure.js';
import { memoryLogger } from '../../core/log.js';
import type { ResyncTarget } from '../../core/resync.js';
import { configureAzureFunction } from '../../functions/azure.js';
import { FakeAws } from '../fakes/aws/fake-aws.js';
import { FakeFunctionUrl } from '../fakes/aws/function-url.js';
import { startAzureHost } from '../helpers/azure-host.js';

/*
 * The watcher's AWS and Azure targets against the real handlers: a SigV4
 * checking function URL and Lambda Invoke (the AWS fake) in front of the
 * AWS handler, and a function-key checking stand-in for the Functions host
 * in front of the Azure HTTP handler. The function answers dry runs on a
 * local spec, so nothing but the path to it is under test here; the whole
 * chain runs in watcher.test.ts.
 */

// Ports 19100-19199 belong to this file.
const URL_PORT = 19101;
const AWS_PORT = 19102;
const AZURE_PORT = 19103;
const KEY = 'function-key-for-watch-tests';
const DRY = { lbsync: 'resync', force: false, dryRun: true } as const;

describe('lbsync watch targets: how the watcher reaches each cloud function', () => {
  let dir: string;
  let spec: Spec;
  let functionUrl: FakeFunctionUrl;
  let aws: FakeAws;
  let azureHost: Awaited<ReturnType<typeof startAzureHost>>;
  const targets: ResyncTarget[] = [];
  const target = <T extends ResyncTarget>(t: T): T => {
    targets.push(t);
    return t;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-e2e-watch-targets-'));
    spec = validateSpec({
      name: 'targets',
      workers: { source: 'static', workers: [{ id: 'w1', address: '10.0.0.1' }] },
      loadBalancers: {
        transport: 'local',
        lbs: [{ name: 'lb-1', configPath: join(dir, 'haproxy.cfg'), stateDir: join(dir, 'state') }],
      },
      services: [{ name: 'http', bind: ':19150', nodePort: 30080 }],
    });
    const rt = await buildRuntime({ spec, logger: memoryLogger([]) });
    const handler = createAwsHandler(awsTriggerDeps(rt), rt.logger);
    functionUrl = await FakeFunctionUrl.start({
      port: URL_PORT,
      region: 'eu-west-1',
      secrets: { AKIAWATCHER: 'watcher-secret' },
      handler: (e) => handler(e),
    });
    aws = await FakeAws.start({ port: AWS_PORT });
    aws.addFunction('lbsync-targets', (e) => handler(e));
    aws.addFunction('lbsync-broken', async () => {
      throw new Error('the LB did not answer');
    });
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: 'AKIAWATCHER',
      AWS_SECRET_ACCESS_KEY: 'watcher-secret',
      AWS_ENDPOINT_URL_LAMBDA: `http://127.0.0.1:${AWS_PORT}`,
      AWS_MAX_ATTEMPTS: '1',
    });
    configureAzureFunction({ spec, logger: memoryLogger([]) });
    azureHost = await startAzureHost(AZURE_PORT, KEY);
  });

  afterAll(async () => {
    for (const t of targets) t.close?.();
    await functionUrl?.stop();
    await aws?.stop();
    await azureHost?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs the POST to an IAM function URL with SigV4 for lambda, and the function plans', async () => {
    // Act
    const t = target(awsWatchTarget({ url: `http://127.0.0.1:${URL_PORT}/`, region: 'eu-west-1' }));
    const d = await t.send(DRY);
    // Assess
    expect(d).toMatchObject({ delivered: true, retry: false, status: 200 });
    expect(d.detail).toMatch(/outcome synced/);
    expect(functionUrl.requests.at(-1)).toEqual({ status: 200, accessKey: 'AKIAWATCHER' });
  });

  it('is refused by the function URL with a wrong secret, and does not retry that', async () => {
    // Prepare
    process.env.AWS_SECRET_ACCESS_KEY = 'not-the-secret';
    try {
      const t = target(
        awsWatchTarget({ url: `http://127.0.0.1:${URL_PORT}/`, region: 'eu-west-1' }),
      );
      // Act
      const d = await t.send(DRY);
      // Assess
      expect(d).toMatchObject({ delivered: false, retry: false, status: 403 });
      expect(d.detail).toMatch(/refused the credentials/);
    } finally {
      process.env.AWS_SECRET_ACCESS_KEY = 'watcher-secret';
    }
  });

  it('needs a region for a URL that does not name one', () => {
    expect(() => awsWatchTarget({ url: 'https://lbsync.example.com/' })).toThrow(/--region/);
  });

  it('invokes the Lambda with RequestResponse, and retries a function error', async () => {
    // Act
    const ok = await target(
      awsWatchTarget({ function: 'lbsync-targets', region: 'eu-west-1' }),
    ).send(DRY);
    const broken = await target(
      awsWatchTarget({ function: 'lbsync-broken', region: 'eu-west-1' }),
    ).send(DRY);
    // Assess
    expect(ok).toMatchObject({ delivered: true, retry: false, status: 200 });
    expect(broken).toMatchObject({ retry: true });
    expect(broken.detail).toMatch(/the LB did not answer/);
    expect(aws.count('Invoke')).toBe(2);
  });

  it('posts to the Azure function with its key; a wrong key is refused for good', async () => {
    const url = azureHost.url;
    // Act
    const ok = await target(azureWatchTarget({ url, key: KEY })).send(DRY);
    const wrong = await target(azureWatchTarget({ url, key: 'wrong' })).send(DRY);
    // Assess
    expect(ok).toMatchObject({ delivered: true, retry: false, status: 200 });
    expect(wrong).toMatchObject({ delivered: false, retry: false, status: 401 });
  });
});
