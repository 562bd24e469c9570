// The handoff host's part for chain keyspaces: it lists the chains a receiver joins in the
// change in progress (one per partition, whatever the number of chain keyspaces), says its
// copies are made only once the node has reported every one of them joined (and takes that
// back when one is not any more), and shows the count in its status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialMap, withKeyspace } from '../../../src/core/cluster/cluster-map.ts';
import { addStandby, chainReplicas, planJoin } from '../../../src/core/cluster/membership.ts';
import { HandoffHost } from '../../../src/core/handoff/handoff-host.ts';
import { DEFAULT_KEYSPACE } from '../../../src/core/keyspace.ts';
import { EMPTY_STORE, mapOf, member } from './host-fixtures.ts';

const { id: _id, ...DEFAULT_SPEC } = DEFAULT_KEYSPACE;

/** Three members with two chain keyspaces of n 2 (and no eventual one); n4 joins. */
function joinPlanned() {
  let map = initialMap('c', 16, [member(1), member(2), member(3)]);
  for (const name of ['first', 'second']) {
    map = withKeyspace(map, { ...DEFAULT_SPEC, name, n: 2, r: 1, w: 1, consistency: 'chain' });
  }
  map = { ...map, keyspaces: map.keyspaces.filter((k) => k.consistency === 'chain') };
  return mapOf(planJoin(mapOf(addStandby(map, member(4))), member(4)));
}

test('a receiver of chain partitions has made its copies only once it has joined every one of their chains', () => {
  const planned = joinPlanned();
  const keyspaces = new Map(planned.keyspaces.map((keyspace) => [keyspace.id, keyspace]));
  const host = new HandoffHost('n4', EMPTY_STORE, { startDelayMs: 0 });
  host.sync(planned, (id) => keyspaces.get(id), 0);
  const expected = [...Array(16).keys()].filter(
    (partition) =>
      chainReplicas(planned, planned.change!.nextOwners, partition).includes('n4') &&
      !chainReplicas(planned, planned.owners, partition).includes('n4'),
  );
  assert.ok(expected.length > 0, 'the joiner takes some chains');
  assert.deepEqual(
    host.chainPartitions().sort((a, b) => a - b),
    expected,
  );
  assert.equal(host.copiesMade, false, 'nothing joined yet');
  assert.deepEqual(host.status(0).chainJoins, { partitions: expected.length, joined: 0 });
  for (const partition of expected) host.noteChainJoined(partition, true);
  assert.equal(host.copiesMade, true);
  assert.deepEqual(host.status(0).chainJoins, {
    partitions: expected.length,
    joined: expected.length,
  });
  // A member removed from one of its chains (it went down) has not made its copies any more.
  host.noteChainJoined(expected[0]!, false);
  assert.equal(host.copiesMade, false);
  assert.deepEqual(host.status(0).transfers, [], 'no byte copies for chain keyspaces');
});

test('a node that joins no chain in the change lists none, and shows no chain progress', () => {
  const planned = joinPlanned();
  const keyspaces = new Map(planned.keyspaces.map((keyspace) => [keyspace.id, keyspace]));
  const host = new HandoffHost('n1', EMPTY_STORE, { startDelayMs: 0 });
  host.sync(planned, (id) => keyspaces.get(id), 0);
  assert.deepEqual(host.chainPartitions(), []);
  assert.equal(host.copiesMade, false, 'a node that receives nothing reports nothing');
  assert.equal(host.status(0).chainJoins, undefined);
  assert.throws(() => host.noteChainJoined(0, true), /is a chain this node joins/);
});
