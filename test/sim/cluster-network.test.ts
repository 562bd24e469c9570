// The simulated network's faults: partition shapes cut exactly the links they should,
// duplicates arrive twice, reordered messages overtake, clogged links hold and then deliver
// in order, clocks jump without going back; and the real core, under duplication,
// reordering and a swizzle, loses no acknowledged write. A failure prints its seed;
// CLUSTER_SEED=<n> replays one seed of the seeded loops, and fast-check failures print the
// seed and path to pass back to `fc.assert`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Prng } from '../../src/core/prng.ts';
import { partitionOf } from '../../src/core/ring/partition.ts';
import { dataKey } from '../../src/core/store/layout.ts';
import { decodeRecord } from '../../src/core/store/record.ts';
import { utf8 } from '../../src/core/bytes.ts';
import { ClusterWorld, type Delivery } from '../../src/sim/cluster-world.ts';
import {
  PARTITION_KINDS,
  cutsOf,
  describeClockJump,
  describePartition,
  describeSwizzle,
  drawPartition,
  partitionFits,
  reachableSets,
  swizzleSchedule,
  type PartitionShape,
} from '../../src/sim/network-faults.ts';
import { judgeRun } from '../../src/sim/judge.ts';
import { runWorkload } from '../../src/sim/workload.ts';
import type { History } from '../../src/check/history.ts';
import { formed, get, put, replicasOf, seedsFor, valueOf } from './sim-helpers.ts';

const idsOf = (count: number): string[] => Array.from({ length: count }, (_, i) => `n${i + 1}`);

/** Node counts 3..9 and seeds, for the shape properties. */
const clusters = fc.record({ nodeCount: fc.integer({ min: 3, max: 9 }), seed: fc.integer() });

function reachOf(shape: PartitionShape): Map<string, Set<string>> {
  return reachableSets(shape.nodes, cutsOf(shape));
}

function reaches(reach: Map<string, Set<string>>, from: string, to: string): boolean {
  return reach.get(from)!.has(to);
}

/** Every node of `from` reaches every node of `to` (when `expected`) or none (otherwise). */
function assertReach(
  reach: Map<string, Set<string>>,
  from: readonly string[],
  to: readonly string[],
  expected: boolean,
  why: string,
): void {
  for (const a of from) {
    for (const b of to) {
      if (a === b) continue;
      assert.equal(reaches(reach, a, b), expected, `${why}: ${a} -> ${b}`);
    }
  }
}

function shapeOf(kind: PartitionShape['kind'], nodeCount: number, seed: number): PartitionShape {
  return drawPartition(kind, idsOf(nodeCount), new Prng(seed));
}

test('split halves: each node reaches exactly its own half, both ways', () => {
  fc.assert(
    fc.property(clusters, ({ nodeCount, seed }) => {
      const shape = shapeOf('halves', nodeCount, seed);
      assert.ok(shape.kind === 'halves');
      const [left, right] = shape.groups;
      assert.deepEqual([...left, ...right].sort(), [...shape.nodes].sort(), 'halves cover all');
      assert.ok(Math.abs(left.length - right.length) <= 1, 'halves are halves');
      const reach = reachOf(shape);
      for (const group of shape.groups) {
        for (const id of group) assert.deepEqual([...reach.get(id)!].sort(), [...group].sort());
      }
    }),
  );
});

test('isolate one: one node reaches no one and no one reaches it; the rest are whole', () => {
  fc.assert(
    fc.property(clusters, ({ nodeCount, seed }) => {
      const shape = shapeOf('isolated', nodeCount, seed);
      assert.ok(shape.kind === 'isolated');
      const others = shape.nodes.filter((id) => id !== shape.node);
      const reach = reachOf(shape);
      assertReach(reach, [shape.node], others, false, 'isolated reaches out');
      assertReach(reach, others, [shape.node], false, 'reaches the isolated');
      assertReach(reach, others, others, true, 'the rest');
    }),
  );
});

test('majority ring: each node reaches a majority including itself, no two the same one', () => {
  fc.assert(
    fc.property(clusters, ({ nodeCount, seed }) => {
      const shape = shapeOf('majority-ring', nodeCount, seed);
      const reach = reachOf(shape);
      const majority = Math.floor(nodeCount / 2) + 1;
      const seen = new Set<string>();
      for (const [id, reachable] of reach) {
        assert.ok(reachable.has(id), `${id} reaches itself`);
        assert.ok(reachable.size >= majority, `${id} reaches ${reachable.size} < ${majority}`);
        const key = [...reachable].sort().join(' ');
        assert.ok(!seen.has(key), `two nodes reach the same set {${key}}`);
        seen.add(key);
      }
      // Links are symmetric: a majority ring cuts both ways.
      for (const a of shape.nodes) {
        for (const b of shape.nodes) assert.equal(reaches(reach, a, b), reaches(reach, b, a));
      }
    }),
  );
});

test('bridge: the bridge reaches all and all reach it; the halves do not reach each other', () => {
  fc.assert(
    fc.property(clusters, ({ nodeCount, seed }) => {
      const shape = shapeOf('bridge', nodeCount, seed);
      assert.ok(shape.kind === 'bridge');
      const [left, right] = shape.halves;
      assert.ok(left.length >= 1 && right.length >= 1, 'both halves have a node');
      assert.deepEqual([shape.bridge, ...left, ...right].sort(), [...shape.nodes].sort());
      const reach = reachOf(shape);
      const others = [...left, ...right];
      assertReach(reach, [shape.bridge], others, true, 'the bridge reaches');
      assertReach(reach, others, [shape.bridge], true, 'reaches the bridge');
      assertReach(reach, left, right, false, 'left to right');
      assertReach(reach, right, left, false, 'right to left');
      assertReach(reach, left, left, true, 'within the left half');
      assertReach(reach, right, right, true, 'within the right half');
    }),
  );
});

test('one-way: one side cannot reach the other, which still reaches it', () => {
  fc.assert(
    fc.property(clusters, ({ nodeCount, seed }) => {
      const shape = shapeOf('one-way', nodeCount, seed);
      assert.ok(shape.kind === 'one-way');
      assert.ok(shape.from.length >= 1 && shape.to.length >= 1, 'both sides have a node');
      const reach = reachOf(shape);
      assertReach(reach, shape.from, shape.to, false, 'the cut way');
      assertReach(reach, shape.to, shape.from, true, 'the open way');
      assertReach(reach, shape.from, shape.from, true, 'within the cut side');
      assertReach(reach, shape.to, shape.to, true, 'within the open side');
    }),
  );
});

test('every shape is plain data that prints every node it names and replays from its seed', () => {
  fc.assert(
    fc.property(clusters, fc.constantFrom(...PARTITION_KINDS), ({ nodeCount, seed }, kind) => {
      assert.ok(partitionFits(kind, nodeCount));
      const shape = shapeOf(kind, nodeCount, seed);
      assert.deepEqual(JSON.parse(JSON.stringify(shape)), shape, 'a shape survives JSON');
      assert.deepEqual(shapeOf(kind, nodeCount, seed), shape, 'the same seed, the same shape');
      const line = describePartition(shape);
      const named = shape.kind === 'isolated' ? [shape.node] : shape.nodes;
      for (const id of named) assert.match(line, new RegExp(`\\b${id}\\b`), line);
      const cuts = cutsOf(shape);
      assert.equal(new Set(cuts.map((cut) => `${cut.from}>${cut.to}`)).size, cuts.length);
    }),
  );
});

test('applying a shape replaces every cut there was, and no message crosses a cut link', () => {
  for (const seed of seedsFor(3, 4100)) {
    const world = formed(new ClusterWorld({ seed, nodeCount: 5 }));
    world.isolate('n1');
    const shape = drawPartition('bridge', world.ids, new Prng(seed));
    world.applyPartition(shape);
    const cut = new Set(cutsOf(shape).map((each) => `${each.from}>${each.to}`));
    const used = new Set<string>();
    world.onDeliver((delivery) => used.add(`${delivery.from}>${delivery.to}`));
    world.runFor(3_000);
    const crossed = [...used].filter((link) => cut.has(link));
    assert.deepEqual(crossed, [], `seed ${seed}: ${describePartition(shape)}`);
    // n1 was isolated before: unless the shape cuts it off again, it talks once more.
    const n1Open = world.ids.some((id) => id !== 'n1' && !cut.has(`n1>${id}`));
    assert.equal(
      n1Open,
      [...used].some((link) => link.startsWith('n1>')),
      `seed ${seed}`,
    );
  }
});

test('a swizzle clogs chosen nodes one by one, then unclogs each once, in a fresh order', () => {
  fc.assert(
    fc.property(clusters, fc.integer({ min: 2, max: 1_000 }), ({ nodeCount, seed }, spacingMs) => {
      const ids = idsOf(nodeCount);
      const schedule = swizzleSchedule(ids, new Prng(seed), { startMs: 5_000, spacingMs });
      assert.deepEqual(
        swizzleSchedule(ids, new Prng(seed), { startMs: 5_000, spacingMs }),
        schedule,
      );
      const count = schedule.nodes.length;
      assert.ok(count >= 1 && count <= nodeCount, 'clogs some of the nodes');
      assert.equal(schedule.steps.length, 2 * count);
      const clogs = schedule.steps.slice(0, count);
      const unclogs = schedule.steps.slice(count);
      assert.ok(
        clogs.every((step) => step.action === 'clog'),
        'every clog comes first',
      );
      assert.ok(
        unclogs.every((step) => step.action === 'unclog'),
        'then every unclog',
      );
      assert.deepEqual(
        clogs.map((step) => step.node),
        schedule.nodes,
      );
      assert.deepEqual(unclogs.map((step) => step.node).sort(), [...schedule.nodes].sort());
      assert.equal(schedule.steps[0]!.atMs, 5_000);
      for (let i = 1; i < schedule.steps.length; i++) {
        const gap = schedule.steps[i]!.atMs - schedule.steps[i - 1]!.atMs;
        assert.ok(gap >= Math.floor(spacingMs / 2) && gap <= Math.floor((3 * spacingMs) / 2));
      }
      const line = describeSwizzle(schedule);
      for (const id of schedule.nodes) assert.match(line, new RegExp(`clog ${id} \\+`), line);
    }),
  );
});

/** A three-node world and every delivery it makes, recorded from now on. */
function recorded(options: ConstructorParameters<typeof ClusterWorld>[0]): {
  world: ClusterWorld;
  deliveries: Delivery[];
} {
  const world = formed(new ClusterWorld(options));
  const deliveries: Delivery[] = [];
  world.onDeliver((delivery) => deliveries.push(delivery));
  return { world, deliveries };
}

const linkOf = (delivery: Delivery): string => `${delivery.from}>${delivery.to}`;

/** The sequence numbers a link delivers when it keeps order and loses nothing. */
function consecutiveFrom(deliveries: readonly Delivery[]): number[] {
  const first = deliveries[0]?.sequence ?? 1;
  return deliveries.map((_, i) => first + i);
}

test('duplication delivers a message twice, the copy later, and the cluster still answers', () => {
  for (const seed of seedsFor(3, 4200)) {
    const { world, deliveries } = recorded({ seed, nodeCount: 3, duplicateRate: 1 });
    world.runFor(1_000);
    assert.ok(world.call('n1', put('twice', 'v')).ok, `seed ${seed}: a write under duplication`);
    assert.equal(valueOf(world.call('n2', get('twice', 'all'))), 'v', `seed ${seed}`);
    const endMs = world.nowMs;
    world.runFor(300); // every copy of what was sent arrives: copies lag at most 200 ms
    const originals = deliveries.filter((each) => !each.duplicate && each.atMs <= endMs);
    assert.ok(originals.length > 20, `seed ${seed}: too little traffic to judge`);
    for (const original of originals) {
      const copies = deliveries.filter(
        (each) =>
          each.duplicate &&
          linkOf(each) === linkOf(original) &&
          each.sequence === original.sequence,
      );
      assert.equal(
        copies.length,
        1,
        `seed ${seed}: one copy of ${linkOf(original)} #${original.sequence}`,
      );
      assert.ok(copies[0]!.atMs > original.atMs, `seed ${seed}: the copy comes later`);
      assert.equal(copies[0]!.message, original.message, 'the copy is the same message');
    }
  }
});

test('links are FIFO without reordering, and a reordered message can overtake earlier ones', () => {
  for (const seed of seedsFor(3, 4300)) {
    // Long tails make slow messages for reordered ones to overtake.
    const base = { seed, nodeCount: 3, tailRate: 0.2, tailDelayMsMax: 200 };
    const fifo = recorded(base);
    fifo.world.runFor(3_000);
    assert.deepEqual(overtakes(fifo.deliveries), [], `seed ${seed}: FIFO links`);
    const shuffled = recorded({ ...base, reorderRate: 0.3 });
    shuffled.world.runFor(3_000);
    const overtaken = overtakes(shuffled.deliveries);
    assert.ok(overtaken.length > 0, `seed ${seed}: no message overtook another`);
    assert.ok(shuffled.world.messagesReordered > 0);
  }
});

/** Deliveries that came after a later message of their link had already arrived. */
function overtakes(deliveries: readonly Delivery[]): Delivery[] {
  const lastSequence = new Map<string, number>();
  const found: Delivery[] = [];
  for (const delivery of deliveries) {
    const last = lastSequence.get(linkOf(delivery)) ?? 0;
    if (delivery.sequence <= last) found.push(delivery);
    lastSequence.set(linkOf(delivery), Math.max(last, delivery.sequence));
  }
  return found;
}

test('a clogged link holds its messages, then delivers them all in order, none lost', () => {
  for (const seed of seedsFor(3, 4400)) {
    const { world, deliveries } = recorded({ seed, nodeCount: 3 });
    world.runFor(500);
    const clogAtMs = world.nowMs;
    world.clog('n1', 'n2');
    world.runFor(1_000);
    const unclogAtMs = world.nowMs;
    world.unclog('n1', 'n2');
    world.runFor(1_000);
    const onLink = deliveries.filter((each) => linkOf(each) === 'n1>n2');
    const during = onLink.filter((each) => each.atMs > clogAtMs && each.atMs < unclogAtMs);
    assert.deepEqual(during, [], `seed ${seed}: nothing crosses a clogged link`);
    const released = onLink.filter((each) => each.atMs === unclogAtMs);
    assert.ok(released.length > 0, `seed ${seed}: the link held messages`);
    assert.deepEqual(
      onLink.map((each) => each.sequence),
      consecutiveFrom(onLink),
      `seed ${seed}: every message on the link, once, in order`,
    );
    const otherWay = deliveries.filter(
      (each) => linkOf(each) === 'n2>n1' && each.atMs > clogAtMs && each.atMs < unclogAtMs,
    );
    assert.ok(otherWay.length > 0, `seed ${seed}: a clog is one way`);
  }
});

test('a clogged node holds every link to and from it until the last clog on a link lifts', () => {
  const seed = seedsFor(1, 4500)[0]!;
  const { world, deliveries } = recorded({ seed, nodeCount: 3 });
  world.clogNode('n1');
  world.clogNode('n2');
  world.runFor(1_000);
  world.unclogNode('n1');
  assert.ok(world.isClogged('n1', 'n2') && !world.isClogged('n1', 'n3'), 'n2 still clogs n1>n2');
  world.runFor(1_000);
  const n1n2 = deliveries.filter((each) => linkOf(each) === 'n1>n2');
  assert.deepEqual(n1n2, [], `seed ${seed}: n1>n2 stays clogged while n2 is`);
  assert.ok(
    deliveries.some((each) => linkOf(each) === 'n1>n3'),
    `seed ${seed}: n1>n3 opens`,
  );
  world.unclogNode('n2');
  world.runFor(1_000);
  const after = deliveries.filter((each) => linkOf(each) === 'n1>n2');
  assert.deepEqual(
    after.map((each) => each.sequence),
    consecutiveFrom(after),
  );
  assert.ok(after.length > 0, `seed ${seed}: n1>n2 delivers once both ends unclog`);
});

test('a clock jump moves the wall clock, and a jump back does not take a node clock back', () => {
  for (const seed of seedsFor(3, 4600)) {
    const world = formed(new ClusterWorld({ seed, nodeCount: 3 }));
    const hourMs = 3_600_000;
    // Writes are stamped by their coordinator, the key's first replica: make that n1.
    const key = keyFirstOn(world, 'n1');
    world.skewClock('n1', 1_000);
    world.jumpClock('n1', hourMs);
    world.runFor(100);
    const ahead = world.nodeClockMs('n1');
    assert.ok(ahead >= world.nowMs + hourMs + 1_000, `seed ${seed}: a jump adds to the skew`);
    assert.ok(world.call('n1', put(key, 'before')).ok);
    const before = timestampOf(world, 'n1', key);
    world.jumpClock('n1', -2 * hourMs);
    const backAtMs = world.nodeClockMs('n1');
    assert.ok(backAtMs >= ahead, `seed ${seed}: the node clock does not go back`);
    world.runFor(1_000);
    const later = world.nodeClockMs('n1');
    assert.equal(later - backAtMs, 1_000, `seed ${seed}: it advances with elapsed time`);
    assert.ok(world.call('n1', put(key, 'after')).ok);
    const after = timestampOf(world, 'n1', key);
    assert.ok(after >= before, `seed ${seed}: the write after the jump back is stamped later`);
    assert.ok(after > world.nowMs + hourMs / 2, `seed ${seed}: stamped by the node clock`);
    assert.match(
      describeClockJump({ atMs: world.nowMs, node: 'n1', deltaMs: -2 * hourMs }),
      /n1 jumps -7200000 ms/,
    );
  }
});

function keyFirstOn(world: ClusterWorld, id: string): string {
  for (let i = 0; i < 1_000; i++)
    if (replicasOf(world, `jumped${i}`)[0] === id) return `jumped${i}`;
  throw new Error(`no key of the first thousand has ${id} first`);
}

/** The wall time of the HLC timestamp that a node's storage holds for a key of `default`. */
function timestampOf(world: ClusterWorld, id: string, key: string): number {
  const bytes = world.storage(id).get(dataKey(0, partitionOf(0, utf8(key), 64), utf8(key)));
  assert.ok(bytes !== undefined, `${id} stores ${key}`);
  const siblings = decodeRecord(bytes).siblings;
  assert.equal(siblings.length, 1, 'lww keeps one version');
  return siblings[0]!.timestamp[0];
}

interface FaultyRun {
  readonly world: ClusterWorld;
  readonly history: History;
  /** The faults injected, in one line. */
  readonly faults: string;
}

/**
 * The recorded workload (one writer per key) under reordering, long tails and a swizzle,
 * and under duplication when asked, all drawn from the seed.
 */
function faultyRun(seed: number, duplication: boolean): FaultyRun {
  const prng = new Prng(seed ^ 0x6e37);
  const nodeCount = prng.between(3, 5);
  const duplicateRate = duplication ? 0.05 + prng.next() * 0.15 : 0;
  const reorderRate = 0.05 + prng.next() * 0.15;
  const world = formed(
    new ClusterWorld({ seed, nodeCount, duplicateRate, reorderRate, tailRate: 0.02 }),
  );
  const schedule = swizzleSchedule(world.ids, prng, {
    startMs: world.nowMs + prng.between(0, 1_000),
    spacingMs: prng.between(100, 400),
  });
  world.scheduleSwizzle(schedule);
  const history = runWorkload(world, {
    seed,
    clients: 4,
    operations: 120,
    keys: 6,
    distribution: 'uniform',
    keyspace: 'default',
    readFraction: 0.3,
    deleteFraction: 0.1,
    thinkMsMax: 20,
    timeoutMs: 1_000,
    keysPerClient: true,
  });
  const rates = `duplicate ${duplicateRate.toFixed(3)}, reorder ${reorderRate.toFixed(3)}`;
  const counts =
    `${world.messagesSent} sent, ${world.messagesDuplicated} duplicated, ` +
    `${world.messagesReordered} reordered`;
  return {
    world,
    history,
    faults: `${nodeCount} nodes, ${rates}; ${describeSwizzle(schedule)}; ${counts}`,
  };
}

test('under duplication, reordering, long tails and a swizzle, no acknowledged write is lost', () => {
  for (const seed of seedsFor(20, 4700)) {
    const { world, history, faults } = faultyRun(seed, true);
    const judgement = judgeRun(world, history, { settleTimeoutMs: 30_000 });
    const why =
      `seed ${seed} (${faults}); replay: ` +
      `CLUSTER_SEED=${seed} npx node --test test/sim/cluster-network.test.ts`;
    assert.ok(judgement.keysChecked > 0, why);
    assert.deepEqual(judgement.anomalies, [], why);
  }
});

test('a forwarded write delivered twice is applied once: its copy does not undo a later write', () => {
  for (const seed of seedsFor(3, 4900)) {
    const world = formed(new ClusterWorld({ seed, nodeCount: 3, duplicateDelayMsMax: 2_000 }));
    // n1 forwards the first write to the key's coordinator, n2; the copy of the forward
    // comes up to two seconds later, after the second write, which n2 coordinates itself.
    const key = keyFirstOn(world, 'n2');
    world.setDuplicateRate(1);
    assert.ok(world.call('n1', put(key, 'first')).ok, `seed ${seed}`);
    world.setDuplicateRate(0);
    assert.ok(world.call('n2', put(key, 'second')).ok, `seed ${seed}`);
    world.runFor(2_500);
    assert.equal(valueOf(world.call('n3', get(key, 'all'))), 'second', `seed ${seed}`);
  }
});

test('the same seed under these faults gives the same history twice; another seed does not', () => {
  const seed = seedsFor(1, 4800)[0]!;
  const first = faultyRun(seed, true);
  const second = faultyRun(seed, true);
  assert.ok(first.world.messagesDuplicated > 0 && first.world.messagesReordered > 0);
  assert.equal(JSON.stringify(first.history), JSON.stringify(second.history), `seed ${seed}`);
  assert.equal(first.faults, second.faults, `seed ${seed}`);
  const other = faultyRun(seed + 1, true);
  assert.notEqual(JSON.stringify(other.history), JSON.stringify(first.history));
});
