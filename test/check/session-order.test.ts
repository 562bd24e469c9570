// The session checker on hand-made histories: reads that miss what their client already
// knew are caught and named; reads that only miss what was never acknowledged are not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Operation, Version } from '../../src/check/history.ts';
import { checkSessionOrder } from '../../src/check/session-order.ts';
import { get, put } from './builders.ts';

type Interval = readonly [number, number];

function write(interval: Interval, value: string, version: Version, client = 0): Operation {
  return { ...put('x', interval, value, client), version };
}
function read(interval: Interval, output: string | null, version: Version, client = 0): Operation {
  return { ...get('x', interval, output, client), version };
}

test('reads that see their own writes and move forward pass', () => {
  const history = [
    write([0, 10], 'a', { n1: 1 }),
    read([11, 15], 'a', { n1: 1 }),
    write([16, 20], 'b', { n1: 2 }),
    read([21, 25], 'b', { n1: 2, n2: 1 }),
    read([26, 30], 'b', { n1: 2, n2: 1 }),
  ];
  const verdict = checkSessionOrder(history);
  assert.deepEqual(verdict.violations, []);
  assert.equal(verdict.readsChecked, 3);
});

test('read-your-writes: a read of a version the client had already superseded is caught', () => {
  const history = [
    write([0, 10], 'a', { n1: 1 }),
    write([11, 20], 'b', { n1: 2 }),
    read([20, 25], 'a', { n1: 1 }),
  ];
  const verdict = checkSessionOrder(history);
  assert.equal(verdict.ok, false);
  assert.equal(verdict.violations.length, 1);
  const violation = verdict.violations[0]!;
  assert.equal(violation.kind, 'read-your-writes');
  assert.deepEqual([violation.read, violation.earlier], [2, 1]);
  assert.match(
    violation.explanation,
    /\{n1:1\} after its own write.*#1 with \{n1:2\}, which supersedes it/,
  );
});

test('read-your-writes: a read concurrent with the client acknowledged write has missed it', () => {
  const history = [write([0, 10], 'a', { n1: 1 }), read([12, 15], 'z', { n2: 1 })];
  const violation = checkSessionOrder(history).violations[0]!;
  assert.equal(violation.kind, 'read-your-writes');
  assert.match(violation.explanation, /which it has not seen/);
});

test('a write still in flight when the read began orders nothing', () => {
  // Client 1's write completes after client 0's read began: the read may miss it.
  const history = [write([0, 30], 'a', { n1: 1 }, 1), read([20, 25], null, {})];
  assert.equal(checkSessionOrder(history).ok, true);
  // A write of unknown outcome orders nothing either.
  const unknownWrite: Operation = {
    ...put('x', [0, 0], 'b'),
    completedAt: null,
    outcome: 'unknown',
  };
  assert.equal(checkSessionOrder([unknownWrite, read([5, 6], null, {})]).ok, true);
});

test('read-after-acknowledged-write: another client acknowledged write, done before the read began, must be seen', () => {
  const history = [write([0, 10], 'a', { n1: 1 }, 1), read([11, 15], null, {})];
  const verdict = checkSessionOrder(history);
  assert.equal(verdict.violations[0]?.kind, 'read-after-acknowledged-write');
  assert.match(verdict.violations[0]!.explanation, /client 1's write/);
  // Without one clock for all clients, other clients' writes order nothing.
  assert.equal(checkSessionOrder(history, { realTime: false }).ok, true);
  // Completing at the very instant the read began is concurrent with it.
  assert.equal(
    checkSessionOrder([write([0, 11], 'a', { n1: 1 }, 1), read([11, 15], null, {})]).ok,
    true,
  );
});

test('monotonic reads: a read older than what the client read before, all of it acknowledged, is caught', () => {
  const history = [
    write([0, 10], 'a', { n1: 1 }, 1),
    read([11, 15], 'a', { n1: 1 }),
    read([16, 20], null, {}),
  ];
  const verdict = checkSessionOrder(history);
  assert.equal(verdict.violations.length, 1);
  assert.equal(verdict.violations[0]!.kind, 'monotonic-reads');
  assert.deepEqual([verdict.violations[0]!.read, verdict.violations[0]!.earlier], [2, 1]);
});

test('monotonic reads are not promised when the earlier read saw a write not acknowledged in time', () => {
  // The earlier read saw client 1's write while it was still in flight (it later timed out):
  // a quorum never held it, and the later read rightly misses it.
  const inFlight: Operation = {
    ...put('x', [0, 0], 'a', 1),
    completedAt: null,
    outcome: 'unknown',
  };
  const history = [inFlight, read([5, 8], 'a', { n1: 1 }), read([9, 12], null, {})];
  const verdict = checkSessionOrder(history);
  assert.equal(verdict.ok, true);
  assert.equal(verdict.monotonicOutsidePromise, 1);
});

test('reads without a version are counted, not judged', () => {
  const history = [write([0, 10], 'a', { n1: 1 }), get('x', [11, 15], 'old')];
  const verdict = checkSessionOrder(history);
  assert.equal(verdict.ok, true);
  assert.deepEqual([verdict.readsChecked, verdict.readsWithoutVersion], [0, 1]);
});

test('keys are judged apart: a version of another key orders nothing', () => {
  const other: Operation = { ...put('y', [0, 10], 'a'), version: { n1: 5 } };
  assert.equal(checkSessionOrder([other, read([11, 15], null, {})]).ok, true);
});
