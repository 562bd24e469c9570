// Map changes are compare-and-sets on the map's CASPaxos register among the voters: across
// a partition only the side with a majority of voters changes the map; changes proposed at
// once through different nodes are all made, one epoch each; and every node ends with the
// same map. CLUSTER_SEED=<n> replays one seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { votersOf } from '../../src/core/cluster/cluster-map.ts';
import type { ClientReply, ClientRequest } from '../../src/core/requests.ts';
import { ClusterWorld } from '../../src/sim/cluster-world.ts';
import { seedsFor } from './sim-helpers.ts';

function create(name: string): ClientRequest {
  return {
    op: 'createKeyspace',
    keyspace: name,
    spec: { n: 3, r: 2, w: 2, consistency: 'eventual', conflicts: 'lww', durability: 'sync' },
  };
}

function mapsAgree(world: ClusterWorld, ids: readonly string[]): boolean {
  const texts = ids.map((id) => JSON.stringify(world.node(id).clusterMap()));
  return texts.every((text) => text === texts[0]);
}

test('only the side of a partition with a majority of voters changes the map', () => {
  for (const seed of seedsFor(5, 1)) {
    const world = new ClusterWorld({ seed, nodeCount: 5 });
    assert.ok(world.waitFormed(), `seed ${seed}: formed`);
    assert.deepEqual(votersOf(world.node('n1').clusterMap()!), ['n1', 'n2', 'n3', 'n4', 'n5']);
    world.partition([
      ['n1', 'n2'],
      ['n3', 'n4', 'n5'],
    ]);
    const minority = world.call('n1', create('left'));
    assert.equal(minority.ok, false, `seed ${seed}: the minority side made a change`);
    if (!minority.ok) assert.equal(minority.error.code, 'RINGKV_UNAVAILABLE');
    const majority = world.call('n4', create('right'));
    assert.ok(majority.ok, `seed ${seed}: ${JSON.stringify(majority)}`);
    world.healAll();
    world.runUntil(() => mapsAgree(world, world.ids), 10_000);
    const map = world.node('n1').clusterMap()!;
    assert.ok(mapsAgree(world, world.ids), `seed ${seed}: maps differ after healing`);
    const names = map.keyspaces.map((keyspace) => keyspace.name);
    assert.ok(names.includes('right'), `seed ${seed}: ${names.join(',')}`);
    assert.ok(!names.includes('left'), `seed ${seed}: the refused change is in the map`);
    assert.equal(map.epoch, 2, `seed ${seed}: one change, one epoch`);
  }
});

test('changes proposed at once through different nodes are all made, with an epoch each', () => {
  for (const seed of seedsFor(10, 100)) {
    const world = new ClusterWorld({ seed, nodeCount: 3, lossRate: 0.02, duplicateRate: 0.05 });
    assert.ok(world.waitFormed(), `seed ${seed}: formed`);
    const replies = new Map<string, ClientReply>();
    for (const [id, name] of [
      ['n1', 'a'],
      ['n2', 'b'],
      ['n3', 'c'],
    ] as const) {
      world.submit(id, create(name), (reply) => replies.set(name, reply));
    }
    world.runUntil(() => replies.size === 3, 10_000);
    // A change overtaken three times fails; asked again, it is made. One whose write may
    // have landed says so, and if it did, asking again finds the keyspace there.
    for (const [name, reply] of replies) {
      if (!reply.ok) {
        assert.equal(reply.error.code, 'RINGKV_UNAVAILABLE', `seed ${seed}: ${name}`);
        const again = world.call('n1', create(name));
        const landed = !again.ok && again.error.code === 'RINGKV_KEYSPACE_EXISTS';
        assert.ok(
          again.ok || (landed && reply.error.message.includes('may or may not have happened')),
          `seed ${seed}: ${name} again: ${JSON.stringify(again)}`,
        );
      }
    }
    world.runUntil(() => mapsAgree(world, world.ids), 10_000);
    assert.ok(mapsAgree(world, world.ids), `seed ${seed}: maps differ`);
    const map = world.node('n2').clusterMap()!;
    const names = map.keyspaces.map((keyspace) => keyspace.name).sort();
    assert.deepEqual(names, ['a', 'b', 'c', 'default'], `seed ${seed}`);
    assert.equal(map.epoch, 4, `seed ${seed}: three changes, three epochs`);
    const again = world.call('n3', create('a'));
    assert.equal(again.ok ? 'ok' : again.error.code, 'RINGKV_KEYSPACE_EXISTS', `seed ${seed}`);
  }
});
