/** One benchmark table: printed by `npm run bench` and written to bench/results/<id>.json. */
export interface BenchTable {
  readonly id: string;
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | number)[])[];
  /** Targets checked, with whether they were met. */
  readonly targets?: readonly {
    readonly name: string;
    readonly met: boolean;
    readonly detail: string;
  }[];
}

/** Format a table for the terminal. */
export function formatTable(t: BenchTable): string {
  const cells = [t.columns, ...t.rows.map((r) => r.map(String))];
  const widths = t.columns.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: readonly (string | number)[]): string =>
    r.map((c, i) => String(c).padStart(widths[i] ?? 0)).join('  ');
  const out = [
    `## ${t.title}`,
    line(t.columns),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...t.rows.map(line),
  ];
  for (const tg of t.targets ?? [])
    out.push(`target ${tg.met ? 'MET ' : 'MISSED'} ${tg.name}: ${tg.detail}`);
  return out.join('\n');
}
