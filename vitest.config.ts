import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // Scenario tests spawn worker threads and child processes: two files at a time fits 2 cores.
    maxWorkers: 2,
  },
});
