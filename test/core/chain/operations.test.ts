// Writes as functions of the current record: each kind's answer, versions that count every
// change and survive deletes, and, by property, agreement with the naive register model the
// linearizability checker uses.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromUtf8, utf8 } from '../../../src/core/bytes.ts';
import {
  ABSENT_RECORD,
  evaluateOperation,
  operationProblem,
  recordOf,
  type ChainOperation,
  type ChainRecord,
} from '../../../src/core/chain/operations.ts';
import { DEFAULT_CHAIN_LIMITS } from '../../../src/core/chain/settings.ts';
import { isValidOperation } from '../../../src/core/chain/messages.ts';
import type { Operation } from '../../../src/check/history.ts';
import { CANNOT_APPLY, stepRegister } from '../../../src/check/register-model.ts';

const KEY = utf8('k');

function apply(record: ChainRecord, operation: ChainOperation, sequence: number): ChainRecord {
  const { change } = evaluateOperation(record, operation);
  return change === null ? record : recordOf(change, sequence);
}

test('a put, a failed compare and a delete: versions count changes and a delete keeps counting', () => {
  let record = apply(ABSENT_RECORD, { kind: 'put', key: KEY, value: utf8('a') }, 1);
  assert.deepEqual(record, { value: utf8('a'), version: 1, sequence: 1 });
  const failed = evaluateOperation(record, {
    kind: 'cas',
    key: KEY,
    expected: utf8('b'),
    value: utf8('c'),
  });
  assert.deepEqual(failed, {
    change: null,
    outcome: { kind: 'done', applied: false, version: 1, value: null },
  });
  record = apply(record, { kind: 'delete', key: KEY }, 2);
  assert.deepEqual(record, { value: null, version: 2, sequence: 2 });
  const again = evaluateOperation(record, { kind: 'delete', key: KEY });
  assert.equal(again.change, null, 'deleting what is absent spends no version');
  record = apply(record, { kind: 'cas', key: KEY, expected: null, value: utf8('d') }, 3);
  assert.deepEqual(record, { value: utf8('d'), version: 3, sequence: 3 });
});

test('compare-and-set on a version matches the version alone, never a recreated key', () => {
  const first = apply(ABSENT_RECORD, { kind: 'put', key: KEY, value: utf8('x') }, 1);
  const deleted = apply(first, { kind: 'delete', key: KEY }, 2);
  const recreated = apply(deleted, { kind: 'put', key: KEY, value: utf8('x') }, 3);
  const stale = evaluateOperation(recreated, {
    kind: 'cas-version',
    key: KEY,
    expectedVersion: 1,
    value: utf8('y'),
  });
  assert.equal(stale.change, null, 'version 1 was another life of the key');
  const fresh = evaluateOperation(recreated, {
    kind: 'cas-version',
    key: KEY,
    expectedVersion: 3,
    value: utf8('y'),
  });
  assert.deepEqual(fresh.outcome, { kind: 'done', applied: true, version: 4, value: null });
  const never = evaluateOperation(ABSENT_RECORD, {
    kind: 'cas-version',
    key: KEY,
    expectedVersion: 0,
    value: utf8('z'),
  });
  assert.equal(never.outcome.kind === 'done' && never.outcome.applied, true);
});

test('an increment reads a Redis integer and refuses anything else, or an overflow', () => {
  const text = (value: string): ChainRecord => ({ value: utf8(value), version: 1, sequence: 1 });
  const incr = (delta: number): ChainOperation => ({ kind: 'incr', key: KEY, delta });
  const fromAbsent = evaluateOperation(ABSENT_RECORD, incr(-3));
  assert.deepEqual(fromAbsent.outcome, {
    kind: 'done',
    applied: true,
    version: 1,
    value: utf8('-3'),
  });
  const notInteger = evaluateOperation(text('01'), incr(1));
  assert.equal(notInteger.change, null);
  assert.equal(
    notInteger.outcome.kind === 'error' && notInteger.outcome.code,
    'RINGKV_NOT_AN_INTEGER',
  );
  const overflow = evaluateOperation(text('9223372036854775807'), incr(1));
  assert.equal(
    overflow.outcome.kind === 'error' && overflow.outcome.code,
    'RINGKV_INTEGER_OVERFLOW',
  );
});

test('operations beyond the limits are named as malformed before they are ordered', () => {
  const limits = { ...DEFAULT_CHAIN_LIMITS, keyBytesMax: 4, valueBytesMax: 4 };
  assert.match(operationProblem({ kind: 'delete', key: utf8('toolong') }, limits) ?? '', /key/);
  assert.match(
    operationProblem({ kind: 'put', key: KEY, value: utf8('12345') }, limits) ?? '',
    /value/,
  );
  assert.match(operationProblem({ kind: 'delete', key: new Uint8Array(0) }, limits) ?? '', /empty/);
  assert.equal(operationProblem({ kind: 'incr', key: KEY, delta: 1 }, limits), null);
});

type Step =
  | { op: 'put'; value: string }
  | { op: 'delete' }
  | { op: 'cas'; expected: string | null; value: string }
  | { op: 'incr'; delta: number };

const valueArbitrary = fc.constantFrom('1', '2', '-5', 'a', '10');
const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant('put' as const), value: valueArbitrary }),
  fc.record({ op: fc.constant('delete' as const) }),
  fc.record({
    op: fc.constant('cas' as const),
    expected: fc.option(valueArbitrary, { nil: null }),
    value: valueArbitrary,
  }),
  fc.record({ op: fc.constant('incr' as const), delta: fc.integer({ min: -3, max: 3 }) }),
);

test('a sequence of writes evaluates as the naive register model says, with a version per change', () => {
  fc.assert(
    fc.property(fc.array(stepArbitrary, { maxLength: 40 }), (steps) => {
      let record = ABSENT_RECORD;
      let model: string | null = null;
      steps.forEach((step, index) => {
        const operation: ChainOperation =
          step.op === 'put'
            ? { kind: 'put', key: KEY, value: utf8(step.value) }
            : step.op === 'delete'
              ? { kind: 'delete', key: KEY }
              : step.op === 'cas'
                ? {
                    kind: 'cas',
                    key: KEY,
                    expected: step.expected === null ? null : utf8(step.expected),
                    value: utf8(step.value),
                  }
                : { kind: 'incr', key: KEY, delta: step.delta };
        const evaluation = evaluateOperation(record, operation);
        const unknown = {
          client: 0,
          key: 'k',
          invokedAt: 0,
          completedAt: null,
          outcome: 'unknown' as const,
        };
        const historyOperation: Operation =
          step.op === 'put'
            ? { ...unknown, op: 'put', input: { value: step.value }, output: null }
            : step.op === 'delete'
              ? { ...unknown, op: 'delete', input: null, output: null }
              : step.op === 'cas'
                ? {
                    ...unknown,
                    op: 'cas',
                    input: { expected: step.expected, value: step.value },
                    output: null,
                  }
                : { ...unknown, op: 'incr', input: { delta: step.delta }, output: null };
        const next = stepRegister(model, historyOperation);
        if (next === CANNOT_APPLY) {
          // The model says the increment cannot happen: the chain answers an error instead.
          assert.equal(evaluation.outcome.kind, 'error');
          assert.equal(evaluation.change, null);
          return;
        }
        const before = record;
        if (evaluation.change !== null) record = recordOf(evaluation.change, index + 1);
        const held = record.value === null ? null : fromUtf8(record.value);
        assert.equal(held, next, `after ${JSON.stringify(step)}`);
        const changed = evaluation.change !== null;
        assert.equal(record.version, before.version + (changed ? 1 : 0), 'a version per change');
        model = next;
      });
    }),
    { seed: 0x5eed, numRuns: 500 },
  );
});

test('put-if-present writes only a key that holds a value, and returnPrevious answers the old value', () => {
  const absent = evaluateOperation(ABSENT_RECORD, {
    kind: 'put-if-present',
    key: KEY,
    value: utf8('x'),
    returnPrevious: true,
  });
  assert.deepEqual(absent, {
    change: null,
    outcome: { kind: 'done', applied: false, version: 0, value: null },
  });
  const record = apply(ABSENT_RECORD, { kind: 'put', key: KEY, value: utf8('a') }, 1);
  const present = evaluateOperation(record, {
    kind: 'put-if-present',
    key: KEY,
    value: utf8('b'),
    returnPrevious: true,
  });
  assert.deepEqual(present.outcome, { kind: 'done', applied: true, version: 2, value: utf8('a') });
  assert.deepEqual(present.change, { key: KEY, value: utf8('b'), version: 2 });
  const quiet = evaluateOperation(record, { kind: 'put', key: KEY, value: utf8('c') });
  assert.deepEqual(quiet.outcome, { kind: 'done', applied: true, version: 2, value: null });
  const getdel = evaluateOperation(record, { kind: 'delete', key: KEY, returnPrevious: true });
  assert.deepEqual(getdel.outcome, { kind: 'done', applied: true, version: 2, value: utf8('a') });
});

test('returnPrevious is valid on writes other than an increment, and only as true', () => {
  const put = { kind: 'put', key: KEY, value: utf8('v') };
  assert.equal(isValidOperation({ ...put, returnPrevious: true }), true);
  assert.equal(isValidOperation({ ...put, returnPrevious: false }), false);
  assert.equal(isValidOperation({ kind: 'put-if-present', key: KEY, value: utf8('v') }), true);
  assert.equal(isValidOperation({ kind: 'incr', key: KEY, delta: 1, returnPrevious: true }), false);
});
