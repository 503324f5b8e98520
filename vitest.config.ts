import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Native tests use LibTorch threads; running files one at a time keeps timings sane on 2 cores.
    fileParallelism: false,
    pool: 'forks',
  },
});
