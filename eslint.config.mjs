// Lint: type-aware rules everywhere; workflows/ must stay deterministic (no Node built-ins, no
// clocks or randomness from outside the SDK, no floating promises).
import tseslint from 'typescript-eslint';

const nodeBuiltins = ['assert', 'buffer', 'child_process', 'cluster', 'crypto', 'dgram', 'dns', 'events', 'fs', 'http', 'http2', 'https', 'net', 'os', 'path', 'perf_hooks', 'process', 'readline', 'stream', 'timers', 'tls', 'url', 'util', 'v8', 'vm', 'worker_threads', 'zlib'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.tools/**', '.data/**', '.run/**', 'eslint.config.mjs'] },
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's test() and describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.flatMap((name) => [
            { name, message: 'workflows must be deterministic: no Node built-ins (do side effects in activities)' },
            { name: `node:${name}`, message: 'workflows must be deterministic: no Node built-ins (do side effects in activities)' },
          ]),
          patterns: [
            { group: ['../activities', '../activities/*'], allowTypeImports: true, message: 'workflows import activity types only' },
            { group: ['**/providers/**', '**/temporal/**', '**/api/**', 'pino', 'fastify', 'prom-client'], message: 'workflows import only deterministic, dependency-free modules' },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'use sleep() or condition() from @temporalio/workflow' },
        { name: 'setInterval', message: 'use sleep() or condition() from @temporalio/workflow' },
        { name: 'fetch', message: 'do I/O in activities' },
      ],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Math.random is replaced by the SDK; prefer uuid4() from @temporalio/workflow' }],
    },
  },
);
