// Integers in Redis's string form: exactly what INCR accepts and prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromUtf8, utf8 } from '../../src/core/bytes.ts';
import { formatRedisInteger, parseRedisInteger } from '../../src/core/kv/redis-integer.ts';

test('accepts canonical int64 decimals and rejects everything else', () => {
  assert.equal(parseRedisInteger(utf8('0')), 0n);
  assert.equal(parseRedisInteger(utf8('-12')), -12n);
  assert.equal(parseRedisInteger(utf8('9223372036854775807')), 9223372036854775807n);
  assert.equal(parseRedisInteger(utf8('-9223372036854775808')), -9223372036854775808n);
  for (const bad of [
    '',
    '-',
    '+1',
    '01',
    '-0',
    ' 1',
    '1 ',
    '1.5',
    'abc',
    '9223372036854775808',
    '1e3',
  ]) {
    assert.equal(parseRedisInteger(utf8(bad)), null, bad);
  }
});

test('format then parse is the identity on int64', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (value) => {
      const text = formatRedisInteger(value);
      assert.equal(fromUtf8(text), value.toString());
      assert.equal(parseRedisInteger(text), value);
    }),
  );
});
