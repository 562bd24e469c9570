// The lint rule that keeps src/core/ deterministic must actually fire: each banned API in a
// core file is an error whose message names the replacement, and the same code outside the
// core is allowed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ESLint } from 'eslint';

const projectRoot = path.join(import.meta.dirname, '..', '..');
const eslint = new ESLint({ cwd: projectRoot });

async function messagesFor(code: string, file: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(projectRoot, file) });
  return (result?.messages ?? []).map((message) => message.message);
}

const BANNED: [string, RegExp][] = [
  ['export const t = Date.now();', /nowMs/],
  ['export const t = performance.now();', /nowMs/],
  ['export const r = Math.random();', /seeded PRNG/],
  ['export const r = crypto.randomUUID();', /seeded PRNG/],
  ['setTimeout(() => {}, 1);', /tick/],
  ['export const e = process.env;', /shell/],
  ["import { readFileSync } from 'node:fs';\nexport const f = readFileSync;", /shell/],
  ['export const d = new Date();', /nowMs/],
  ['export async function f(): Promise<void> { await 1; }', /never awaits/],
  ['export const b = Buffer.from("x");', /Uint8Array/],
];

test('every nondeterministic or I/O API is an error in src/core/, naming what to use instead', async () => {
  for (const [code, replacement] of BANNED) {
    const messages = await messagesFor(code, 'src/core/example.ts');
    assert.ok(
      messages.some((message) => replacement.test(message)),
      `${code} → ${JSON.stringify(messages)}`,
    );
  }
});

test('the same code is allowed in the shell', async () => {
  const messages = await messagesFor(
    'export const t = Date.now();\nexport const r = Math.random();',
    'src/runtime/example.ts',
  );
  assert.deepEqual(messages, []);
});
