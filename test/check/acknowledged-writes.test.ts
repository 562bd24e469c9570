// The acknowledged-writes checker on hand-made histories: each case names what it shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAcknowledgedWrites } from '../../src/check/acknowledged-writes.ts';
import type { Operation, Outcome, Value } from '../../src/check/history.ts';

let clock = 0;
function put(key: string, value: string, outcome: Outcome, client = 0): Operation {
  clock += 10;
  return {
    client,
    key,
    op: 'put',
    input: { value },
    output: null,
    invokedAt: clock,
    completedAt: outcome === 'unknown' ? null : clock + 5,
    outcome,
  };
}
function del(key: string, outcome: Outcome, client = 0): Operation {
  clock += 10;
  return {
    client,
    key,
    op: 'delete',
    input: null,
    output: null,
    invokedAt: clock,
    completedAt: outcome === 'unknown' ? null : clock + 5,
    outcome,
  };
}
const finals = (entries: [string, Value][]): Map<string, Value> => new Map(entries);

test('the last acknowledged write is what the key holds: accepted', () => {
  const history = [put('a', '1', 'ok'), put('a', '2', 'ok'), del('b', 'ok')];
  const verdict = checkAcknowledgedWrites(
    history,
    finals([
      ['a', '2'],
      ['b', null],
    ]),
  );
  assert.deepEqual(verdict, { ok: true, keysChecked: 2, violations: [] });
});

test('an acknowledged write replaced by an older one is a lost write', () => {
  const history = [put('a', '1', 'ok'), put('a', '2', 'ok')];
  const verdict = checkAcknowledgedWrites(history, finals([['a', '1']]));
  assert.equal(verdict.ok, false);
  assert.deepEqual(verdict.violations, [{ key: 'a', found: '1', allowed: ['2'] }]);
});

test('an acknowledged write that vanished (the key is absent) is a lost write', () => {
  const verdict = checkAcknowledgedWrites([put('a', '1', 'ok')], finals([['a', null]]));
  assert.equal(verdict.ok, false);
});

test('a later write of unknown outcome may or may not have replaced it', () => {
  const history = [put('a', '1', 'ok'), put('a', '2', 'unknown')];
  assert.equal(checkAcknowledgedWrites(history, finals([['a', '1']])).ok, true);
  assert.equal(checkAcknowledgedWrites(history, finals([['a', '2']])).ok, true);
});

test('a failed write did nothing: its value must not be there', () => {
  const history = [put('a', '1', 'ok'), put('a', '2', 'failed')];
  assert.equal(checkAcknowledgedWrites(history, finals([['a', '2']])).ok, false);
});

test('a value no write wrote comes from nowhere', () => {
  const history = [put('a', '1', 'ok')];
  assert.equal(checkAcknowledgedWrites(history, finals([['a', 'x']])).ok, false);
});

test('a key never acknowledged may be absent or hold an unknown write', () => {
  const history = [put('a', '1', 'unknown'), put('a', '2', 'failed')];
  assert.equal(checkAcknowledgedWrites(history, finals([['a', null]])).ok, true);
  assert.equal(checkAcknowledgedWrites(history, finals([['a', '1']])).ok, true);
  assert.equal(checkAcknowledgedWrites(history, finals([['a', '2']])).ok, false);
});

test('a key with two writers, or without a final value, is refused as a malformed check', () => {
  assert.throws(
    () =>
      checkAcknowledgedWrites(
        [put('a', '1', 'ok', 0), put('a', '2', 'ok', 1)],
        finals([['a', '2']]),
      ),
    /one writer per key/,
  );
  assert.throws(() => checkAcknowledgedWrites([put('a', '1', 'ok')], finals([])), /no final value/);
});
