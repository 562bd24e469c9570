// The map register through a change of the voters (docs/PAXOS.md, "Changing the voters"),
// on one register host driven by hand: the fence an acceptor raises for the map register
// (refusing older epochs, durable, kept across a restart, raised again by the commit), a
// map-register operation that is fenced going on with the joint voters of the newer map, and
// a new voter's step (fenced answers from a majority of the old voters, then one joint read)
// before its copy counts as made. The negative control (`ignoreMapFences`) must let the old
// epoch through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../../../src/core/bytes.ts';
import {
  initialMap,
  mapRegisterAcceptors,
  type ClusterMap,
  type MemberInfo,
} from '../../../src/core/cluster/cluster-map.ts';
import {
  addStandby,
  commitChange,
  planJoin,
  planReplace,
} from '../../../src/core/cluster/membership.ts';
import { DEFAULT_KEYSPACE } from '../../../src/core/keyspace.ts';
import { Prng } from '../../../src/core/prng.ts';
import { PaxosMessageType, type PaxosMessage } from '../../../src/core/paxos/messages.ts';
import {
  MAP_REGISTER_KEYSPACE_ID,
  RegisterHost,
  registerKeyOf,
  type HostOutput,
  type RegisterHostOptions,
} from '../../../src/core/paxos/register-host.ts';
import { MemoryRows } from './memory-rows.ts';

const PARTITIONS = 16;
const MAP_KEY = registerKeyOf(MAP_REGISTER_KEYSPACE_ID, utf8('map'));

function member(id: string): MemberInfo {
  return { id, peer: `${id}:1`, http: `${id}:2`, resp: `${id}:3` };
}

/** n1..n3 founded, n4 a standby that replaces n2: before, during and after the change. */
function replaceMaps(): { before: ClusterMap; during: ClusterMap; after: ClusterMap } {
  const founded = initialMap('c', PARTITIONS, ['n1', 'n2', 'n3'].map(member), [DEFAULT_KEYSPACE]);
  const standby = addStandby(founded, member('n4'));
  assert.ok(standby.ok);
  const during = planReplace(standby.map, 'n2', member('n4'));
  assert.ok(during.ok);
  assert.deepEqual(during.map.change!.nextVoters, ['n1', 'n3', 'n4']);
  const after = commitChange(during.map);
  assert.ok(after.ok);
  return { before: standby.map, during: during.map, after: after.map };
}

function hostOf(rows: MemoryRows, id: string, options: RegisterHostOptions = {}): RegisterHost {
  return new RegisterHost(id, 1, PARTITIONS, rows, new Prng(1), options);
}

function prepareOf(requestId: number): PaxosMessage {
  return [PaxosMessageType.prepare, requestId, MAP_KEY, requestId, 'n3'];
}

function typeOf(output: HostOutput): string | undefined {
  return output.sends[0]?.message[0];
}

test('an acceptor fences the map register at the change epoch when the change names next voters, refuses older epochs, keeps the fence across a restart, and raises it at the commit', () => {
  const { before, during, after } = replaceMaps();
  const rows = new MemoryRows();
  const host = hostOf(rows, 'n1');
  host.syncMap(null, before, 0);
  assert.equal(host.mapFenceEpoch, 0);
  assert.equal(typeOf(host.receive('n3', prepareOf(1), 0, before.epoch)), PaxosMessageType.promise);

  host.syncMap(before, during, 0);
  assert.equal(host.mapFenceEpoch, during.change!.epoch);
  const old = host.receive('n3', prepareOf(2), 0, during.epoch - 1);
  assert.deepEqual(old.sends[0]?.message, [PaxosMessageType.fenced, 2, during.change!.epoch]);
  assert.ok(old.sends[0]!.afterBatch > 0, 'the refusal waits for the fence to be durable');
  assert.equal(typeOf(host.receive('n3', prepareOf(3), 0, during.epoch)), PaxosMessageType.promise);
  rows.persistAll();

  const restarted = hostOf(rows, 'n1');
  assert.equal(restarted.mapFenceEpoch, during.change!.epoch, 'the fence is durable');
  assert.equal(
    typeOf(restarted.receive('n3', prepareOf(4), 0, during.epoch - 1)),
    PaxosMessageType.fenced,
  );
  restarted.syncMap(during, after, 0);
  assert.equal(restarted.mapFenceEpoch, after.epoch, 'the commit raises it to its own epoch');
  assert.equal(
    typeOf(restarted.receive('n3', [PaxosMessageType.read, 5, MAP_KEY], 0, during.epoch)),
    PaxosMessageType.fenced,
    'a proposer still on the change map is sent to fetch the commit',
  );

  // Negative control: an acceptor that ignores the map fence takes the old epoch.
  const careless = hostOf(new MemoryRows(), 'n1', { ignoreMapFences: true });
  careless.syncMap(before, during, 0);
  assert.equal(
    typeOf(careless.receive('n3', prepareOf(6), 0, during.epoch - 1)),
    PaxosMessageType.promise,
  );
});

test('a change that keeps the voters raises no map fence, as before', () => {
  const founded = initialMap('c', PARTITIONS, ['n1', 'n2', 'n3'].map(member), [DEFAULT_KEYSPACE]);
  const during = planJoin(founded, member('n4'));
  assert.ok(during.ok && during.map.change!.nextVoters === undefined);
  const host = hostOf(new MemoryRows(), 'n1');
  host.syncMap(founded, during.map, 0);
  assert.equal(host.mapFenceEpoch, 0);
  assert.equal(typeOf(host.receive('n3', prepareOf(1), 0, 1)), PaxosMessageType.promise);
});

test('a fenced map-register operation goes on with the joint voters of the newer map', () => {
  const { before, during } = replaceMaps();
  const host = hostOf(new MemoryRows(), 'n1', { proposer: { phaseTimeoutMs: 100 } });
  let current = before;
  host.setAcceptorsOf((keyspaceId) =>
    keyspaceId === MAP_REGISTER_KEYSPACE_ID ? mapRegisterAcceptors(current) : undefined,
  );
  const first = host.submit(
    1,
    MAP_REGISTER_KEYSPACE_ID,
    utf8('map'),
    { kind: 'get' },
    mapRegisterAcceptors(before),
    0,
  );
  assert.deepEqual(first.sends.map((send) => send.to).sort(), ['n1', 'n2', 'n3']);
  assert.ok(first.sends.every((send) => send.epoch === before.epoch));
  current = during;
  // Two old voters answer fenced: the attempt cannot reach a quorum of the old voters.
  for (const send of first.sends.filter((send) => send.to !== 'n1')) {
    host.receive(send.to, [PaxosMessageType.fenced, send.message[1], during.change!.epoch], 0);
  }
  const later: string[] = [];
  for (let nowMs = 10; nowMs <= 2_000; nowMs += 10) {
    for (const send of host.tick(nowMs).sends) {
      if (send.epoch === during.epoch) later.push(send.to);
    }
  }
  assert.deepEqual([...new Set(later)].sort(), ['n1', 'n2', 'n3', 'n4'], 'old and next voters');
});

test('a new voter reports its copy only after fenced answers from a majority of the old voters and a joint read of the map register', () => {
  const { during } = replaceMaps();
  const changeEpoch = during.change!.epoch;
  const host = hostOf(new MemoryRows(), 'n4');
  host.setAcceptorsOf((keyspaceId) =>
    keyspaceId === MAP_REGISTER_KEYSPACE_ID ? mapRegisterAcceptors(during) : undefined,
  );
  host.syncMap(null, during, 0);
  assert.deepEqual(host.registerCopies, { count: 1, done: 0 });
  const probes = host.tick(0).sends;
  assert.deepEqual(probes.map((send) => send.to).sort(), ['n1', 'n2', 'n3']);
  assert.ok(probes.every((send) => send.epoch === changeEpoch - 1 && send.message[0] === 'xe'));
  const probeTo = (id: string): number =>
    probes.find((send) => send.to === id)!.message[1] as number;
  // n1 fenced at the change: one of three. n2 fenced only at an older epoch, n3 not fenced.
  host.receive('n1', [PaxosMessageType.fenced, probeTo('n1'), changeEpoch], 1);
  host.receive('n2', [PaxosMessageType.fenced, probeTo('n2'), changeEpoch - 1], 1);
  host.receive('n3', [PaxosMessageType.readReply, probeTo('n3'), 0, '', null, 0], 1);
  assert.equal(host.tick(2).sends.length, 0, 'no read before a majority is fenced');
  assert.deepEqual(host.registerCopies, { count: 1, done: 0 });
  // The next round asks n2 and n3 again; n3 is fenced now.
  const again = host.tick(1_001).sends;
  assert.deepEqual(again.map((send) => send.to).sort(), ['n2', 'n3']);
  const retry = again.find((send) => send.to === 'n3')!.message[1] as number;
  host.receive('n3', [PaxosMessageType.fenced, retry, changeEpoch], 1_002);
  const reads = host.tick(1_003).sends;
  assert.deepEqual(reads.map((send) => send.to).sort(), ['n1', 'n2', 'n3', 'n4']);
  assert.ok(reads.every((send) => send.epoch === during.epoch && send.message[0] === 'xe'));
  // A majority of the old voters alone (n1, n2) does not end the read: n4 or n3 must answer.
  const answer = (id: string): void => {
    const requestId = reads.find((send) => send.to === id)!.message[1] as number;
    host.receive(id, [PaxosMessageType.readReply, requestId, 3, 'n1', utf8('m'), 2], 1_004);
  };
  answer('n1');
  answer('n2');
  assert.deepEqual(host.registerCopies, { count: 1, done: 0 });
  answer('n4');
  assert.deepEqual(host.registerCopies, { count: 1, done: 1 });

  // Negative control: without fences the step is skipped altogether.
  const careless = hostOf(new MemoryRows(), 'n4', { ignoreMapFences: true });
  careless.syncMap(null, during, 0);
  assert.deepEqual(careless.registerCopies, { count: 1, done: 1 });
  // An old voter has no such step.
  const old = hostOf(new MemoryRows(), 'n1');
  old.syncMap(null, during, 0);
  assert.deepEqual(old.registerCopies, { count: 0, done: 0 });
});
