import { TransportError } from './errors.js';
import type { DrainResult } from './ports.js';

const RESULTS = new Set(['drained', 'timeout', 'absent', 'failed']);

/** Find the drain script's JSON line (`{"lbsyncDrain":1,...}`), the last one on stdout. */
export function parseDrainResult(stdout: string, lb: string, stderr = ''): DrainResult {
  const lines = stdout.split('\n').map((l) => l.trim());
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] ?? '';
    if (!line.startsWith('{') || !line.includes('lbsyncDrain')) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      continue;
    }
    const r = raw as Record<string, unknown>;
    if (r.lbsyncDrain !== 1 || typeof r.result !== 'string' || !RESULTS.has(r.result)) continue;
    return {
      result: r.result as DrainResult['result'],
      server: typeof r.server === 'string' ? r.server : '',
      backends: typeof r.backends === 'number' ? r.backends : 0,
      sessions: typeof r.sessions === 'number' ? r.sessions : 0,
      ms: typeof r.ms === 'number' ? r.ms : 0,
      ...(typeof r.message === 'string' && r.message !== '' ? { message: r.message } : {}),
    };
  }
  throw new TransportError(
    `${lb}: the drain script printed no result line${stderr ? `; stderr: ${stderr.slice(-300).trim()}` : ''}`,
    { retryable: false },
  );
}
