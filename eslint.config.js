// Lint rules. The block for src/core/ is what keeps the core deterministic: every
// nondeterministic or I/O API is banned there, and each message names the replacement.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const useInstead = {
  clock: 'the core gets time only from the `nowMs` carried by each input',
  random: 'use the seeded PRNG handed to the core (src/core/prng.ts)',
  io: 'the core does no I/O: return an effect and let the shell (src/runtime/, src/sim/) do it',
};

const coreRestrictedGlobals = [
  { name: 'Date', message: `Date reads the wall clock: ${useInstead.clock}.` },
  { name: 'performance', message: `performance.now reads a clock: ${useInstead.clock}.` },
  { name: 'crypto', message: `crypto is nondeterministic I/O: ${useInstead.random}.` },
  { name: 'setTimeout', message: `timers are I/O: ask for a tick; ${useInstead.clock}.` },
  { name: 'setInterval', message: `timers are I/O: ask for a tick; ${useInstead.clock}.` },
  { name: 'setImmediate', message: `timers are I/O: ${useInstead.io}.` },
  { name: 'queueMicrotask', message: `scheduling is the shell's job: ${useInstead.io}.` },
  { name: 'process', message: `process is the environment: ${useInstead.io}.` },
  { name: 'Buffer', message: 'Buffer is Node-only: use Uint8Array and src/core/bytes.ts.' },
  { name: 'fetch', message: `fetch is I/O: ${useInstead.io}.` },
  { name: 'require', message: `require loads modules at run time: ${useInstead.io}.` },
  { name: 'Promise', message: 'the core runs to completion: return effects, do not await.' },
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'web/vendor/**', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        console: 'readonly',
        process: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        clearImmediate: 'readonly',
        queueMicrotask: 'readonly',
        URL: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        performance: 'readonly',
        AbortController: 'readonly',
        fetch: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-globals': ['error', ...coreRestrictedGlobals],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*'],
              message: `Node modules are I/O: ${useInstead.io}.`,
            },
            {
              group: [
                'fs',
                'net',
                'os',
                'path',
                'crypto',
                'timers',
                'child_process',
                'worker_threads',
              ],
              message: `Node modules are I/O: ${useInstead.io}.`,
            },
            {
              group: ['**/runtime/**', '**/api/**', '**/storage/lmdb/**', '**/net/**', '**/cli/**'],
              message: 'The core depends on nothing outside it but the Storage read view types.',
            },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: `Math.random: ${useInstead.random}.` },
        { object: 'Date', property: 'now', message: `Date.now: ${useInstead.clock}.` },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: 'AwaitExpression', message: 'the core never awaits: return effects.' },
        {
          selector: 'NewExpression[callee.name="Date"]',
          message: `new Date: ${useInstead.clock}.`,
        },
      ],
    },
  },
);
