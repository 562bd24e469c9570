// The ring hash is part of the on-disk format: its values are pinned here, so a change that
// would move every key fails loudly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../../src/core/bytes.ts';
import { keyHash64, partitionOf } from '../../src/core/hash.ts';
import { Prng } from '../../src/core/prng.ts';

test('the 64-bit key hash is stable (pinned values)', () => {
  const pinned = [
    [0, '', keyHash64(0, utf8(''))],
    [0, 'a', keyHash64(0, utf8('a'))],
    [0, 'hello', keyHash64(0, utf8('hello'))],
    [7, 'hello', keyHash64(7, utf8('hello'))],
  ] as const;
  // Values recorded when the format was fixed.
  const expected = PINNED_HASHES;
  assert.deepEqual(
    pinned.map(([keyspace, key, hash]) => `${keyspace}/${key}=${hash.toString(16)}`),
    expected,
  );
});

const PINNED_HASHES = [
  '0/=8f7acbae9e481848',
  '0/a=2ce50c3cc63a6c15',
  '0/hello=49cd637805b1fb60',
  '7/hello=699607aa12ac7de4',
];

test('keyspaces separate equal keys', () => {
  assert.notEqual(keyHash64(0, utf8('k')), keyHash64(1, utf8('k')));
});

test('partitions are spread evenly over 256 partitions', () => {
  const counts = new Array<number>(256).fill(0);
  const prng = new Prng(1);
  const keys = 256 * 200;
  for (let i = 0; i < keys; i++) {
    const partition = partitionOf(0, utf8(`key:${i}:${prng.nextUint32()}`), 256);
    counts[partition]! += 1;
  }
  // Expected 200 per partition; a uniform hash stays well within ±35% at this size.
  assert.ok(Math.min(...counts) > 130, `min ${Math.min(...counts)}`);
  assert.ok(Math.max(...counts) < 270, `max ${Math.max(...counts)}`);
});

test('partitionOf rejects partition counts that are not powers of two', () => {
  assert.throws(() => partitionOf(0, utf8('k'), 100));
  assert.equal(partitionOf(0, utf8('k'), 1), 0);
});
