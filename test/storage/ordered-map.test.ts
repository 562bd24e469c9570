import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OrderedMap } from '../../src/storage/memory/ordered-map.ts';

// Short keys from a small alphabet collide often, so sets, overwrites and deletes mix;
// thousands of operations make the map split its chunks many times.
const key = fc.string({ unit: fc.constantFrom('a', 'b', 'c', '\u0000', '\u00ff'), maxLength: 6 });
const operation = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key, value: fc.integer() }),
  fc.record({ kind: fc.constant('delete' as const), key }),
);

test('ordered map: agrees with a sorted model on sets, deletes and ranges both ways', () => {
  fc.assert(
    fc.property(
      fc.array(operation, { minLength: 1000, maxLength: 3000 }),
      key,
      fc.option(key),
      (operations, start, end) => {
        const map = new OrderedMap<number>();
        const model = new Map<string, number>();
        for (const op of operations) {
          if (op.kind === 'set') {
            map.set(op.key, op.value);
            model.set(op.key, op.value);
          } else {
            assert.equal(map.delete(op.key), model.delete(op.key));
          }
        }
        assert.equal(map.size, model.size);
        const sorted = [...model.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        assert.deepEqual([...map.entries()], sorted);
        const inRange = sorted.filter(([k]) => k >= start && (end === null || k < end));
        assert.deepEqual([...map.range(start, end)], inRange);
        assert.deepEqual([...map.range(start, end, true)], inRange.reverse());
        for (const [k, v] of sorted) assert.equal(map.get(k), v);
      },
    ),
    { numRuns: 60, seed: 42 },
  );
});
