// Proposer transitions, driven message by message on a loopback of in-memory acceptors:
// two round trips and then one, quorum reads and the reads that fall back and are written
// back, retries above the ballot that won,
// bounded attempts and their typed errors, the rule that a write an acceptor may hold is
// never retried, duplicates counted once, malformed replies dropped, bounded queues, and
// the purge of a tombstone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromUtf8, utf8 } from '../../../src/core/bytes.ts';
import {
  defaultProposerConfig,
  QUEUED_OPERATIONS_PER_KEY_MAX,
} from '../../../src/core/paxos/config.ts';
import { compareBallots } from '../../../src/core/paxos/ballot.ts';
import { PaxosMessageType } from '../../../src/core/paxos/messages.ts';
import type { RegisterValue } from '../../../src/core/paxos/register.ts';
import { Loopback, okOutcome } from './loopback.ts';

const text = (value: RegisterValue): string | null =>
  value.bytes === null ? null : fromUtf8(value.bytes);
const typeOf = (message: unknown): unknown => (message as unknown[])[0];

test('the first operation on a key takes two round trips, the next on the same proposer one', () => {
  const stage = new Loopback();
  const first = stage.submit({ kind: 'put', value: utf8('a') });
  assert.deepEqual(
    stage.requests.map((send) => typeOf(send.message)),
    ['xp', 'xp', 'xp'],
  );
  stage.settle();
  assert.equal(text(okOutcome(stage.outcome(first)).current), 'a');
  const second = stage.submit({ kind: 'put', value: utf8('b') });
  // No prepare: the accepts of the first operation promised this ballot.
  assert.deepEqual(
    stage.requests.map((send) => typeOf(send.message)),
    ['xa', 'xa', 'xa'],
  );
  const ballotCounter = (stage.requests[0]!.message as readonly unknown[])[3];
  assert.equal(ballotCounter, 2, 'the successor of the first ballot (1, p1)');
  stage.settle();
  const outcome = okOutcome(stage.outcome(second));
  assert.equal(outcome.oneRoundTrip, true);
  assert.deepEqual(
    { previous: text(outcome.previous), current: text(outcome.current) },
    { previous: 'a', current: 'b' },
  );
  assert.equal(outcome.current.version, 2);
  assert.deepEqual(stage.proposer().stats.oneRoundTrip, 1);
  assert.deepEqual(stage.proposer().stats.twoRoundTrips, 1);
});

test('a get answered by a quorum that agrees is a read alone: nothing written, no promise spent', () => {
  const stage = new Loopback();
  const put = stage.submit({ kind: 'put', value: utf8('a') });
  stage.settle();
  okOutcome(stage.outcome(put));
  const before = stage.acceptorIds.map((id) => stage.keyState(id));
  const read = stage.submit({ kind: 'get' });
  assert.deepEqual(
    stage.requests.map((send) => typeOf(send.message)),
    ['xe', 'xe', 'xe'],
  );
  // Two of three answers agree: a quorum, so the third is not waited for.
  stage.deliverRequests();
  stage.deliverReplies((reply) => reply.from !== 'a2');
  const outcome = okOutcome(stage.outcome(read));
  assert.equal(outcome.quorumRead, true);
  assert.deepEqual(
    { value: text(outcome.current), version: outcome.current.version },
    {
      value: 'a',
      version: 1,
    },
  );
  assert.equal(stage.requests.length, 0, 'no accept follows');
  assert.deepEqual(
    stage.acceptorIds.map((id) => stage.keyState(id)),
    before,
    'no acceptor changed',
  );
  assert.equal(stage.proposer().stats.quorumReads, 1);
  // The put's promise of its successor ballot is still the proposer's to use.
  stage.replies = [];
  stage.submit({ kind: 'put', value: utf8('b') });
  assert.deepEqual(
    stage.requests.map((send) => typeOf(send.message)),
    ['xa', 'xa', 'xa'],
  );
});

test('a get whose quorum read disagrees writes back the value it read, so what it returns was chosen', () => {
  const stage = new Loopback();
  // A value accepted by one acceptor only: not chosen, yet the highest a quorum may show.
  // Ballot (1, a) sits below the reader's first ballot, (1, p1).
  stage.setKeyState('a0', {
    promised: { counter: 1, proposerId: 'a' },
    accepted: { counter: 1, proposerId: 'a' },
    value: { bytes: utf8('minority'), version: 1 },
  });
  const read = stage.submit({ kind: 'get' });
  stage.deliverRequests();
  stage.deliverReplies((reply) => reply.from !== 'a2');
  assert.deepEqual(
    stage.requests.map((send) => typeOf(send.message)),
    ['xp', 'xp', 'xp'],
    'answers that disagree send the get on the usual way',
  );
  assert.equal(stage.proposer().stats.quorumReadsFallenBack, 1);
  stage.replies = [];
  stage.deliverRequests();
  stage.deliverReplies((reply) => reply.from !== 'a2');
  assert.deepEqual(
    stage.requests.map((send) => typeOf(send.message)),
    ['xa', 'xa', 'xa'],
    'the read goes on to an accept phase',
  );
  stage.settle();
  const outcome = okOutcome(stage.outcome(read));
  assert.equal(text(outcome.current), 'minority');
  assert.equal(outcome.quorumRead, false);
  for (const id of stage.acceptorIds) assert.equal(text(stage.keyState(id)!.value), 'minority');
});

test('a get of a key nothing was accepted for goes the usual way: the version it reads is written back', () => {
  const stage = new Loopback();
  const read = stage.submit({ kind: 'get' });
  stage.settle();
  const outcome = okOutcome(stage.outcome(read));
  assert.deepEqual(outcome.current, { bytes: null, version: 0 });
  assert.equal(outcome.quorumRead, false);
  assert.equal(stage.proposer().stats.quorumReadsFallenBack, 1);
  for (const id of stage.acceptorIds) assert.equal(stage.keyState(id)!.accepted.counter, 1);
});

test('a quorum read with too few answers in time goes the usual way', () => {
  const stage = new Loopback();
  const put = stage.submit({ kind: 'put', value: utf8('a') });
  stage.settle();
  okOutcome(stage.outcome(put));
  const read = stage.submit({ kind: 'get' });
  stage.dropRequests((send) => send.to !== 'a0');
  stage.deliverRequests();
  stage.deliverReplies();
  assert.equal(stage.outcomes.has(read), false, 'one answer is not a quorum');
  stage.tick(stage.nowMs + stage.config.phaseTimeoutMs);
  assert.deepEqual(
    stage.requests.map((send) => typeOf(send.message)),
    ['xa', 'xa', 'xa'],
    'the usual way, on the promise the put left',
  );
  stage.settle();
  const outcome = okOutcome(stage.outcome(read));
  assert.equal(text(outcome.current), 'a');
  assert.equal(outcome.oneRoundTrip, true);
});

test('an operation outbid by a higher promise retries after a backoff, above the ballot that won', () => {
  const stage = new Loopback();
  for (const id of stage.acceptorIds) {
    stage.setKeyState(id, {
      promised: { counter: 50, proposerId: 'z' },
      accepted: { counter: 0, proposerId: '' },
      value: { bytes: null, version: 0 },
    });
  }
  const operation = stage.submit({ kind: 'put', value: utf8('v') });
  stage.settle();
  assert.equal(stage.outcomes.has(operation), false, 'not done: backing off');
  assert.equal(stage.proposer().stats.retries, 1);
  stage.tick(stage.config.backoffMsBase);
  const retry = stage.requests.map((send) => send.message as readonly unknown[]);
  assert.ok(
    retry.length === 3 && retry.every((message) => message[0] === 'xp' && message[3] === 51),
  );
  stage.settle();
  assert.equal(text(okOutcome(stage.outcome(operation)).current), 'v');
});

test('without a quorum of answers an operation fails as unavailable after attemptsMax attempts, changing nothing', () => {
  const stage = new Loopback(3, { attemptsMax: 3, backoffMsMax: 10 });
  const operation = stage.submit({ kind: 'incr', delta: 1n });
  let prepares = 0;
  for (let nowMs = 0; nowMs <= 1_000 && !stage.outcomes.has(operation); nowMs += 5) {
    prepares += stage.requests.filter((send) => typeOf(send.message) === 'xp').length;
    stage.dropRequests();
    stage.tick(nowMs);
  }
  assert.equal(prepares, 3 * 3, 'three attempts of three prepares');
  assert.deepEqual(stage.outcome(operation), {
    kind: 'error',
    code: 'unavailable',
    message: 'no quorum of acceptors answered after 3 attempts',
    mayHaveTakenEffect: false,
  });
});

test('a write that may have landed is finished by the retry when it is the highest a quorum holds', () => {
  const stage = new Loopback();
  okOutcome(stage.runUntilDone(stage.submit({ kind: 'incr', delta: 1n })));
  const next = stage.submit({ kind: 'incr', delta: 1n });
  // The one-round-trip accept reaches a0 only; the answer is lost too.
  stage.deliverRequests((send) => send.to === 'a0');
  stage.dropRequests();
  stage.replies = [];
  stage.tick(stage.nowMs + stage.config.phaseTimeoutMs + 1);
  assert.equal(stage.outcomes.has(next), false, 'retried, not failed');
  // The retry's quorum includes a0: its write (2) is the highest, and is finished as is.
  const outcome = okOutcome(stage.runUntilDone(next));
  assert.deepEqual(
    { previous: text(outcome.previous), current: text(outcome.current) },
    { previous: '1', current: '2' },
    'applied once',
  );
  for (const id of stage.acceptorIds) assert.equal(text(stage.keyState(id)!.value), '2');
});

test('a write that may have landed is applied afresh when the retry finds only older values', () => {
  const stage = new Loopback();
  okOutcome(stage.runUntilDone(stage.submit({ kind: 'incr', delta: 1n })));
  const next = stage.submit({ kind: 'incr', delta: 5n });
  stage.deliverRequests((send) => send.to === 'a0');
  stage.dropRequests();
  stage.replies = [];
  stage.tick(stage.nowMs + stage.config.phaseTimeoutMs + 1);
  // a0 falls silent: the retry's quorum is a1 and a2, which never saw the write.
  let outcome = stage.outcomes.get(next);
  for (let step = 0; step < 200 && outcome === undefined; step++) {
    stage.dropRequests((send) => send.to === 'a0');
    stage.deliverRequests();
    stage.deliverReplies();
    stage.tick(stage.nowMs + 5);
    outcome = stage.outcomes.get(next);
  }
  const ok = okOutcome(stage.outcome(next));
  assert.deepEqual(
    { previous: text(ok.previous), current: text(ok.current) },
    { previous: '1', current: '6' },
  );
  // a0 still holds the first try, under an older ballot than the value chosen since.
  const first = stage.keyState('a0')!.accepted;
  assert.ok(compareBallots(first, stage.keyState('a1')!.accepted) < 0);
  const read = stage.submit({ kind: 'get' });
  assert.equal(text(okOutcome(stage.runUntilDone(read)).current), '6');
});

test('a write that may have landed fails as unknown when another proposer wrote after it', () => {
  const stage = new Loopback();
  stage.addProposer('p2', 11);
  okOutcome(stage.runUntilDone(stage.submit({ kind: 'put', value: utf8('1') })));
  const next = stage.submit({ kind: 'incr', delta: 1n });
  stage.deliverRequests((send) => send.to === 'a0');
  stage.dropRequests();
  stage.replies = [];
  // p2 writes through a1 and a2, which never saw p1's write: a higher ballot p1 cannot judge.
  const other = stage.submit({ kind: 'put', value: utf8('x') }, 'k', 'p2');
  for (let step = 0; step < 200 && !stage.outcomes.has(other); step++) {
    stage.dropRequests((send) => send.to === 'a0');
    stage.deliverRequests();
    stage.deliverReplies();
    stage.tick(stage.nowMs + 5, 'p2');
  }
  okOutcome(stage.outcome(other));
  const outcome = stage.runUntilDone(next);
  assert.deepEqual(outcome.kind === 'error' && [outcome.code, outcome.mayHaveTakenEffect], [
    'contention',
    true,
  ]);
});

test('a write every acceptor refused is retried with a prepare, and applied once', () => {
  const stage = new Loopback();
  stage.addProposer('p2', 11);
  stage.submit({ kind: 'put', value: utf8('5') });
  stage.settle();
  // p2 writes in between: p1's cached promise is now stale at every acceptor.
  okOutcome(stage.runUntilDone(stage.submit({ kind: 'incr', delta: 10n }, 'k', 'p2'), 'p2'));
  const increment = stage.submit({ kind: 'incr', delta: 1n });
  const outcome = okOutcome(stage.runUntilDone(increment));
  assert.equal(stage.proposer().stats.retries, 1);
  assert.equal(outcome.oneRoundTrip, false);
  assert.deepEqual(
    { previous: text(outcome.previous), current: text(outcome.current) },
    { previous: '15', current: '16' },
  );
});

test('a copy of a reply counts once: duplicates never make a quorum', () => {
  const stage = new Loopback();
  const operation = stage.submit({ kind: 'put', value: utf8('v') });
  stage.deliverRequests((send) => send.to === 'a0');
  const promise = stage.replies[0]!;
  stage.replies.push(promise, promise);
  stage.deliverReplies();
  assert.equal(
    stage.requests.filter((send) => typeOf(send.message) === 'xa').length,
    0,
    'still waiting for a second acceptor',
  );
  assert.equal(stage.proposer().stats.staleReplies, 2);
  stage.settle();
  assert.equal(okOutcome(stage.outcome(operation)).current.version, 1);
});

test('malformed replies and replies from strangers are dropped and counted', () => {
  const stage = new Loopback();
  const operation = stage.submit({ kind: 'get' });
  const proposer = stage.proposer();
  const malformed: [string, unknown][] = [
    ['a0', [PaxosMessageType.promise, 1, 0, '', utf8('x'), 0]],
    ['a0', [PaxosMessageType.promise, 1, 0, '']],
    ['a0', [PaxosMessageType.prepare, 1, utf8('k'), 1, 'p1']],
    ['a0', 'xr'],
    ['stranger', [PaxosMessageType.promise, 1, 0, '', null, 0]],
  ];
  for (const [from, message] of malformed) proposer.receive(from, message, 0);
  assert.equal(proposer.stats.malformedDropped, malformed.length);
  stage.settle();
  assert.equal(okOutcome(stage.outcome(operation)).current.bytes, null);
});

test('operations on one key run one at a time in order; past the queue bound they are refused as overloaded', () => {
  const stage = new Loopback();
  const ids: number[] = [];
  for (let i = 0; i < QUEUED_OPERATIONS_PER_KEY_MAX + 2; i++)
    ids.push(stage.submit({ kind: 'incr', delta: 1n }));
  const refused = stage.outcome(ids.at(-1)!);
  assert.equal(refused.kind === 'error' && refused.code, 'overloaded');
  assert.equal(stage.proposer().operationCount, QUEUED_OPERATIONS_PER_KEY_MAX + 1);
  stage.settle();
  const results = ids.slice(0, -1).map((id) => text(okOutcome(stage.outcome(id)).current));
  assert.deepEqual(
    results,
    results.map((_, index) => String(index + 1)),
  );
  assert.equal(stage.proposer().operationCount, 0);
});

test('a failed increment writes back what it read and reports not-an-integer', () => {
  const stage = new Loopback();
  stage.submit({ kind: 'put', value: utf8('text') });
  stage.settle();
  const increment = stage.submit({ kind: 'incr', delta: 1n });
  assert.equal(typeOf(stage.requests[0]!.message), 'xa');
  stage.settle();
  assert.deepEqual(stage.outcome(increment), {
    kind: 'error',
    code: 'not-an-integer',
    message: 'the value is not an integer',
    mayHaveTakenEffect: false,
  });
  assert.deepEqual(text(stage.keyState('a1')!.value), 'text');
  assert.equal(stage.keyState('a1')!.value.version, 1);
});

test('an invalid command is refused at once, before any message', () => {
  const stage = new Loopback(3, { valueBytesMax: 4 });
  const operation = stage.submit({ kind: 'put', value: utf8('too long') });
  assert.equal(
    stage.outcome(operation).kind === 'error' &&
      (stage.outcome(operation) as { code: string }).code,
    'invalid',
  );
  assert.equal(stage.requests.length, 0);
});

test('a purge seals the tombstone on every acceptor, then each removes it; versions do not repeat', () => {
  const stage = new Loopback();
  stage.submit({ kind: 'put', value: utf8('v') });
  stage.submit({ kind: 'delete' });
  stage.settle();
  const purge = stage.purge();
  stage.settle();
  assert.deepEqual(stage.outcome(purge), {
    kind: 'purge',
    wasTombstone: true,
    removedCount: 3,
    complete: true,
  });
  for (const id of stage.acceptorIds) {
    assert.equal(stage.keyState(id), undefined, `${id} no longer stores the key`);
    assert.equal(stage.floors.get(id)!.version, 2);
  }
  const read = stage.submit({ kind: 'get' });
  stage.settle();
  assert.deepEqual(okOutcome(stage.outcome(read)).current, { bytes: null, version: 2 });
  const write = stage.submit({ kind: 'put', value: utf8('again') });
  stage.settle();
  assert.equal(okOutcome(stage.outcome(write)).current.version, 3, 'version 1 is not issued twice');
});

test('a purge of a key that holds a value removes nothing', () => {
  const stage = new Loopback();
  stage.submit({ kind: 'put', value: utf8('v') });
  stage.settle();
  const purge = stage.purge();
  stage.settle();
  assert.deepEqual(stage.outcome(purge), {
    kind: 'purge',
    wasTombstone: false,
    removedCount: 0,
    complete: false,
  });
  for (const id of stage.acceptorIds) assert.equal(text(stage.keyState(id)!.value), 'v');
});

test('a purge needs every acceptor: with one silent it removes nothing', () => {
  const stage = new Loopback(3, { attemptsMax: 2, backoffMsMax: 10 });
  stage.submit({ kind: 'delete' });
  stage.settle();
  const purge = stage.purge();
  for (let nowMs = 0; nowMs <= 1_000 && !stage.outcomes.has(purge); nowMs += 5) {
    stage.dropRequests((send) => send.to === 'a2');
    stage.deliverRequests();
    stage.deliverReplies();
    stage.tick(nowMs);
  }
  const outcome = stage.outcome(purge);
  assert.equal(outcome.kind === 'error' && outcome.code, 'unavailable', JSON.stringify(outcome));
  assert.equal(outcome.kind === 'error' && outcome.mayHaveTakenEffect, false);
  for (const id of ['a0', 'a1']) assert.notEqual(stage.keyState(id), undefined);
});

test('a restarted proposer cannot reuse a ballot its previous life gathered promises for', () => {
  const stage = new Loopback();
  stage.submit({ kind: 'put', value: utf8('old') });
  stage.deliverRequests();
  stage.replies = [];
  // The same id, no memory: it starts again at counter 1.
  stage.addProposer('p1', 99);
  const operation = stage.submit({ kind: 'put', value: utf8('v') });
  assert.equal((stage.requests[0]!.message as readonly unknown[])[3], 1);
  stage.settle();
  assert.ok(stage.proposer().stats.conflicts >= 2, 'ballot (1, p1) is refused');
  stage.tick(stage.config.backoffMsBase);
  assert.equal((stage.requests[0]!.message as readonly unknown[])[3], 2);
  stage.settle();
  assert.equal(text(okOutcome(stage.outcome(operation)).current), 'v');
});

test('quorums that need not intersect are refused unless deliberately allowed', () => {
  assert.throws(
    () => defaultProposerConfig(['a', 'b', 'c'], { prepareQuorum: 1, acceptQuorum: 2 }),
    /prepareQuorum \+ acceptQuorum > N/,
  );
  const unsafe = defaultProposerConfig(['a', 'b', 'c'], {
    prepareQuorum: 1,
    acceptQuorum: 1,
    unsafe: { allowDisjointQuorums: true },
  });
  assert.equal(unsafe.prepareQuorum, 1);
  // Flexible quorums that do intersect are fine.
  assert.equal(
    defaultProposerConfig(['a', 'b', 'c', 'd'], { prepareQuorum: 3, acceptQuorum: 2 }).acceptQuorum,
    2,
  );
});
