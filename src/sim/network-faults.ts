// Network faults as plain data: partition shapes and swizzle-clogging schedules, each drawn
// from the node ids and a seeded Prng, turned into the directed cuts or the clog steps the
// simulated world applies, and described in one line for summaries and transcripts.
//
// Rules kept here: every function is pure (same ids, same Prng state, same answer); a shape
// or a schedule is JSON-friendly and carries every node it speaks of, so it can be printed,
// stored and applied again; a cut is directed ("from" cannot reach "to").

import { assert } from '../core/bytes.ts';
import type { Prng } from '../core/prng.ts';

/** A directed cut: every message from `from` to `to` is dropped. */
export interface Cut {
  readonly from: string;
  readonly to: string;
}

/**
 * A partition of the whole network. `nodes` lists every node of the cluster; links that
 * the shape does not cut stay whole.
 * - halves: two groups that cannot reach each other, both ways.
 * - isolated: one node cut off from every other, both ways.
 * - majority-ring: nodes in `ring` order each reach those within `reach` places of
 *   themselves (around the ring when `closed`, along a line otherwise), so every node reaches
 *   a majority and no two nodes reach the same set (Jepsen's "majorities ring").
 * - bridge: two halves that cannot reach each other, both reaching the bridge node.
 * - one-way: `from` cannot reach `to`; `to` still reaches `from`.
 */
export type PartitionShape =
  | {
      readonly kind: 'halves';
      readonly nodes: readonly string[];
      readonly groups: readonly [readonly string[], readonly string[]];
    }
  | { readonly kind: 'isolated'; readonly nodes: readonly string[]; readonly node: string }
  | {
      readonly kind: 'majority-ring';
      readonly nodes: readonly string[];
      readonly ring: readonly string[];
      readonly reach: number;
      readonly closed: boolean;
    }
  | {
      readonly kind: 'bridge';
      readonly nodes: readonly string[];
      readonly bridge: string;
      readonly halves: readonly [readonly string[], readonly string[]];
    }
  | {
      readonly kind: 'one-way';
      readonly nodes: readonly string[];
      readonly from: readonly string[];
      readonly to: readonly string[];
    };

export type PartitionKind = PartitionShape['kind'];

export const PARTITION_KINDS: readonly PartitionKind[] = [
  'halves',
  'isolated',
  'majority-ring',
  'bridge',
  'one-way',
];

/** The fewest nodes each shape can be drawn over. */
const NODES_MIN: Readonly<Record<PartitionKind, number>> = {
  halves: 2,
  isolated: 2,
  'majority-ring': 3,
  bridge: 3,
  'one-way': 2,
};

/** Whether a shape of this kind exists over `nodeCount` nodes. */
export function partitionFits(kind: PartitionKind, nodeCount: number): boolean {
  return nodeCount >= NODES_MIN[kind];
}

/** Splits the nodes at random into two halves (sizes differ by at most one). */
export function splitHalves(ids: readonly string[], prng: Prng): PartitionShape {
  checkIds(ids, 'halves');
  const order = shuffled(ids, prng);
  const cut = Math.floor(order.length / 2);
  return { kind: 'halves', nodes: [...ids], groups: [order.slice(0, cut), order.slice(cut)] };
}

/** Cuts one node, chosen at random, off from every other. */
export function isolateOne(ids: readonly string[], prng: Prng): PartitionShape {
  checkIds(ids, 'isolated');
  return { kind: 'isolated', nodes: [...ids], node: prng.pick(ids) };
}

/**
 * Places the nodes on a ring in random order and lets each reach its nearest neighbours:
 * `reach` places each way, the fewest that make a majority with the node itself. Links are
 * symmetric. Three nodes cannot be a closed ring (reaching one each way is everyone), so
 * the ring is opened there into a line: the two ends each reach the middle only.
 */
export function majorityRing(ids: readonly string[], prng: Prng): PartitionShape {
  checkIds(ids, 'majority-ring');
  const majority = Math.floor(ids.length / 2) + 1;
  const closed = ids.length > 3;
  // Closed: a node reaches 2 * reach + 1 nodes. Open (three nodes): the ends reach 2.
  const reach = closed ? Math.ceil((majority - 1) / 2) : 1;
  assert(!closed || 2 * reach + 1 < ids.length, 'a closed ring leaves each node someone out');
  return { kind: 'majority-ring', nodes: [...ids], ring: shuffled(ids, prng), reach, closed };
}

/** One node, chosen at random, bridges two halves of the others that cannot reach each other. */
export function bridgeHalves(ids: readonly string[], prng: Prng): PartitionShape {
  checkIds(ids, 'bridge');
  const order = shuffled(ids, prng);
  const bridgeNode = order[0]!;
  const others = order.slice(1);
  const cut = Math.floor(others.length / 2);
  return {
    kind: 'bridge',
    nodes: [...ids],
    bridge: bridgeNode,
    halves: [others.slice(0, cut), others.slice(cut)],
  };
}

/** A random nonempty group cannot reach the rest; the rest still reaches it. */
export function oneWayCut(ids: readonly string[], prng: Prng): PartitionShape {
  checkIds(ids, 'one-way');
  const order = shuffled(ids, prng);
  const cut = prng.between(1, order.length - 1);
  return { kind: 'one-way', nodes: [...ids], from: order.slice(0, cut), to: order.slice(cut) };
}

/** Draws a shape of the given kind. */
export function drawPartition(
  kind: PartitionKind,
  ids: readonly string[],
  prng: Prng,
): PartitionShape {
  switch (kind) {
    case 'halves':
      return splitHalves(ids, prng);
    case 'isolated':
      return isolateOne(ids, prng);
    case 'majority-ring':
      return majorityRing(ids, prng);
    case 'bridge':
      return bridgeHalves(ids, prng);
    case 'one-way':
      return oneWayCut(ids, prng);
  }
}

/** Draws a shape of a random kind among those that fit the number of nodes. */
export function randomPartition(ids: readonly string[], prng: Prng): PartitionShape {
  const kinds = PARTITION_KINDS.filter((kind) => partitionFits(kind, ids.length));
  assert(kinds.length > 0, `no partition shape fits ${ids.length} nodes`);
  return drawPartition(prng.pick(kinds), ids, prng);
}

/** The directed cuts that make a shape, each once, in a stable order. */
export function cutsOf(shape: PartitionShape): Cut[] {
  const cuts: Cut[] = [];
  const cutBetween = (from: readonly string[], to: readonly string[]): void => {
    for (const a of from) for (const b of to) if (a !== b) cuts.push({ from: a, to: b });
  };
  switch (shape.kind) {
    case 'halves':
      cutBetween(shape.groups[0], shape.groups[1]);
      cutBetween(shape.groups[1], shape.groups[0]);
      break;
    case 'isolated': {
      const others = shape.nodes.filter((id) => id !== shape.node);
      cutBetween([shape.node], others);
      cutBetween(others, [shape.node]);
      break;
    }
    case 'majority-ring': {
      const count = shape.ring.length;
      for (let i = 0; i < count; i++) {
        for (let j = 0; j < count; j++) {
          if (i === j) continue;
          const along = Math.abs(i - j);
          const distance = shape.closed ? Math.min(along, count - along) : along;
          if (distance > shape.reach) cuts.push({ from: shape.ring[i]!, to: shape.ring[j]! });
        }
      }
      break;
    }
    case 'bridge':
      cutBetween(shape.halves[0], shape.halves[1]);
      cutBetween(shape.halves[1], shape.halves[0]);
      break;
    case 'one-way':
      cutBetween(shape.from, shape.to);
      break;
  }
  assert(
    cuts.every((cut) => shape.nodes.includes(cut.from) && shape.nodes.includes(cut.to)),
    'a shape cuts only links between its own nodes',
  );
  return cuts;
}

/**
 * What each node reaches directly under a set of cuts, itself included: the reachability
 * the shape tests state their claims about.
 */
export function reachableSets(
  ids: readonly string[],
  cuts: readonly Cut[],
): Map<string, Set<string>> {
  const cut = new Set(cuts.map((each) => `${each.from}>${each.to}`));
  const reach = new Map<string, Set<string>>();
  for (const from of ids) {
    reach.set(from, new Set(ids.filter((to) => to === from || !cut.has(`${from}>${to}`))));
  }
  return reach;
}

/** The shape in one line, e.g. `bridge n3 between {n1 n5} and {n2 n4}`. */
export function describePartition(shape: PartitionShape): string {
  switch (shape.kind) {
    case 'halves':
      return `halves ${group(shape.groups[0])} | ${group(shape.groups[1])}`;
    case 'isolated':
      return `isolated ${shape.node}`;
    case 'majority-ring': {
      const form = shape.closed ? 'ring' : 'line';
      return `majority ${form} ${shape.ring.join('-')}: each reaches ${shape.reach} each way`;
    }
    case 'bridge':
      return (
        `bridge ${shape.bridge} between ${group(shape.halves[0])} ` +
        `and ${group(shape.halves[1])}`
      );
    case 'one-way':
      return `one-way ${group(shape.from)} cannot reach ${group(shape.to)}`;
  }
}

/** One step of a swizzle: clog or unclog every link to and from a node. */
export interface SwizzleStep {
  readonly atMs: number;
  readonly action: 'clog' | 'unclog';
  readonly node: string;
}

export interface SwizzleSchedule {
  /** The clogged nodes, in the order they were clogged. */
  readonly nodes: readonly string[];
  readonly steps: readonly SwizzleStep[];
}

export interface SwizzleOptions {
  /** When the first node is clogged (virtual ms). */
  readonly startMs: number;
  /** The mean gap between two steps; each gap is drawn in [spacingMs / 2, 3 * spacingMs / 2]. */
  readonly spacingMs: number;
  /** At most this many nodes are clogged (all of them when absent). */
  readonly nodesMax?: number;
}

/**
 * FoundationDB's swizzle-clogging: a random subset of the nodes is clogged one by one, then
 * unclogged one by one in an order drawn afresh. A clogged link holds its messages in order
 * rather than dropping them, so the schedule stresses timeouts and stale deliveries, not
 * loss.
 */
export function swizzleSchedule(
  ids: readonly string[],
  prng: Prng,
  options: SwizzleOptions,
): SwizzleSchedule {
  assert(ids.length > 0, 'a swizzle needs nodes');
  assert(options.spacingMs >= 2, 'a swizzle needs a spacing of at least 2 ms');
  const countMax = Math.min(ids.length, options.nodesMax ?? ids.length);
  assert(countMax >= 1, 'a swizzle clogs at least one node');
  const nodes = shuffled(ids, prng).slice(0, prng.between(1, countMax));
  const unclogOrder = shuffled(nodes, prng);
  const steps: SwizzleStep[] = [];
  let atMs = options.startMs;
  const gap = (): number =>
    prng.between(Math.floor(options.spacingMs / 2), Math.floor((3 * options.spacingMs) / 2));
  for (const node of nodes) {
    steps.push({ atMs, action: 'clog', node });
    atMs += gap();
  }
  for (const node of unclogOrder) {
    steps.push({ atMs, action: 'unclog', node });
    atMs += gap();
  }
  return { nodes, steps };
}

/** The schedule in one line, times relative to its first step. */
export function describeSwizzle(schedule: SwizzleSchedule): string {
  const originMs = schedule.steps[0]?.atMs ?? 0;
  const steps = schedule.steps.map(
    (step) => `${step.action} ${step.node} +${step.atMs - originMs}`,
  );
  return `swizzle ${group(schedule.nodes)} from ${originMs} ms: ${steps.join(', ')}`;
}

/** A clock jump: a node's wall clock moves by `deltaMs` (back when negative). */
export interface ClockJump {
  readonly atMs: number;
  readonly node: string;
  readonly deltaMs: number;
}

export function describeClockJump(jump: ClockJump): string {
  const sign = jump.deltaMs < 0 ? '-' : '+';
  return `clock of ${jump.node} jumps ${sign}${Math.abs(jump.deltaMs)} ms at ${jump.atMs} ms`;
}

function group(ids: readonly string[]): string {
  return `{${ids.join(' ')}}`;
}

function checkIds(ids: readonly string[], kind: PartitionKind): void {
  assert(partitionFits(kind, ids.length), `a ${kind} partition needs ${NODES_MIN[kind]} nodes`);
  assert(new Set(ids).size === ids.length, 'node ids are distinct');
}

/** Fisher-Yates over a copy, drawing from the Prng. */
function shuffled<T>(items: readonly T[], prng: Prng): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = prng.below(i + 1);
    const held = copy[i]!;
    copy[i] = copy[j]!;
    copy[j] = held;
  }
  return copy;
}
