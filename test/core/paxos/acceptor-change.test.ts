// Acceptor changes of strong keyspaces (docs/PAXOS.md, "Acceptor changes"), piece by piece:
// which partitions a change fences and at what epoch, the acceptor's fence (a proposal from
// an older map refused, a newer one taken, the fence durable and kept across a restart), a
// list answered only once the fence it reports is durable, and a copy's listing (answers
// from unfenced acceptors not counted, a range ending at the smallest last key of those with
// more to list, the cursor moving only once the range is rewritten).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromUtf8, utf8 } from '../../../src/core/bytes.ts';
import {
  initialMap,
  type ClusterMap,
  type MemberInfo,
} from '../../../src/core/cluster/cluster-map.ts';
import { addStandby, commitChange, planJoin } from '../../../src/core/cluster/membership.ts';
import { DEFAULT_KEYSPACE, type Keyspace } from '../../../src/core/keyspace.ts';
import { Prng } from '../../../src/core/prng.ts';
import {
  fenceRaises,
  registerCopiesTo,
  registersGivenAway,
  strongAcceptorsOf,
} from '../../../src/core/paxos/acceptor-change.ts';
import { PaxosMessageType, type ListReplyMessage } from '../../../src/core/paxos/messages.ts';
import {
  DEFAULT_REGISTER_COPY_CONFIG,
  RegisterCopy,
} from '../../../src/core/paxos/register-copy.ts';
import { RegisterHost, registerKeyOf } from '../../../src/core/paxos/register-host.ts';
import { partitionOf } from '../../../src/core/ring/partition.ts';
import { MemoryRows } from './memory-rows.ts';

const STRONG: Keyspace = { ...DEFAULT_KEYSPACE, consistency: 'strong' };
const PARTITIONS = 16;

function member(id: string): MemberInfo {
  return { id, peer: `${id}:1`, http: `${id}:2`, resp: `${id}:3` };
}

/** n1..n3 founded, n4 joining: the map before, with the change, and after the commit. */
function joinMaps(): { before: ClusterMap; during: ClusterMap; after: ClusterMap } {
  const founded = initialMap('c', PARTITIONS, ['n1', 'n2', 'n3'].map(member), [STRONG]);
  const standby = addStandby(founded, member('n4'));
  assert.ok(standby.ok);
  const during = planJoin(standby.map, member('n4'));
  assert.ok(during.ok);
  const after = commitChange(during.map);
  assert.ok(after.ok);
  return { before: standby.map, during: during.map, after: after.map };
}

function hostOf(rows: MemoryRows, id = 'n1'): RegisterHost {
  return new RegisterHost(id, 1, PARTITIONS, rows, new Prng(1));
}

test('a join fences exactly the partitions whose acceptors it changes, at the change epoch, and the commit fences them again at its own', () => {
  const { before, during, after } = joinMaps();
  const moved: number[] = [];
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const configuration = strongAcceptorsOf(during, STRONG, partition);
    if (configuration.nextIds !== undefined) moved.push(partition);
    assert.equal(configuration.epoch, during.epoch);
  }
  assert.ok(moved.length > 0 && moved.length < PARTITIONS, `some partitions move: ${moved.join()}`);
  const planned = fenceRaises(before, during);
  assert.deepEqual(
    planned.map((raise) => raise.partition),
    moved,
  );
  assert.ok(planned.every((raise) => raise.epoch === during.change!.epoch));
  const committed = fenceRaises(during, after);
  assert.deepEqual(
    committed.map((raise) => raise.partition),
    moved,
  );
  assert.ok(committed.every((raise) => raise.epoch === after.epoch));
  // The joiner copies exactly the moved partitions, from their acceptors before the change.
  const copies = registerCopiesTo(during, 'n4');
  assert.deepEqual(
    copies.map((copy) => copy.partition),
    moved,
  );
  for (const copy of copies) {
    assert.deepEqual(copy.currentAcceptors, strongAcceptorsOf(before, STRONG, copy.partition).ids);
  }
  // Whoever n4 displaced gives those partitions away after the commit.
  const away = ['n1', 'n2', 'n3'].flatMap((id) => registersGivenAway(during.owners, after, id));
  assert.equal(away.length, moved.length, 'one acceptor leaves each moved partition');
});

test('the acceptor refuses a proposal from a map older than its durable fence, takes a newer one, and keeps the fence across a restart', () => {
  const { before, during } = joinMaps();
  const rows = new MemoryRows();
  let host = hostOf(rows, 'n1');
  host.syncMap(null, before, 0);
  host.syncMap(before, during, 0);
  const partition = registerCopiesTo(during, 'n4')[0]!.partition;
  let key = utf8('x');
  for (let i = 0; partitionOf(STRONG.id, key, PARTITIONS) !== partition; i++) key = utf8(`x${i}`);
  const registerKey = registerKeyOf(STRONG.id, key);
  const prepare = [PaxosMessageType.prepare, 7, registerKey, 1, 'n2'];
  const old = host.receive('n2', prepare, 0, during.epoch - 1);
  assert.deepEqual(old.sends[0]?.message, [PaxosMessageType.fenced, 7, during.change!.epoch]);
  assert.ok(old.sends[0]!.afterBatch > 0, 'the refusal waits for the fence to be durable');
  assert.equal(host.fenceOf(partition), during.change!.epoch);
  const current = host.receive('n2', prepare, 0, during.epoch);
  assert.equal(current.sends[0]?.message[0], PaxosMessageType.promise);
  // A restart reads the fence back.
  host = hostOf(rows, 'n1');
  assert.equal(host.fenceOf(partition), during.change!.epoch);
  const again = host.receive(
    'n2',
    [PaxosMessageType.accept, 8, registerKey, 1, 'n2', null, 1],
    0,
    1,
  );
  assert.equal(again.sends[0]?.message[0], PaxosMessageType.fenced);
});

test('a list is answered only once the fence it reports is durable, with the keys in order and the floors', () => {
  const { before, during } = joinMaps();
  const rows = new MemoryRows();
  const host = hostOf(rows, 'n1');
  host.syncMap(null, before, 0);
  const partition = registerCopiesTo(during, 'n4')[0]!.partition;
  const keys: Uint8Array[] = [];
  for (let i = 0; keys.length < 3; i++) {
    const key = utf8(`key${i}`);
    if (partitionOf(STRONG.id, key, PARTITIONS) === partition) keys.push(key);
  }
  for (const key of keys) {
    host.receive('n2', [PaxosMessageType.prepare, 1, registerKeyOf(STRONG.id, key), 1, 'n2'], 0);
  }
  host.syncMap(before, during, 0);
  const list = [PaxosMessageType.list, 9, STRONG.id, partition, null];
  assert.equal(host.receive('n4', list, 0, during.epoch).sends.length, 0, 'waits for the fence');
  rows.persistAll();
  const sends = host.tick(1).sends;
  const reply = sends[0]?.message as ListReplyMessage | undefined;
  assert.ok(reply !== undefined && reply[0] === PaxosMessageType.listReply);
  assert.equal(reply[2], during.change!.epoch, 'it reports the fence');
  assert.deepEqual(
    reply[3].map((key) => fromUtf8(key)),
    keys.map((key) => fromUtf8(key)).sort(),
  );
  assert.equal(reply[4], true, 'every key listed');
});

function listReply(
  requestId: number,
  fence: number,
  keys: string[],
  done: boolean,
): ListReplyMessage {
  return [PaxosMessageType.listReply, requestId, fence, keys.map(utf8), done, 0, '', 0];
}

test('a copy counts only fenced answers, rewrites the union up to the smallest last key of those with more, and moves its cursor only then', () => {
  const plan = { keyspaceId: 0, partition: 3, currentAcceptors: ['a', 'b', 'c'], changeEpoch: 5 };
  const copy = new RegisterCopy(plan, DEFAULT_REGISTER_COPY_CONFIG, 0);
  let requestId = 100;
  const sends = copy.tick(0, () => ++requestId);
  assert.deepEqual(
    sends.map((send) => send.to),
    ['a', 'b', 'c'],
  );
  copy.receiveList('a', listReply(101, 4, ['k1'], true), 0);
  assert.equal(copy.answersUnfenced, 1, 'an acceptor not yet fenced is not counted');
  assert.equal(copy.state, 'listing');
  copy.receiveList('b', listReply(101, 5, ['k1', 'k3'], false), 0);
  copy.receiveList('c', listReply(101, 6, ['k2', 'k5'], true), 0);
  assert.equal(copy.state, 'rewriting');
  const due = copy.rewritesDue(0).map((key) => fromUtf8(key));
  assert.deepEqual(due, ['k1', 'k2', 'k3'], 'k5 lies past b, which has more to list');
  copy.rewritten(utf8('k1'), true, 2, 1);
  copy.rewritten(utf8('k2'), false, 0, 1);
  assert.equal(copy.cursor, null, 'the cursor waits for every key of the range');
  copy.rewritten(utf8('k3'), true, 2, 1);
  assert.deepEqual(copy.rewritesDue(1), [], 'a failed rewrite is tried again later');
  const retry = copy.rewritesDue(1_000).map((key) => fromUtf8(key));
  assert.deepEqual(retry, ['k2']);
  copy.rewritten(utf8('k2'), true, 2, 1_000);
  assert.equal(fromUtf8(copy.cursor!), 'k3');
  assert.equal(copy.state, 'listing');
  const next = copy.tick(1_000, () => ++requestId);
  assert.equal(fromUtf8(next[0]!.message[4]!), 'k3', 'the next round lists after the cursor');
  copy.receiveList('b', listReply(102, 5, ['k4'], true), 0);
  copy.receiveList('c', listReply(102, 5, ['k5'], true), 0);
  assert.deepEqual(
    copy.rewritesDue(1_000).map((key) => fromUtf8(key)),
    ['k4', 'k5'],
  );
  copy.rewritten(utf8('k4'), true, 2, 1_001);
  copy.rewritten(utf8('k5'), true, 2, 1_001);
  assert.equal(copy.state, 'done');
  assert.equal(copy.keysRewritten, 5);
});
