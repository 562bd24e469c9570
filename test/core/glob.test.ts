// Redis glob matching, checked by hand on the tricky cases and against a regular-expression
// reference on random patterns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { utf8 } from '../../src/core/bytes.ts';
import { globMatches } from '../../src/core/kv/glob.ts';

const match = (pattern: string, subject: string): boolean =>
  globMatches(utf8(pattern), utf8(subject));

test('glob patterns match as in Redis', () => {
  assert.ok(match('*', ''));
  assert.ok(match('h?llo', 'hello'));
  assert.ok(match('h*llo', 'heeeello'));
  assert.ok(match('h[ae]llo', 'hallo'));
  assert.ok(!match('h[ae]llo', 'hillo'));
  assert.ok(match('h[^e]llo', 'hallo'));
  assert.ok(!match('h[^e]llo', 'hello'));
  assert.ok(match('h[a-b]llo', 'hbllo'));
  assert.ok(match('user:\\*', 'user:*'));
  assert.ok(!match('user:\\*', 'user:x'));
  assert.ok(match('*a*b*c*', 'xxaxxbxxcxx'));
  assert.ok(!match('*a*b*c*', 'xxaxxcxxbxx'));
  assert.ok(!match('abc', 'abcd'));
});

test('a pathological pattern finishes quickly', () => {
  const pattern = '*a'.repeat(50) + 'b';
  assert.equal(match(pattern, 'a'.repeat(5000)), false);
});

function reference(pattern: string, subject: string): boolean {
  const source = pattern
    .replace(/[.+^${}()|\\[\]]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 's').test(subject);
}

test('patterns of literals, * and ? agree with a regular-expression reference', () => {
  const alphabet = fc.constantFrom('a', 'b', '*', '?');
  fc.assert(
    fc.property(
      fc.array(alphabet, { maxLength: 8 }).map((parts) => parts.join('')),
      fc.array(fc.constantFrom('a', 'b'), { maxLength: 10 }).map((parts) => parts.join('')),
      (pattern, subject) => {
        assert.equal(match(pattern, subject), reference(pattern, subject));
      },
    ),
  );
});
