// The LMDB engine's memtable against a plain Map: values copied into the arena read back
// as written (across chunk changes, large values, long keys, deletes, the index's growth,
// values written in place over ones a little longer or shorter), a value handed out stays
// valid after later writes, ranges either way come in key order whenever they are asked for between writes,
// and the byte count covers every record appended.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Memtable } from '../../src/storage/lmdb/memtable.ts';

const bytesOf = (key: string): Uint8Array => Buffer.from(key, 'latin1');

// Keys start with one of three bytes (the order is kept per first byte); a few are long
// enough for a chunk of their own.
const keyOf = (n: number): string =>
  `${'\x00k\xff'[n % 3]}${String(n).padStart(3, '0')}${n % 13 === 0 ? 'x'.repeat(17_000) : ''}`;

const operation = fc.record({
  key: fc.integer({ min: 0, max: 40 }).map(keyOf),
  // Often a value of about the length the key has now, which may be written over it in
  // place: up to 9 bytes longer (one more than fits) or shorter.
  lengthChange: fc.option(fc.integer({ min: -9, max: 9 }), { freq: 2 }),
  // Lengths are drawn, bytes follow a pattern: drawing thousands of bytes each is slow.
  value: fc.option(
    fc
      .tuple(
        fc.oneof(
          { weight: 8, arbitrary: fc.integer({ min: 0, max: 3000 }) },
          { weight: 1, arbitrary: fc.integer({ min: 16_000, max: 20_000 }) },
        ),
        fc.integer({ min: 0, max: 255 }),
      )
      .map(([length, seed]) => Uint8Array.from({ length }, (_, i) => (seed + i * 7) & 0xff)),
    { nil: null, freq: 6 },
  ),
  // Now and then a range, asked for after this write: the order is kept lazily.
  range: fc.option(
    fc.record({
      start: fc.integer({ min: 0, max: 41 }).map(keyOf),
      end: fc.option(fc.integer({ min: 0, max: 41 }).map(keyOf)),
      reverse: fc.boolean(),
    }),
    { freq: 4 },
  ),
});

test('the memtable reads back what a Map would hold, in key order, values kept valid', () => {
  fc.assert(
    fc.property(fc.array(operation, { maxLength: 400, size: 'max' }), (operations) => {
      const memtable = new Memtable();
      const reference = new Map<string, Uint8Array | null>();
      const handedOut: { view: Uint8Array; copy: Uint8Array }[] = [];
      for (const { key, lengthChange, range, ...drawn } of operations) {
        const current = reference.get(key);
        const value =
          lengthChange !== null && current !== undefined && current !== null && drawn.value !== null
            ? Uint8Array.from(
                { length: Math.max(0, current.length + lengthChange) },
                (_, i) => (current[i] ?? 0) ^ drawn.value!.length,
              )
            : drawn.value;
        memtable.set(bytesOf(key), value, key.length % 2 === 0 ? key : undefined);
        reference.set(key, value);
        const read = memtable.get(bytesOf(key));
        if (read !== null && read !== undefined) handedOut.push({ view: read, copy: read.slice() });
        if (range !== null) {
          const { start, end, reverse } = range;
          const expected = [...reference]
            .filter(([k]) => k >= start && (end === null || k < end))
            .sort(([a], [b]) => (a < b ? -1 : 1));
          if (reverse) expected.reverse();
          assert.deepEqual([...memtable.range(start, end, reverse)], expected);
        }
      }
      for (const [key, value] of reference) {
        assert.deepEqual(memtable.get(bytesOf(key)), value, key);
      }
      assert.equal(memtable.get(bytesOf('absent')), undefined);
      assert.equal(memtable.size, reference.size);
      const sorted = [...reference].sort(([a], [b]) => (a < b ? -1 : 1));
      assert.deepEqual([...memtable.range('', null)], sorted);
      for (const { view, copy } of handedOut) assert.deepEqual(view, copy);
      let liveBytes = 0;
      for (const value of reference.values()) liveBytes += value?.length ?? 0;
      assert.ok(memtable.bytes >= liveBytes, `${memtable.bytes} bytes counted`);
      // The checkpoint's walk, once frozen: the same entries, keys as bytes (read before the
      // next one).
      memtable.freeze();
      assert.throws(() => memtable.set(bytesOf('k000'), null), /frozen/);
      const records: [string, Uint8Array | null][] = [];
      for (const { key, value } of memtable.records()) {
        records.push([Buffer.from(key).toString('latin1'), value]);
      }
      assert.deepEqual(records, sorted);
    }),
    { seed: 5, numRuns: 40, endOnFailure: true },
  );
});

test('a value that fits in the record is written in place: the arena does not grow, copies stay as read', () => {
  const memtable = new Memtable();
  const key = bytesOf('key');
  memtable.set(key, Buffer.alloc(100, 1));
  const bytes = memtable.bytes;
  const first = memtable.get(key)!;
  // From 100 bytes down to 0 and up to 108, the first value's length and its 8 spare bytes.
  for (let i = 2; i < 1000; i++) memtable.set(key, Buffer.alloc((i * 37) % 109, i & 0xff));
  memtable.set(key, Buffer.alloc(108, 9));
  assert.equal(memtable.bytes, bytes);
  assert.deepEqual(Buffer.from(first), Buffer.alloc(100, 1));
  assert.deepEqual(Buffer.from(memtable.get(key)!), Buffer.alloc(108, 9));
  // Longer than that, a delete, a delete over it: appended, appended, nothing.
  memtable.set(key, Buffer.alloc(109, 7));
  assert.ok(memtable.bytes > bytes);
  assert.deepEqual(Buffer.from(memtable.get(key)!), Buffer.alloc(109, 7));
  memtable.set(key, null);
  const deleted = memtable.bytes;
  memtable.set(key, null);
  assert.equal(memtable.bytes, deleted);
  assert.equal(memtable.get(key), null);
  // Frozen, it hands out views of its arena: the same bytes each time.
  memtable.set(key, Buffer.alloc(10, 3));
  memtable.freeze();
  const view = memtable.get(key)!;
  assert.equal(view.buffer, memtable.get(key)!.buffer);
  assert.equal(view.byteOffset, memtable.get(key)!.byteOffset);
  assert.deepEqual(Buffer.from(view), Buffer.alloc(10, 3));
});

for (const [hashing, hash] of [
  ['its own hash', undefined],
  ['a hash under which every key collides', (key: Uint8Array) => key.length % 3],
] as const) {
  test(`the memtable finds every key after its index has grown, with ${hashing}`, () => {
    checkManyKeys(new Memtable(hash), hash === undefined ? 20_000 : 2_000);
  });
}

function checkManyKeys(memtable: Memtable, count: number): void {
  const keys = Array.from({ length: count }, (_, i) => `key:${(i * 7919) % 20_011}`);
  keys.forEach((key, i) => memtable.set(bytesOf(key), bytesOf(`v${i}`)));
  keys.forEach((key, i) => {
    if (i % 3 === 0) memtable.set(bytesOf(key), i % 2 === 0 ? null : bytesOf(`w${i}`));
  });
  assert.equal(memtable.size, keys.length);
  keys.forEach((key, i) => {
    const expected = i % 3 !== 0 ? `v${i}` : i % 2 === 0 ? null : `w${i}`;
    const value = memtable.get(bytesOf(key));
    assert.equal(value === null ? null : Buffer.from(value!).toString('latin1'), expected, key);
  });
  assert.equal(memtable.get(bytesOf('key:absent')), undefined);
  assert.deepEqual(
    [...memtable.range('', null)].map(([key]) => key),
    [...keys].sort(),
  );
}

test('the memtable orders keys bytewise: prefixes first, long shared prefixes, bytes 0 and 255', () => {
  // Few distinct bytes and a shared head of 0 to 30 bytes: keys that begin others, keys that
  // end where another has a zero byte, and keys equal for longer than the sort's packed part.
  const keyArbitrary = fc
    .tuple(
      fc.integer({ min: 0, max: 30 }),
      fc.array(fc.constantFrom(0x00, 0x01, 0x7f, 0xfe, 0xff), { maxLength: 8 }),
    )
    .map(([shared, tail]) => Buffer.from([...Array<number>(shared).fill(0x61), ...tail]));
  fc.assert(
    fc.property(fc.array(keyArbitrary, { maxLength: 200, size: 'max' }), (keys) => {
      const memtable = new Memtable();
      for (const key of keys) memtable.set(key, key);
      const expected = [...new Set(keys.map((key) => key.toString('latin1')))].sort((a, b) =>
        Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')),
      );
      assert.deepEqual(
        [...memtable.range('', null)].map(([key]) => key),
        expected,
      );
    }),
    { seed: 11, numRuns: 200 },
  );
});
