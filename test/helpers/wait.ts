/**
 * Wait until `condition` holds, polling every `intervalMs`. Tests synchronise
 * on observable state (a connection open, a request seen) rather than on a
 * fixed sleep: a loaded CI machine only makes the wait longer, never wrong.
 * The bound is a safety net against a hung test, not an assertion on time.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  { timeoutMs = 20_000, intervalMs = 10 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
