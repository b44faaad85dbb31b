import { defineConfig } from 'vitest/config';

// One root config for the whole workspace. Packages resolve each other's sources through
// the "@deccom/source" export condition, so tests never depend on a stale dist/.
const slow = process.env['DECCOM_SLOW'] === '1';

export default defineConfig({
  resolve: { conditions: ['@deccom/source'] },
  ssr: { resolve: { conditions: ['@deccom/source'] } },
  test: {
    include: slow
      ? ['packages/*/test/**/*.slow.test.ts', 'tests/*/test/**/*.slow.test.ts', 'bench/test/**/*.slow.test.ts']
      : ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts', 'tests/*/test/**/*.test.ts', 'bench/test/**/*.test.ts'],
    exclude: slow ? ['**/node_modules/**'] : ['**/node_modules/**', '**/*.slow.test.ts'],
    typecheck: {
      enabled: !slow,
      include: ['packages/*/test/**/*.test-d.ts'],
      tsconfig: './tsconfig.typetests.json',
    },
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
  },
});
