// Acceptor transitions: a prepare needs a ballot strictly above the promise; an accept
// needs one at or above it and promises the successor; a copy of an accept is answered
// again without a write; a read answers what is held and changes nothing; a purge removes only the sealed tombstone and raises the floors,
// through which a key no longer stored reads. Every answer that depends on a change comes
// with the write that must be durable first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../../../src/core/bytes.ts';
import {
  absentKeyState,
  accept,
  INITIAL_FLOORS,
  mayPurge,
  prepare,
  stepAcceptor,
} from '../../../src/core/paxos/acceptor.ts';
import type { AcceptorFloors, AcceptorKeyState } from '../../../src/core/paxos/acceptor.ts';
import type { Ballot } from '../../../src/core/paxos/ballot.ts';
import { PaxosMessageType } from '../../../src/core/paxos/messages.ts';

const ballot = (counter: number, proposerId = 'n1'): Ballot => ({ counter, proposerId });
const EMPTY = absentKeyState(INITIAL_FLOORS);
const KEY = utf8('k');

test('a prepare above the promise is promised and answers with the accepted value', () => {
  const held: AcceptorKeyState = {
    promised: ballot(3),
    accepted: ballot(3),
    value: { bytes: utf8('v'), version: 2 },
  };
  const { state, answer } = prepare(held, ballot(4, 'n2'));
  assert.deepEqual(state.promised, ballot(4, 'n2'));
  assert.deepEqual(answer, { kind: 'promise', accepted: ballot(3), value: held.value });
});

test('a prepare at or below the promise is refused with the promise, and changes nothing', () => {
  const held: AcceptorKeyState = { ...EMPTY, promised: ballot(5) };
  for (const refused of [ballot(5), ballot(4, 'n9'), ballot(1)]) {
    const { state, answer } = prepare(held, refused);
    assert.equal(state, held);
    assert.deepEqual(answer, { kind: 'conflict', promised: ballot(5) });
  }
});

test('an accept at the promise is taken and promises the successor ballot', () => {
  const promised = prepare(EMPTY, ballot(2)).state;
  const value = { bytes: utf8('v'), version: 1 };
  const { state, answer } = accept(promised, ballot(2), value);
  assert.deepEqual(answer, { kind: 'accepted' });
  assert.deepEqual(state, { promised: ballot(3), accepted: ballot(2), value });
  // The successor's promise holds: a prepare of another proposer at counter 3 below n1 fails.
  assert.equal(prepare(state, ballot(3, 'a')).answer.kind, 'conflict');
  assert.equal(prepare(state, ballot(3, 'n2')).answer.kind, 'promise');
});

test('an accept without a prepare is taken when nothing higher was promised', () => {
  const { state, answer } = accept(EMPTY, ballot(7), { bytes: null, version: 3 });
  assert.equal(answer.kind, 'accepted');
  assert.deepEqual(state.accepted, ballot(7));
});

test('an accept below the promise is refused', () => {
  const held = prepare(EMPTY, ballot(5)).state;
  const { state, answer } = accept(held, ballot(4), { bytes: utf8('v'), version: 1 });
  assert.equal(state, held);
  assert.deepEqual(answer, { kind: 'conflict', promised: ballot(5) });
});

test('a copy of an accepted accept is answered again with no change; another value under that ballot is refused', () => {
  const value = { bytes: utf8('v'), version: 1 };
  const held = accept(EMPTY, ballot(2), value).state;
  const again = accept(held, ballot(2), { bytes: utf8('v'), version: 1 });
  assert.equal(again.state, held);
  assert.deepEqual(again.answer, { kind: 'accepted' });
  const other = accept(held, ballot(2), { bytes: utf8('w'), version: 1 });
  assert.equal(other.state, held);
  assert.equal(other.answer.kind, 'conflict');
});

test('stepAcceptor returns the write that must be durable before its reply', () => {
  const stored = new Map<string, AcceptorKeyState>();
  const step = (message: unknown, floors: AcceptorFloors = INITIAL_FLOORS) =>
    stepAcceptor(message, () => stored.get('k'), floors);
  const promised = step([PaxosMessageType.prepare, 7, KEY, 1, 'n1']);
  assert.ok(promised !== null);
  assert.equal(promised.write.kind, 'put');
  assert.deepEqual(promised.reply, [PaxosMessageType.promise, 7, 0, '', null, 0]);
  if (promised.write.kind === 'put') stored.set('k', promised.write.state);
  const refused = step([PaxosMessageType.prepare, 8, KEY, 1, 'n1']);
  assert.ok(refused !== null);
  assert.equal(refused.write.kind, 'none', 'a refusal changes nothing');
  assert.deepEqual(refused.reply, [PaxosMessageType.conflict, 8, 1, 'n1']);
  const accepted = step([PaxosMessageType.accept, 9, KEY, 1, 'n1', utf8('v'), 1]);
  assert.ok(accepted !== null && accepted.write.kind === 'put');
  assert.deepEqual(accepted.reply, [PaxosMessageType.accepted, 9]);
  stored.set('k', accepted.write.state);
  const copy = step([PaxosMessageType.accept, 9, KEY, 1, 'n1', utf8('v'), 1]);
  assert.ok(copy !== null);
  assert.equal(copy.write.kind, 'none', 'a duplicated accept writes nothing');
  assert.deepEqual(copy.reply, [PaxosMessageType.accepted, 9]);
});

test('a read answers what the acceptor holds, writing and promising nothing', () => {
  const held: AcceptorKeyState = {
    promised: ballot(5),
    accepted: ballot(4, 'n2'),
    value: { bytes: utf8('v'), version: 3 },
  };
  const read = stepAcceptor([PaxosMessageType.read, 4, KEY], () => held, INITIAL_FLOORS);
  assert.ok(read !== null);
  assert.equal(read.write.kind, 'none');
  assert.deepEqual(read.reply, [PaxosMessageType.readReply, 4, 4, 'n2', utf8('v'), 3]);
  // A key not stored reads through the floors: nothing accepted, at the floor version.
  const floors: AcceptorFloors = { promised: ballot(9), version: 6 };
  const absent = stepAcceptor([PaxosMessageType.read, 5, KEY], () => undefined, floors);
  assert.ok(absent !== null);
  assert.equal(absent.write.kind, 'none');
  assert.deepEqual(absent.reply, [PaxosMessageType.readReply, 5, 0, '', null, 6]);
});

test('stepAcceptor drops malformed messages and replies sent to it', () => {
  for (const message of [
    null,
    [PaxosMessageType.prepare, 1, KEY, 1],
    [PaxosMessageType.prepare, 1, 'k', 1, 'n1'],
    [PaxosMessageType.accepted, 1],
    [PaxosMessageType.conflict, 1, 2, 'n1'],
    [PaxosMessageType.readReply, 1, 0, '', null, 0],
    [PaxosMessageType.read, 1, 'k'],
  ]) {
    assert.equal(
      stepAcceptor(message, () => assert.fail('no lookup'), INITIAL_FLOORS),
      null,
    );
  }
});

test('a purge removes the sealed tombstone and raises both floors', () => {
  // A tombstone at version 4 sealed at (6, n2) on this acceptor.
  const sealed: AcceptorKeyState = accept(EMPTY, ballot(6, 'n2'), {
    bytes: null,
    version: 4,
  }).state;
  const output = stepAcceptor(
    [PaxosMessageType.purge, 1, KEY, 6, 'n2', 4],
    () => sealed,
    INITIAL_FLOORS,
  );
  assert.ok(output !== null && output.write.kind === 'purge');
  assert.deepEqual(output.reply, [PaxosMessageType.purgeReply, 1, true]);
  const floors = output.write.floors;
  assert.deepEqual(floors, { promised: ballot(7, 'n2'), version: 4 });
  // The key, gone, reads as a tombstone at the floor version, promised at the floor ballot:
  // every message from before the purge is refused.
  const absent = absentKeyState(floors);
  assert.deepEqual(absent.value, { bytes: null, version: 4 });
  assert.equal(
    accept(absent, ballot(5, 'n1'), { bytes: utf8('old'), version: 3 }).answer.kind,
    'conflict',
  );
  assert.equal(prepare(absent, ballot(7, 'n2')).answer.kind, 'conflict');
  assert.equal(prepare(absent, ballot(8, 'n1')).answer.kind, 'promise');
});

test('a purge keeps a key that holds a value, another ballot or version, or a newer promise', () => {
  const sealed = accept(EMPTY, ballot(6), { bytes: null, version: 4 }).state;
  assert.ok(mayPurge(sealed, ballot(6), 4));
  assert.ok(!mayPurge(sealed, ballot(5), 4), 'sealed at another ballot');
  assert.ok(!mayPurge(sealed, ballot(6), 3), 'another version');
  const rewritten = accept(sealed, ballot(7), { bytes: utf8('v'), version: 5 }).state;
  assert.ok(!mayPurge(rewritten, ballot(6), 4), 'written again since');
  const promisedHigher = prepare(sealed, ballot(8, 'n3')).state;
  assert.ok(!mayPurge(promisedHigher, ballot(6), 4), 'an operation has begun since');
  const output = stepAcceptor(
    [PaxosMessageType.purge, 2, KEY, 6, 'n1', 4],
    () => undefined,
    INITIAL_FLOORS,
  );
  assert.ok(output !== null);
  assert.equal(output.write.kind, 'none', 'nothing stored, nothing to remove');
  assert.deepEqual(output.reply, [PaxosMessageType.purgeReply, 2, false]);
});
