import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  compactShellScript,
  inlineLbLibrary,
  LB_SCRIPT_FILES,
  LbScriptError,
  type LbScriptName,
  loadLbScript,
  loadLbScriptSync,
} from '../../core/lb-scripts.js';

const NAMES = Object.keys(LB_SCRIPT_FILES) as LbScriptName[];
const library = readFileSync(new URL('../../templates/lib/lbsync-lib.sh', import.meta.url), 'utf8');

describe('the shipped LB scripts', () => {
  it.each(NAMES)(
    '%s: is self-contained, parses with dash, and is what the async loader gives',
    async (name) => {
      const shipped = loadLbScriptSync(name);
      expect(shipped.startsWith('#!/bin/sh\n')).toBe(true);
      expect(shipped).not.toContain('lb_lib_dir');
      expect(shipped).not.toContain('>>> lbsync-lib');
      expect(shipped).toContain('lb_json_escape() {');
      execFileSync('dash', ['-n', '-c', shipped]);
      expect(await loadLbScript(name)).toBe(shipped);
    },
  );

  it('ships the apply script in far fewer bytes than its source (Run Command counts them)', () => {
    const source = readFileSync(
      new URL('../../templates/lbsync-apply.sh', import.meta.url),
      'utf8',
    );
    expect(loadLbScriptSync('apply').length).toBeLessThan(source.length + library.length);
  });

  it('runs the library helpers as shipped: JSON escaping of quotes, backslashes and control characters', () => {
    const shipped = loadLbScriptSync('drain');
    const lib = shipped.slice(
      shipped.indexOf('lb_prog=${lb_prog'),
      shipped.indexOf('socket=/run/haproxy/admin.sock'),
    );
    const out = execFileSync(
      'dash',
      [
        '-c',
        `${lib}lb_json_start; lb_json_str m "$1"; lb_json_num n 3; lb_json_print`,
        'sh',
        'a"b\\c\td\u0001e',
      ],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(out)).toEqual({ m: 'a"b\\c d e', n: 3 });
  });
});

describe('inlineLbLibrary and compactShellScript', () => {
  const script =
    '#!/bin/sh\n# doc\necho a\n# >>> lbsync-lib: here\n. ./lib/x.sh\n# <<< lbsync-lib\necho b\n';

  it('replaces the marked block with the library and keeps everything else', () => {
    const out = inlineLbLibrary(script, 'lib_fn() { :; }\n');
    expect(out).toContain('echo a\n# >>> lbsync-lib');
    expect(out).toContain('lib_fn() { :; }\n# <<< lbsync-lib\necho b\n');
    expect(out).not.toContain('./lib/x.sh');
    expect(inlineLbLibrary('echo only\n', 'x')).toBe('echo only\n');
  });

  it('refuses unbalanced or doubled markers', () => {
    expect(() => inlineLbLibrary('# >>> lbsync-lib\necho\n', 'x')).toThrow(LbScriptError);
    expect(() => inlineLbLibrary(`${script}${script}`, 'x')).toThrow(/expected one/);
  });

  it('drops comments and blank lines but keeps here-document bodies verbatim', () => {
    const text =
      "#!/bin/sh\n# a comment\n\n  # indented\ncat <<'EOF'\n# kept\n\nEOF\necho done # trailing stays\n";
    const out = compactShellScript(text, 'templates/x.sh');
    expect(out).toBe(
      "#!/bin/sh\n# Shipped form of templates/x.sh: comments dropped, library inlined. Edit the source.\ncat <<'EOF'\n# kept\n\nEOF\necho done # trailing stays\n",
    );
    expect(execFileSync('dash', ['-c', out], { encoding: 'utf8' })).toBe('# kept\n\ndone\n');
  });
});
