import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_INLINE_LIMIT_BYTES,
  RUN_COMMAND_LIMITS,
  splitRunCommandMessage,
} from '../../../adapters/azure/shell.js';
import {
  applyCommand as coreApplyCommand,
  scriptCommand as coreScriptCommand,
  type PayloadDelivery,
} from '../../../core/command.js';

/** The Run Command text exactly as the Azure transport builds it. */
const applyCommand = (script: string, args: readonly string[], payload: PayloadDelivery): string =>
  coreApplyCommand(script, args, payload, RUN_COMMAND_LIMITS);
const scriptCommand = (script: string, args: readonly string[]): string =>
  coreScriptCommand(script, args, RUN_COMMAND_LIMITS);

import { validateSpec } from '../../../adapters/spec.js';
import { applyArgs } from '../../../core/apply-contract.js';
import { loadApplyScript } from '../../../core/lb-scripts.js';
import { encodePayload } from '../../../core/payload.js';
import { loadTemplate, renderConfig } from '../../../core/render.js';

function spec(services: number): ReturnType<typeof validateSpec> {
  return validateSpec({
    name: 'prod-weu',
    cloud: 'azure',
    workers: {
      azure: {
        subscriptionId: '00000000-0000-4000-8000-000000000001',
        scaleSets: [{ resourceGroup: 'mc', name: 'aks-nodepool1-12345678-vmss' }],
      },
    },
    loadBalancers: { azure: { vms: [{ resourceGroup: 'rg', name: 'lb' }] } },
    services: Array.from({ length: services }, (_, i) => ({
      name: `svc${i}`,
      bind: `:${8000 + i}`,
      nodePort: 30000 + i,
    })),
  });
}

describe('splitRunCommandMessage', () => {
  it('separates the stdout and stderr sections RunShellScript reports', () => {
    // Act
    const out = splitRunCommandMessage(
      'Enable succeeded: \n[stdout]\n{"lbsync":1}\n\n[stderr]\nwarn\n',
    );

    // Assess
    expect(out).toEqual({ stdout: '{"lbsync":1}\n', stderr: 'warn\n' });
  });

  it('treats a message without sections as stdout', () => {
    expect(splitRunCommandMessage('plain')).toEqual({ stdout: 'plain', stderr: '' });
  });
});

describe('the Run Command script', () => {
  it('delivers hostile-looking text verbatim (quoted heredocs, quoted args)', () => {
    // Prepare
    const script = 'printf "%s|" "$@"; cat "$2"';
    const cmd = applyCommand(script, ['--x', "it's $(reboot)"], {
      kind: 'inline',
      text: 'line with $HOME and `id`\n',
    });

    // Act
    const out = execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });

    // Assess
    expect(out).toContain("--x|it's $(reboot)|");
  });

  it('delivers a script containing a heredoc marker line verbatim (it travels packed), and refuses such a payload', () => {
    // The script travels as gzip+base64, so no line of it can end a heredoc.
    const script = "cat <<'LBSYNC_SCRIPT_EOF'\nhello\nLBSYNC_SCRIPT_EOF\n";
    expect(execFileSync('sh', ['-c', scriptCommand(script, [])], { encoding: 'utf8' })).toBe(
      'hello\n',
    );
    expect(() =>
      applyCommand(script, [], { kind: 'inline', text: 'a\nLBSYNC_PAYLOAD_EOF\nb\n' }),
    ).toThrow(/heredoc marker/);
  });

  it.each([
    { services: 1, atLeast: 5000 },
    { services: 10, atLeast: 550 },
  ])(
    'fits at least $atLeast workers x $services service(s) inline under the 64 KiB limit (measured)',
    async ({ services, atLeast }) => {
      // Prepare
      const s = spec(services);
      const [template, script] = await Promise.all([loadTemplate(s), loadApplyScript()]);
      const bytes = (n: number): number => {
        const workers = Array.from({ length: n }, (_, i) => ({
          id: `aks-nodepool1-12345678-vmss_${i}`,
          address: `10.224.${(i >> 8) & 255}.${i & 255}`,
          state: 'serving' as const,
        }));
        const c = renderConfig(s, workers, template);
        const p = encodePayload(c.text, 1_795_000_000_000, c.servers);
        return Buffer.byteLength(
          applyCommand(script, applyArgs(s.lbApply), { kind: 'inline', text: p.text }),
        );
      };

      // Act: the largest worker count whose script fits (binary search, bounded).
      let lo = 1;
      let hi = 20_000;
      for (let i = 0; i < 20 && lo < hi; i++) {
        const mid = (lo + hi + 1) >> 1;
        if (bytes(mid) <= DEFAULT_INLINE_LIMIT_BYTES) lo = mid;
        else hi = mid - 1;
      }

      // Assess
      expect(lo).toBeGreaterThanOrEqual(atLeast);
      expect(bytes(lo)).toBeLessThanOrEqual(DEFAULT_INLINE_LIMIT_BYTES);
      // And the 2,000 x 10 target does not fit: it must be staged.
      if (services === 10) expect(bytes(2000)).toBeGreaterThan(DEFAULT_INLINE_LIMIT_BYTES);
    },
  );
});
