import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'tools/**/*.test.ts', 'tests/**/*.test.ts'],
    // Integration tests start real servers; on a 2-core machine running files one at a time keeps
    // them from starving each other, and the suite stays within a few minutes.
    fileParallelism: false,
    setupFiles: ['tests/setup-unhandled.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'test-output/vitest-results.json' },
  },
});
