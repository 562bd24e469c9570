// The varints every stored record and message is made of: the bytes are LEB128 exactly
// (records written before must still read), at every width up to 2^53 - 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ByteReader, ByteWriter, DecodeError } from '../../../src/core/store/byte-codec.ts';

/** LEB128 computed on big integers: the reference the writer must match. */
function leb128(value: number): number[] {
  const bytes: number[] = [];
  let rest = BigInt(value);
  while (rest >= 0x80n) {
    bytes.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  bytes.push(Number(rest));
  return bytes;
}

/** Integers of every bit width, and the edges of each seven-bit group and of 31/32 bits. */
const widthArbitrary = fc.oneof(
  fc
    .integer({ min: 0, max: 53 })
    .chain((bits) =>
      fc
        .integer({ min: 0, max: 2 ** bits - 1 })
        .map((low) => Math.min(2 ** bits + low, 2 ** 53 - 1)),
    ),
  fc
    .constantFrom(7, 14, 21, 28, 31, 32, 35, 42, 49, 53)
    .chain((bits) => fc.constantFrom(2 ** bits - 1, 2 ** bits, 2 ** bits + 1))
    .filter((value) => value <= Number.MAX_SAFE_INTEGER),
  fc.integer({ min: 0, max: 300 }),
);

test('a varint is written as LEB128 and read back, at every width', () => {
  fc.assert(
    fc.property(fc.array(widthArbitrary, { minLength: 1, maxLength: 20 }), (values) => {
      const writer = new ByteWriter(4);
      for (const value of values) writer.varint(value);
      const bytes = writer.finish();
      assert.deepEqual([...bytes], values.flatMap(leb128));
      const reader = new ByteReader(bytes);
      for (const value of values) assert.equal(reader.varint(), value);
      assert.equal(reader.remaining, 0);
    }),
    { numRuns: 2000 },
  );
});

test('varints outside 0 to 2^53 - 1 are refused both ways', () => {
  for (const value of [-1, 0.5, 2 ** 53, Number.NaN]) {
    assert.throws(() => new ByteWriter().varint(value), RangeError);
  }
  // Nine bytes with the continuation bit, and eight that pass 2^53.
  const tooLong = new Uint8Array([...Array<number>(8).fill(0xff), 0x01]);
  assert.throws(() => new ByteReader(tooLong).varint(), DecodeError);
  const tooLarge = new Uint8Array([...Array<number>(7).fill(0xff), 0x7f]);
  assert.throws(() => new ByteReader(tooLarge).varint(), DecodeError);
  // Cut short inside a varint, and an empty input.
  assert.throws(() => new ByteReader(new Uint8Array([0x80])).varint(), DecodeError);
  assert.throws(() => new ByteReader(new Uint8Array(0)).varint(), DecodeError);
});
