// BatchWaiters against a map from batch id to a list, the structure it replaced: the same
// items handed out in the same order after any sequence of adds and takes, with its arrays
// emptied when nothing waits and never more than twice the waiting items once compacting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BatchWaiters } from '../../src/core/batch-waiters.ts';

/** The model: lists by batch id, handed out from the lowest id, each list in order. */
class ListsByBatch {
  private readonly lists = new Map<number, number[]>();

  add(batchId: number, item: number): void {
    const list = this.lists.get(batchId);
    if (list === undefined) this.lists.set(batchId, [item]);
    else list.push(item);
  }

  take(batchId: number): number | undefined {
    const lowest = Math.min(...this.lists.keys());
    if (!(lowest <= batchId)) return undefined;
    const list = this.lists.get(lowest)!;
    const item = list.shift()!;
    if (list.length === 0) this.lists.delete(lowest);
    return item;
  }

  get size(): number {
    let size = 0;
    for (const list of this.lists.values()) size += list.length;
    return size;
  }
}

// Mostly adds for the newest batches, as a node makes them, some for older ones, and takes
// that drain up to a batch: the head moves far, out-of-order adds land in the middle.
const operation = fc.oneof(
  { weight: 8, arbitrary: fc.record({ addAhead: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 2, arbitrary: fc.record({ addBehind: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 3, arbitrary: fc.record({ drainAhead: fc.integer({ min: -2, max: 4 }) }) },
);

test('batch waiters: the order of lists by batch id, in bounded space', () => {
  fc.assert(
    fc.property(fc.array(operation, { maxLength: 500, size: 'max' }), (operations) => {
      const waiters = new BatchWaiters<number>(4);
      const model = new ListsByBatch();
      let newest = 1;
      let drained = 0;
      let nextItem = 0;
      for (const operation of operations) {
        if ('addAhead' in operation) {
          newest += operation.addAhead;
          waiters.add(newest, nextItem);
          model.add(newest, nextItem++);
        } else if ('addBehind' in operation) {
          const batchId = Math.max(drained + 1, newest - operation.addBehind);
          waiters.add(batchId, nextItem);
          model.add(batchId, nextItem++);
        } else {
          const through = Math.max(drained, Math.min(newest, drained + operation.drainAhead));
          for (;;) {
            const item = waiters.take(through);
            assert.equal(item, model.take(through));
            if (item === undefined) break;
          }
          drained = through;
        }
        assert.equal(waiters.size, model.size);
        if (model.size === 0) assert.equal(waiters.held, 0);
        else assert.ok(waiters.held <= Math.max(4, 2 * model.size + 1), `${waiters.held} held`);
      }
    }),
    { seed: 5, numRuns: 300, endOnFailure: true },
  );
});

test('batch waiters: an item for an older batch runs before the newer batches', () => {
  const waiters = new BatchWaiters<string>();
  waiters.add(5, 'a');
  waiters.add(7, 'b');
  waiters.add(5, 'c');
  waiters.add(3, 'd');
  waiters.add(9, 'e');
  assert.equal(waiters.take(2), undefined);
  const taken: string[] = [];
  for (let item = waiters.take(7); item !== undefined; item = waiters.take(7)) taken.push(item);
  assert.deepEqual(taken, ['d', 'a', 'c', 'b']);
  assert.equal(waiters.size, 1);
  assert.equal(waiters.take(8), undefined);
  assert.equal(waiters.take(9), 'e');
  assert.equal(waiters.held, 0);
});
