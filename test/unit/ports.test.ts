import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// Test files listen on fixed ports so that they can run in parallel. A fixed port inside
// the kernel's ephemeral range can be taken at any moment by some client socket's local
// port, and the test's listen then fails with EADDRINUSE (CI saw this on 35102).

const ROOT = join(import.meta.dirname, '..', '..');

/** The first port Linux hands to client sockets; 32768 is its default. */
function ephemeralLow(): number {
  const path = '/proc/sys/net/ipv4/ip_local_port_range';
  if (!existsSync(path)) return 32768;
  const low = Number(readFileSync(path, 'utf8').trim().split(/\s+/)[0]);
  return Math.min(low, 32768);
}

interface Range {
  readonly owner: string;
  readonly from: number;
  readonly to: number;
}

function readmeRanges(): readonly Range[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('| owner | ports | workers |'));
  const ranges: Range[] = [];
  for (const line of table.split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    const [owner = '', ports = ''] = line
      .split('|')
      .slice(1)
      .map((cell) => cell.trim());
    const match = /^(\d+)-(\d+)$/.exec(ports);
    if (match) ranges.push({ owner, from: Number(match[1]), to: Number(match[2]) });
  }
  return ranges;
}

function testFiles(dir: string): readonly string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => join(entry.parentPath, entry.name));
}

describe('fixed test ports', () => {
  const ranges = readmeRanges();

  it('lists the port range of every test area in the README', () => {
    expect(ranges.length).toBeGreaterThanOrEqual(15);
  });

  it('keeps every listed range below the ephemeral port range', () => {
    const low = ephemeralLow();
    const inside = ranges.filter((range) => range.to >= low).map((range) => range.owner);
    expect(inside).toEqual([]);
  });

  it('gives each area its own range', () => {
    const sorted = [...ranges].sort((a, b) => a.from - b.from);
    const overlaps = sorted
      .slice(1)
      .filter((range, i) => range.from <= (sorted[i]?.to ?? -1))
      .map((range) => range.owner);
    expect(overlaps).toEqual([]);
  });

  it('declares no port constant in a test or bench inside the ephemeral range', () => {
    const low = ephemeralLow();
    const offenders: string[] = [];
    for (const file of [...testFiles(join(ROOT, 'test')), ...testFiles(join(ROOT, 'bench'))]) {
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(/\b[A-Z_]*PORT[A-Z_]*\s*=\s*(\d+)/g)) {
        if (Number(match[1]) >= low) offenders.push(`${file}: ${match[0]}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
