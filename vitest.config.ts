import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{core,egress,admin,cli,broker,sds,gateway,sandbox,test,policies}/**/*.test.ts'],
    exclude: ['dist/**', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Real servers on loopback per test file; two cores, so keep the fan-out modest.
    pool: 'forks',
    maxWorkers: 2,
    allowOnly: false,
  },
});
