import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HaproxyProcess } from '../../adapters/local/haproxy.js';
import { startWorkerServer, type WorkerServer } from '../../adapters/local/workers.js';
import { type CliRun, runLbsync } from '../helpers/cli.js';

// Ports 25100-25199 and workers on 127.0.26.x belong to this file.
function lbsync(...args: string[]): Promise<CliRun> {
  return runLbsync(args);
}

function lbsyncWith(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliRun> {
  return runLbsync(args, { ...process.env, ...env });
}

describe('lbsync CLI', () => {
  it.each([
    ['aws', 'aws'],
    ['azure', 'azure'],
    ['gcp', 'gcp'],
    ['local', 'local'],
    ['static-ssm', 'aws'],
    ['kubernetes', 'aws'],
    ['karpenter', 'aws'],
  ])('validates examples/%s.yaml as a spec for cloud %s', async (file, cloud) => {
    const r = await lbsync('validate', `examples/${file}.yaml`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(new RegExp(`examples/${file}\\.yaml: ok \\(.*cloud ${cloud}`));
    expect(r.code).toBe(0);
  });

  it('lists every example it validates: none is left unchecked', () => {
    const files = readdirSync(new URL('../../examples/', import.meta.url)).sort();
    expect(files).toEqual(
      ['aws', 'azure', 'gcp', 'karpenter', 'kubernetes', 'local', 'static-ssm'].map(
        (f) => `${f}.yaml`,
      ),
    );
  });

  it('exits 1 with file: path: reason on an invalid spec', async () => {
    const r = await lbsync('validate', 'test/fixtures/specs/invalid/nodeport-range.yaml');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'lbsync: test/fixtures/specs/invalid/nodeport-range.yaml: services[1].nodePort: must be 30000-32767\n',
    );
  });

  it('renders a config to stdout for a --workers list, sorted and named by id', async () => {
    const r = await lbsync(
      'render',
      'examples/aws.yaml',
      '--workers',
      'i-0b=10.0.0.2,i-0a=10.0.0.1',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('    server i-0a 10.0.0.1:32080\n    server i-0b 10.0.0.2:32080\n');
  });

  it('refuses a hostile --workers value with a clear one-line reason', async () => {
    const r = await lbsync('render', 'examples/aws.yaml', '--workers', 'evil$(reboot)=10.0.0.1');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^lbsync: worker id: "evil\$\(reboot\)" is not a safe identifier/);
  });

  it('tells a cloud spec without --workers to use resync', async () => {
    const r = await lbsync('render', 'examples/gcp.yaml');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      "spec is for cloud gcp; pass --workers <file|ip,ip,...> or use 'resync --cloud gcp'",
    );
  });

  it.each([
    'validate',
    'render',
    'plan',
    'apply',
    'demo',
    'schema',
    'resync',
    'status',
    'watch',
    'rbac',
  ])('prints --help for %s', async (cmd) => {
    const r = await lbsync(cmd, '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: lbsync ${cmd}`);
  });

  it.each([
    ['aws', '--function <name|arn>'],
    ['azure', '--url <function-url>'],
    ['gcp', '--url <function-url>'],
  ])('resync --cloud %s names its missing required flag and exits 2', async (cloud, flag) => {
    const r = await lbsync('resync', '--cloud', cloud);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`lbsync: resync --cloud ${cloud} needs ${flag}\n`);
  });

  it('exits 2 on an unknown command', async () => {
    const r = await lbsync('frobnicate');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });

  describe('plan and apply against a local HAProxy', () => {
    let dir: string;
    let haproxy: HaproxyProcess;
    let specFile: string;
    const workers: WorkerServer[] = [];

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'lbsync-cli-'));
      haproxy = await HaproxyProcess.start({
        dir,
        config:
          'global\n    log stdout format raw local0 notice\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n',
      });
      for (const n of [1, 2]) {
        workers.push(
          await startWorkerServer({
            id: `n${n}`,
            address: `127.0.26.${n}`,
            ports: [30261],
            healthPort: 10256,
          }),
        );
      }
      specFile = join(dir, 'lbsync.config.yaml');
      writeFileSync(
        specFile,
        [
          'name: cli-test',
          'cloud: local',
          'workers: { local: { file: workers.yaml } }',
          `loadBalancers: { local: [{ name: lb-a, configPath: ${haproxy.configPath}, stateDir: ${haproxy.stateDir}, reload: master-socket, masterSocket: ${haproxy.masterSocket} }] }`,
          'services: [{ name: http, bind: "127.0.0.1:25101", nodePort: 30261 }]',
          `runtimeSocket: ${join(dir, 'admin.sock')}`,
          'tuning: { maxconn: 4000 }',
          '',
        ].join('\n'),
      );
      writeFileSync(
        join(dir, 'workers.yaml'),
        '- { id: n1, address: 127.0.26.1 }\n- { id: n2, address: 127.0.26.2 }\n',
      );
    });

    afterAll(async () => {
      await haproxy?.stop();
      await Promise.all(workers.map((w) => w.close()));
      rmSync(dir, { recursive: true, force: true });
    });

    it('plans a first sync without touching the LB, then applies it', async () => {
      const before = readFileSync(haproxy.configPath, 'utf8');
      const plan = await lbsync('plan', specFile);
      expect(plan.code).toBe(0);
      expect(plan.stdout).toMatch(/lb-a: planned \(plan apply: first sync/);
      expect(readFileSync(haproxy.configPath, 'utf8')).toBe(before);

      const apply = await lbsync('apply', specFile, '--json');
      expect(apply.code).toBe(0);
      const report = JSON.parse(apply.stdout) as {
        ok: boolean;
        generation: number;
        sha256: string;
        results: { lb: string; outcome: string }[];
      };
      expect(report.ok).toBe(true);
      expect(report.results).toEqual([expect.objectContaining({ lb: 'lb-a', outcome: 'applied' })]);
      expect(readFileSync(haproxy.configPath, 'utf8')).toContain('server n2 127.0.26.2:30261');

      const again = await lbsync('apply', specFile);
      expect(again.stdout).toContain('lb-a: unchanged');
      // An unchanged apply still records its newer generation on the LB.
      const generation = Number(/generation (\d+)/.exec(again.stdout)?.[1]);
      expect(generation).toBeGreaterThan(report.generation);

      const status = await lbsync('status', specFile, '--json');
      expect(status.code).toBe(0);
      expect(JSON.parse(status.stdout)).toEqual([
        { lb: 'lb-a', generation, sha256: report.sha256, servers: 2 },
      ]);
    });

    it('refuses to empty the LB unless --force, exiting 1 with the guard reason', async () => {
      writeFileSync(join(dir, 'workers.yaml'), '[]\n');
      const refused = await lbsync('apply', specFile);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toContain('lb-a: refused');
      expect(refused.stderr).toBe('lbsync: 1 of 1 LB(s) not in sync: lb-a refused\n');
      const forced = await lbsync('apply', specFile, '--force');
      expect(forced.code).toBe(0);
      expect(forced.stdout).toContain('lb-a: applied');
    });
  });

  it('runs the demo end to end and cleans up after itself', async () => {
    // Its own TMPDIR: the demo's processes name their work dir under it, and
    // pgrep then sees only this demo's, not the Kubernetes demo's running beside it.
    const tmp = mkdtempSync(join(tmpdir(), 'lbsync-cli-demo-'));
    const r = await lbsyncWith(
      { TMPDIR: tmp },
      'demo',
      '--port',
      '25150',
      '--subnet',
      '127.0.26',
      '--node-port',
      '30262',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Timeline');
    expect(r.stdout).toMatch(/launch w4\s+applied/);
    expect(r.stdout).toMatch(/terminate w2, terminate w3\s+applied/);
    expect(r.stdout).toMatch(/, 0 failed\n/);
    expect(r.stdout).toContain('demo ok');
    const left = await new Promise<string>((resolve) => {
      const p = spawn('pgrep', ['-f', tmp]);
      let out = '';
      p.stdout.on('data', (c: Buffer) => {
        out += c.toString();
      });
      p.on('close', () => resolve(out));
    });
    expect(left.trim()).toBe('');
    // tsx keeps its compile cache there too (tsx-0); the demo's own dir must be gone.
    expect(readdirSync(tmp).filter((name) => name.startsWith('lbsync-demo-'))).toEqual([]);
    rmSync(tmp, { recursive: true, force: true });
  }, 120_000);
});
