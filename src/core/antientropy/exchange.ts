// The anti-entropy exchange between two replicas of one partition: the initiator A runs an
// AntiEntropySession, the responder B answers each request with `respond`. Both are pure:
// the node delivers messages, hands in read-only views of its data, and applies the repairs.
//
//   A: root hash ─────────────► B: "same" (done), or the root's children's hashes
//   A: the nodes that differ ──► B: their children's hashes        (level by level, batched)
//   A: the leaves that differ ─► B: their (key, digest) entries    (batched, with a cursor)
//   A: compares its own entries of those leaves and yields repairs, key by key.
//
// Rules kept:
// - One request in flight per session; each carries a step number that the reply echoes,
//   so a late or duplicated reply (or one for another session) is ignored, never misread.
// - Every request and reply is bounded by ExchangeLimits, which are bounded by the message
//   ceilings (messages.ts). A leaf with more keys than fit in one reply is sent over several,
//   each resuming strictly after the last key sent; entries travel in (leaf, key) order,
//   which the initiator checks, so each reply makes progress and no key is compared twice.
// - A reply that is well formed but wrong for its request (a hash count that does not match,
//   entries out of order or outside the leaves asked for) ends the session as failed.
// - The trees and data may change while a session runs (writes go on). A difference found
//   that is already gone costs one idempotent merge; one that appears after its leaf was
//   compared waits for the next session. Either way no repair is wrong: merges are joins.
// - Timeouts are the node's: it drops a session that waits too long.

import { assert, compareBytes } from '../bytes.ts';
import { KEY_BYTES_CEILING } from '../limits.ts';
import {
  AntiEntropyMessageType,
  ENTRIES_PER_REPLY_CEILING,
  ENTRY_KEY_BYTES_PER_REPLY_CEILING,
  LEAVES_PER_REQUEST_CEILING,
  NODES_PER_REQUEST_CEILING,
  RefusalReason,
  type AntiEntropyMessage,
  type AntiEntropyReply,
  type AntiEntropyRequest,
  type EntriesReply,
  type EntriesRequest,
  type RefusedReply,
} from './messages.ts';
import { NODE_HASH_BYTES, TREE_FANOUT, type PartitionTree, type TreeEntry } from './merkle-tree.ts';

export interface ExchangeLimits {
  /** Nodes whose children one request asks for (a reply is at most 128 bytes per node). */
  readonly nodesPerRequestMax: number;
  /** Leaves whose entries one request asks for. */
  readonly leavesPerRequestMax: number;
  /** Entries in one reply. */
  readonly entriesPerReplyMax: number;
  /** Key bytes in one reply; at least one largest key, so every reply makes progress. */
  readonly entryKeyBytesPerReplyMax: number;
  /** Repairs one session yields before it stops (outcome `limited`); the next one goes on. */
  readonly repairsPerSessionMax: number;
}

export const DEFAULT_EXCHANGE_LIMITS: ExchangeLimits = {
  nodesPerRequestMax: 64,
  leavesPerRequestMax: 32,
  entriesPerReplyMax: 1024,
  entryKeyBytesPerReplyMax: 256 * 1024,
  repairsPerSessionMax: 10_000,
};

export function exchangeLimits(overrides: Partial<ExchangeLimits> = {}): ExchangeLimits {
  const limits = { ...DEFAULT_EXCHANGE_LIMITS, ...overrides };
  const within = (value: number, low: number, high: number): boolean =>
    Number.isSafeInteger(value) && value >= low && value <= high;
  assert(within(limits.nodesPerRequestMax, 1, NODES_PER_REQUEST_CEILING), 'nodesPerRequestMax');
  assert(within(limits.leavesPerRequestMax, 1, LEAVES_PER_REQUEST_CEILING), 'leavesPerRequestMax');
  assert(within(limits.entriesPerReplyMax, 1, ENTRIES_PER_REPLY_CEILING), 'entriesPerReplyMax');
  assert(
    within(limits.entryKeyBytesPerReplyMax, KEY_BYTES_CEILING, ENTRY_KEY_BYTES_PER_REPLY_CEILING),
    'entryKeyBytesPerReplyMax holds the largest key and stays under the ceiling',
  );
  assert(within(limits.repairsPerSessionMax, 1, Number.MAX_SAFE_INTEGER), 'repairsPerSessionMax');
  return limits;
}

/**
 * The node's read-only view of one partition: the (key, digest) entries of at least the
 * given leaves (more are fine: they are filtered out), each key once. A partition scan
 * that digests each record does; so does a cache of one.
 */
export type EntriesSource = (leaves: readonly number[]) => Iterable<TreeEntry>;

export interface LeafEntry extends TreeEntry {
  readonly leaf: number;
}

/** The entries among `entries` that fall in `leaves`, in (leaf, key) order. */
export function entriesOfLeaves(
  tree: PartitionTree,
  entries: Iterable<TreeEntry>,
  leaves: readonly number[],
): LeafEntry[] {
  const wanted = new Uint8Array(tree.leafCount);
  for (const leaf of leaves) {
    assert(Number.isInteger(leaf) && leaf >= 0 && leaf < tree.leafCount, `leaf ${leaf} exists`);
    wanted[leaf] = 1;
  }
  const result: LeafEntry[] = [];
  for (const entry of entries) {
    const leaf = tree.leafOf(entry.key);
    if (wanted[leaf] === 1) result.push({ key: entry.key, digest: entry.digest, leaf });
  }
  result.sort(compareLeafEntries);
  for (let i = 1; i < result.length; i++) {
    assert(compareLeafEntries(result[i - 1]!, result[i]!) < 0, 'each key appears once');
  }
  return result;
}

/**
 * A partition's entries grouped by leaf, from one scan: a responder (or an initiator) that
 * answers many requests of one session from it scans the partition once, not once per
 * request. A snapshot: writes after it wait for the next session. Holds every key it was
 * given, so it lives as long as the session and no longer.
 */
export class LeafEntryIndex {
  private readonly byLeaf = new Map<number, TreeEntry[]>();
  readonly entryCount: number;

  constructor(tree: PartitionTree, entries: Iterable<TreeEntry>) {
    let count = 0;
    for (const entry of entries) {
      const leaf = tree.leafOf(entry.key);
      const list = this.byLeaf.get(leaf);
      if (list === undefined) this.byLeaf.set(leaf, [entry]);
      else list.push(entry);
      count++;
    }
    this.entryCount = count;
  }

  /** An EntriesSource over the snapshot: exactly the entries of the leaves asked for. */
  readonly entriesOf: EntriesSource = (leaves) => {
    const result: TreeEntry[] = [];
    for (const leaf of leaves) {
      const list = this.byLeaf.get(leaf);
      if (list !== undefined) for (const entry of list) result.push(entry);
    }
    return result;
  };
}

function compareLeafEntries(a: { leaf: number; key: Uint8Array }, b: typeof a): number {
  return a.leaf !== b.leaf ? a.leaf - b.leaf : compareBytes(a.key, b.key);
}

/** The refusal of a request, for a node that cannot answer it (RefusalReason.unavailable). */
export function refuse(request: AntiEntropyRequest, reason: RefusalReason): RefusedReply {
  return [AntiEntropyMessageType.refused, request[1], request[2], reason];
}

/** B's answer to one valid request, from its tree and its entries. */
export function respond(
  request: AntiEntropyRequest,
  tree: PartitionTree,
  entriesOf: EntriesSource,
  limits: ExchangeLimits = DEFAULT_EXCHANGE_LIMITS,
): AntiEntropyReply {
  const [type, sessionId, step] = request;
  const top = tree.levelCount - 1;
  switch (type) {
    case AntiEntropyMessageType.root: {
      const [, , , , , leafCount, fanout, rootHash] = request;
      if (leafCount !== tree.leafCount || fanout !== TREE_FANOUT) {
        return refuse(request, RefusalReason.shape);
      }
      if (tree.hashEquals(top, 0, rootHash, 0)) {
        return [AntiEntropyMessageType.same, sessionId, step];
      }
      return [AntiEntropyMessageType.hashes, sessionId, step, tree.childHashes(top, [0])];
    }
    case AntiEntropyMessageType.children: {
      const [, , , , , level, nodes] = request;
      if (nodes.length > limits.nodesPerRequestMax) return refuse(request, RefusalReason.limit);
      if (level > top || nodes[nodes.length - 1]! >= tree.levelSize(level)) {
        return refuse(request, RefusalReason.range);
      }
      return [AntiEntropyMessageType.hashes, sessionId, step, tree.childHashes(level, nodes)];
    }
    case AntiEntropyMessageType.entries:
      return respondEntries(request, tree, entriesOf, limits);
  }
}

function respondEntries(
  request: EntriesRequest,
  tree: PartitionTree,
  entriesOf: EntriesSource,
  limits: ExchangeLimits,
): AntiEntropyReply {
  const [, sessionId, step, , , leaves, afterLeaf, afterKey] = request;
  if (leaves.length > limits.leavesPerRequestMax) return refuse(request, RefusalReason.limit);
  if (leaves[leaves.length - 1]! >= tree.leafCount) return refuse(request, RefusalReason.range);
  const entries = entriesOfLeaves(tree, entriesOf(leaves), leaves);
  let start = 0;
  if (afterKey !== null) {
    const after = { leaf: afterLeaf, key: afterKey };
    while (start < entries.length && compareLeafEntries(entries[start]!, after) <= 0) start++;
  }
  const keys: Uint8Array[] = [];
  const digests: number[] = [];
  let keyBytes = 0;
  let index = start;
  for (; index < entries.length && keys.length < limits.entriesPerReplyMax; index++) {
    const entry = entries[index]!;
    if (keys.length > 0 && keyBytes + entry.key.length > limits.entryKeyBytesPerReplyMax) break;
    keys.push(entry.key);
    digests.push(entry.digest);
    keyBytes += entry.key.length;
  }
  const complete = index === entries.length;
  assert(complete || keys.length > 0, 'a reply that is not complete makes progress');
  return [AntiEntropyMessageType.entriesReply, sessionId, step, keys, digests, complete];
}

/** What to do about one key: A sends its record, fetches B's, or both (they differ). */
export type RepairAction = 'push' | 'pull' | 'both';

export interface Repair {
  readonly key: Uint8Array;
  readonly action: RepairAction;
}

export interface SessionStep {
  readonly messages: readonly AntiEntropyRequest[];
  readonly repairs: readonly Repair[];
}

/**
 * running: waiting for a reply. same: the roots matched. compared: every differing leaf was
 * compared (repairs may be none, when the trees changed meanwhile). limited: stopped after
 * repairsPerSessionMax repairs. refused: B would not answer. failed: B's reply was wrong.
 */
export type SessionOutcome = 'running' | 'same' | 'compared' | 'limited' | 'refused' | 'failed';

export interface SessionOptions {
  /** Unique among the node's sessions that may still get replies (a counter will do). */
  readonly id: number;
  readonly keyspaceId: number;
  readonly partition: number;
  readonly tree: PartitionTree;
  readonly entriesOf: EntriesSource;
  readonly limits?: Partial<ExchangeLimits>;
}

export interface SessionStats {
  readonly requests: number;
  readonly differingLeaves: number;
  readonly entriesReceived: number;
  readonly repairs: number;
}

const NOTHING: SessionStep = { messages: [], repairs: [] };

/** The initiator's side of one exchange with one peer about one partition. */
export class AntiEntropySession {
  readonly id: number;
  readonly keyspaceId: number;
  readonly partition: number;
  private readonly tree: PartitionTree;
  private readonly entriesOf: EntriesSource;
  private readonly limits: ExchangeLimits;
  private currentOutcome: SessionOutcome = 'running';
  private started = false;
  private step = 0;
  /** The step whose reply is awaited (0 when none is), and the request it answers. */
  private awaitedStep = 0;
  private awaitedType: AntiEntropyRequest[0] | null = null;
  private refusal: RefusalReason | null = null;
  private failure: string | null = null;
  // The descent: nodes of `level` that differ, and the next batch of them to ask about.
  private level = 0;
  private differingNodes: number[] = [];
  private nextNode = 0;
  private differingBelow: number[] = [];
  private askedNodes: readonly number[] = [];
  // The leaves: those that differ, the batch asked about, A's own entries of the batch.
  private differingLeaves: readonly number[] = [];
  private nextLeaf = 0;
  private batchLeaves: readonly number[] = [];
  private batchLeafSet: ReadonlySet<number> = new Set();
  private localEntries: readonly LeafEntry[] = [];
  private localIndex = 0;
  private cursor: { readonly leaf: number; readonly key: Uint8Array } | null = null;
  private requestCount = 0;
  private entriesReceived = 0;
  private repairCount = 0;

  constructor(options: SessionOptions) {
    assert(Number.isSafeInteger(options.id) && options.id >= 0, 'a session id is a count');
    assert(
      Number.isInteger(options.keyspaceId) &&
        options.keyspaceId >= 0 &&
        options.keyspaceId <= 0xffff_ffff &&
        Number.isInteger(options.partition) &&
        options.partition >= 0 &&
        options.partition <= 0xffff,
      'a session names a keyspace (u32) and a partition (u16)',
    );
    this.id = options.id;
    this.keyspaceId = options.keyspaceId;
    this.partition = options.partition;
    this.tree = options.tree;
    this.entriesOf = options.entriesOf;
    this.limits = exchangeLimits(options.limits);
  }

  get outcome(): SessionOutcome {
    return this.currentOutcome;
  }

  get finished(): boolean {
    return this.currentOutcome !== 'running';
  }

  /** Why B refused, when the outcome is `refused`. */
  get refusalReason(): RefusalReason | null {
    return this.refusal;
  }

  /** What was wrong with B's reply, when the outcome is `failed`. */
  get failureReason(): string | null {
    return this.failure;
  }

  get stats(): SessionStats {
    return {
      requests: this.requestCount,
      differingLeaves: this.differingLeaves.length,
      entriesReceived: this.entriesReceived,
      repairs: this.repairCount,
    };
  }

  /** The first request: A's root hash. */
  start(): SessionStep {
    assert(!this.started, 'a session starts once');
    this.started = true;
    const tree = this.tree;
    return this.send([
      AntiEntropyMessageType.root,
      this.id,
      this.nextStep(),
      this.keyspaceId,
      this.partition,
      tree.leafCount,
      TREE_FANOUT,
      tree.root(),
    ]);
  }

  /** A valid message from the peer; anything not awaited by this session is ignored. */
  receive(message: AntiEntropyMessage): SessionStep {
    assert(this.started, 'a session receives after it starts');
    if (this.finished || message[1] !== this.id || message[2] !== this.awaitedStep) return NOTHING;
    const asked = this.awaitedType;
    this.awaitedStep = 0;
    this.awaitedType = null;
    switch (message[0]) {
      case AntiEntropyMessageType.refused:
        this.refusal = message[3];
        return this.finish('refused');
      case AntiEntropyMessageType.same:
        if (asked !== AntiEntropyMessageType.root) return this.fail('"same" answers only a root');
        return this.finish('same');
      case AntiEntropyMessageType.hashes:
        if (asked === AntiEntropyMessageType.entries) return this.fail('hashes answer entries');
        return this.receiveHashes(message[3]);
      case AntiEntropyMessageType.entriesReply:
        if (asked !== AntiEntropyMessageType.entries) return this.fail('entries answer hashes');
        return this.receiveEntries(message);
      default:
        return this.fail(`a request (${message[0]}) in reply`);
    }
  }

  private receiveHashes(hashes: Uint8Array): SessionStep {
    if (this.askedNodes.length === 0) {
      // The reply to the root request: the children of the root.
      this.level = this.tree.levelCount - 1;
      this.differingNodes = [0];
      this.nextNode = 1;
      this.askedNodes = [0];
    }
    const tree = this.tree;
    let offset = 0;
    for (const node of this.askedNodes) {
      const { first, count } = tree.childRange(this.level, node);
      if (offset + count * NODE_HASH_BYTES > hashes.length) return this.fail('too few hashes');
      for (let child = first; child < first + count; child++) {
        if (!tree.hashEquals(this.level - 1, child, hashes, offset))
          this.differingBelow.push(child);
        offset += NODE_HASH_BYTES;
      }
    }
    if (offset !== hashes.length) return this.fail('too many hashes');
    this.askedNodes = [];
    return this.descend();
  }

  /** Asks about the next batch of differing nodes, or goes one level down. */
  private descend(): SessionStep {
    if (this.nextNode >= this.differingNodes.length) {
      this.level--;
      this.differingNodes = this.differingBelow;
      this.differingBelow = [];
      this.nextNode = 0;
      if (this.differingNodes.length === 0) return this.finish('compared');
      if (this.level === 0) {
        this.differingLeaves = this.differingNodes;
        this.differingNodes = [];
        return this.askNextLeaves();
      }
    }
    const batch = this.differingNodes.slice(
      this.nextNode,
      this.nextNode + this.limits.nodesPerRequestMax,
    );
    this.nextNode += batch.length;
    this.askedNodes = batch;
    return this.send([
      AntiEntropyMessageType.children,
      this.id,
      this.nextStep(),
      this.keyspaceId,
      this.partition,
      this.level,
      batch,
    ]);
  }

  private askNextLeaves(): SessionStep {
    if (this.nextLeaf >= this.differingLeaves.length) return this.finish('compared');
    const batch = this.differingLeaves.slice(
      this.nextLeaf,
      this.nextLeaf + this.limits.leavesPerRequestMax,
    );
    this.nextLeaf += batch.length;
    this.batchLeaves = batch;
    this.batchLeafSet = new Set(batch);
    this.localEntries = entriesOfLeaves(this.tree, this.entriesOf(batch), batch);
    this.localIndex = 0;
    this.cursor = null;
    return this.askEntries();
  }

  private askEntries(): SessionStep {
    const cursor = this.cursor;
    return this.send([
      AntiEntropyMessageType.entries,
      this.id,
      this.nextStep(),
      this.keyspaceId,
      this.partition,
      this.batchLeaves,
      cursor === null ? 0 : cursor.leaf,
      cursor === null ? null : cursor.key,
    ]);
  }

  private receiveEntries(reply: EntriesReply): SessionStep {
    const [, , , keys, digests, complete] = reply;
    this.entriesReceived += keys.length;
    const remote: LeafEntry[] = [];
    let previous = this.cursor;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const entry = { key, digest: digests[i]!, leaf: this.tree.leafOf(key) };
      if (!this.batchLeafSet.has(entry.leaf)) return this.fail('an entry outside the leaves');
      if (previous !== null && compareLeafEntries(previous, entry) >= 0) {
        return this.fail('entries out of order or repeated');
      }
      remote.push(entry);
      previous = entry;
    }
    // A's entries up to the last key B sent (to the end, when B is done) are compared now;
    // those after it wait for B's next reply.
    const last = complete ? null : remote[remote.length - 1]!;
    const repairs: Repair[] = [];
    let remoteIndex = 0;
    const local = this.localEntries;
    while (repairs.length + this.repairCount < this.limits.repairsPerSessionMax) {
      const mine = local[this.localIndex];
      const inRange = mine !== undefined && (last === null || compareLeafEntries(mine, last) <= 0);
      const theirs = remote[remoteIndex];
      if (!inRange && theirs === undefined) break;
      const order = !inRange ? 1 : theirs === undefined ? -1 : compareLeafEntries(mine, theirs);
      if (order < 0) {
        repairs.push({ key: mine!.key, action: 'push' });
        this.localIndex++;
      } else if (order > 0) {
        repairs.push({ key: theirs!.key, action: 'pull' });
        remoteIndex++;
      } else {
        if (mine!.digest !== theirs!.digest) repairs.push({ key: mine!.key, action: 'both' });
        this.localIndex++;
        remoteIndex++;
      }
    }
    this.repairCount += repairs.length;
    if (this.repairCount >= this.limits.repairsPerSessionMax) {
      this.finish('limited');
      return { messages: [], repairs };
    }
    const next = complete ? this.endBatch() : this.continueBatch(last!);
    return { messages: next.messages, repairs };
  }

  private continueBatch(last: LeafEntry): SessionStep {
    this.cursor = { leaf: last.leaf, key: last.key };
    return this.askEntries();
  }

  private endBatch(): SessionStep {
    assert(this.localIndex === this.localEntries.length, 'every local entry of the batch compared');
    this.batchLeaves = [];
    this.batchLeafSet = new Set();
    this.localEntries = [];
    return this.askNextLeaves();
  }

  private nextStep(): number {
    this.step++;
    return this.step;
  }

  private send(request: AntiEntropyRequest): SessionStep {
    assert(!this.finished, 'a finished session sends nothing');
    this.awaitedStep = request[2];
    this.awaitedType = request[0];
    this.requestCount++;
    return { messages: [request], repairs: [] };
  }

  private finish(outcome: Exclude<SessionOutcome, 'running'>): SessionStep {
    assert(this.currentOutcome === 'running', 'a session finishes once');
    this.currentOutcome = outcome;
    this.awaitedStep = 0;
    this.awaitedType = null;
    return NOTHING;
  }

  private fail(reason: string): SessionStep {
    this.failure = reason;
    return this.finish('failed');
  }
}
