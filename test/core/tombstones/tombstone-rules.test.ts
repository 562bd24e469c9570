// The pure rules of tombstone collection: what a tombstone is, when its grace has passed,
// how a copy compares with it, and which answers let a key go. The messages' validator
// never throws and keeps every field to its shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { utf8 } from '../../../src/core/bytes.ts';
import { encodeRecord, type StoredRecord } from '../../../src/core/store/record.ts';
import {
  copyStateOf,
  CopyState,
  deletedAtMs,
  isTombstone,
  isTombstonePastGrace,
  mayPurge,
  skipsRepairToAbsent,
} from '../../../src/core/tombstones/tombstone-rules.ts';
import {
  isTombstoneMessageType,
  isValidTombstoneMessage,
  KEYS_PER_ROUND_CEILING,
} from '../../../src/core/tombstones/messages.ts';
import { DELETED_AT_MS, oldValue, tombstone } from './harness.ts';

const SEED = Number(process.env.TOMBSTONE_PROPERTY_SEED ?? 20_240_611);

function concurrent(): StoredRecord {
  const deleted = tombstone('a', 2);
  return {
    context: [
      ['a', 2],
      ['b', 1],
    ],
    siblings: [
      deleted.siblings[0]!,
      {
        dot: { node: 'b', counter: 1 },
        timestamp: [DELETED_AT_MS + 5, 0],
        value: null,
        expiresAtMs: 0,
      },
    ],
  };
}

test('a tombstone is a record whose every sibling is deleted', () => {
  assert.equal(isTombstone(tombstone()), true);
  assert.equal(isTombstone(concurrent()), true, 'concurrent deletes');
  assert.equal(isTombstone(oldValue()), false);
  const expiredButNotTurned: StoredRecord = {
    context: [['a', 1]],
    siblings: [{ ...oldValue().siblings[0]!, expiresAtMs: 1 }],
  };
  assert.equal(isTombstone(expiredButNotTurned), false, 'expiry has not turned it yet');
  assert.equal(isTombstone({ context: [], siblings: [] }), false);
});

test('the grace period runs from the newest sibling, and has passed exactly at its end', () => {
  assert.equal(deletedAtMs(concurrent()), DELETED_AT_MS + 5);
  assert.equal(isTombstonePastGrace(tombstone(), DELETED_AT_MS + 999, 1_000), false);
  assert.equal(isTombstonePastGrace(tombstone(), DELETED_AT_MS + 1_000, 1_000), true);
  assert.equal(isTombstonePastGrace(concurrent(), DELETED_AT_MS + 1_000, 1_000), false);
  assert.equal(isTombstonePastGrace(oldValue(), DELETED_AT_MS + 10_000_000, 1_000), false);
  assert.equal(isTombstonePastGrace(undefined, DELETED_AT_MS + 10_000_000, 1_000), false);
});

test('a copy is the same only when it is exactly the tombstone; older, newer and concurrent copies differ', () => {
  const deleted = tombstone();
  assert.equal(copyStateOf(undefined, deleted), CopyState.absent);
  assert.equal(copyStateOf(tombstone(), deleted), CopyState.same);
  const reordered: StoredRecord = {
    ...concurrent(),
    siblings: [...concurrent().siblings].reverse(),
  };
  assert.equal(copyStateOf(reordered, concurrent()), CopyState.same, 'sibling order aside');
  assert.equal(copyStateOf(oldValue(), deleted), CopyState.differs, 'the value it deleted');
  assert.equal(copyStateOf(concurrent(), deleted), CopyState.differs, 'a later record');
  assert.equal(copyStateOf(tombstone('a', 3), deleted), CopyState.differs, 'a newer delete');
});

test('a key goes only when every member holds the tombstone or nothing', () => {
  const { absent, same, differs, hinted } = CopyState;
  assert.equal(mayPurge([same, same, same]), true);
  assert.equal(mayPurge([same, absent, same]), true);
  assert.equal(mayPurge([same, differs, same]), false);
  assert.equal(mayPurge([same, same, hinted]), false);
});

test('repairs leave out a tombstone past its grace only for a copy that holds nothing', () => {
  assert.equal(skipsRepairToAbsent(tombstone(), DELETED_AT_MS + 1_000, 1_000), true);
  assert.equal(skipsRepairToAbsent(tombstone(), DELETED_AT_MS + 999, 1_000), false);
  assert.equal(skipsRepairToAbsent(oldValue(), DELETED_AT_MS + 1_000, 1_000), false);
});

const KEY = utf8('k');
const ENCODED = encodeRecord(tombstone());

test('the messages of a round are valid in their shapes and refused out of them', () => {
  const valid: unknown[] = [
    ['tq', 1, 0, 3, [KEY], [ENCODED]],
    ['tp', 1, 0, 3, [KEY, utf8('j')], [ENCODED, ENCODED]],
    ['ta', 1, [0, 1, 2, 3]],
    ['ta', 1, null],
  ];
  for (const message of valid) assert.ok(isValidTombstoneMessage(message), JSON.stringify(message));
  const invalid: unknown[] = [
    ['tq', 1, 0, 3, [KEY], []],
    ['tq', 1, 0, 3, [], []],
    ['tq', 1, 0, 70_000, [KEY], [ENCODED]],
    ['tq', -1, 0, 3, [KEY], [ENCODED]],
    ['tq', 1, 0, 3, [new Uint8Array(0)], [ENCODED]],
    ['tq', 1, 0, 3, [KEY], [new Uint8Array(0)]],
    [
      'tp',
      1,
      0,
      3,
      Array(KEYS_PER_ROUND_CEILING + 1).fill(KEY),
      Array(KEYS_PER_ROUND_CEILING + 1).fill(ENCODED),
    ],
    ['ta', 1, [4]],
    ['ta', 1, []],
    ['ta', 1],
    ['ar', 1, 1, 0, 0, 1024, 16, new Uint8Array(8)],
  ];
  for (const message of invalid) {
    assert.equal(isValidTombstoneMessage(message), false, String((message as unknown[])[0]));
  }
  assert.equal(isTombstoneMessageType(['ar', 1]), false, "the exchange's messages are not ours");
  assert.equal(isTombstoneMessageType(['tq']), true);
});

test('the validator never throws, whatever it is given', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.anything(),
        fc.tuple(fc.constantFrom('tq', 'ta', 'tp'), fc.anything(), fc.anything(), fc.anything()),
        fc.tuple(
          fc.constantFrom('tq', 'tp'),
          fc.nat(),
          fc.nat(),
          fc.nat(),
          fc.array(fc.uint8Array({ maxLength: 4 }), { maxLength: 3 }),
          fc.array(fc.uint8Array({ maxLength: 4 }), { maxLength: 3 }),
        ),
      ),
      (value) => {
        const valid = isValidTombstoneMessage(value);
        assert.equal(typeof valid, 'boolean');
      },
    ),
    { seed: SEED, numRuns: 2_000 },
  );
});
