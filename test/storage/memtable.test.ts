// The LMDB engine's memtable against a plain Map: values copied into the arena read back
// as written (across chunk changes, large values, deletes), a value handed out stays valid
// after later writes, entries come in key order, and the byte count covers every value
// written, overwritten ones included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Memtable } from '../../src/storage/lmdb/memtable.ts';

const operation = fc.record({
  key: fc.integer({ min: 0, max: 40 }).map((n) => `k${String(n).padStart(3, '0')}`),
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
});

test('the memtable reads back what a Map would hold, in key order, values kept valid', () => {
  fc.assert(
    fc.property(fc.array(operation, { maxLength: 400 }), (operations) => {
      const memtable = new Memtable();
      const reference = new Map<string, Uint8Array | null>();
      const handedOut: { view: Uint8Array; copy: Uint8Array }[] = [];
      let valueBytes = 0;
      for (const { key, value } of operations) {
        memtable.set(key, value);
        reference.set(key, value);
        valueBytes += value?.length ?? 0;
        const read = memtable.get(key);
        if (read !== null && read !== undefined) handedOut.push({ view: read, copy: read.slice() });
      }
      for (const [key, value] of reference) assert.deepEqual(memtable.get(key), value, key);
      assert.equal(memtable.get('absent'), undefined);
      assert.equal(memtable.size, reference.size);
      assert.deepEqual(
        [...memtable.entries()].map(([key]) => key),
        [...reference.keys()].sort(),
      );
      for (const { view, copy } of handedOut) assert.deepEqual(view, copy);
      assert.ok(memtable.bytes >= valueBytes, `${memtable.bytes} bytes counted`);
    }),
    { seed: 5, numRuns: 40, endOnFailure: true },
  );
});
