/* Small helpers both demo acts print and wait with. */

/** Resolve after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `probe` until it returns a value or `timeoutMs` passes (then undefined). */
export async function waitFor<T>(
  probe: () => T | undefined,
  timeoutMs: number,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = probe();
    if (v !== undefined) return v;
    await sleep(10);
  }
  return undefined;
}

/** A plain-text table with padded columns. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: readonly string[]): string =>
    r
      .map((c, i) => c.padEnd(w[i] ?? 0))
      .join('  ')
      .trimEnd();
  return `${[fmt(head), fmt(w.map((n) => '-'.repeat(n))), ...rows.map(fmt)].join('\n')}\n`;
}
