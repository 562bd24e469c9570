// The chain replica's transitions, one by one: update propagation in sequence order, what
// duplicated and reordered messages do, how sent lists are trimmed, epochs and refusals, reads
// at the tail alone, deduplication of requests, bounds, and malformed input.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromUtf8, utf8 } from '../../../src/core/bytes.ts';
import { foundingChainConfig, withoutMember } from '../../../src/core/chain/chain-config.ts';
import { ChainReplica } from '../../../src/core/chain/replica.ts';
import { Harness, PARTITION, TEST_TIMINGS, isType, put } from './harness.ts';

const CHAIN = ['n0', 'n1', 'n2'];

/** A chain of three whose successors have acknowledged once and whose tail holds a lease. */
function warmChain(overrides: ConstructorParameters<typeof Harness>[2] = {}): Harness {
  const harness = new Harness(CHAIN, CHAIN, overrides);
  harness.advance(300);
  assert.ok(harness.replica('n2').canActAsTail(harness.nowMs), 'the tail holds a lease');
  return harness;
}

function value(harness: Harness, id: string, key: string): string | null {
  const record = harness.replica(id).localRecord(utf8(key));
  return record.value === null ? null : fromUtf8(record.value);
}

test('the head orders a write, every replica applies it, and the tail answers once it has', () => {
  const harness = warmChain();
  const requestId = harness.write('c0', put('k', 'v1'));
  assert.equal(harness.replica('n0').applied, 1);
  assert.equal(harness.repliesTo('c0', requestId).length, 0, 'the head does not answer');
  harness.settle();
  const replies = harness.repliesTo('c0', requestId);
  assert.equal(replies.length, 1);
  assert.deepEqual(replies[0], {
    status: 'written',
    outcome: { kind: 'done', applied: true, version: 1, value: null },
  });
  const answer = harness.replies.find((flight) => flight.message.type === 'reply')!;
  assert.equal(answer.from, 'n2', 'the tail answered');
  for (const id of CHAIN) {
    assert.equal(value(harness, id, 'k'), 'v1', `${id} holds the write`);
    assert.equal(harness.replica(id).committed, 1, `${id} knows it committed`);
    assert.equal(harness.replica(id).sentLength, 0, `${id} has trimmed its sent list`);
  }
});

test('a forward delivered twice is applied once', () => {
  const harness = warmChain();
  harness.write('c0', { kind: 'incr', key: utf8('k'), delta: 5 });
  const [forward] = harness.take(isType('forward', 'n0', 'n1'));
  assert.ok(forward !== undefined);
  harness.deliver(forward);
  harness.deliver(forward);
  assert.equal(harness.replica('n1').applied, 1);
  assert.equal(harness.replica('n1').counters.duplicateEntriesSkipped, 1);
  harness.settle();
  assert.equal(value(harness, 'n2', 'k'), '5', 'the increment happened once');
  assert.equal(harness.replica('n2').localRecord(utf8('k')).version, 1);
});

test('entries that arrive out of order are applied in sequence order once the gap is resent', () => {
  const harness = warmChain();
  harness.write('c0', put('k', 'first'));
  harness.write('c0', put('k', 'second'));
  const forwards = harness.take(isType('forward', 'n0', 'n1'));
  assert.equal(forwards.length, 2, 'one forward per write');
  harness.deliver(forwards[1]!);
  assert.equal(harness.replica('n1').applied, 0, 'the later entry waits behind the gap');
  assert.equal(harness.replica('n1').counters.gapsDropped, 1);
  harness.deliver(forwards[0]!);
  assert.equal(harness.replica('n1').applied, 1);
  // The second entry went missing in the middle: the head resends after its timeout.
  harness.settle();
  assert.equal(harness.replica('n1').applied, 1);
  harness.advance(TEST_TIMINGS.retransmitAfterMs + 20);
  for (const id of CHAIN) assert.equal(value(harness, id, 'k'), 'second', id);
  assert.ok(harness.replica('n0').counters.retransmissions >= 1);
});

test('a resent backlog splits by entry count and value bytes, in order, an oversized entry alone', () => {
  const harness = warmChain({ limits: { entriesPerForwardMax: 3, forwardValueBytesMax: 10 } });
  const sizes = [2, 2, 2, 2, 30, 1];
  for (const size of sizes) {
    harness.write('c0', { kind: 'put', key: utf8('k'), value: new Uint8Array(size) });
  }
  // Every first forward is lost; the retransmission sends the whole backlog at once.
  harness.take(isType('forward', 'n0', 'n1'));
  harness.nowMs += TEST_TIMINGS.retransmitAfterMs;
  harness.collect('n0', harness.replica('n0').tick(harness.nowMs));
  const layout = harness
    .take(isType('forward', 'n0', 'n1'))
    .map((flight) =>
      flight.message.type === 'forward'
        ? flight.message.entries.map((entry) => entry.sequence)
        : [],
    );
  // The key is 1 byte: entries of 3, 3, 3, 3, 31 and 2 bytes against a bound of 10.
  assert.deepEqual(layout, [[1, 2, 3], [4], [5], [6]]);
  assert.equal(harness.replica('n0').counters.retransmissions, 1);
});

test('sent lists hold exactly the entries the tail has not acknowledged, and shrink with its acks', () => {
  const harness = warmChain();
  for (let index = 0; index < 3; index++) harness.write('c0', put('k', `v${index}`));
  harness.settle((flight) => flight.message.type === 'ack' && flight.from === 'n2');
  assert.equal(harness.replica('n0').sentLength, 3);
  assert.equal(harness.replica('n1').sentLength, 3);
  assert.equal(harness.replica('n2').committed, 3, 'the tail committed all three');
  harness.advance(TEST_TIMINGS.ackIntervalMs + 10);
  assert.equal(harness.replica('n1').sentLength, 0);
  assert.equal(harness.replica('n0').sentLength, 0);
  assert.equal(harness.replica('n0').committed, 3);
});

test('a message of an older epoch is refused with the newer configuration and never applied', () => {
  const harness = warmChain();
  const newer = { ...foundingChainConfig(PARTITION, CHAIN), epoch: 2 };
  harness.configureAll(newer, ['n1', 'n2']);
  harness.settle();
  harness.write('c0', put('k', 'old-epoch'));
  const [forward] = harness.take(isType('forward', 'n0', 'n1'));
  assert.ok(forward !== undefined && forward.message.epoch === 1);
  harness.deliver(forward);
  assert.equal(harness.replica('n1').applied, 0, 'not applied');
  assert.equal(harness.replica('n1').counters.olderEpochRefused, 1);
  const [refusal] = harness.take(isType('refused', 'n1', 'n0'));
  assert.ok(refusal !== undefined && refusal.message.type === 'refused');
  assert.equal(refusal.message.config.epoch, 2);
  harness.deliver(refusal);
  assert.equal(harness.replica('n0').epoch, 2, 'the refused replica learns the newer epoch');

  // A requester of an older epoch is refused too, and told the configuration.
  const requestId = harness.read('c1', 'k', 'n2', 1);
  assert.deepEqual(harness.repliesTo('c1', requestId), [{ status: 'refused', config: newer }]);
});

test('a message of a newer epoch makes a replica ask for the map and is not applied', () => {
  const harness = warmChain();
  const requestId = harness.write('c0', put('k', 'v'), 'n0', 5);
  assert.equal(harness.replica('n0').applied, 0);
  assert.deepEqual(harness.repliesTo('c0', requestId), [{ status: 'retry', reason: 'behind' }]);
  assert.deepEqual(harness.configWanted.at(-1), { id: 'n0', epoch: 5 });
});

test('reads are answered by the tail alone, and only while it holds a lease', () => {
  const harness = new Harness(CHAIN, CHAIN);
  const early = harness.read('c0', 'k', 'n2');
  assert.deepEqual(harness.repliesTo('c0', early), [{ status: 'retry', reason: 'not-ready' }]);
  harness.advance(300);
  harness.write('c0', put('k', 'v'));
  harness.settle();
  const atMiddle = harness.read('c0', 'k', 'n1');
  assert.equal(harness.repliesTo('c0', atMiddle)[0]?.status, 'refused');
  const atTail = harness.read('c0', 'k', 'n2');
  assert.deepEqual(harness.repliesTo('c0', atTail), [
    { status: 'read', value: utf8('v'), version: 1 },
  ]);
  // Cut the tail off from its predecessor: its lease runs out and it stops answering.
  harness.advance(
    TEST_TIMINGS.leaseMs + 50,
    (flight) => flight.to === 'n2' || flight.from === 'n2',
  );
  const late = harness.read('c0', 'k', 'n2');
  assert.deepEqual(harness.repliesTo('c0', late), [{ status: 'retry', reason: 'not-ready' }]);
});

test('a write request sent twice is applied once and answered from memory once committed', () => {
  const harness = warmChain();
  const operation = { kind: 'incr' as const, key: utf8('k'), delta: 2 };
  const message = { type: 'write', partition: PARTITION, epoch: 1, requestId: 77, operation };
  harness.receive('n0', 'c0', message);
  harness.receive('n0', 'c0', message);
  assert.equal(harness.replica('n0').applied, 1, 'ordered once');
  assert.equal(harness.replica('n0').counters.duplicateRequests, 1);
  harness.settle();
  harness.advance(TEST_TIMINGS.ackIntervalMs + 10);
  harness.receive('n0', 'c0', message);
  const replies = harness.repliesTo('c0', 77);
  assert.equal(replies.length, 2, 'once from the tail, once from the head after the commit');
  assert.deepEqual(replies[0], replies[1]);
  assert.equal(value(harness, 'n2', 'k'), '2');
});

test('a head whose sent list is full refuses new writes until the tail acknowledges', () => {
  const harness = warmChain({ limits: { sentEntriesMax: 2 } });
  harness.write('c0', put('a', '1'));
  harness.write('c0', put('b', '2'));
  // Forwards go nowhere: nothing commits.
  harness.take(() => true);
  const refused = harness.write('c0', put('c', '3'));
  assert.deepEqual(harness.repliesTo('c0', refused), [{ status: 'retry', reason: 'overloaded' }]);
  assert.equal(harness.replica('n0').applied, 2);
  harness.advance(TEST_TIMINGS.retransmitAfterMs + TEST_TIMINGS.ackIntervalMs + 20);
  assert.equal(harness.replica('n0').committed, 2);
  harness.write('c0', put('c', '3'));
  assert.equal(harness.replica('n0').applied, 3);
});

test('malformed messages are dropped, counted, and change nothing', () => {
  const harness = warmChain();
  const before = harness.replica('n1').applied;
  const malformed: unknown[] = [
    null,
    'forward',
    { type: 'forward', partition: PARTITION, epoch: 1 },
    { type: 'forward', partition: PARTITION, epoch: 1, entries: [] },
    {
      type: 'ack',
      partition: PARTITION,
      epoch: 1,
      appliedSequence: 1,
      committedSequence: 2,
      leaseRequestedAtMs: 0,
    },
    {
      type: 'write',
      partition: PARTITION,
      epoch: 1,
      requestId: 1,
      operation: { kind: 'put', key: utf8('k') },
    },
    { type: 'read', partition: PARTITION, epoch: 0, requestId: 1, key: utf8('k') },
    { type: 'read', partition: PARTITION + 1, epoch: 1, requestId: 1, key: utf8('k') },
    { type: 'read', partition: PARTITION, epoch: 1, requestId: 1, key: utf8('k'), extra: true },
    { type: 'gossip', partition: PARTITION, epoch: 1 },
  ];
  for (const message of malformed) {
    const output = harness.receive('n1', 'n0', message);
    assert.equal(output.sends.length, 0, `nothing answers ${JSON.stringify(message)}`);
  }
  assert.equal(harness.replica('n1').counters.malformedDropped, malformed.length);
  assert.equal(harness.replica('n1').applied, before);
});

test('a write from a replica that is not the predecessor is dropped', () => {
  const harness = warmChain();
  harness.write('c0', put('k', 'v'));
  const [forward] = harness.take(isType('forward', 'n0', 'n1'));
  harness.receive('n2', 'n0', forward!.message);
  assert.equal(harness.replica('n2').applied, 0);
  assert.equal(harness.replica('n2').counters.unexpectedSenderDropped, 1);
});

test('a write to a replica that is not the head is refused with the configuration', () => {
  const harness = warmChain();
  const requestId = harness.write('c0', put('k', 'v'), 'n1');
  const replies = harness.repliesTo('c0', requestId);
  assert.equal(replies[0]?.status, 'refused');
  assert.equal(harness.replica('n1').applied, 0);
});

test('a malformed operation is answered invalid and not ordered', () => {
  const harness = warmChain({ limits: { valueBytesMax: 4 } });
  const requestId = harness.write('c0', put('k', 'too long'));
  const [reply] = harness.repliesTo('c0', requestId);
  assert.equal(reply?.status, 'invalid');
  assert.equal(reply?.status === 'invalid' ? reply.code : '', 'RINGKV_VALUE_TOO_LARGE');
  assert.equal(harness.replica('n0').applied, 0);
});

test('requesters beyond the limit are forgotten, the least recently active first', () => {
  const harness = warmChain({ limits: { requestersMax: 2 } });
  harness.write('c0', put('k', '1'));
  harness.write('c1', put('k', '2'));
  harness.write('c2', put('k', '3'));
  harness.settle();
  for (const id of CHAIN) {
    const remembered = harness
      .replica(id)
      .localRequesters()
      .map((memory) => memory.requester);
    assert.deepEqual(remembered, ['c1', 'c2'], id);
    assert.deepEqual([...harness.stores.get(id)!.requesters.keys()].sort(), ['c1', 'c2'], id);
  }
});

test('a replica restored from what it stored holds its records, requesters and sent list', async () => {
  const { decodeStore } = await import('../../../src/sim/chain-world.ts');
  const harness = warmChain();
  harness.write('c0', put('a', '1'));
  harness.write('c1', { kind: 'delete', key: utf8('a') });
  harness.write('c0', put('b', '2'));
  // The middle applies all three; the tail never sees them.
  harness.settle((flight) => flight.to === 'n2');
  const original = harness.replica('n1');
  assert.equal(original.sentLength, 3);
  const stored = decodeStore(harness.stores.get('n1')!);
  assert.ok(stored !== null);
  const restored = ChainReplica.restore(harness.options('n1'), stored, harness.nowMs);
  assert.deepEqual(restored.localRecords(), original.localRecords());
  assert.deepEqual(restored.localRequesters(), original.localRequesters());
  assert.equal(restored.applied, 3);
  assert.equal(restored.sentLength, 3);
  assert.equal(restored.role(), 'middle');
  // It waits a whole lease before granting one: it cannot know what it granted last.
  assert.equal(restored.canActAsTail(harness.nowMs), false);
  harness.replicas.set('n1', restored);
  harness.advance(TEST_TIMINGS.leaseMs + 200);
  assert.equal(value(harness, 'n2', 'b'), '2', 'the restored middle passed its entries on');
  assert.equal(value(harness, 'n2', 'a'), null);
  assert.equal(
    harness.replica('n2').localRecord(utf8('a')).version,
    2,
    'a tombstone keeps counting',
  );
});

test('time going back is refused', () => {
  const harness = warmChain();
  assert.throws(() => harness.replica('n0').tick(harness.nowMs - 1), /time does not go back/);
});

test('a configuration without this replica ends its part: it refuses writes and reads', () => {
  const harness = warmChain();
  const config = withoutMember(foundingChainConfig(PARTITION, CHAIN), 'n0');
  harness.configureAll(config);
  const requestId = harness.write('c0', put('k', 'v'), 'n0');
  assert.deepEqual(harness.repliesTo('c0', requestId), [{ status: 'refused', config }]);
  const readId = harness.read('c0', 'k', 'n0');
  assert.deepEqual(harness.repliesTo('c0', readId), [{ status: 'refused', config }]);
  assert.equal(harness.replica('n0').role(), 'none');
  assert.equal(harness.replica('n0').applied, 0);
});
