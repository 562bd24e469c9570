// UnsyncedKeys against an exact model, a map from key to the newest durable batch that wrote
// it: a read never waits less than the model says (a key written by an unpersisted batch is
// never read as synced) and never waits for a persisted batch; a key not written waits only
// as often as the cells' sharing says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
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

test('a key not written waits only when it shares a cell with one that was', () => {
  const unsynced = new UnsyncedKeys();
  assert.equal(unsynced.batchOf(KEYS[0]!), 0, 'nothing written');
  for (let i = 0; i < 100; i++) unsynced.mark(KEYS[i]!, 1);
  let waiting = 0;
  for (let i = 100; i < KEYS.length; i++) if (unsynced.batchOf(KEYS[i]!) !== 0) waiting++;
  // 100 keys marked over 16,384 cells: about 0.6 of the other 100 keys share one.
  assert.ok(waiting <= 5, `${waiting} of 100 keys not written wait`);
  unsynced.persisted(1);
  for (const key of KEYS) assert.equal(unsynced.batchOf(key), 0, 'everything persisted');
  assert.equal(unsynced.empty, true);
});
