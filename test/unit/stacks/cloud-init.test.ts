import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseSpec } from '../../../adapters/spec.js';
import { loadLbScriptSync } from '../../../core/lb-scripts.js';
import { PROFILES } from '../../../core/profiles.js';
import { type CloudInitCloud, renderCloudInit } from '../../../stacks/cloud-init.js';
import { haproxyCheck } from '../../helpers/haproxy-check.js';

interface WriteFile {
  readonly path: string;
  readonly content: string;
  readonly encoding?: string;
  readonly permissions?: string;
}
interface CloudConfig {
  readonly packages: string[];
  readonly write_files: WriteFile[];
  readonly runcmd: string[][];
}

const TEMPLATES = new URL('../../../templates/', import.meta.url);
const CLOUDS: readonly CloudInitCloud[] = ['aws', 'azure', 'gcp'];

function render(cloud: CloudInitCloud): { text: string; config: CloudConfig } {
  const text = renderCloudInit(cloud);
  return { text, config: parse(text) as CloudConfig };
}

function file(config: CloudConfig, path: string): string {
  const f = config.write_files.find((w) => w.path === path);
  if (f === undefined) throw new Error(`no ${path} in write_files`);
  return f.encoding === 'b64' ? Buffer.from(f.content, 'base64').toString('utf8') : f.content;
}

// The defaults every LB VM must match: lbsync-apply.sh is called with these.
const LB_APPLY = parseSpec(
  readFileSync(new URL('../../../examples/aws.yaml', import.meta.url), 'utf8'),
).lbApply;

describe('LB VM cloud-init', () => {
  it.each(CLOUDS)('%s: is a cloud-config that installs haproxy, socat and curl', (cloud) => {
    const { text, config } = render(cloud);
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    expect(text).not.toContain('@@');
    expect(config.packages).toEqual(expect.arrayContaining(['haproxy', 'socat', 'curl']));
  });

  it.each(CLOUDS)(
    '%s: starts HAProxy with the master socket the apply script reloads through',
    (cloud) => {
      const { config } = render(cloud);
      const dropIn = file(config, '/etc/systemd/system/haproxy.service.d/lbsync.conf');
      const start = dropIn.split('\n').filter((l) => l.startsWith('ExecStart='));
      // The empty ExecStart= clears the distribution's command first.
      expect(start[0]).toBe('ExecStart=');
      expect(start[1]).toContain(`-S ${LB_APPLY.masterSocket},mode,600`);
      expect(start[1]).toContain(`-f ${LB_APPLY.configPath}`);
      expect(start[1]).toContain('-Ws');
    },
  );

  it.each(CLOUDS)('%s: allows HAProxy enough file descriptors for every profile', (cloud) => {
    const { config } = render(cloud);
    const dropIn = file(config, '/etc/systemd/system/haproxy.service.d/lbsync.conf');
    const limit = Number(/^LimitNOFILE=(\d+)$/m.exec(dropIn)?.[1]);
    for (const [name, tuning] of Object.entries(PROFILES)) {
      // About two descriptors per proxied connection, plus listeners and checks.
      expect(2 * tuning.maxconn + 1000, `profile ${name}`).toBeLessThanOrEqual(limit);
    }
  });

  it.each(CLOUDS)('%s: creates the state directory and boots a config haproxy accepts', (cloud) => {
    const { config } = render(cloud);
    expect(config.runcmd).toContainEqual(['install', '-d', '-m', '0750', LB_APPLY.stateDir]);
    const boot = file(config, LB_APPLY.configPath);
    // The runtime socket is the boot config's only listener: without one
    // HAProxy refuses to start ("no listener"), so it must stay.
    expect(boot).toContain('stats socket /run/haproxy/admin.sock');
    const check = haproxyCheck(boot);
    expect(check.ok, check.output).toBe(true);
    expect(haproxyCheck(boot.replace(/^.*stats socket.*$/m, '')).output).toMatch(/no listener/);
  });

  it('gcp: installs the agent and the apply script in their shipped form and the agent unit verbatim, and starts the agent', () => {
    const { config } = render('gcp');
    // The shipped form: the shell library inlined, exactly what every transport sends.
    expect(file(config, '/usr/local/lib/lbsync/lbsync-gcp-agent.sh')).toBe(
      loadLbScriptSync('gcp-agent'),
    );
    expect(file(config, '/usr/local/lib/lbsync/lbsync-apply.sh')).toBe(loadLbScriptSync('apply'));
    expect(file(config, '/usr/local/lib/lbsync/lbsync-apply.sh')).not.toContain('lb_lib_dir');
    expect(file(config, '/etc/systemd/system/lbsync-gcp-agent.service')).toBe(
      readFileSync(new URL('lbsync-gcp-agent.service', TEMPLATES), 'utf8'),
    );
    const unit = file(config, '/etc/systemd/system/lbsync-gcp-agent.service');
    expect(unit).toContain('ExecStart=/bin/sh /usr/local/lib/lbsync/lbsync-gcp-agent.sh');
    expect(config.runcmd).toContainEqual(['systemctl', 'enable', '--now', 'lbsync-gcp-agent']);
  });

  it('aws and azure: are the same base below their headers', () => {
    const body = (cloud: CloudInitCloud): string =>
      render(cloud)
        .text.split('\n')
        .filter((l, i) => i === 0 || !l.startsWith('# '))
        .join('\n');
    expect(body('azure')).toBe(body('aws'));
    expect(render('aws').text).toMatch(/SSM Run Command/);
    expect(render('azure').text).toMatch(/VM Run Command/);
  });

  it('aws and azure: carry no agent (Run Command ships the scripts with each push)', () => {
    for (const cloud of ['aws', 'azure'] as const) {
      const paths = render(cloud).config.write_files.map((w) => w.path);
      expect(paths.some((p) => p.includes('lbsync-gcp-agent'))).toBe(false);
    }
  });
});
