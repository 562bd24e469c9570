// Replication under the simulator's other faults: skewed clocks, paused processes,
// partitions that heal, and long-tailed message delays. A failure prints its seed;
// CLUSTER_SEED=<n> replays one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterWorld } from '../../src/sim/cluster-world.ts';
import { formed, get, put, readOf, replicasOf, seedsFor } from './sim-helpers.ts';

test('a causally later write beats an earlier one whatever the clocks say', () => {
  for (const seed of seedsFor(3, 2000)) {
    const world = formed(new ClusterWorld({ seed, nodeCount: 3 }));
    const key = 'clocked';
    const [first, second] = replicasOf(world, key);
    // The first replica's clock runs an hour ahead, the second's an hour behind.
    world.skewClock(first!, 3_600_000);
    world.skewClock(second!, -3_600_000);
    world.runFor(50);
    assert.ok(world.call(first!, put(key, 'early')).ok, `seed ${seed}`);
    const seen = readOf(world.call(second!, get(key)));
    assert.equal(seen.value, 'early');
    // The first replica goes down: the second, two hours behind, coordinates the next write,
    // made with the context of the read. Its timestamp is older; its version is later.
    world.crash(first!);
    assert.ok(
      world.runUntil(() => world.node(second!).liveness(first!) === 'down', 10_000),
      `seed ${seed}: crash detected`,
    );
    assert.ok(world.call(second!, put(key, 'late', 2, seen.context)).ok, `seed ${seed}`);
    world.restart(first!);
    world.skewClock(first!, 3_600_000);
    assert.ok(
      world.runUntil(() => world.node(second!).liveness(first!) === 'alive', 10_000),
      `seed ${seed}: return noticed`,
    );
    for (const reader of world.ids) {
      assert.equal(readOf(world.call(reader, get(key, 'all'))).value, 'late', `seed ${seed}`);
    }
  }
});

test('a paused node loses nothing: writes go on without it, and it serves again on resume', () => {
  for (const seed of seedsFor(3, 2000)) {
    const world = formed(new ClusterWorld({ seed, nodeCount: 3 }));
    const paused = 'n2';
    world.pause(paused, 3_000);
    const acknowledged: string[] = [];
    for (let i = 0; i < 30; i++) {
      const via = i % 2 === 0 ? 'n1' : 'n3';
      if (world.call(via, put(`p${i}`, `v${i}`, 2)).ok) acknowledged.push(`p${i}`);
    }
    assert.ok(acknowledged.length >= 20, `seed ${seed}: writes go on (${acknowledged.length})`);
    world.runFor(3_000);
    for (const key of acknowledged) {
      const value = readOf(world.call(paused, get(key, 2))).value;
      assert.equal(value, `v${key.slice(1)}`, `seed ${seed}: ${key} through the resumed node`);
    }
  }
});

test('a partition heals and every write acknowledged on either side is readable everywhere', () => {
  for (const seed of seedsFor(3, 2000)) {
    const world = formed(new ClusterWorld({ seed, nodeCount: 5 }));
    world.partition([
      ['n1', 'n2', 'n3'],
      ['n4', 'n5'],
    ]);
    // Both sides see the other down, then take writes through sloppy quorums.
    assert.ok(
      world.runUntil(
        () =>
          world.node('n1').liveness('n4') === 'down' && world.node('n4').liveness('n1') === 'down',
        15_000,
      ),
      `seed ${seed}: the sides see each other down`,
    );
    const acknowledged = new Map<string, string>();
    for (let i = 0; i < 60; i++) {
      const via = world.ids[i % 5]!;
      const key = `side${i}`;
      if (world.call(via, put(key, `from-${via}`, 2)).ok) acknowledged.set(key, `from-${via}`);
    }
    assert.ok(
      acknowledged.size >= 30,
      `seed ${seed}: both sides stay writable (${acknowledged.size})`,
    );
    world.healAll();
    const settled = world.runUntil(
      () =>
        world.ids.every((id) =>
          world.ids.every((other) => world.node(id).liveness(other) === 'alive'),
        ) && world.ids.every((id) => world.node(id).clusterStatus().hintsTotal === 0),
      30_000,
    );
    assert.ok(settled, `seed ${seed}: every node alive everywhere and every hint handed back`);
    for (const [key, value] of acknowledged) {
      for (const reader of world.ids) {
        assert.equal(readOf(world.call(reader, get(key, 2))).value, value, `seed ${seed}: ${key}`);
      }
    }
  }
});

test('long-tailed delays make requests slow or unavailable, never wrong', () => {
  for (const seed of seedsFor(3, 2000)) {
    const world = formed(
      new ClusterWorld({ seed, nodeCount: 5, tailRate: 0.05, tailDelayMsMax: 800 }),
    );
    const lastAcked = new Map<string, number>();
    let failures = 0;
    for (let i = 0; i < 120; i++) {
      const key = `t${i % 6}`;
      const via = world.ids[(i * 7) % 5]!;
      if (i % 2 === 0) {
        const reply = world.call(via, put(key, String(i)));
        if (reply.ok) lastAcked.set(key, i);
        else failures++;
      } else {
        const reply = world.call(via, get(key));
        if (!reply.ok) {
          failures++;
          continue;
        }
        const value = readOf(reply).value;
        const acked = lastAcked.get(key);
        if (acked !== undefined) {
          assert.ok(
            value !== null && Number(value) >= acked,
            `seed ${seed}: ${key} read ${value} after ${acked} was acknowledged`,
          );
        }
      }
    }
    assert.ok(failures < 60, `seed ${seed}: most requests succeed (${failures} failed)`);
  }
});
