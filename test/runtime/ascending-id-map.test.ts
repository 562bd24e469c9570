// AscendingIdMap against a plain Map: the same values after any sequence of sets (ids
// ascending, with holes, now and then one below the window as a nested request makes)
// and deletes (mostly oldest first, some long-lived ones left behind), while its window
// never spans more than its bound and is emptied when nothing is held.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AscendingIdMap } from '../../src/runtime/ascending-id-map.ts';

const WINDOW_MAX = 16;

const operation = fc.oneof(
  { weight: 10, arbitrary: fc.record({ setAhead: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ setBehind: fc.integer({ min: 1, max: 60 }) }) },
  { weight: 8, arbitrary: fc.record({ deleteOldest: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 3, arbitrary: fc.record({ deleteAny: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ deleteAbsent: fc.nat() }) },
);

test('ascending id map: what a Map would hold, in a bounded window', () => {
  fc.assert(
    fc.property(fc.array(operation, { maxLength: 600, size: 'max' }), (operations) => {
      const map = new AscendingIdMap<number>(WINDOW_MAX);
      const model = new Map<number, number>();
      let lastId = 100;
      let value = 0;
      for (const operation of operations) {
        if ('setAhead' in operation) {
          lastId += operation.setAhead;
          map.set(lastId, value);
          model.set(lastId, value++);
        } else if ('setBehind' in operation) {
          // An id handed out earlier whose request was still being stepped.
          const id = lastId - operation.setBehind;
          if (id > 0 && !model.has(id)) {
            map.set(id, value);
            model.set(id, value++);
          }
        } else if ('deleteOldest' in operation) {
          const ids = [...model.keys()].sort((a, b) => a - b);
          const id = ids[Math.min(operation.deleteOldest, ids.length - 1)];
          if (id !== undefined) {
            assert.equal(map.take(id), model.get(id));
            model.delete(id);
          }
        } else if ('deleteAny' in operation) {
          const ids = [...model.keys()];
          if (ids.length > 0) {
            const id = ids[operation.deleteAny % ids.length]!;
            assert.equal(map.take(id), model.get(id));
            model.delete(id);
          }
        } else {
          const id = (operation.deleteAbsent % (lastId + 5)) + 1;
          assert.equal(map.take(id), model.get(id));
          model.delete(id);
        }
        assert.equal(map.size, model.size);
        assert.ok(map.span <= WINDOW_MAX, `the window spans ${map.span} ids`);
        if (model.size === 0) assert.equal(map.span, 0);
        for (let id = 0; id <= lastId + 2; id++) assert.equal(map.get(id), model.get(id));
        const inOrder = [...model.entries()].sort((a, b) => a[0] - b[0]).map((entry) => entry[1]);
        assert.deepEqual(map.values(), inOrder);
      }
    }),
    { seed: 11, numRuns: 300, endOnFailure: true },
  );
});

test('ascending id map: a value that stays long moves out of the window', () => {
  const map = new AscendingIdMap<string>(8);
  map.set(1, 'long');
  for (let id = 2; id <= 40; id++) {
    map.set(id, `short ${id}`);
    assert.ok(map.take(id) !== undefined);
  }
  assert.equal(map.size, 1);
  assert.equal(map.span, 0);
  assert.equal(map.get(1), 'long');
  map.set(41, 'next');
  assert.deepEqual(map.values(), ['long', 'next']);
  map.clear();
  assert.equal(map.size, 0);
  assert.equal(map.get(41), undefined);
});

test('ascending id map: a window that starts afresh stays above the ids moved out of it', () => {
  const map = new AscendingIdMap<string>(8);
  map.set(50, 'spilled');
  for (let id = 51; id <= 70; id++) {
    map.set(id, `short ${id}`);
    map.take(id);
  }
  assert.equal(map.span, 0);
  // An older id set while the window is empty (a request stepped inside another's step
  // is set before it), then newer ones whose window would span the spilled id.
  map.set(45, 'older');
  for (const id of [49, 51, 52]) map.set(id, `new ${id}`);
  assert.equal(map.get(50), 'spilled');
  assert.equal(map.get(45), 'older');
  assert.equal(map.get(51), 'new 51');
  assert.deepEqual(map.values(), ['older', 'new 49', 'spilled', 'new 51', 'new 52']);
  assert.ok(map.take(50) !== undefined);
  assert.ok(map.take(45) !== undefined);
  assert.equal(map.get(50), undefined);
  assert.deepEqual(map.values(), ['new 49', 'new 51', 'new 52']);
});

test('ascending id map: an id that holds a value cannot be set again', () => {
  const map = new AscendingIdMap<string>(8);
  map.set(10, 'first');
  assert.throws(() => map.set(10, 'again'), /id 10 already has a value/);
  for (let id = 11; id <= 30; id++) map.set(id, `v${id}`);
  // 10 has moved to the overflow map by now.
  assert.throws(() => map.set(10, 'again'), /id 10 already has a value/);
  assert.equal(map.take(10), 'first');
  assert.equal(map.take(10), undefined);
  assert.equal(map.size, 20);
});
