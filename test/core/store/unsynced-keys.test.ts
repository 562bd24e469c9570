// UnsyncedKeys against an exact model, a map from key to the newest durable batch that wrote
// it: a read never waits less than the model says (a key written by an unpersisted batch is
// never read as synced) and never waits for a persisted batch; a key not written waits only
// where two written keys share its cell.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { seededHash32 } from '../../../src/core/hash.ts';
import { UnsyncedKeys } from '../../../src/core/store/unsynced-keys.ts';

type Operation =
  | { readonly kind: 'write'; readonly keys: readonly number[] }
  | { readonly kind: 'persist'; readonly batches: number };

const KEYS = Array.from({ length: 200 }, (_, i) => new TextEncoder().encode(`key-${i}`));

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      keys: fc.array(fc.nat(KEYS.length - 1), { minLength: 1, maxLength: 4 }),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({ kind: fc.constant('persist' as const), batches: fc.nat(3) }),
    weight: 1,
  },
);

test('a read waits at least for the newest unpersisted batch of its key, and never for a persisted one', () => {
  fc.assert(
    fc.property(fc.array(operationArbitrary, { maxLength: 300 }), (operations) => {
      const unsynced = new UnsyncedKeys();
      const newest = new Map<number, number>();
      let emitted = 0;
      let persisted = 0;
      for (const op of operations) {
        if (op.kind === 'write') {
          const batchId = ++emitted;
          for (const key of op.keys) {
            unsynced.mark(KEYS[key]!, batchId);
            newest.set(key, batchId);
          }
        } else {
          persisted = Math.min(emitted, persisted + op.batches);
          if (persisted > 0) unsynced.persisted(persisted);
        }
        for (let key = 0; key < KEYS.length; key++) {
          const exact = newest.get(key) ?? 0;
          const waitFor = unsynced.batchOf(KEYS[key]!);
          if (exact > persisted) assert.ok(waitFor >= exact, `key ${key} waits for ${exact}`);
          assert.ok(waitFor === 0 || (waitFor > persisted && waitFor <= emitted));
        }
        assert.equal(unsynced.empty, emitted <= persisted);
      }
    }),
  );
});

test('a key not written waits only when two written keys share its cell', () => {
  const unsynced = new UnsyncedKeys();
  assert.equal(unsynced.batchOf(KEYS[0]!), 0, 'nothing written');
  const written = Array.from({ length: 2000 }, (_, i) => new TextEncoder().encode(`written-${i}`));
  const others = Array.from({ length: 2000 }, (_, i) => new TextEncoder().encode(`other-${i}`));
  for (let i = 0; i < written.length; i++) unsynced.mark(written[i]!, i + 1);
  for (let i = 0; i < written.length; i++) {
    assert.ok(unsynced.batchOf(written[i]!) >= i + 1, `written key ${i} waits for its batch`);
  }
  let waiting = 0;
  for (const key of others) if (unsynced.batchOf(key) !== 0) waiting++;
  // 2,000 keys over 16,384 cells: about 0.7% of the cells hold two of them (about 14 of the
  // 2,000 other keys land there), where 11% hold one (about 230 would wait without tags).
  assert.ok(waiting <= 40, `${waiting} of 2,000 keys not written wait`);
  unsynced.persisted(1000);
  for (let i = 0; i < 1000; i++) {
    const waitFor = unsynced.batchOf(written[i]!);
    assert.ok(waitFor === 0 || waitFor > 1000, 'never waits for a persisted batch');
  }
  unsynced.persisted(written.length);
  for (const key of [...written, ...others]) assert.equal(unsynced.batchOf(key), 0);
  assert.equal(unsynced.empty, true);
});

test('a cell that two keys wrote is not mixed once both are persisted', () => {
  const unsynced = new UnsyncedKeys();
  // Two keys of one cell, found by trying: the cell is their hash's low bits.
  const byCell = new Map<number, Uint8Array>();
  let pair: [Uint8Array, Uint8Array] | null = null;
  for (let i = 0; pair === null; i++) {
    const key = new TextEncoder().encode(`k${i}`);
    const cell = seededHash32(key, 0) & 16383;
    const other = byCell.get(cell);
    if (other !== undefined) pair = [other, key];
    else byCell.set(cell, key);
  }
  const [first, second] = pair;
  unsynced.mark(first, 1);
  assert.equal(unsynced.batchOf(second), 0, 'another key of the cell does not wait');
  unsynced.mark(second, 2);
  assert.equal(unsynced.batchOf(first), 2, 'mixed: both wait for the newest');
  unsynced.persisted(2);
  unsynced.mark(first, 3);
  assert.equal(unsynced.batchOf(second), 0, 'the cell was synced: the tag is one key again');
  assert.equal(unsynced.batchOf(first), 3);
});
