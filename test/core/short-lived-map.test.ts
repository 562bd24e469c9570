// ShortLivedMap against a plain Map: the same entries after any sequence of sets and
// deletes, while its table is dropped when nothing is live and never holds more than four
// times the live entries once past its rebuild size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ShortLivedMap } from '../../src/core/short-lived-map.ts';

// Bursts of sets and of deletes, so that the live entries rise and fall far and the table
// gets rebuilt and dropped.
const key = fc.integer({ min: 0, max: 120 });
const operation = fc.oneof(
  { weight: 10, arbitrary: fc.record({ set: key, value: fc.integer() }) },
  { weight: 10, arbitrary: fc.record({ delete: key }) },
  { weight: 2, arbitrary: fc.record({ deleteAllBut: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ clear: fc.constant(true) }) },
);

test('short-lived map: what a Map would hold, in bounded space', () => {
  fc.assert(
    fc.property(fc.array(operation, { maxLength: 400, size: 'max' }), (operations) => {
      const map = new ShortLivedMap<number, number>(8);
      const model = new Map<number, number>();
      for (const operation of operations) {
        if ('set' in operation) {
          map.set(operation.set, operation.value);
          model.set(operation.set, operation.value);
        } else if ('delete' in operation) {
          assert.equal(map.delete(operation.delete), model.delete(operation.delete));
          const held = map.held;
          assert.ok(held < Math.max(8, 4 * model.size + 1), `${held} held, ${model.size} live`);
        } else if ('deleteAllBut' in operation) {
          for (const key of [...model.keys()].slice(operation.deleteAllBut)) {
            assert.equal(map.delete(key), model.delete(key));
          }
        } else {
          map.clear();
          model.clear();
        }
        assert.equal(map.size, model.size);
        if (model.size === 0) assert.equal(map.held, 0);
        for (let key = 0; key <= 120; key++) assert.equal(map.get(key), model.get(key));
        assert.deepEqual([...map.values()].sort(), [...model.values()].sort());
      }
    }),
    { seed: 3, numRuns: 200, endOnFailure: true },
  );
});
