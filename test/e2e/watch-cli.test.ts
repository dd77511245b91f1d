import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateSpec } from '../../adapters/spec.js';
import { memoryLogger } from '../../core/log.js';
import { configureAzureFunction } from '../../functions/azure.js';
import { FakeKubernetes } from '../fakes/kubernetes/fake-kubernetes.js';
import { startAzureHost } from '../helpers/azure-host.js';
import { waitFor } from '../helpers/wait.js';

/*
 * `lbsync watch` as a process, configured the way the Deployment's ConfigMap
 * and Secret configure it (environment variables), against the Kubernetes
 * fake and the Azure function behind its key. Real clock: the test waits for
 * POST counts, never for time, and asserts no exact count where a debounce
 * window would decide it (watcher.test.ts does that on a manual clock).
 */

// Ports 19200-19299 belong to this file.
const API_PORT = 19201;
const HOST_PORT = 19202;
const KEY = 'function-key-for-the-watch-process';
const root = join(import.meta.dirname, '../..');

describe('lbsync watch, the process', () => {
  let dir: string;
  let fake: FakeKubernetes;
  let host: Awaited<ReturnType<typeof startAzureHost>>;
  let kubeconfig: string;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lbsync-e2e-watch-cli-'));
    fake = await FakeKubernetes.start({ port: API_PORT });
    fake.addToken('watcher-token', { user: 'watcher', groups: [] });
    fake.grant({ user: 'watcher' }, [
      { apiGroups: [''], resources: ['nodes', 'services'], verbs: ['get', 'list', 'watch'] },
    ]);
    fake.objects.addNode({ name: 'node-1', internalIP: '10.0.0.1' });
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, fake.kubeconfig('watcher-token', 'w'));
    configureAzureFunction({
      spec: validateSpec({
        name: 'watch-cli',
        workers: { source: 'static', workers: [{ id: 'w1', address: '10.0.0.1' }] },
        loadBalancers: {
          transport: 'local',
          lbs: [
            { name: 'lb-1', configPath: join(dir, 'haproxy.cfg'), stateDir: join(dir, 'state') },
          ],
        },
        services: [{ name: 'http', bind: ':19250', nodePort: 30080 }],
      }),
      logger: memoryLogger([]),
    });
    host = await startAzureHost(HOST_PORT, KEY);
  });

  afterAll(async () => {
    child?.kill('SIGKILL');
    await host?.close();
    await fake?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('resyncs once it is caught up and on a new Service, and stops cleanly on SIGTERM', async () => {
    // Prepare
    let stderr = '';
    const p = spawn(
      process.execPath,
      [join(root, 'bin/lbsync.js'), 'watch', '--kubeconfig', kubeconfig, '--dry-run'],
      {
        cwd: root,
        env: {
          ...process.env,
          LBSYNC_WATCH_TARGET: 'azure',
          LBSYNC_WATCH_URL: host.url,
          LBSYNC_FUNCTION_KEY: KEY,
          LBSYNC_WATCH_DEBOUNCE_MS: '50',
          LBSYNC_LOG_LEVEL: 'info',
          // Its default (:8081, every interface) is for the pod; watch-health.test.ts covers it.
          LBSYNC_WATCH_HEALTH_ADDR: 'off',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    child = p;
    p.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => p.on('close', (code) => resolve(code)));

    // Act and assess: the start resync, then one for the Service.
    await waitFor(() => host.posts() >= 1, 'the start resync', { timeoutMs: 30_000 });
    const before = host.posts();
    fake.objects.addService({
      name: 'web',
      loadBalancerClass: 'lbsync.io/haproxy',
      ports: [{ port: 80, nodePort: 30080 }],
    });
    await waitFor(() => host.posts() > before, 'the resync for the new Service', {
      timeoutMs: 30_000,
    });
    await waitFor(
      () => (stderr.match(/resync delivered/g) ?? []).length >= 2,
      'two delivered lines',
    );
    p.kill('SIGTERM');
    expect(await exited).toBe(0);
    const lines = stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.some((l) => l.msg === 'watch: stopping' && l.signal === 'SIGTERM')).toBe(true);
    const delivered = lines.filter((l) => String(l.msg).startsWith('watch: resync delivered'));
    expect(delivered[1]?.changes).toEqual(['service default/web added']);
    // Nothing in the log carries the key.
    expect(stderr).not.toContain(KEY);
  });

  it('names what is missing and exits non-zero without a target URL', async () => {
    const p = spawn(
      process.execPath,
      [join(root, 'bin/lbsync.js'), 'watch', '--target', 'azure', '--kubeconfig', kubeconfig],
      {
        cwd: root,
        env: { ...process.env, LBSYNC_FUNCTION_KEY: KEY, LBSYNC_WATCH_HEALTH_ADDR: 'off' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    p.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const code = await new Promise<number | null>((resolve) => p.on('close', resolve));
    expect(code).toBe(1);
    expect(stderr).toBe('lbsync: watch --target needs --url <function URL>\n');
  });
});
