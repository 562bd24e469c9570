// StepView against storage that took the step's writes itself: the same gets and the same
// scans (bounds, limits, both directions), whatever the stored keys and the step's writes,
// deletes of stored keys and keys written twice included; and once cleared, storage alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StepView } from '../../../src/core/store/step-view.ts';
import type { StorageEntry, StorageWrite } from '../../../src/storage/contract.ts';
import { MemoryStorage } from '../../../src/storage/memory/memory-storage.ts';

const writeArbitrary: fc.Arbitrary<StorageWrite> = fc.record({
  key: fc.uint8Array({ minLength: 1, maxLength: 3, max: 4 }),
  value: fc.option(fc.uint8Array({ maxLength: 3 }), { nil: null, freq: 3 }),
});

const hex = (entries: StorageEntry[]): string[] =>
  entries.map(
    (e) => `${Buffer.from(e.key).toString('hex')}=${Buffer.from(e.value).toString('hex')}`,
  );

test("reads through the view equal reads of storage that took the step's writes", () => {
  fc.assert(
    fc.property(
      fc.array(writeArbitrary, { maxLength: 30 }),
      fc.array(fc.array(writeArbitrary, { minLength: 1, maxLength: 5 }), { maxLength: 5 }),
      fc.array(
        fc.record({
          start: fc.uint8Array({ maxLength: 2, max: 4 }),
          end: fc.option(fc.uint8Array({ minLength: 1, maxLength: 2, max: 5 }), { nil: null }),
          limit: fc.integer({ min: 0, max: 12 }),
          reverse: fc.boolean(),
        }),
        { minLength: 1, maxLength: 6 },
      ),
      (stored, batches, ranges) => {
        const storage = new MemoryStorage();
        storage.apply(stored);
        const expected = new MemoryStorage();
        expected.apply(stored);
        const view = new StepView(storage);
        for (const batch of batches) {
          view.add(batch);
          expected.apply(batch);
          for (const write of [...stored, ...batch]) {
            assert.deepEqual(view.get(write.key), expected.get(write.key));
          }
          for (const range of ranges) {
            assert.deepEqual(
              hex(view.scan(range)),
              hex(expected.scan(range)),
              JSON.stringify(range),
            );
          }
        }
        view.clear();
        for (const range of ranges)
          assert.deepEqual(hex(view.scan(range)), hex(storage.scan(range)));
      },
    ),
    { numRuns: 300 },
  );
});
