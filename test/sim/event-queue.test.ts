// The simulator's agenda against a naive reference: events leave in order of time, and
// events due at the same time leave in the order they were pushed. Seeded: EVENT_QUEUE_SEED
// replays a failure that fast-check reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EventQueue } from '../../src/sim/event-queue.ts';

const SEED = Number(process.env['EVENT_QUEUE_SEED'] ?? 20_251_123);

/** A push at a time (few distinct times, so ties are common) or a pop. */
const step = fc.oneof(
  fc.record({ kind: fc.constant('push' as const), atMs: fc.integer({ min: 0, max: 20 }) }),
  fc.record({ kind: fc.constant('pop' as const) }),
);

test('events leave by time, and events at one time in the order they were pushed', () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 400, size: 'max' }), (steps) => {
      const queue = new EventQueue<number>();
      // The reference keeps every pending event and scans for the earliest.
      const pending: { atMs: number; pushed: number }[] = [];
      let pushed = 0;
      for (const action of steps) {
        if (action.kind === 'push') {
          queue.push(action.atMs, pushed);
          pending.push({ atMs: action.atMs, pushed });
          pushed++;
        } else {
          let earliest = -1;
          for (let index = 0; index < pending.length; index++) {
            const candidate = pending[index]!;
            const best = pending[earliest];
            if (best === undefined || candidate.atMs < best.atMs) earliest = index;
          }
          const expected = earliest < 0 ? undefined : pending.splice(earliest, 1)[0];
          const actual = queue.pop();
          assert.equal(actual?.payload, expected?.pushed);
          assert.equal(actual?.atMs, expected?.atMs);
        }
        assert.equal(queue.size, pending.length);
        const earliestMs = pending.reduce((min, event) => Math.min(min, event.atMs), Infinity);
        assert.equal(queue.peekTime(), pending.length === 0 ? undefined : earliestMs);
      }
    }),
    { seed: SEED, numRuns: 300 },
  );
});

test('draining a queue of many events gives them back sorted by time, ties in push order', () => {
  const queue = new EventQueue<number>();
  let state = SEED;
  const times: number[] = [];
  for (let index = 0; index < 10_000; index++) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    times.push(state % 500);
    queue.push(state % 500, index);
  }
  const expected = times
    .map((atMs, index) => ({ atMs, index }))
    .sort((a, b) => a.atMs - b.atMs || a.index - b.index);
  for (const event of expected) assert.equal(queue.pop()?.payload, event.index);
  assert.equal(queue.pop(), undefined, `seed ${SEED}: the drained queue is empty`);
});
