import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Run the real `haproxy -c` on a config text; returns exit code and output. */
export function haproxyCheck(text: string): { readonly ok: boolean; readonly output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'lbsync-check-'));
  try {
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, text);
    const r = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
    if (r.error) throw new Error(`haproxy is not installed or not on PATH: ${r.error.message}`);
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
