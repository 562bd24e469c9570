// Wire validation: every message a proposer or an acceptor builds is valid; a message with
// a missing or extra field, a wrong type, an oversized key or an impossible ballot is not;
// and validation never throws, whatever it is given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { utf8 } from '../../../src/core/bytes.ts';
import {
  isValidPaxosMessage,
  PaxosMessageType,
  REGISTER_KEY_BYTES_MAX,
} from '../../../src/core/paxos/messages.ts';

const key = utf8('k');
const VALID: readonly unknown[][] = [
  [PaxosMessageType.prepare, 1, key, 3, 'n1'],
  [PaxosMessageType.accept, 1, key, 3, 'n1', utf8('v'), 4],
  [PaxosMessageType.accept, 1, key, 3, 'n1', null, 4],
  [PaxosMessageType.purge, 1, key, 3, 'n1', 4],
  [PaxosMessageType.promise, 1, 0, '', null, 0],
  [PaxosMessageType.promise, 1, 2, 'n2', utf8('v'), 5],
  [PaxosMessageType.accepted, 1],
  [PaxosMessageType.conflict, 1, 9, 'n3'],
  [PaxosMessageType.purgeReply, 1, true],
  [PaxosMessageType.read, 1, key],
  [PaxosMessageType.readReply, 1, 0, '', null, 0],
  [PaxosMessageType.readReply, 1, 2, 'n2', utf8('v'), 5],
];

test('well-formed messages of every kind are valid', () => {
  for (const message of VALID) assert.ok(isValidPaxosMessage(message), JSON.stringify(message));
});

test('a message missing a field or carrying one more is invalid', () => {
  for (const message of VALID) {
    assert.ok(!isValidPaxosMessage(message.slice(0, -1)), `short ${String(message[0])}`);
    assert.ok(!isValidPaxosMessage([...message, 0]), `long ${String(message[0])}`);
  }
});

test('wrong types, impossible ballots and oversized keys are invalid', () => {
  const invalid: unknown[] = [
    null,
    'xp',
    {},
    [],
    ['zz', 1],
    [PaxosMessageType.prepare, -1, key, 3, 'n1'],
    [PaxosMessageType.prepare, 1.5, key, 3, 'n1'],
    [PaxosMessageType.prepare, 1, 'k', 3, 'n1'],
    [PaxosMessageType.prepare, 1, new Uint8Array(0), 3, 'n1'],
    [PaxosMessageType.prepare, 1, new Uint8Array(REGISTER_KEY_BYTES_MAX + 1), 3, 'n1'],
    [PaxosMessageType.prepare, 1, key, 0, ''],
    [PaxosMessageType.prepare, 1, key, 3, ''],
    [PaxosMessageType.prepare, 1, key, 2 ** 53, 'n1'],
    [PaxosMessageType.accept, 1, key, 3, 'n1', 'v', 4],
    [PaxosMessageType.accept, 1, key, 3, 'n1', null, -1],
    [PaxosMessageType.promise, 1, 0, '', utf8('v'), 0],
    [PaxosMessageType.promise, 1, 0, 'n1', null, 0],
    [PaxosMessageType.conflict, 1, 0, ''],
    [PaxosMessageType.purgeReply, 1, 1],
    [PaxosMessageType.read, 1, new Uint8Array(0)],
    [PaxosMessageType.readReply, 1, 0, '', utf8('v'), 0],
  ];
  for (const message of invalid) {
    assert.ok(!isValidPaxosMessage(message), `accepted ${String(message)}`);
  }
});

test('validation never throws on arbitrary input', () => {
  const field = fc.oneof(
    fc.anything(),
    fc.uint8Array({ maxLength: 4 }),
    fc.constantFrom(...Object.values(PaxosMessageType)),
  );
  fc.assert(
    fc.property(fc.array(field, { maxLength: 8 }), fc.anything(), (fields, other) => {
      assert.equal(typeof isValidPaxosMessage(fields), 'boolean');
      assert.equal(typeof isValidPaxosMessage(other), 'boolean');
    }),
  );
});
