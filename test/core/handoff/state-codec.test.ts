// The saved transfer state's codec: every state round-trips; the bytes are canonical (a
// decoder takes only its encoder's bytes); truncated, extended or garbled bytes raise
// DecodeError and nothing else. The format is pinned by one literal encoding, so a change
// that would strand saved transfers on disk shows up as a failing test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DecodeError } from '../../../src/core/store/byte-codec.ts';
import {
  decodeSavedTransfer,
  encodeSavedTransfer,
  type SavedTransfer,
} from '../../../src/core/handoff/state-codec.ts';

const SETTINGS = { seed: Number(process.env['HANDOFF_PROPERTY_SEED'] ?? 20250611), numRuns: 500 };

const key = fc.uint8Array({ minLength: 1, maxLength: 40 });
const count = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

const savedTransfer: fc.Arbitrary<SavedTransfer> = fc
  .record({
    transferId: fc.string({ minLength: 1, maxLength: 128 }),
    keyspaceId: fc.integer({ min: 0, max: 0xffff_ffff }),
    partition: fc.integer({ min: 0, max: 0xffff }),
    source: fc.string({ minLength: 1, maxLength: 64 }),
    cursor: fc.option(key),
    complete: fc.boolean(),
    keysDurable: count,
    bytesDurable: count,
    countedKeys: count,
    countedBytes: count,
    countCursor: fc.option(key),
    countComplete: fc.boolean(),
  })
  .map((saved) => ({ ...saved, countCursor: saved.countComplete ? null : saved.countCursor }));

test('every saved state round-trips through its encoding', () => {
  fc.assert(
    fc.property(savedTransfer, (saved) => {
      assert.deepEqual(decodeSavedTransfer(encodeSavedTransfer(saved)), saved);
    }),
    SETTINGS,
  );
});

test('truncated, extended or garbled bytes raise DecodeError, never anything else', () => {
  fc.assert(
    fc.property(
      savedTransfer,
      fc.nat(),
      fc.integer({ min: 0, max: 255 }),
      (saved, position, byte) => {
        const bytes = encodeSavedTransfer(saved);
        assert.throws(
          () => decodeSavedTransfer(bytes.subarray(0, position % bytes.length)),
          DecodeError,
        );
        const extended = new Uint8Array(bytes.length + 1);
        extended.set(bytes);
        assert.throws(() => decodeSavedTransfer(extended), DecodeError);
        const garbled = bytes.slice();
        garbled[position % bytes.length] = byte;
        try {
          const decoded = decodeSavedTransfer(garbled);
          // A change that still decodes is canonical: it encodes back to the same bytes.
          assert.deepEqual(encodeSavedTransfer(decoded), garbled);
        } catch (error) {
          assert.ok(error instanceof DecodeError, String(error));
        }
      },
    ),
    SETTINGS,
  );
});

test('a finished count with a cursor left, and unknown flags, are refused', () => {
  const saved: SavedTransfer = {
    transferId: 't',
    keyspaceId: 1,
    partition: 2,
    source: 'a',
    cursor: null,
    complete: false,
    keysDurable: 0,
    bytesDurable: 0,
    countedKeys: 0,
    countedBytes: 0,
    countCursor: new Uint8Array([1]),
    countComplete: true,
  };
  assert.throws(() => decodeSavedTransfer(encodeSavedTransfer(saved)), /finished count/);
  const bytes = encodeSavedTransfer({ ...saved, countComplete: false });
  const flagsAt = 1 + 2 + 1 + 1 + 2;
  bytes[flagsAt]! |= 0x80;
  assert.throws(() => decodeSavedTransfer(bytes), /flags/);
});

test('format 1 is pinned: a known state encodes to known bytes', () => {
  const saved: SavedTransfer = {
    transferId: 't',
    keyspaceId: 1,
    partition: 2,
    source: 'a',
    cursor: new Uint8Array([7]),
    complete: true,
    keysDurable: 3,
    bytesDurable: 300,
    countedKeys: 3,
    countedBytes: 300,
    countCursor: null,
    countComplete: true,
  };
  const expected = [1, 1, 116, 1, 2, 1, 97, 7, 1, 7, 3, 172, 2, 3, 172, 2];
  assert.deepEqual(Array.from(encodeSavedTransfer(saved)), expected);
  assert.deepEqual(decodeSavedTransfer(new Uint8Array(expected)), saved);
});
