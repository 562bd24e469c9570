// Membership changes under a write load, in simulation: a fourth node joins as a standby,
// takes its share of the partitions (its copies streamed while writes go on), then leaves
// again. After each change: every acknowledged write is read back from every node, every
// key is stored on exactly its N replicas (the nodes that gave partitions away dropped
// them), and partitions are balanced. Seeds vary the delays; some drop messages, and one
// crashes the joiner halfway through its copies (it resumes from its saved cursors).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../../src/core/bytes.ts';
import type { ClientReply, ClientRequest } from '../../src/core/requests.ts';
import { ClusterWorld } from '../../src/sim/cluster-world.ts';
import { formed, get, put, seedsFor, show, valueOf } from './sim-helpers.ts';

const KEYS = 120;

interface Load {
  /**
   * What a read of each key may return: its last acknowledged value, and the values of
   * writes after it that failed (a failed write may still have taken effect).
   */
  readonly acked: Map<string, Set<string>>;
  stop: boolean;
  writes: number;
  failures: number;
}

/** Writes keys in turn through the nodes `via` names, one at a time, until stopped. */
function startLoad(world: ClusterWorld, via: () => string[]): Load {
  const load: Load = { acked: new Map(), stop: false, writes: 0, failures: 0 };
  let round = 0;
  const next = (): void => {
    if (load.stop) return;
    const key = `k${round % KEYS}`;
    const value = `v${round}`;
    const nodes = via();
    const node = nodes[round % nodes.length]!;
    round++;
    world.submit(node, put(key, value), (reply) => {
      if (reply.ok) {
        load.acked.set(key, new Set([value]));
      } else {
        load.acked.get(key)?.add(value);
        load.failures++;
      }
      load.writes++;
      world.at(world.nowMs + 2, next);
    });
  };
  next();
  return load;
}

function changeMembership(world: ClusterWorld, via: string, change: ClientRequest): ClientReply {
  return world.call(via, change, 20_000);
}

function membershipRequest(kind: 'join' | 'leave', id: string): ClientRequest {
  return { op: 'changeMembership', keyspace: '', change: { kind, id }, dryRun: false };
}

/** Runs until every node up has a map without a change, and stray copies are dropped. */
function settleChange(world: ClusterWorld, members: readonly string[]): void {
  const done = world.runUntil(
    () =>
      members.every((id) => {
        const map = world.node(id).clusterMap();
        return map !== null && map.change === undefined;
      }),
    120_000,
  );
  assert.ok(done, 'the change commits');
  // Stray copies go a few seconds after the commit, a bounded number of rows per tick.
  world.runFor(10_000);
}

function checkPlacement(world: ClusterWorld, members: readonly string[], load: Load): void {
  const map = world.node(members[0]!).clusterMap()!;
  for (const [key, values] of load.acked) {
    const replicas = world.replicasOf(0, utf8(key), 3);
    for (const id of members) {
      const stored = world.storedWinner(id, 0, utf8(key));
      if (replicas.includes(id)) {
        assert.ok(stored !== null, `${key} is stored on its replica ${id}`);
      } else {
        assert.equal(stored, null, `${key} is not stored on ${id}, not one of its replicas`);
      }
    }
    for (const id of members) {
      // Under message loss one read may miss its quorum: a few tries.
      let reply = world.call(id, get(key));
      for (let attempt = 1; attempt < 5 && !reply.ok; attempt++) reply = world.call(id, get(key));
      const read = valueOf(reply);
      assert.ok(read !== null && values.has(read), `${key} read through ${id}: ${read}`);
    }
  }
  const owned = new Map<string, number>();
  for (const owner of map.owners) owned.set(owner, (owned.get(owner) ?? 0) + 1);
  const share = map.partitionCount / owned.size;
  for (const [id, count] of owned) {
    assert.ok(Math.abs(count - share) < 1, `${id} owns ${count} of ${map.partitionCount}`);
  }
}

for (const seed of seedsFor(4, 1)) {
  test(`seed ${seed}: a node joins and leaves under writes; every acknowledged write is read back, every key on exactly its replicas`, () => {
    const lossy = seed % 2 === 0;
    const world = formed(
      new ClusterWorld({ seed, nodeCount: 3, lossRate: lossy ? 0.01 : 0, requestTimeoutMs: 800 }),
    );
    const founders = ['n1', 'n2', 'n3'];
    let writers = founders;
    const load = startLoad(world, () => writers);
    world.runFor(2_000);
    world.addNode('n4', 'n1');
    assert.ok(
      world.runUntil(
        () =>
          [...founders, 'n4'].every((id) =>
            world
              .node(id)
              .clusterMap()
              ?.members.some((member) => member.id === 'n4'),
          ),
        10_000,
      ),
      'the new node is added as a standby, and every node learns it',
    );
    const standby = world
      .node('n1')
      .clusterMap()!
      .members.find((member) => member.id === 'n4');
    assert.equal(standby?.role, 'standby');

    const joined = changeMembership(world, 'n2', membershipRequest('join', 'n4'));
    assert.ok(joined.ok && joined.op === 'changeMembership', show(joined));
    assert.ok(joined.plan !== null && joined.plan.totals.copies > 0, 'the plan lists copies');
    writers = [...founders, 'n4'];
    if (seed === 3) {
      // The joiner crashes while copying and comes back: its copies resume.
      world.runUntil(() => world.node('n4').clusterStatus().handoff.copiesDone > 2, 60_000);
      world.crash('n4');
      world.runFor(1_000);
      world.restart('n4');
    }
    const all = [...founders, 'n4'];
    settleChange(world, all);
    assert.ok(world.node('n1').clusterMap()!.owners.includes('n4'), 'n4 owns partitions');
    load.stop = true;
    world.runFor(2_000);
    checkPlacement(world, all, load);

    writers = founders;
    const restarted = startLoad(world, () => writers);
    for (const [key, value] of load.acked) restarted.acked.set(key, value);
    const left = changeMembership(world, 'n1', membershipRequest('leave', 'n4'));
    assert.ok(left.ok, show(left));
    settleChange(world, founders);
    assert.ok(
      !world
        .node('n1')
        .clusterMap()!
        .members.some((member) => member.id === 'n4'),
      'n4 is no longer a member',
    );
    restarted.stop = true;
    world.runFor(2_000);
    assert.ok(restarted.writes > 50, 'the load kept writing through the leave');
    checkPlacement(world, founders, restarted);
    const refused = world.call('n4', get('k1'));
    assert.ok(!refused.ok && /left the cluster/.test(refused.error.message), show(refused));
  });
}
