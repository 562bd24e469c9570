// The register's commands: every change increments the version by one, and nothing else
// moves it; compare-and-set on the value and on the version; increments of decimal
// signed 64-bit integers, with errors that change nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromUtf8, utf8 } from '../../../src/core/bytes.ts';
import { ABSENT_VALUE, applyCommand } from '../../../src/core/paxos/register.ts';
import type { Command, RegisterValue } from '../../../src/core/paxos/register.ts';

function run(value: RegisterValue, command: Command): { next: RegisterValue; applied: boolean } {
  const result = applyCommand(value, command);
  assert.ok(result.ok, `command ${command.kind} succeeds`);
  return result;
}

const text = (value: RegisterValue): string | null =>
  value.bytes === null ? null : fromUtf8(value.bytes);

test('a put and a delete each increment the version; a get does not', () => {
  const written = run(ABSENT_VALUE, { kind: 'put', value: utf8('x') }).next;
  assert.deepEqual({ value: text(written), version: written.version }, { value: 'x', version: 1 });
  const read = run(written, { kind: 'get' });
  assert.equal(read.next, written, 'a get leaves the very value');
  const deleted = run(written, { kind: 'delete' }).next;
  assert.deepEqual({ value: text(deleted), version: deleted.version }, { value: null, version: 2 });
});

test('deleting a tombstone is no change: the version stays', () => {
  const tombstone: RegisterValue = { bytes: null, version: 7 };
  assert.equal(run(tombstone, { kind: 'delete' }).next, tombstone);
  assert.equal(run(ABSENT_VALUE, { kind: 'delete' }).next, ABSENT_VALUE);
});

test('compare-and-set on the value sets only when the value matches', () => {
  const value: RegisterValue = { bytes: utf8('a'), version: 3 };
  const miss = run(value, { kind: 'cas-value', expected: utf8('b'), value: utf8('c') });
  assert.equal(miss.applied, false);
  assert.equal(miss.next, value, 'a failed compare-and-set changes nothing');
  const hit = run(value, { kind: 'cas-value', expected: utf8('a'), value: utf8('c') });
  assert.equal(hit.applied, true);
  assert.deepEqual(
    { value: text(hit.next), version: hit.next.version },
    { value: 'c', version: 4 },
  );
  // Expected null means "absent": it matches a tombstone and nothing else.
  assert.equal(run(value, { kind: 'cas-value', expected: null, value: utf8('c') }).applied, false);
  assert.equal(
    run(ABSENT_VALUE, { kind: 'cas-value', expected: null, value: utf8('c') }).applied,
    true,
  );
  assert.equal(
    run(ABSENT_VALUE, { kind: 'cas-value', expected: utf8(''), value: utf8('c') }).applied,
    false,
    'an empty value is not a tombstone',
  );
});

test('compare-and-set on the version sets only at that version', () => {
  const value: RegisterValue = { bytes: utf8('a'), version: 3 };
  assert.equal(
    run(value, { kind: 'cas-version', expectedVersion: 2, value: utf8('b') }).applied,
    false,
  );
  const hit = run(value, { kind: 'cas-version', expectedVersion: 3, value: utf8('b') });
  assert.deepEqual(
    { value: text(hit.next), version: hit.next.version },
    { value: 'b', version: 4 },
  );
  // Version 0 names a key never written.
  assert.equal(
    run(ABSENT_VALUE, { kind: 'cas-version', expectedVersion: 0, value: utf8('b') }).applied,
    true,
  );
});

test('an increment adds to a decimal integer, and a tombstone counts as 0', () => {
  const fromAbsent = run(ABSENT_VALUE, { kind: 'incr', delta: 5n }).next;
  assert.deepEqual(
    { value: text(fromAbsent), version: fromAbsent.version },
    { value: '5', version: 1 },
  );
  const down = run({ bytes: utf8('3'), version: 9 }, { kind: 'incr', delta: -10n }).next;
  assert.deepEqual({ value: text(down), version: down.version }, { value: '-7', version: 10 });
});

test('an increment of a non-integer or past 64 bits is an error that changes nothing', () => {
  for (const bytes of ['abc', '01', '-0', '1.5', ' 1', '']) {
    const result = applyCommand({ bytes: utf8(bytes), version: 1 }, { kind: 'incr', delta: 1n });
    assert.equal(result.ok, false, `"${bytes}" is not an integer`);
    assert.equal(!result.ok && result.code, 'not-an-integer');
  }
  const overflow = applyCommand(
    { bytes: utf8('9223372036854775807'), version: 1 },
    { kind: 'incr', delta: 1n },
  );
  assert.equal(!overflow.ok && overflow.code, 'integer-overflow');
});
