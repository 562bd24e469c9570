// Tombstone collection in eventual keyspaces: a replica is down while keys are deleted,
// some before the others notice (no hint: only anti-entropy can reach it) and some after (a
// fallback keeps the tombstone as a hint). Time passes far beyond the grace period and no
// tombstone is purged while the replica is down. Once it is back and has caught up, every
// tombstone is purged on every node (the rows are gone from storage), and no deleted value
// comes back, through any node or after further anti-entropy. A negative control purges on
// age alone and must see the down replica's old values come back; writes that race a purge
// round survive it. Runs with message loss. TOMBSTONE_SEEDS=<n> runs more seeds;
// CLUSTER_SEED=<n> replays one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromUtf8, utf8 } from '../../src/core/bytes.ts';
import type { ClientReply, ClientRequest } from '../../src/core/requests.ts';
import { ClusterWorld } from '../../src/sim/cluster-world.ts';
import { formed, get, put, replicasOf, seedsFor, show, storedValue } from './sim-helpers.ts';

const GRACE_MS = 10_000;
const SEED_COUNT = Number(process.env.TOMBSTONE_SEEDS ?? 3);
const NODES = ['n1', 'n2', 'n3', 'n4'];
const VICTIM = 'n3';

function del(key: string): ClientRequest {
  return {
    op: 'write',
    keyspace: 'default',
    items: [{ key: utf8(key), mutation: { kind: 'delete' } }],
  };
}

function world(seed: number, purgeOnGraceAlone = false): ClusterWorld {
  return formed(
    new ClusterWorld({
      seed,
      nodeCount: NODES.length,
      tombstoneGraceMs: GRACE_MS,
      tombstoneSweepIntervalMs: 2_000,
      tombstonePurgeOnGraceAlone: purgeOnGraceAlone,
    }),
  );
}

/** Keys of which `replica` is one of the three replicas. */
function keysReplicatedOn(world: ClusterWorld, replica: string, count: number): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) {
    if (replicasOf(world, `t${i}`).includes(replica)) keys.push(`t${i}`);
  }
  return keys;
}

/** Sends a request until it succeeds (messages are lost); fails the test after 20 tries. */
function callUntilOk(world: ClusterWorld, id: string, request: ClientRequest): ClientReply {
  let reply: ClientReply | null = null;
  for (let attempt = 0; attempt < 20; attempt++) {
    reply = world.call(id, request);
    if (reply.ok) return reply;
    world.runFor(200);
  }
  assert.fail(`no success from ${id}: ${show(reply!)}`);
}

function stat(
  world: ClusterWorld,
  id: string,
  name:
    | 'tombstones_held'
    | 'tombstones_purged_total'
    | 'tombstone_purge_rounds_refused_unreachable_total',
): number {
  return world.node(id).protocolStats()[name];
}

/** Writes the keys, waits until the victim holds them durably, crashes it and deletes them. */
function deleteWhileVictimDown(world: ClusterWorld, keys: readonly string[]): void {
  for (const key of keys) callUntilOk(world, 'n1', put(key, `old-${key}`));
  assert.ok(
    world.runUntil(
      () =>
        keys.every((key) => storedValue(world, VICTIM, key) === `old-${key}`) &&
        world.unpersistedBatches(VICTIM) === 0,
      30_000,
    ),
    'the victim holds every value before it goes down',
  );
  world.crash(VICTIM);
  // The first half is deleted before anyone notices the crash (no fallback, no hint), the
  // second once the victim is seen down (a fallback keeps the tombstone as a hint).
  const half = Math.floor(keys.length / 2);
  for (const key of keys.slice(0, half)) callUntilOk(world, 'n1', del(key));
  assert.ok(
    world.runUntil(() => world.node('n1').liveness(VICTIM) === 'down', 30_000),
    'the victim is seen down',
  );
  for (const key of keys.slice(half)) callUntilOk(world, 'n1', del(key));
}

/** Keys whose deleted value some node serves or some replica's storage holds. */
function resurrected(world: ClusterWorld, keys: readonly string[]): string[] {
  const back: string[] = [];
  for (const key of keys) {
    const stored = NODES.some((id) => world.isUp(id) && storedValue(world, id, key) !== null);
    const served = NODES.some((id) => {
      const reply = callUntilOk(world, id, get(key, 'all'));
      return reply.ok && reply.op === 'get' && reply.results[0]!.value !== null;
    });
    if (stored || served) back.push(key);
  }
  return back;
}

for (const seed of seedsFor(SEED_COUNT, 41)) {
  test(`seed ${seed}: tombstones are purged on every replica only after the replica that was down has them, and the deleted values never come back`, () => {
    const sim = world(seed);
    sim.setLossRate(0.02);
    const keys = keysReplicatedOn(sim, VICTIM, 16);
    deleteWhileVictimDown(sim, keys);

    // Far beyond the grace period: nothing is purged while a replica cannot answer.
    sim.runFor(4 * GRACE_MS);
    for (const id of NODES.filter((node) => node !== VICTIM)) {
      assert.equal(stat(sim, id, 'tombstones_purged_total'), 0, `${id} purged nothing`);
    }
    const held = NODES.filter((id) => id !== VICTIM).map((id) => stat(sim, id, 'tombstones_held'));
    assert.ok(
      held.every((count) => count > 0),
      `tombstones held: ${held.join(', ')}`,
    );
    const refused = NODES.filter((id) => id !== VICTIM).reduce(
      (sum, id) => sum + stat(sim, id, 'tombstone_purge_rounds_refused_unreachable_total'),
      0,
    );
    assert.ok(refused > 0, 'rounds were refused while a member was down');
    for (const key of keys) {
      const rows = replicasOf(sim, key).filter(
        (id) => id !== VICTIM && sim.holdsRow(id, 0, utf8(key)),
      );
      assert.equal(rows.length, 2, `${key}: both live replicas keep the tombstone`);
      assert.equal(
        storedValue(sim, VICTIM, key),
        `old-${key}`,
        `${key}: the victim missed the delete`,
      );
    }

    // Back: it catches up through hints and anti-entropy, then every row goes.
    sim.restart(VICTIM);
    const gone = sim.runUntil(
      () => keys.every((key) => NODES.every((id) => !sim.holdsRow(id, 0, utf8(key)))),
      120_000,
    );
    const left = keys.filter((key) => NODES.some((id) => sim.holdsRow(id, 0, utf8(key))));
    assert.ok(gone, `rows left for ${left.join(', ')} (replay: CLUSTER_SEED=${seed})`);
    const purged = NODES.reduce((sum, id) => sum + stat(sim, id, 'tombstones_purged_total'), 0);
    assert.ok(purged >= 2 * keys.length, `${purged} rows purged`);

    assert.deepEqual(resurrected(sim, keys), [], `replay: CLUSTER_SEED=${seed}`);
    // Further rounds of anti-entropy and read repair bring nothing back.
    sim.runFor(30_000);
    assert.deepEqual(resurrected(sim, keys), [], `replay: CLUSTER_SEED=${seed}`);
    for (const key of keys) {
      for (const id of NODES) assert.ok(!sim.holdsRow(id, 0, utf8(key)), `${key} on ${id}`);
    }
  });
}

test('negative control: tombstones purged on their age alone let the replica that was down bring the deleted values back', () => {
  const sim = world(seedsFor(1, 61)[0]!, true);
  const keys = keysReplicatedOn(sim, VICTIM, 16);
  deleteWhileVictimDown(sim, keys);
  sim.runFor(4 * GRACE_MS);
  sim.restart(VICTIM);
  sim.runFor(30_000);
  const back = resurrected(sim, keys);
  assert.ok(back.length > 0, 'without asking the replicas, an old value comes back');
});

test('writes that race a purge round survive it, and the other tombstones still go', () => {
  const seed = seedsFor(1, 71)[0]!;
  const sim = world(seed);
  const keys = keysReplicatedOn(sim, 'n1', 24);
  for (const key of keys) callUntilOk(sim, 'n1', put(key, `old-${key}`));
  for (const key of keys) callUntilOk(sim, 'n1', del(key));
  // When the first answer of a round reaches its coordinator, every other key it asks about
  // is written again there: after the members answered "same", before the purge goes out.
  const asked = new Map<number, string[]>();
  const rewritten = new Map<string, boolean>();
  sim.onDeliver((delivery) => {
    const inner = (delivery.message as readonly unknown[])[2] as readonly unknown[] | undefined;
    if (!Array.isArray(inner)) return;
    if (inner[0] === 'tq') {
      asked.set(
        inner[1] as number,
        (inner[4] as Uint8Array[]).map((key) => fromUtf8(key)),
      );
    }
    const round = asked.get(inner[1] as number);
    if (inner[0] !== 'ta' || rewritten.size > 0 || round === undefined) return;
    for (const key of round.filter((_, i) => i % 2 === 0)) {
      rewritten.set(key, false);
      sim.submit(delivery.to, put(key, `new-${key}`), (reply) => rewritten.set(key, reply.ok));
    }
  });
  sim.runFor(4 * GRACE_MS);
  assert.ok(rewritten.size > 0, 'a round ran');
  assert.ok(
    [...rewritten.values()].every((ok) => ok),
    'every racing write was acknowledged',
  );
  for (const key of keys) {
    for (const id of NODES) {
      const reply = callUntilOk(sim, id, get(key, 'all'));
      assert.ok(reply.ok && reply.op === 'get');
      const value = reply.results[0]!.value;
      const expected = rewritten.has(key) ? `new-${key}` : null;
      assert.equal(value === null ? null : fromUtf8(value), expected, `${key} via ${id}`);
    }
    const rows = NODES.filter((id) => sim.holdsRow(id, 0, utf8(key)));
    assert.equal(rows.length, rewritten.has(key) ? 3 : 0, `${key} rows on ${rows.join(', ')}`);
  }
});
