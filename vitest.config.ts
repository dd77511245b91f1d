import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file owns its ports and temp dirs, so files run in parallel; HAProxy
    // e2e files are slow but I/O bound.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
