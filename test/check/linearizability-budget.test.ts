// The checker's bounds: a history whose search is exponential must answer 'unknown' when the
// budget or the memo runs out, never 'linearizable'. The clock is a counter handed in, so
// the budget runs out at the same step on every machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLinearizable } from '../../src/check/linearizability.ts';
import type { Operation } from '../../src/check/history.ts';
import { get, put } from './builders.ts';

/**
 * `writers` puts of distinct values, all concurrent, then a read of a value none wrote.
 * Not linearizable, but the search must try every subset of the puts (in every last-writer
 * state) before it can say so: about writers * 2^writers memo entries.
 */
function pathological(writers: number): Operation[] {
  const history: Operation[] = [];
  for (let writer = 0; writer < writers; writer++)
    history.push(put('x', [0, 100], `v${writer}`, writer));
  history.push(get('x', [200, 210], 'nobody-wrote-this', writers));
  return history;
}

/** A clock that moves one millisecond each time it is read. */
function steppingClock(): () => number {
  let nowMs = 0;
  return () => nowMs++;
}

test('a small pathological history is decided: the read of a value nobody wrote is found', () => {
  const result = checkLinearizable(pathological(8), {
    budgetMs: 1_000_000,
    nowMs: steppingClock(),
  });
  assert.equal(result.result, 'not-linearizable');
  assert.equal(result.unplacedOperation, 8);
});

test('a pathological history with a tiny budget answers unknown, not linearizable', () => {
  const result = checkLinearizable(pathological(24), { budgetMs: 20, nowMs: steppingClock() });
  assert.equal(result.result, 'unknown');
  assert.equal(result.key, 'x');
  assert.match(result.explanation ?? '', /budget of 20 ms ran out while checking key "x"/);
  assert.ok(result.elapsedMs >= 20);
});

test('a pathological history that fills the memo answers unknown, not linearizable', () => {
  const result = checkLinearizable(pathological(24), {
    budgetMs: 1_000_000,
    maxMemoEntries: 5_000,
  });
  assert.equal(result.result, 'unknown');
  assert.match(result.explanation ?? '', /remembered 5000 states, the bound/);
});

test('a budget that runs out on one key leaves the answer unknown even if earlier keys were fine', () => {
  const history = [put('y', [0, 1], 'a'), get('y', [2, 3], 'a'), ...pathological(24)];
  const result = checkLinearizable(history, { budgetMs: 20, nowMs: steppingClock() });
  assert.equal(result.result, 'unknown');
  assert.equal(result.keysLinearizable, 1);
  assert.equal(result.keysTotal, 2);
});

test('a long sequential history of 10,000 operations on one key is decided within the bounds', () => {
  const history: Operation[] = [];
  for (let index = 0; index < 5_000; index++) {
    history.push(put('x', [index * 10, index * 10 + 6], `v${index}`, 0));
    history.push(get('x', [index * 10 + 5, index * 10 + 9], `v${index}`, 1));
  }
  const result = checkLinearizable(history, { budgetMs: 10_000 });
  assert.equal(result.result, 'linearizable', result.explanation);
});

test('many small keys share one budget: past it, the next key is not started', () => {
  const history: Operation[] = [];
  for (let key = 0; key < 50; key++)
    history.push(put(`k${key}`, [0, 1], 'a'), get(`k${key}`, [2, 3], 'a'));
  const result = checkLinearizable(history, { budgetMs: 10, nowMs: steppingClock() });
  assert.equal(result.result, 'unknown');
  assert.ok(result.keysLinearizable < 50);
});

test("Lowe's memo decides 13 concurrent writes, whose orders (13!, about 6e9) a plain search could not try", () => {
  const result = checkLinearizable(pathological(13), { budgetMs: 30_000 });
  assert.equal(result.result, 'not-linearizable', result.explanation);
  assert.equal(result.unplacedOperation, 13);
});
