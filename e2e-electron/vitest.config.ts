import { defineConfig } from 'vitest/config';

// The Electron app tests: only on hosted CI (.github/workflows/desktop.yml), where the Electron binary exists.
// Not part of the root vitest projects or of `tsc -b`.
export default defineConfig({
  test: {
    include: ['*.spec.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
