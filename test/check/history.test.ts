// The history's JSON-lines form: what docs/CHECKERS.md shows must read back as the same
// operations, and a bad line is refused with its line number.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatHistoryLines, parseHistoryLines, type Operation } from '../../src/check/history.ts';
import { checkLinearizable } from '../../src/check/linearizability.ts';
import { cas, get, incr, put, unknown } from './builders.ts';

const DOCUMENTED_EXAMPLE = `
{"client":1,"key":"x","op":"put","input":{"value":"a"},"output":null,"invokedAt":0,"completedAt":10,"outcome":"ok"}
{"client":2,"key":"x","op":"get","input":null,"output":"a","invokedAt":12,"completedAt":15,"outcome":"ok"}
{"client":3,"key":"n","op":"incr","input":{"delta":1},"output":null,"invokedAt":4,"completedAt":null,"outcome":"unknown"}
`;

test('the example history of the documentation parses and is linearizable', () => {
  const history = parseHistoryLines(DOCUMENTED_EXAMPLE);
  assert.equal(history.length, 3);
  assert.deepEqual(history[1], get('x', [12, 15], 'a', 2));
  assert.equal(checkLinearizable(history, { budgetMs: 1_000 }).result, 'linearizable');
});

test('a history written as JSON lines reads back as the same operations', () => {
  const history = [
    put('x', [0, 10], 'a'),
    cas('x', [11, 20], 'a', 'b', true, 1),
    unknown(incr('n', [3, 0], -2, '0'), 9),
    get('x', [21, 22], null, 2),
  ];
  assert.deepEqual(parseHistoryLines(formatHistoryLines(history)), history);
});

test('a line that is not JSON or not an operation is refused with its line number', () => {
  assert.throws(() => parseHistoryLines('{"client":1'), /line 1: not JSON/);
  const wrongOp =
    '\n{"client":1,"key":"x","op":"append","input":null,"output":null,"invokedAt":0,"completedAt":1,"outcome":"ok"}';
  assert.throws(
    () => parseHistoryLines(wrongOp),
    /line 2: op must be one of get, put, delete, cas, incr/,
  );
});

test('versions round-trip through JSON lines and malformed ones are refused', () => {
  const history: Operation[] = [
    { ...put('x', [0, 10], 'a'), version: { n1: 3, n2: 1 } },
    { ...get('x', [11, 12], null, 2), version: {} },
  ];
  assert.deepEqual(parseHistoryLines(formatHistoryLines(history)), history);
  const line = (version: string, outcome = 'ok', completedAt = '1'): string =>
    `{"client":1,"key":"x","op":"get","input":null,"output":null,"invokedAt":0,"completedAt":${completedAt},"outcome":"${outcome}","version":${version}}`;
  assert.throws(() => parseHistoryLines(line('{"n1":0}')), /line 1: version must map node ids/);
  assert.throws(() => parseHistoryLines(line('{"n1":1.5}')), /version must map node ids/);
  assert.throws(() => parseHistoryLines(line('[["n1",1]]')), /version must map node ids/);
  assert.throws(
    () => parseHistoryLines(line('{"n1":1}', 'unknown', 'null')),
    /version may be given only when the outcome is ok/,
  );
});
