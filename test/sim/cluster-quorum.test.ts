// Dynamo replication in simulation: the real core of every node, a seeded network, crashes
// and restarts (src/sim/cluster-world.ts). Each test names the claim it proves; a failure
// prints the seed, and CLUSTER_SEED=<n> replays one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromUtf8, utf8 } from '../../src/core/bytes.ts';
import { DEFAULT_KEYSPACE, type Keyspace } from '../../src/core/keyspace.ts';
import { winningSibling } from '../../src/core/kv/siblings.ts';
import type { ClientRequest, QuorumSpec } from '../../src/core/requests.ts';
import { partitionOf } from '../../src/core/ring/partition.ts';
import { dataKey } from '../../src/core/store/layout.ts';
import { decodeContext, decodeRecord } from '../../src/core/store/record.ts';
import { descends } from '../../src/core/versions/version-vector.ts';
import { ClusterWorld } from '../../src/sim/cluster-world.ts';
import { Prng } from '../../src/core/prng.ts';
import {
  formed,
  get,
  put,
  replicasOf,
  seedOr,
  seedsFor,
  show,
  storedValue,
  valueOf,
} from './sim-helpers.ts';

test('a cluster forms from its founders and every node holds the same map', () => {
  for (const seed of seedsFor(5, 1000)) {
    const world = formed(new ClusterWorld({ seed, nodeCount: 5 }));
    const maps = world.ids.map((id) => JSON.stringify(world.node(id).clusterMap()));
    assert.equal(new Set(maps).size, 1, `seed ${seed}: one map`);
    const owners = world.node('n1').clusterMap()!.owners;
    assert.deepEqual(new Set(owners), new Set(world.ids), `seed ${seed}: every node owns some`);
  }
});

test('any node serves any key: a write through one node is read through every other', () => {
  for (const seed of seedsFor(3, 1000)) {
    const world = formed(new ClusterWorld({ seed, nodeCount: 5 }));
    for (let i = 0; i < 40; i++) {
      const writer = world.ids[i % 5]!;
      const reply = world.call(writer, put(`key${i}`, `value${i}`));
      assert.ok(reply.ok, `seed ${seed}: write ${i} acknowledged: ${show(reply)}`);
    }
    for (let i = 0; i < 40; i++) {
      for (const reader of world.ids) {
        assert.equal(valueOf(world.call(reader, get(`key${i}`))), `value${i}`, `seed ${seed}`);
      }
    }
    // Each acknowledged write is on W = 2 replicas at least, and on no node outside them.
    for (let i = 0; i < 40; i++) {
      const replicas = replicasOf(world, `key${i}`);
      const holders = world.ids.filter((id) => storedValue(world, id, `key${i}`) === `value${i}`);
      assert.ok(holders.length >= 2, `seed ${seed}: key${i} on ${holders.join(',')}`);
      for (const holder of holders) assert.ok(replicas.includes(holder), `seed ${seed}: placement`);
    }
  }
});

test('an acknowledged W=2 write survives the crash of a replica; hinted handoff restores it', () => {
  for (const seed of seedsFor(4, 1000)) {
    const world = formed(new ClusterWorld({ seed, nodeCount: 5 }));
    const victim = 'n3';
    const acknowledged = new Map<string, string>();
    let attempts = 0;
    const writers = world.ids.filter((id) => id !== victim);
    world.at(world.nowMs + 300, () => world.crash(victim));
    // Writes go on through the crash, its detection and after: each waits for its reply.
    while (acknowledged.size < 120 && attempts < 400) {
      const key = `k${attempts}`;
      const reply = world.call(writers[attempts % writers.length]!, put(key, `v${attempts}`, 2));
      if (reply.ok) acknowledged.set(key, `v${attempts}`);
      attempts++;
    }
    assert.equal(acknowledged.size, 120, `seed ${seed}: writes keep succeeding`);
    assert.ok(!world.isUp(victim));
    const hintsHeld = writers.reduce(
      (sum, id) => sum + world.node(id).clusterStatus().hintsTotal,
      0,
    );
    assert.ok(hintsHeld > 0, `seed ${seed}: fallbacks hold hints for ${victim}`);
    for (const [key, value] of acknowledged) {
      for (const reader of writers) {
        assert.equal(valueOf(world.call(reader, get(key, 2))), value, `seed ${seed}: ${key}`);
      }
    }
    world.restart(victim);
    const delivered = world.runUntil(
      () => writers.every((id) => world.node(id).clusterStatus().hintsTotal === 0),
      20_000,
    );
    assert.ok(delivered, `seed ${seed}: every hint handed back`);
    // The victim's own storage now holds every acknowledged write it is a replica of.
    let checked = 0;
    for (const [key, value] of acknowledged) {
      if (!replicasOf(world, key).includes(victim)) continue;
      assert.equal(storedValue(world, victim, key), value, `seed ${seed}: ${key} on ${victim}`);
      checked++;
    }
    assert.ok(checked > 10, `seed ${seed}: the victim replicates some keys (${checked})`);
  }
});

test('with two of three replicas down, a sloppy quorum still takes W=2 writes on fallbacks', () => {
  for (const seed of seedsFor(3, 1000)) {
    const world = formed(new ClusterWorld({ seed, nodeCount: 5 }));
    const key = 'sloppy';
    const [first, second, third] = replicasOf(world, key);
    world.crash(first!);
    world.crash(second!);
    const detected = world.runUntil(
      () =>
        world.node(third!).liveness(first!) === 'down' &&
        world.node(third!).liveness(second!) === 'down',
      10_000,
    );
    assert.ok(detected, `seed ${seed}: the crashes are detected`);
    const reply = world.call(third!, put(key, 'kept', 2));
    assert.ok(reply.ok, `seed ${seed}: ${show(reply)}`);
    assert.equal(valueOf(world.call(third!, get(key, 2))), 'kept');
    const fallbacks = world.ids.filter((id) => ![first, second, third].includes(id));
    const hints = fallbacks.reduce((sum, id) => sum + world.node(id).clusterStatus().hintsTotal, 0);
    assert.ok(hints >= 1, `seed ${seed}: a fallback holds the hint`);
    // W = 3 cannot be met by the one replica left plus fallbacks... it can: a sloppy quorum
    // counts fallbacks. What cannot succeed is R = all on the strict replicas being down:
    // the coordinator still answers, from the targets it has.
    world.restart(first!);
    world.restart(second!);
    const healed = world.runUntil(
      () =>
        storedValue(world, first!, key) === 'kept' && storedValue(world, second!, key) === 'kept',
      20_000,
    );
    assert.ok(healed, `seed ${seed}: hinted handoff reaches both returning replicas`);
  }
});

test('read repair brings a replica that missed a write up to date', () => {
  for (const seed of seedsFor(4, 1000)) {
    const world = formed(new ClusterWorld({ seed, nodeCount: 3 }));
    const key = 'repair-me';
    const [coordinator, , last] = replicasOf(world, key);
    // The coordinator's messages to the last replica are lost while the write happens:
    // W = 2 is met without it.
    world.cut(coordinator!, last!);
    assert.ok(world.call(coordinator!, put(key, 'fresh', 2)).ok);
    world.healAll();
    assert.equal(storedValue(world, last!, key), null, `seed ${seed}: the replica missed it`);
    assert.equal(valueOf(world.call(last!, get(key, 'all'))), 'fresh');
    world.runFor(100);
    assert.equal(storedValue(world, last!, key), 'fresh', `seed ${seed}: repaired`);
  }
});

test('a write that cannot reach W replicas fails as unavailable and says how far it got', () => {
  const world = formed(new ClusterWorld({ seed: seedOr(7), nodeCount: 3 }));
  const key = 'lonely';
  const [coordinator, ...others] = replicasOf(world, key);
  for (const other of others) world.cut(coordinator!, other);
  const reply = world.call(coordinator!, put(key, 'x', 'all'));
  assert.ok(!reply.ok);
  assert.equal(reply.error.code, 'RINGKV_UNAVAILABLE');
  // A plain SET goes out at once, conditionally: cut off, only the coordinator's copy has it.
  assert.match(reply.error.message, /reached 1 of the 3 replicas needed; it may still become/);
  // An INCR reads R replicas before it writes: cut off, it gets no further than that.
  const increment = world.call(coordinator!, {
    op: 'write',
    keyspace: 'default',
    items: [{ key: utf8('counter'), mutation: { kind: 'incrBy', delta: 1n } }],
  });
  assert.ok(!increment.ok);
  assert.match(
    increment.error.message,
    /reads 2 replicas first and 1 answered; nothing was written/,
  );
  const invalid = world.call(coordinator!, put(key, 'x', 4));
  assert.ok(!invalid.ok);
  assert.equal(invalid.error.code, 'RINGKV_INVALID_ARGUMENT');
});

test('concurrent writes under the siblings policy are all kept and read back from any node', () => {
  const siblings: Keyspace = { ...DEFAULT_KEYSPACE, id: 1, name: 'carts', conflicts: 'siblings' };
  const world = formed(
    new ClusterWorld({
      seed: seedOr(11),
      nodeCount: 3,
      keyspaces: [DEFAULT_KEYSPACE, siblings],
    }),
  );
  const key = utf8('cart');
  const start: ClientRequest = { ...put('cart', 'empty'), keyspace: 'carts' };
  assert.ok(world.call('n1', start).ok);
  const first = world.call('n1', get('cart', undefined, 'carts'));
  assert.ok(first.ok && first.op === 'get');
  const context = first.results[0]!.context;
  for (const [node, item] of [
    ['n2', 'apple'],
    ['n3', 'pear'],
  ] as const) {
    const reply = world.call(node, {
      op: 'write',
      keyspace: 'carts',
      items: [
        {
          key,
          context,
          mutation: {
            kind: 'set',
            value: utf8(item),
            condition: 'always',
            expiry: { kind: 'none' },
          },
        },
      ],
    });
    assert.ok(reply.ok, show(reply));
  }
  for (const reader of world.ids) {
    const read = world.call(reader, get('cart', 'all', 'carts'));
    assert.ok(read.ok && read.op === 'get');
    const values = read.results[0]!.siblings.map((sibling) => fromUtf8(sibling.value)).sort();
    assert.deepEqual(values, ['apple', 'pear'], `read through ${reader}`);
  }
});

test('the whole-cluster listing returns every live key exactly once, page by page', () => {
  const world = formed(new ClusterWorld({ seed: seedOr(21), nodeCount: 4 }));
  const written = new Set<string>();
  for (let i = 0; i < 150; i++) {
    assert.ok(world.call(world.ids[i % 4]!, put(`item:${i}`, 'x')).ok);
    written.add(`item:${i}`);
  }
  assert.ok(
    world.call('n2', {
      op: 'write',
      keyspace: 'default',
      items: [{ key: utf8('item:7'), mutation: { kind: 'delete' } }],
    }).ok,
  );
  written.delete('item:7');
  const listed: string[] = [];
  let cursor: Uint8Array | null = null;
  let pages = 0;
  do {
    const reply = world.call('n3', {
      op: 'scan',
      keyspace: 'default',
      cursor,
      count: 17,
      match: null,
      prefix: null,
    });
    assert.ok(reply.ok && reply.op === 'scan', show(reply));
    listed.push(...reply.keys.map(fromUtf8));
    cursor = reply.cursor;
    pages++;
  } while (cursor !== null && pages < 1000);
  assert.equal(listed.length, new Set(listed).size, 'no key twice');
  assert.deepEqual(new Set(listed), written);
  const count = world.call('n4', { op: 'count', keyspace: 'default' });
  assert.ok(count.ok && count.op === 'count');
  assert.equal(count.count, written.size);
});

test('one seed gives the same replies twice', () => {
  const run = (seed: number): string => {
    const world = formed(new ClusterWorld({ seed, nodeCount: 4, lossRate: 0.02 }));
    const replies: string[] = [];
    for (let i = 0; i < 30; i++) {
      world.submit(world.ids[i % 4]!, put(`d${i % 7}`, `v${i}`), (reply) =>
        replies.push(`${world.nowMs} ${show(reply)}`),
      );
      world.runFor(3);
    }
    world.runFor(3000);
    return replies.join('\n');
  };
  assert.equal(run(5), run(5));
  assert.notEqual(run(5), run(6));
});

test('a keyspace with n: all keeps every key on every member', () => {
  const everywhere: Keyspace = { ...DEFAULT_KEYSPACE, id: 1, name: 'config', n: 'all', r: 1, w: 4 };
  const world = formed(
    new ClusterWorld({
      seed: seedOr(31),
      nodeCount: 4,
      keyspaces: [DEFAULT_KEYSPACE, everywhere],
    }),
  );
  for (let i = 0; i < 20; i++) {
    const reply = world.call(world.ids[i % 4]!, {
      ...put(`setting${i}`, `on${i}`),
      keyspace: 'config',
    });
    assert.ok(reply.ok, show(reply));
  }
  const map = world.node('n1').clusterMap()!;
  for (let i = 0; i < 20; i++) {
    const key = utf8(`setting${i}`);
    const storageKey = dataKey(1, partitionOf(1, key, map.partitionCount), key);
    for (const id of world.ids) {
      const bytes = world.storage(id).get(storageKey);
      assert.ok(bytes !== undefined, `setting${i} on ${id}`);
      assert.equal(
        fromUtf8(winningSibling(decodeRecord(bytes), world.nowMs, 'lww')!.value!),
        `on${i}`,
      );
    }
  }
});

test('after a coordinator returns, INCR and DEL build on the writes acknowledged without it', () => {
  for (const seed of seedsFor(3, 1000)) {
    const world = formed(new ClusterWorld({ seed, nodeCount: 3 }));
    const key = 'counter';
    const [first, second] = replicasOf(world, key);
    const incr: ClientRequest = {
      op: 'write',
      keyspace: 'default',
      items: [{ key: utf8(key), mutation: { kind: 'incrBy', delta: 1n } }],
    };
    world.crash(first!);
    assert.ok(
      world.runUntil(() => world.node(second!).liveness(first!) === 'down', 10_000),
      `seed ${seed}: crash detected`,
    );
    for (let i = 0; i < 5; i++) assert.ok(world.call(second!, incr).ok, `seed ${seed}: incr ${i}`);
    world.restart(first!);
    assert.ok(
      world.runUntil(() => world.node(second!).liveness(first!) === 'alive', 10_000),
      `seed ${seed}: return noticed`,
    );
    // The returning node coordinates again; its own copy has none of the five increments.
    const reply = world.call(first!, incr);
    assert.ok(reply.ok && reply.op === 'write', show(reply));
    assert.equal(reply.results[0]!.integer, 6n, `seed ${seed}: the sixth increment`);
    const removed = world.call(first!, {
      op: 'write',
      keyspace: 'default',
      items: [{ key: utf8(key), mutation: { kind: 'delete' } }],
    });
    assert.ok(removed.ok && removed.op === 'write' && removed.results[0]!.applied, show(removed));
    for (const reader of world.ids) {
      assert.equal(valueOf(world.call(reader, get(key, 2))), null, `seed ${seed}: ${reader}`);
    }
  }
});

test('after a coordinator returns, a plain SET supersedes the write acknowledged without it, whatever the clocks say', () => {
  for (const seed of seedsFor(3, 2000)) {
    const world = formed(new ClusterWorld({ seed, nodeCount: 3 }));
    const key = 'profile';
    const [first, second] = replicasOf(world, key);
    world.crash(first!);
    assert.ok(
      world.runUntil(() => world.node(second!).liveness(first!) === 'down', 10_000),
      `seed ${seed}: crash detected`,
    );
    // The write made without `first` carries a clock 5 s ahead: were the later SET
    // concurrent with it, the timestamps would keep this one.
    world.skewClock(second!, 5_000);
    const old = world.call(second!, put(key, 'old', 2));
    assert.ok(old.ok && old.op === 'write', show(old));
    world.restart(first!);
    assert.ok(
      world.runUntil(
        () => world.ids.every((id) => world.node(id).liveness(first!) === 'alive'),
        10_000,
      ),
      `seed ${seed}: return noticed`,
    );
    // `first` coordinates again without 'old' in its copy: the replicas answer that their
    // copy is newer, and the SET is tried again over the merge.
    const fresh = world.call(first!, put(key, 'new', 2));
    assert.ok(fresh.ok && fresh.op === 'write', show(fresh));
    const oldVersion = decodeContext(old.results[0]!.context!);
    const newVersion = decodeContext(fresh.results[0]!.context!);
    assert.ok(descends(newVersion, oldVersion), `seed ${seed}: the SET covers the earlier write`);
    for (const reader of world.ids) {
      assert.equal(valueOf(world.call(reader, get(key, 'all'))), 'new', `seed ${seed}: ${reader}`);
    }
  }
});

/** Runs one client's writes and reads through random nodes; answers the stale reads seen. */
function staleReads(seed: number, r: QuorumSpec, w: QuorumSpec): string[] {
  const world = formed(
    new ClusterWorld({ seed, nodeCount: 5, lossRate: 0.03, delayMsMin: 1, delayMsMax: 15 }),
  );
  const prng = new Prng(seed);
  const keys = ['a', 'b', 'c', 'd'];
  // Values are increasing numbers: a later write of the one client has a larger one.
  const lastAcked = new Map<string, number>();
  let next = 1;
  let checkedReads = 0;
  const stale: string[] = [];
  for (let step = 0; step < 200; step++) {
    for (const observer of world.ids) {
      for (const member of world.ids) {
        assert.notEqual(
          world.node(observer).liveness(member),
          'down',
          `seed ${seed} step ${step}: no node is down in this test, so no fallback is used`,
        );
      }
    }
    const key = prng.pick(keys);
    const via = prng.pick(world.ids);
    if (prng.chance(0.5)) {
      const value = next++;
      const reply = world.call(via, put(key, String(value), w));
      if (reply.ok) lastAcked.set(key, value);
    } else {
      const reply = world.call(via, get(key, r));
      if (!reply.ok) continue; // a read may fail under loss; it must not be stale
      const read = valueOf(reply);
      const acked = lastAcked.get(key);
      if (acked === undefined) continue;
      checkedReads++;
      if (read === null || Number(read) < acked) {
        stale.push(
          `seed ${seed} step ${step}: read ${read} of ${key} after ${acked} was acknowledged`,
        );
      }
    }
  }
  assert.ok(checkedReads > 40, `seed ${seed}: enough reads checked (${checkedReads})`);
  return stale;
}

test('with R + W > N and no fallback, a read started after a write was acknowledged returns it or a later one', () => {
  for (const seed of seedsFor(6, 1000)) assert.deepEqual(staleReads(seed, 2, 2), []);
});

test('negative control: with R + W <= N the same check sees stale reads', () => {
  const stale = seedsFor(6, 1000).flatMap((seed) => staleReads(seed, 1, 1));
  assert.ok(stale.length > 0, 'quorums that need not intersect must show a stale read');
});
