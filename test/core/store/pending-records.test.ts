// The pending records of a replica store against a plain model that deletes each entry as its
// batch is persisted: the same records are pending after any sequence of writes and in-order
// persists, while the map drops persisted entries in bulk and never holds more than twice
// the live ones once past its rebuild size. Pending records read back as they were written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PendingRecords } from '../../../src/core/store/pending-records.ts';
import { encodeRecord } from '../../../src/core/store/record.ts';

// A distinct array per write: the test compares encoded records by identity.
const newRecord = (): Uint8Array => encodeRecord({ context: [], siblings: [] });

const step = fc.oneof(
  // A batch that writes these keys (a key may repeat within it).
  {
    weight: 3,
    arbitrary: fc.record({ write: fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 4 }) }),
  },
  // Persist the oldest `count` unpersisted batches.
  { weight: 2, arbitrary: fc.record({ persist: fc.integer({ min: 1, max: 5 }) }) },
);

test('pending records: what a map deleting each persisted entry would hold, in bounded space', () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 300, size: 'max' }), (steps) => {
      const pending = new PendingRecords(8);
      const model = new Map<string, { batchId: number; record: Uint8Array }>();
      const counts: number[] = [];
      let nextBatchId = 1;
      let persistedBatchId = 0;
      for (const s of steps) {
        if ('write' in s) {
          const batchId = nextBatchId++;
          for (const key of s.write) {
            const record = newRecord();
            pending.set(`k${key}`, record, batchId, batchId % 2 === 0);
            model.set(`k${key}`, { batchId, record });
          }
          counts.push(s.write.length);
        } else {
          // One call covers every batch up to the one it names, as a group commit does.
          const upTo = Math.min(persistedBatchId + s.persist, nextBatchId - 1);
          if (upTo > persistedBatchId) {
            pending.persisted(upTo);
            persistedBatchId = upTo;
            for (const [key, entry] of model) if (entry.batchId <= upTo) model.delete(key);
          }
        }
        for (let key = 0; key <= 30; key++) {
          const expected = model.get(`k${key}`);
          const got = pending.get(`k${key}`);
          assert.equal(got?.encoded, expected?.record, `k${key}`);
          if (got !== undefined) assert.deepEqual(got.record, { context: [], siblings: [] });
          assert.equal(got?.batchId, expected?.batchId);
          if (got !== undefined) assert.equal(got.durable, got.batchId % 2 === 0);
        }
        assert.deepEqual(
          new Map([...pending.entries()].map(([key, entry]) => [key, entry.encoded])),
          new Map([...model].map(([key, entry]) => [key, entry.record])),
        );
        // Records set by unpersisted batches, a key set twice counted twice.
        const liveMax = counts.slice(persistedBatchId).reduce((a, b) => a + b, 0);
        assert.equal(pending.empty, liveMax === 0);
        if ('persist' in s) {
          if (liveMax === 0) assert.equal(pending.held, 0);
          const held = pending.held;
          assert.ok(held <= liveMax || held < Math.max(8, 2 * liveMax), `${held} held, ${liveMax}`);
        }
      }
    }),
    { seed: 11, numRuns: 200, endOnFailure: true },
  );
});
