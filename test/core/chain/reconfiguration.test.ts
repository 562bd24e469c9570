// Reconfiguration as the paper describes it, one failure case at a time: the head, the tail or
// a middle replica removed by a new configuration, and a chain extended at the tail, with and
// without a copy made before the new replica joins.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromUtf8, utf8 } from '../../../src/core/bytes.ts';
import {
  foundingChainConfig,
  withTail,
  withoutMember,
  type ChainConfig,
} from '../../../src/core/chain/chain-config.ts';
import { Harness, PARTITION, TEST_TIMINGS, put } from './harness.ts';

const CHAIN = ['n0', 'n1', 'n2'];
const FOUNDING = foundingChainConfig(PARTITION, CHAIN);

function value(harness: Harness, id: string, key: string): string | null {
  const record = harness.replica(id).localRecord(utf8(key));
  return record.value === null ? null : fromUtf8(record.value);
}

function writtenReplies(harness: Harness, requester: string, requestId: number): number {
  return harness.repliesTo(requester, requestId).filter((reply) => reply.status === 'written')
    .length;
}

test('when the tail is removed, its predecessor answers what the old tail had not, once the old lease has run out', () => {
  const harness = new Harness(CHAIN, CHAIN);
  harness.advance(300);
  const toOldTail = (flight: { to: string }): boolean => flight.to === 'n2';
  const requestId = harness.write('c0', put('k', 'v'));
  harness.settle(toOldTail);
  assert.equal(harness.replica('n1').applied, 1, 'the middle holds the write');
  assert.equal(writtenReplies(harness, 'c0', requestId), 0, 'nobody answered');
  const config = withoutMember(FOUNDING, 'n2');
  harness.configureAll(config, ['n0', 'n1']);
  assert.equal(harness.replica('n1').role(), 'tail');
  // It granted n2 leases until a moment ago: it must not answer while n2 may still.
  assert.equal(harness.replica('n1').canActAsTail(harness.nowMs), false);
  harness.advance(TEST_TIMINGS.leaseMs / 2, toOldTail);
  assert.equal(writtenReplies(harness, 'c0', requestId), 0, 'still waiting out the lease');
  harness.advance(TEST_TIMINGS.leaseMs, toOldTail);
  assert.equal(writtenReplies(harness, 'c0', requestId), 1, 'the new tail answered');
  assert.equal(harness.replica('n1').committed, 1);
  assert.equal(harness.replica('n0').sentLength, 0, 'and acknowledged up the chain');
});

test('when a middle replica is removed, its predecessor resends its sent list to its new successor', () => {
  const harness = new Harness(CHAIN, CHAIN);
  harness.advance(300);
  const fromMiddle = (flight: { from: string }): boolean => flight.from === 'n1';
  const first = harness.write('c0', put('a', '1'));
  const second = harness.write('c0', put('b', '2'));
  harness.settle(fromMiddle);
  assert.equal(harness.replica('n2').applied, 0, 'the middle passed nothing on');
  assert.equal(harness.replica('n0').sentLength, 2);
  const config = withoutMember(FOUNDING, 'n1');
  harness.configureAll(config, ['n0', 'n2']);
  harness.advance(TEST_TIMINGS.ackIntervalMs + 20, fromMiddle);
  assert.equal(value(harness, 'n2', 'a'), '1');
  assert.equal(value(harness, 'n2', 'b'), '2');
  assert.equal(writtenReplies(harness, 'c0', first), 1);
  assert.equal(writtenReplies(harness, 'c0', second), 1);
  assert.equal(harness.replica('n0').sentLength, 0);
});

test('when the head is removed, its successor orders new writes after everything it holds', () => {
  const harness = new Harness(CHAIN, CHAIN);
  harness.advance(300);
  harness.write('c0', put('k', '1'));
  harness.write('c0', { kind: 'incr', key: utf8('k'), delta: 1 });
  harness.settle();
  // A third write reaches only the old head, which then fails.
  harness.write('c0', put('k', 'lost'));
  harness.take((flight) => flight.from === 'n0');
  const config = withoutMember(FOUNDING, 'n0');
  harness.configureAll(config, ['n1', 'n2']);
  assert.equal(harness.replica('n1').role(), 'head');
  const requestId = harness.write('c1', { kind: 'incr', key: utf8('k'), delta: 10 }, 'n1');
  harness.advance(100, (flight) => flight.to === 'n0');
  const [reply] = harness.repliesTo('c1', requestId);
  assert.deepEqual(reply, {
    status: 'written',
    outcome: { kind: 'done', applied: true, version: 3, value: utf8('12') },
  });
  assert.equal(harness.replica('n2').applied, 3, 'sequence 3 is the new head’s, not the lost one');
});

test('a new tail copies the partition from its predecessor and receives the writes made during the copy', () => {
  const harness = new Harness(['n0', 'n1', 'n2'], ['n0', 'n1'], {
    limits: { recordsPerChunkMax: 2 },
  });
  harness.advance(300);
  for (let index = 0; index < 5; index++) harness.write('c0', put(`k${index}`, `v${index}`));
  harness.write('c0', { kind: 'delete', key: utf8('k4') });
  harness.settle();
  const config: ChainConfig = withTail(foundingChainConfig(PARTITION, ['n0', 'n1']), 'n2');
  harness.configureAll(config);
  assert.equal(harness.replica('n2').role(), 'copying');
  // Writes keep coming while chunks flow: deliver one message at a time, writing in between.
  const during: number[] = [];
  for (let round = 0; round < 6 && harness.inFlight.length > 0; round++) {
    harness.deliver(harness.inFlight.shift()!);
    during.push(harness.write('c1', put(`k${round % 3}`, `during${round}`)));
  }
  harness.advance(TEST_TIMINGS.leaseMs);
  assert.equal(harness.replica('n2').role(), 'tail');
  assert.equal(harness.replica('n2').counters.copiesFinished, 1);
  for (const requestId of during) assert.equal(writtenReplies(harness, 'c1', requestId), 1);
  assert.deepEqual(harness.replica('n2').localRecords(), harness.replica('n0').localRecords());
  assert.equal(value(harness, 'n2', 'k4'), null);
  assert.equal(harness.replica('n2').localRecord(utf8('k4')).version, 2, 'the tombstone came too');
  const read = harness.read('c2', 'k3', 'n2');
  assert.deepEqual(harness.repliesTo('c2', read), [
    { status: 'read', value: utf8('v3'), version: 1 },
  ]);
  // The old tail answers no read any more.
  const old = harness.read('c2', 'k3', 'n1');
  assert.equal(harness.repliesTo('c2', old)[0]?.status, 'refused');
});

test('a replica that copied before joining needs only what changed since its last pass', () => {
  const harness = new Harness(['n0', 'n1', 'n2'], ['n0', 'n1'], {
    limits: { recordsPerChunkMax: 2 },
  });
  harness.advance(300);
  for (let index = 0; index < 6; index++) harness.write('c0', put(`k${index}`, `v${index}`));
  harness.settle();
  const founding = foundingChainConfig(PARTITION, ['n0', 'n1']);
  const started = harness.collect('n2', harness.replica('n2').precopy(founding, harness.nowMs));
  assert.equal(started.sends[0]?.to, 'n1', 'it copies from the tail');
  harness.settle();
  assert.equal(value(harness, 'n2', 'k5'), 'v5', 'a first pass brought everything');
  assert.equal(harness.replica('n2').role(), 'none', 'and it is not a member yet');
  harness.write('c0', put('k1', 'changed'));
  harness.settle();
  harness.advance(TEST_TIMINGS.copyRetryAfterMs + 20);
  assert.equal(value(harness, 'n2', 'k1'), 'changed', 'a second pass brought the change');
  assert.equal(harness.replica('n2').counters.precopyPasses, 2);
  harness.write('c0', put('k2', 'after'));
  harness.configureAll(withTail(founding, 'n2'));
  harness.advance(TEST_TIMINGS.leaseMs);
  assert.equal(harness.replica('n2').role(), 'tail');
  assert.equal(harness.replica('n2').counters.copiesFromPrecopy, 1);
  assert.equal(value(harness, 'n2', 'k2'), 'after');
  assert.deepEqual(harness.replica('n2').localRecords(), harness.replica('n0').localRecords());
});

test('a replica appended again after its removal starts from nothing', () => {
  const harness = new Harness(CHAIN, CHAIN);
  harness.advance(300);
  harness.write('c0', put('k', 'kept'));
  harness.settle();
  // The head orders a write only it will ever hold, then is removed.
  harness.write('c0', put('k', 'never committed'));
  harness.take((flight) => flight.from === 'n0');
  const removed = withoutMember(FOUNDING, 'n0');
  harness.configureAll(removed);
  harness.advance(100);
  const back = withTail(removed, 'n0');
  harness.configureAll(back);
  harness.advance(TEST_TIMINGS.leaseMs + 200);
  assert.equal(harness.replica('n0').role(), 'tail');
  assert.equal(value(harness, 'n0', 'k'), 'kept', 'the uncommitted write is gone');
  assert.equal(harness.replica('n0').applied, harness.replica('n1').applied);
});

test('writes ordered after the old tail stopped answering, before the copy began, are answered by the new tail', () => {
  const harness = new Harness(['n0', 'n1', 'n2'], ['n0', 'n1']);
  harness.advance(300);
  harness.write('c0', put('k', 'before'));
  harness.settle();
  harness.configureAll(withTail(foundingChainConfig(PARTITION, ['n0', 'n1']), 'n2'));
  // The copy request is held back: these two are ordered, applied by the old tail, not committed.
  const held = harness.take((flight) => flight.message.type === 'copy-request');
  const first = harness.write('c1', put('k', 'one'));
  const second = harness.write('c1', { kind: 'incr', key: utf8('n'), delta: 4 });
  harness.settle();
  assert.equal(harness.replica('n1').applied, 3);
  assert.equal(harness.replica('n1').committed, 1);
  for (const flight of held) harness.deliver(flight);
  harness.advance(TEST_TIMINGS.leaseMs);
  assert.equal(harness.replica('n2').role(), 'tail');
  assert.equal(writtenReplies(harness, 'c1', first), 1);
  assert.equal(writtenReplies(harness, 'c1', second), 1);
  assert.equal(harness.replica('n0').sentLength, 0, 'and they committed all along the chain');
});
