// The purge round in isolation: three members' purgers over in-memory stores, wired by a
// loopback (harness.ts). Each test changes one thing about what the members hold, the
// network or the gate, and checks which rows go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../../../src/core/bytes.ts';
import type { StoredRecord } from '../../../src/core/store/record.ts';
import { DELETED_AT_MS, oldValue, PurgeCluster, tombstone } from './harness.ts';

const GRACE_MS = 10_000;
const PAST_GRACE_MS = DELETED_AT_MS + GRACE_MS;

/** Members a, b, c holding `keys` as the same tombstone. */
function cluster(keys: readonly string[], settings = {}): PurgeCluster {
  const world = new PurgeCluster(['a', 'b', 'c'], settings);
  for (const member of world.members) for (const key of keys) member.store.set(key, tombstone());
  return world;
}

function rowsOf(world: PurgeCluster, key: string): string[] {
  return world.members.filter((member) => member.store.get(key) !== undefined).map((m) => m.id);
}

test('a tombstone every member holds is purged on every member once its grace has passed, not before', () => {
  const world = cluster(['k1', 'k2']);
  world.tick('a', PAST_GRACE_MS - 1);
  assert.deepEqual(rowsOf(world, 'k1'), ['a', 'b', 'c'], 'kept within the grace period');
  assert.equal(world.member('a').purger.stats().roundsStarted, 0, 'no round within the grace');
  assert.equal(world.member('a').purger.stats().tombstonesHeld, 2);
  world.tick('a', PAST_GRACE_MS + 2_000);
  for (const key of ['k1', 'k2']) assert.deepEqual(rowsOf(world, key), [], key);
  for (const member of world.members) {
    assert.equal(member.purger.stats().tombstonesPurged, 2, member.id);
  }
  assert.equal(world.member('a').purger.stats().tombstonesHeld, 0);
});

test('a member that still holds the deleted value keeps the key on every member until it has the tombstone', () => {
  const world = cluster(['k1', 'k2']);
  world.member('c').store.set('k1', oldValue());
  world.tick('a', PAST_GRACE_MS);
  assert.deepEqual(rowsOf(world, 'k1'), ['a', 'b', 'c'], 'k1 kept');
  assert.deepEqual(rowsOf(world, 'k2'), [], 'k2 purged');
  assert.equal(world.member('a').purger.stats().keysKeptDiffering, 1);
  // Anti-entropy brings it the tombstone; the next pass purges the key.
  world.member('c').store.set('k1', tombstone());
  // The first tick ends the pass; the next pass starts after its pause.
  world.tick('a', PAST_GRACE_MS + 5_000);
  world.tick('a', PAST_GRACE_MS + 6_000);
  assert.deepEqual(rowsOf(world, 'k1'), []);
});

test('a member that holds nothing for the key lets it go, and is sent no purge', () => {
  const world = cluster(['k1']);
  world.member('b').store.set('k1', undefined);
  const purgesTo: string[] = [];
  world.deliver = (send) => {
    if (send.message[0] === 'tp') purgesTo.push(send.to);
    return true;
  };
  world.tick('a', PAST_GRACE_MS);
  assert.deepEqual(rowsOf(world, 'k1'), []);
  assert.deepEqual(purgesTo, ['c']);
});

test('a member that holds a hint for the key keeps it: the hint may carry an older version to a replica', () => {
  const world = cluster(['k1', 'k2']);
  world.member('b').store.hints.add(String.fromCharCode(...utf8('k1')));
  world.tick('a', PAST_GRACE_MS);
  assert.deepEqual(rowsOf(world, 'k1'), ['a', 'b', 'c']);
  assert.deepEqual(rowsOf(world, 'k2'), []);
  assert.equal(world.member('a').purger.stats().keysKeptHinted, 1);
});

test('no round starts while the gate refuses (a member down, a membership change), and it runs once the gate opens', () => {
  const world = cluster(['k1']);
  let messages = 0;
  world.deliver = () => {
    messages++;
    return true;
  };
  world.refusal = 'unreachable';
  world.tick('a', PAST_GRACE_MS);
  world.refusal = 'change';
  world.tick('a', PAST_GRACE_MS + 1_000);
  const stats = world.member('a').purger.stats();
  assert.equal(messages, 0, 'nobody is asked');
  assert.equal(stats.roundsRefusedUnreachable, 1);
  assert.equal(stats.roundsRefusedChange, 1);
  assert.deepEqual(rowsOf(world, 'k1'), ['a', 'b', 'c']);
  world.refusal = null;
  world.tick('a', PAST_GRACE_MS + 2_000);
  assert.deepEqual(rowsOf(world, 'k1'), []);
});

test('a round whose answers do not all come purges nothing, times out, and its keys are asked again', () => {
  const world = cluster(['k1']);
  world.deliver = (send) => !(send.message[0] === 'ta' && send.to === 'a');
  world.tick('a', PAST_GRACE_MS);
  world.tick('a', PAST_GRACE_MS + 4_999);
  assert.deepEqual(
    rowsOf(world, 'k1'),
    ['a', 'b', 'c'],
    'nothing purged while answers are missing',
  );
  world.tick('a', PAST_GRACE_MS + 5_000);
  assert.equal(world.member('a').purger.stats().roundsRefusedTimeout, 1);
  world.deliver = () => true;
  world.tick('a', PAST_GRACE_MS + 5_500);
  assert.deepEqual(rowsOf(world, 'k1'), []);
});

test('a write that reaches a member after its answer and before the purge is kept', () => {
  const world = cluster(['k1']);
  const newer: StoredRecord = {
    context: [
      ['a', 2],
      ['b', 1],
    ],
    siblings: [
      {
        dot: { node: 'b', counter: 1 },
        timestamp: [PAST_GRACE_MS, 0],
        value: utf8('new'),
        expiresAtMs: 0,
      },
    ],
  };
  world.beforePurge = (member) => {
    if (member.id === 'b') member.store.set('k1', newer);
  };
  world.tick('a', PAST_GRACE_MS);
  assert.deepEqual(rowsOf(world, 'k1'), ['b']);
  assert.equal(world.member('b').store.get('k1'), newer);
});

test('rounds name at most keysPerRoundMax keys, and purges keep to their rate', () => {
  const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);
  const world = cluster(keys, { keysPerRoundMax: 4, purgesPerSecond: 4 });
  let largest = 0;
  world.deliver = (send) => {
    if (send.message[0] === 'tq') largest = Math.max(largest, send.message[4].length);
    return true;
  };
  for (let i = 0; i < 5; i++) world.tick('a', PAST_GRACE_MS);
  assert.equal(largest, 4);
  assert.equal(world.member('a').store.purges, 4, 'one burst at one instant');
  for (let ms = 0; ms <= 3_000; ms += 100) world.tick('a', PAST_GRACE_MS + ms);
  assert.equal(world.member('a').store.purges, 10);
  assert.ok(keys.every((key) => rowsOf(world, key).length === 0));
});

test('a replica that is not the first waits twice the grace period', () => {
  const world = cluster(['k1']);
  world.position = 1;
  world.tick('a', PAST_GRACE_MS + GRACE_MS - 1);
  assert.deepEqual(rowsOf(world, 'k1'), ['a', 'b', 'c']);
  world.tick('a', PAST_GRACE_MS + GRACE_MS + 1_000);
  assert.deepEqual(rowsOf(world, 'k1'), []);
});

test('negative control: purging on age alone removes the tombstones while a member still holds the deleted value', () => {
  const world = cluster(['k1'], { purgeOnGraceAlone: true });
  world.member('c').store.set('k1', oldValue());
  world.refusal = 'unreachable';
  world.tick('a', PAST_GRACE_MS);
  assert.deepEqual(rowsOf(world, 'k1'), ['c']);
  assert.equal(world.member('c').store.get('k1')!.siblings[0]!.value !== null, true);
});
