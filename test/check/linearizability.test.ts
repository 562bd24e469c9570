// Hand-written histories from the literature on linearizable registers (Herlihy and Wing
// 1990, and the anomalies Jepsen and Knossos report), each named after what it shows. Every
// violation is a negative control: a checker that decays into 'linearizable' fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLinearizable, type LinearizabilityResult } from '../../src/check/linearizability.ts';
import type { History } from '../../src/check/history.ts';
import { cas, del, failed, get, incr, put, unknown } from './builders.ts';

const BUDGET = { budgetMs: 5_000 };

function check(history: History): LinearizabilityResult {
  return checkLinearizable(history, BUDGET);
}

function assertLinearizable(history: History): void {
  const result = check(history);
  assert.equal(result.result, 'linearizable', result.explanation);
}

function assertViolation(
  history: History,
  key: string,
  unplacedOperation: number,
): LinearizabilityResult {
  const result = check(history);
  assert.equal(result.result, 'not-linearizable');
  assert.equal(result.key, key);
  assert.equal(result.unplacedOperation, unplacedOperation, result.explanation);
  assert.ok(result.explanation?.includes(`#${unplacedOperation} `), result.explanation);
  return result;
}

test('an empty history and a history of one key that is never touched are linearizable', () => {
  assertLinearizable([]);
  assertLinearizable([get('x', [0, 1], null)]);
});

test('a read that returns a value never written is not linearizable', () => {
  assertViolation([put('x', [0, 10], 'a'), get('x', [20, 30], 'b', 1)], 'x', 1);
});

test('a read of absent before any write completes is linearizable, after it completes is not', () => {
  assertLinearizable([put('x', [0, 10], 'a'), get('x', [5, 15], null, 1)]);
  assertViolation([put('x', [0, 10], 'a'), get('x', [11, 15], null, 1)], 'x', 1);
});

test('a stale read after a completed write is not linearizable', () => {
  const result = assertViolation(
    [put('x', [0, 10], 'a'), put('x', [20, 30], 'b'), get('x', [40, 50], 'a', 1)],
    'x',
    2,
  );
  assert.deepEqual(result.longestPrefix, [0, 1]);
  assert.match(result.explanation ?? '', /leaving the register "b"/);
});

test('a write and a concurrent read are linearizable whichever value the read returns', () => {
  const before = put('x', [0, 10], 'a');
  const write = put('x', [20, 40], 'b');
  assertLinearizable([before, write, get('x', [25, 35], 'a', 1)]);
  assertLinearizable([before, write, get('x', [25, 35], 'b', 1)]);
  // The read may also start before the write and end after it.
  assertLinearizable([before, write, get('x', [15, 45], 'b', 1)]);
});

test('new-old inversion: a read that sees the new value then a later read that sees the old is not linearizable', () => {
  // Each read alone overlaps the write and could return either value (a regular register
  // allows this); an atomic register does not let the second go back in time.
  assertViolation(
    [
      put('x', [0, 5], 'old'),
      put('x', [10, 100], 'new'),
      get('x', [20, 30], 'new', 1),
      get('x', [40, 50], 'old', 2),
    ],
    'x',
    3,
  );
  // Two readers seeing old then new in real-time order is fine.
  assertLinearizable([
    put('x', [0, 5], 'old'),
    put('x', [10, 100], 'new'),
    get('x', [20, 30], 'old', 1),
    get('x', [40, 50], 'new', 2),
  ]);
});

test('a delete makes the key absent; a read of the deleted value after the delete is not linearizable', () => {
  assertLinearizable([put('x', [0, 10], 'a'), del('x', [20, 30]), get('x', [40, 50], null, 1)]);
  assertViolation([put('x', [0, 10], 'a'), del('x', [20, 30]), get('x', [40, 50], 'a', 1)], 'x', 2);
});

test('a lost update: two concurrent increments that both return 1 are not linearizable', () => {
  assertViolation([incr('n', [0, 10], 1, '1', 1), incr('n', [0, 10], 1, '1', 2)], 'n', 1);
  assertLinearizable([
    incr('n', [0, 10], 1, '2', 1),
    incr('n', [0, 10], 1, '1', 2),
    get('n', [20, 30], '2'),
  ]);
});

test('an increment counts an absent key as 0, adds exactly past 2^53, and cannot apply to a non-integer', () => {
  assertLinearizable([incr('n', [0, 10], -3, '-3')]);
  assertLinearizable([
    put('n', [0, 10], '9007199254740993'),
    incr('n', [20, 30], 2, '9007199254740995'),
  ]);
  assertViolation([put('n', [0, 10], 'abc'), incr('n', [20, 30], 1, '1')], 'n', 1);
});

test('a compare-and-set succeeds only from the expected value, so two winners of the same cas are not linearizable', () => {
  const racers = [cas('x', [0, 10], null, 'a', true, 1), cas('x', [0, 10], null, 'b', true, 2)];
  assertViolation(racers, 'x', 1);
  assertLinearizable([
    cas('x', [0, 10], null, 'a', true, 1),
    cas('x', [0, 10], null, 'b', false, 2),
    get('x', [20, 30], 'a'),
  ]);
  // The loser of the race cannot have lost if nothing else wrote first.
  assertViolation([cas('x', [0, 10], null, 'a', false, 1)], 'x', 0);
  // A cas that failed because of a concurrent write is fine, one after a completed matching write is not.
  assertLinearizable([
    put('x', [0, 10], 'a'),
    put('x', [15, 30], 'b', 2),
    cas('x', [20, 25], 'a', 'c', false, 1),
  ]);
  assertViolation([put('x', [0, 10], 'a'), cas('x', [20, 25], 'a', 'c', false, 1)], 'x', 1);
});

test('a write of unknown outcome may take effect long after the client gave up on it', () => {
  assertLinearizable([
    put('x', [0, 5], 'a'),
    unknown(put('x', [10, 0], 'b'), 20),
    get('x', [30, 40], 'a', 1),
    get('x', [50, 60], 'b', 1),
    get('x', [70, 80], 'b', 2),
  ]);
});

test('a write of unknown outcome may never take effect', () => {
  assertLinearizable([
    put('x', [0, 5], 'a'),
    unknown(put('x', [10, 0], 'b')),
    get('x', [100, 110], 'a', 1),
  ]);
  assertLinearizable([unknown(incr('n', [0, 0], 5, '0')), incr('n', [10, 20], 1, '1')]);
});

test('a write of unknown outcome cannot take effect before it was invoked, nor be undone', () => {
  assertViolation(
    [put('x', [0, 5], 'a'), get('x', [6, 8], 'b', 1), unknown(put('x', [10, 0], 'b'))],
    'x',
    1,
  );
  assertViolation(
    [
      put('x', [0, 5], 'a'),
      unknown(put('x', [10, 0], 'b')),
      get('x', [20, 30], 'b', 1),
      get('x', [40, 50], 'a', 1),
    ],
    'x',
    3,
  );
});

test('an increment of unknown outcome counts at most once', () => {
  const history = [
    unknown(incr('n', [0, 0], 1, '0'), 5),
    incr('n', [10, 20], 1, '2'),
    incr('n', [30, 40], 1, '4'),
  ];
  assertViolation(history, 'n', 2);
});

test('a failed operation must not take effect', () => {
  assertViolation(
    [put('x', [0, 5], 'a'), failed(put('x', [10, 20], 'b')), get('x', [30, 40], 'b', 1)],
    'x',
    2,
  );
  assertViolation([failed(incr('n', [0, 10], 1, '1')), incr('n', [20, 30], 1, '2')], 'n', 1);
  // Its recorded output means nothing: a failed read of an impossible value is ignored.
  assertLinearizable([
    put('x', [0, 5], 'a'),
    failed(get('x', [10, 20], 'zzz')),
    get('x', [30, 40], 'a'),
  ]);
});

test('an operation invoked at the instant another completed counts as concurrent with it', () => {
  assertLinearizable([put('x', [0, 10], 'a'), get('x', [10, 20], null, 1)]);
  assertViolation([put('x', [0, 10], 'a'), get('x', [11, 20], null, 1)], 'x', 1);
});

test('one violating key among many is found and named, the other keys staying linearizable', () => {
  const history: History[number][] = [];
  for (let key = 0; key < 40; key++) {
    const name = `key-${key}`;
    const at = key * 3;
    history.push(put(name, [at, at + 10], `v${key}`, key % 5));
    history.push(get(name, [at + 5, at + 15], key === 27 ? 'wrong' : `v${key}`, (key + 1) % 5));
  }
  const result = checkLinearizable(history, BUDGET);
  assert.equal(result.result, 'not-linearizable');
  assert.equal(result.key, 'key-27');
  assert.equal(result.unplacedOperation, 55);
  assert.equal(result.keysLinearizable, 27, 'keys are checked in the order they first appear');
  assert.equal(result.keysTotal, 40);
});

test('each key is its own register: a write to one key is never read from another', () => {
  const writes = [put('x', [0, 10], 'a', 1), put('y', [5, 15], 'b', 2)];
  assertLinearizable([...writes, get('x', [20, 30], 'a', 3), get('y', [20, 30], 'b', 3)]);
  assertViolation([...writes, get('x', [20, 30], 'b', 3)], 'x', 2);
});

test('a key with more operations than the bound answers unknown with the reason, yet a violation elsewhere is still found', () => {
  const crowded = Array.from({ length: 11 }, (_, index) =>
    put('big', [index * 10, index * 10 + 5], `v${index}`),
  );
  const bounded = checkLinearizable(crowded, { budgetMs: 5_000, maxOperationsPerKey: 10 });
  assert.equal(bounded.result, 'unknown');
  assert.equal(bounded.key, 'big');
  assert.match(bounded.explanation ?? '', /11 operations, more than the bound of 10/);
  const withViolation = [...crowded, put('small', [0, 1], 'a'), get('small', [2, 3], 'b')];
  const found = checkLinearizable(withViolation, { budgetMs: 5_000, maxOperationsPerKey: 10 });
  assert.equal(found.result, 'not-linearizable');
  assert.equal(found.key, 'small');
});

test('a malformed history is refused with the position and the problem', () => {
  const noCompletion = { ...put('x', [0, 1], 'a'), completedAt: null };
  assert.throws(
    () => check([noCompletion as never]),
    /operation 0: completedAt may be null only when the outcome is unknown/,
  );
  const backwards = put('x', [10, 5], 'a');
  assert.throws(
    () => check([get('x', [0, 1], null), backwards]),
    /operation 1: completedAt must not be before invokedAt/,
  );
  const badIncr = { ...incr('n', [0, 1], 1, '1'), output: '01' };
  assert.throws(
    () => check([badIncr as never]),
    /incr returns the new value as a decimal integer string/,
  );
});
