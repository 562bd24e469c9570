// Byte strings cut from shared slabs: each view keeps its bytes however many are cut after
// it, small views share slabs while large ones get buffers of their own, and a record
// encoded through a slab is byte for byte the one encoded without.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ByteSlab, VIEW_BYTES_MAX } from '../../../src/core/store/byte-slab.ts';
import { decodeRecord, encodeRecord, type StoredRecord } from '../../../src/core/store/record.ts';

test('a slab view keeps its bytes while later views are cut, across slab changes', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 0, maxLength: VIEW_BYTES_MAX + 100 }), {
        maxLength: 400,
        size: 'max',
      }),
      (inputs) => {
        const slab = new ByteSlab();
        const copies = inputs.map((bytes) => bytes.slice());
        const kept = inputs.map((bytes) => slab.keep(bytes));
        // The caller's buffer may be reused at once: the kept bytes must not follow it.
        for (const bytes of inputs) bytes.fill(0xee);
        kept.forEach((view, index) => assert.deepEqual(view, copies[index]));
      },
    ),
    { seed: 7, numRuns: 60 },
  );
});

test('small byte strings share a slab; large ones get a buffer of their own', () => {
  const slab = new ByteSlab();
  const first = slab.keep(new Uint8Array(100).fill(1));
  const second = slab.keep(new Uint8Array(100).fill(2));
  assert.equal(first.buffer, second.buffer, 'two small views share one slab');
  assert.equal(second.byteOffset, first.byteOffset + 100);
  const large = slab.keep(new Uint8Array(VIEW_BYTES_MAX + 1).fill(3));
  assert.notEqual(large.buffer, first.buffer);
  assert.equal(large.buffer.byteLength, VIEW_BYTES_MAX + 1, 'a large string owns its buffer');
});

test('a record encoded through a slab equals the record encoded without one', () => {
  const slab = new ByteSlab();
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 5000 }),
      fc.integer({ min: 1, max: 2 ** 40 }),
      fc.string({ minLength: 1, maxLength: 10 }),
      (value, counter, node) => {
        const record: StoredRecord = {
          context: [[node, counter]],
          siblings: [{ dot: { node, counter }, timestamp: [counter, 3], value, expiresAtMs: 0 }],
        };
        const plain = encodeRecord(record);
        const slabbed = encodeRecord(record, slab);
        assert.deepEqual(slabbed, plain);
        assert.deepEqual(decodeRecord(slabbed), decodeRecord(plain));
      },
    ),
    { seed: 11, numRuns: 200 },
  );
});
