import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { validateSpec } from '../../adapters/spec.js';
import {
  APPLY_EXIT_CODES,
  APPLY_OUTCOMES,
  applyArgs,
  applyScriptOptions,
  DRAIN_OUTCOMES,
  drainArgs,
  formatApplyResult,
  manifestArgLines,
  parseApplyResult,
  parseDrainResult,
  stateDirOf,
  TRANSPORT_APPLY_FLAGS,
} from '../../core/apply-contract.js';
import { TransportError } from '../../core/errors.js';
import { loadLbScriptSync } from '../../core/lb-scripts.js';

const spec = validateSpec({
  name: 'contract',
  cloud: 'local',
  workers: { local: { static: [] } },
  loadBalancers: { local: [{ name: 'lb', configPath: '/x/haproxy.cfg', stateDir: '/x' }] },
  services: [{ name: 'http', bind: ':80', nodePort: 30080 }],
});

describe('apply arguments', () => {
  it('gives the apply script the spec paths, reload mode and both sockets', () => {
    expect(applyArgs(applyScriptOptions(spec))).toEqual([
      '--config',
      '/etc/haproxy/haproxy.cfg',
      '--state-dir',
      '/var/lib/lbsync',
      '--reload',
      'auto',
      '--master-socket',
      '/run/haproxy-master.sock',
      '--runtime-socket',
      '/run/haproxy/admin.sock',
    ]);
  });

  it('says none for a spec without a runtime socket, and leaves omitted options to the script', () => {
    const args = applyArgs({ ...applyScriptOptions({ ...spec, runtimeSocket: null }) });
    expect(args.slice(-2)).toEqual(['--runtime-socket', 'none']);
    expect(applyArgs(spec.lbApply)).not.toContain('--runtime-socket');
    expect(
      applyArgs({ configPath: '/c', stateDir: '/s', reload: 'systemd', removalTimeoutSeconds: 3 }),
    ).toEqual([
      '--config',
      '/c',
      '--state-dir',
      '/s',
      '--reload',
      'systemd',
      '--removal-timeout',
      '3',
    ]);
  });

  it('refuses a removal timeout that is not whole seconds', () => {
    expect(() =>
      applyArgs({ configPath: '/c', stateDir: '/s', reload: 'auto', removalTimeoutSeconds: 1.5 }),
    ).toThrow(TransportError);
  });

  it('carries the same words in the GCP manifest, every flag one the agent accepts', () => {
    const lines = manifestArgLines(applyScriptOptions(spec));
    expect(lines.map((l) => l.slice(4))).toEqual(applyArgs(applyScriptOptions(spec)));
    const flags = lines.map((l) => l.slice(4)).filter((w) => w.startsWith('--'));
    for (const f of flags) expect(TRANSPORT_APPLY_FLAGS).toContain(f);
    // The agent's own allow-list is the contract's, flag for flag.
    const agent = readFileSync(
      new URL('../../templates/lbsync-gcp-agent.sh', import.meta.url),
      'utf8',
    );
    const allowed = /^\s+(--config \|[^)]*)\) ;;$/m.exec(agent)?.[1]?.split(' | ');
    expect(allowed).toEqual([...TRANSPORT_APPLY_FLAGS]);
  });

  it('finds the state dir in an argument list (the Run Command wrapper keeps its temp dir there)', () => {
    expect(stateDirOf(['--config', '/c', '--state-dir', '/srv/lbsync'])).toBe('/srv/lbsync');
    expect(stateDirOf(['--x'])).toBe('/var/lib/lbsync');
    expect(stateDirOf(['--state-dir', "/x'; reboot"])).toBe('/var/lib/lbsync');
  });

  it('builds drain arguments', () => {
    expect(
      drainArgs({
        socket: '/run/a.sock',
        masterSocket: '/run/m.sock',
        server: 'i-1',
        timeoutSeconds: 30,
      }),
    ).toEqual([
      '--socket',
      '/run/a.sock',
      '--master-socket',
      '/run/m.sock',
      '--server',
      'i-1',
      '--timeout',
      '30',
    ]);
  });
});

describe('the result line', () => {
  it('parses the runtime-path fields and the refusal counts', () => {
    const r = parseApplyResult(
      'noise\n{"lbsync":1,"result":"applied","generation":5,"sha256":"ab","servers":6,"ms":31,"message":"","via":"runtime","added":2,"removed":1,"drained":0}\n',
    );
    expect(r).toEqual({
      result: 'applied',
      generation: 5,
      sha256: 'ab',
      servers: 6,
      ms: 31,
      via: 'runtime',
      added: 2,
      removed: 1,
      drained: 0,
    });
    const refused = parseApplyResult(
      '{"lbsync":1,"result":"refused","generation":5,"sha256":"ab","servers":6,"ms":3,"message":"no","added":0,"removed":3,"drained":0,"liveWorkers":4,"leaving":3}',
    );
    expect(refused).toMatchObject({ result: 'refused', liveWorkers: 4, leaving: 3, message: 'no' });
  });

  it('drops optional fields of the wrong type instead of trusting them', () => {
    const r = parseApplyResult(
      '{"lbsync":1,"result":"applied","generation":5,"sha256":"","servers":1,"ms":1,"via":"teleport","added":-1,"workers":"3"}',
    );
    expect(r).toEqual({ result: 'applied', generation: 5, sha256: null, servers: 1, ms: 1 });
  });

  it('round-trips a result a transport makes up through formatApplyResult', () => {
    const made = {
      result: 'failed' as const,
      generation: 0,
      sha256: null,
      servers: 0,
      ms: 0,
      message: 'no download',
    };
    expect(parseApplyResult(formatApplyResult(made))).toEqual(made);
  });

  it('maps every outcome to the exit code the shipped script uses', () => {
    expect(Object.keys(APPLY_EXIT_CODES).sort()).toEqual([...APPLY_OUTCOMES].sort());
    // The library's lb_apply_exit_code, run as shipped.
    const lib = loadLbScriptSync('apply');
    const start = lib.indexOf('lb_apply_exit_code() {');
    const fn = lib.slice(start, lib.indexOf('\n}\n', start) + 3);
    for (const outcome of APPLY_OUTCOMES) {
      const code = execFileSync(
        'dash',
        ['-c', `${fn}lb_apply_exit_code "$1"; echo "$lb_code"`, 'sh', outcome],
        {
          encoding: 'utf8',
        },
      );
      expect(Number(code), outcome).toBe(APPLY_EXIT_CODES[outcome]);
    }
  });

  it('parses the drain line with the same rules', () => {
    expect(DRAIN_OUTCOMES).toContain('drained');
    expect(
      parseDrainResult(
        'x\n{"lbsyncDrain":1,"result":"timeout","server":"i-1","backends":2,"sessions":4,"ms":9}\n',
        'lb',
      ),
    ).toEqual({ result: 'timeout', server: 'i-1', backends: 2, sessions: 4, ms: 9 });
    expect(() => parseDrainResult('{"lbsync":1,"result":"applied"}', 'lb-1', 'boom')).toThrow(
      /lb-1: the drain script printed no result line; stderr: boom/,
    );
  });
});
