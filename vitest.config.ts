import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real-process tests wait on conditions with deadlines; these bounds only stop a hung run.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
