// What a membership change leaves behind, in scenarios the membership swarm found wrong:
// copies made to the receiver of an aborted change, partitions given away just before the
// next change or just before a restart, hints held for a member that is removed, and a
// member that left while cut off. Each ends with every node holding rows only of the
// partitions it replicates, and every key readable with its acknowledged value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../../src/core/bytes.ts';
import type { ClusterMap } from '../../src/core/cluster/cluster-map.ts';
import type { ClientRequest, MembershipRequest } from '../../src/core/requests.ts';
import { preferenceList } from '../../src/core/ring/preference-list.ts';
import { dataPrefix, dataPrefixEnd } from '../../src/core/store/layout.ts';
import { ClusterWorld, type ClusterWorldOptions } from '../../src/sim/cluster-world.ts';
import { formed, get, put, seedOr, show, storedValue, valueOf } from './sim-helpers.ts';

const KEYS = 80;

function change(request: MembershipRequest): ClientRequest {
  return { op: 'changeMembership', keyspace: '', change: request, dryRun: false };
}

/** Three founders and a standby n4, with KEYS keys written. */
function clusterWithStandby(options: Partial<ClusterWorldOptions> = {}): ClusterWorld {
  const world = formed(new ClusterWorld({ seed: seedOr(5), nodeCount: 3, ...options }));
  for (let i = 0; i < KEYS; i++) assert.ok(world.call('n1', put(`k${i}`, `v${i}`)).ok);
  world.addNode('n4', 'n1');
  assert.ok(
    world.runUntil(
      () =>
        ['n1', 'n2', 'n3', 'n4'].every(
          (id) =>
            world
              .node(id)
              .clusterMap()
              ?.members.some((member) => member.id === 'n4') === true,
        ),
      10_000,
    ),
    'n4 is added as a standby, and every node knows it',
  );
  return world;
}

function mapOf(world: ClusterWorld, id: string): ClusterMap {
  const map = world.node(id).clusterMap();
  assert.ok(map !== null, `${id} holds a map`);
  return map;
}

function noChange(world: ClusterWorld, ids: readonly string[]): boolean {
  return ids.every((id) => world.isUp(id) && world.node(id).clusterMap()?.change === undefined);
}

function commit(world: ClusterWorld, via: string, request: MembershipRequest, ids: string[]): void {
  const reply = world.call(via, change(request), 20_000);
  assert.ok(reply.ok, show(reply));
  assert.ok(
    world.runUntil(() => noChange(world, ids), 60_000),
    `${request.kind} ends`,
  );
}

/** Partitions of `default` a node holds rows of but does not replicate under `map`. */
function strayPartitions(world: ClusterWorld, id: string, map: ClusterMap): number[] {
  const rows = world
    .storage(id)
    .scan({ start: dataPrefix(0), end: dataPrefixEnd(0), limit: 100_000 });
  const stray = new Set<number>();
  for (const row of rows) {
    const partition = (row.key[5]! << 8) | row.key[6]!;
    if (!preferenceList(map.owners, partition, 3).includes(id)) stray.add(partition);
  }
  return [...stray];
}

function assertPlacedAndReadable(world: ClusterWorld, ids: readonly string[]): void {
  const map = mapOf(world, ids[0]!);
  for (const id of ids) {
    assert.deepEqual(strayPartitions(world, id, map), [], `${id} holds only what it replicates`);
  }
  for (let i = 0; i < KEYS; i++) {
    const key = `k${i}`;
    for (const replica of world.replicasOf(0, utf8(key), 3)) {
      assert.equal(storedValue(world, replica, key), `v${i}`, `${key} is stored on ${replica}`);
    }
    assert.equal(valueOf(world.call(ids[0]!, get(key))), `v${i}`);
  }
}

test('the copies made to a joiner whose join is aborted midway are dropped from it', () => {
  const world = clusterWithStandby();
  const reply = world.call('n2', change({ kind: 'join', id: 'n4' }), 20_000);
  assert.ok(reply.ok, show(reply));
  assert.ok(
    world.runUntil(() => world.node('n4').clusterStatus().handoff.copiesDone >= 3, 30_000),
    'n4 makes some of its copies',
  );
  const all = ['n1', 'n2', 'n3', 'n4'];
  commit(world, 'n1', { kind: 'abort' }, all);
  assert.ok(!mapOf(world, 'n1').owners.includes('n4'), 'the join was aborted');
  world.runFor(8_000);
  assert.deepEqual(strayPartitions(world, 'n4', mapOf(world, 'n1')), [], 'n4 holds nothing');
  assertPlacedAndReadable(world, all);
});

test('partitions given away by a change are dropped even when the next change starts within the drop delay', () => {
  const world = clusterWithStandby();
  world.addNode('n5', 'n1');
  const all = ['n1', 'n2', 'n3', 'n4', 'n5'];
  assert.ok(world.runUntil(() => all.every((id) => mapOf(world, id).members.length === 5), 10_000));
  commit(world, 'n1', { kind: 'join', id: 'n4' }, all);
  // At once: the first change's drop (5 s after its commit) has not run yet.
  commit(world, 'n1', { kind: 'join', id: 'n5' }, all);
  world.runFor(8_000);
  assertPlacedAndReadable(world, all);
});

test('a member that restarts between a commit and the drop still drops what it gave away', () => {
  const world = clusterWithStandby();
  const all = ['n1', 'n2', 'n3', 'n4'];
  const reply = world.call('n1', change({ kind: 'join', id: 'n4' }), 20_000);
  assert.ok(reply.ok, show(reply));
  assert.ok(
    world.runUntil(() => mapOf(world, 'n2').owners.includes('n4'), 60_000),
    'the join commits, and n2 learns it',
  );
  // The committed map is durable on n2 by now: it restarts with it.
  world.runFor(200);
  world.crash('n2');
  world.runFor(1_000);
  world.restart('n2');
  assert.ok(world.runUntil(() => noChange(world, all), 10_000));
  world.runFor(8_000);
  assertPlacedAndReadable(world, all);
});

test('hints held for a member that is removed reach the replicas of their keys (hinted handoff alone)', () => {
  const world = clusterWithStandby({ antiEntropy: false, readRepair: false });
  const all = ['n1', 'n2', 'n3', 'n4'];
  commit(world, 'n1', { kind: 'join', id: 'n4' }, all);
  world.runFor(8_000);
  world.crash('n4');
  assert.ok(
    world.runUntil(() => world.node('n1').liveness('n4') === 'down', 10_000),
    'n4 is seen down',
  );
  // Written while n4 is down: fallbacks hold hints for it.
  for (let i = 0; i < KEYS; i++) assert.ok(world.call('n1', put(`k${i}`, `v${i}`)).ok);
  const hints = (): number =>
    ['n1', 'n2', 'n3'].reduce((sum, id) => sum + world.node(id).clusterStatus().hintsTotal, 0);
  assert.ok(hints() > 0, 'fallbacks hold hints for n4');
  commit(world, 'n1', { kind: 'remove', id: 'n4' }, ['n1', 'n2', 'n3']);
  assert.ok(
    world.runUntil(() => hints() === 0, 10_000),
    `every hint is handed on (${hints()} left)`,
  );
  world.runFor(8_000);
  assertPlacedAndReadable(world, ['n1', 'n2', 'n3']);
});

test('a member that left while cut off learns it once it speaks again, and refuses clients', () => {
  const world = clusterWithStandby();
  const all = ['n1', 'n2', 'n3', 'n4'];
  commit(world, 'n1', { kind: 'join', id: 'n4' }, all);
  const reply = world.call('n1', change({ kind: 'leave', id: 'n4' }), 20_000);
  assert.ok(reply.ok, show(reply));
  // n4 is the source of last resort: the copies come from the others while it is cut off.
  world.isolate('n4');
  assert.ok(
    world.runUntil(() => noChange(world, ['n1', 'n2', 'n3']), 60_000),
    'the leave commits',
  );
  // The map that drops n4, sent to it at the commit, is lost on the cut.
  world.runFor(2_000);
  assert.ok(
    mapOf(world, 'n4').members.some((member) => member.id === 'n4'),
    'n4 missed it',
  );
  world.healAll();
  world.runFor(3_000);
  const refused = world.call('n4', get('k1'));
  assert.ok(!refused.ok && /left the cluster/.test(refused.error.message), show(refused));
  world.runFor(8_000);
  assertPlacedAndReadable(world, ['n1', 'n2', 'n3']);
});
