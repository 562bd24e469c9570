// Anti-entropy in the node (docs/ANTI-ENTROPY.md, "In the node"): a Merkle tree per
// partition this node replicates, kept up to date as data rows change; one exchange at a time
// with another replica of one partition, partitions taken in turn; and the repairs the
// exchanges find, handed to the node at a bounded rate.
//
// Rules kept:
// - A tree is built from the partition's records as written last (pending writes included)
//   the first time an exchange needs it, and from then on follows every staged change of a
//   data row (ReplicaStore.onDataChange), so it always describes what the node holds.
// - Trees are dropped when the map changes (the partitions replicated here may change); they
//   are rebuilt on demand.
// - Only a replica that holds keys of a partition starts exchanges about it.
// - One session runs at a time; it is dropped if a reply is late (sessionTimeoutMs). After
//   an exchange that found the trees equal the next starts at once (next tick); after one
//   that found differences, a pause (intervalMs) lets the repairs drain first.
// - Repairs wait in a bounded queue and leave at repairsPerSecond at most; beyond the queue's
//   bound they are dropped, and a later exchange finds them again.
// - Session ids are drawn from a range per life of the node, so a reply to an earlier life
//   never matches a session of this one.

import { assert } from '../bytes.ts';
import type { Keyspace } from '../keyspace.ts';
import type { StoredRecord } from '../store/record.ts';
import {
  AntiEntropySession,
  LeafEntryIndex,
  refuse,
  respond,
  type RepairAction,
} from './exchange.ts';
import { PartitionTree } from './merkle-tree.ts';
import {
  isAntiEntropyRequest,
  isValidAntiEntropyMessage,
  RefusalReason,
  sessionIdOf,
  type AntiEntropyMessage,
} from './messages.ts';
import { TokenBucket } from './rate-limit.ts';
import { recordDigest } from './record-digest.ts';

export interface AntiEntropyStore {
  /** Every record of a partition as written last, pending writes included. */
  partitionRecords(
    keyspaceId: number,
    partition: number,
  ): readonly { key: Uint8Array; record: StoredRecord }[];
}

export interface AntiEntropySettings {
  /** The pause after an exchange that found differences. */
  readonly intervalMs: number;
  readonly sessionTimeoutMs: number;
  /** Repairs handed to the node per second, at most. */
  readonly repairsPerSecond: number;
}

export const DEFAULT_ANTI_ENTROPY_SETTINGS: AntiEntropySettings = {
  intervalMs: 1_000,
  sessionTimeoutMs: 5_000,
  repairsPerSecond: 1_000,
};

/** Repairs waiting; past it they are dropped until a later exchange finds them again. */
export const REPAIRS_QUEUED_MAX = 100_000;
const LIVES_IN_SESSION_IDS = 2 ** 21;
const SESSION_IDS_PER_LIFE = 2 ** 32;

/** A partition of a keyspace this node replicates, and the other replicas it may ask. */
export interface ExchangeCandidate {
  readonly keyspace: Keyspace;
  readonly partition: number;
  readonly peers: readonly string[];
}

export interface AntiEntropySend {
  readonly to: string;
  readonly message: AntiEntropyMessage;
}

export interface RepairOrder {
  readonly keyspace: Keyspace;
  readonly key: Uint8Array;
  readonly peer: string;
  readonly action: RepairAction;
}

export interface AntiEntropyStats {
  sessionsStarted: number;
  sessionsSame: number;
  sessionsCompared: number;
  sessionsTimedOut: number;
  sessionsFailed: number;
  repairsFound: number;
  repairsDropped: number;
  treesBuilt: number;
}

interface Running {
  readonly session: AntiEntropySession;
  readonly keyspace: Keyspace;
  readonly peer: string;
  readonly deadlineMs: number;
}

export class AntiEntropyHost {
  readonly stats: AntiEntropyStats = {
    sessionsStarted: 0,
    sessionsSame: 0,
    sessionsCompared: 0,
    sessionsTimedOut: 0,
    sessionsFailed: 0,
    repairsFound: 0,
    repairsDropped: 0,
    treesBuilt: 0,
  };
  private readonly store: AntiEntropyStore;
  private readonly settings: AntiEntropySettings;
  private readonly trees = new Map<number, PartitionTree>();
  private running: Running | null = null;
  private nextSessionMs = 0;
  private readonly sessionIdBase: number;
  private sessionCount = 0;
  /** Sessions started per partition (keyed as trees are): picks the next peer to ask. */
  private readonly sessionsOf = new Map<number, number>();
  /** Where the turn over the candidates is. */
  private turn = 0;
  private readonly repairs: RepairOrder[] = [];
  private repairsHead = 0;
  private readonly bucket: TokenBucket;

  constructor(
    store: AntiEntropyStore,
    incarnation: number,
    nowMs: number,
    settings: Partial<AntiEntropySettings> = {},
  ) {
    this.store = store;
    this.settings = { ...DEFAULT_ANTI_ENTROPY_SETTINGS, ...settings };
    assert(this.settings.repairsPerSecond > 0, 'repairs go out at some rate');
    this.sessionIdBase = (incarnation % LIVES_IN_SESSION_IDS) * SESSION_IDS_PER_LIFE;
    this.bucket = new TokenBucket({
      ratePerSecond: this.settings.repairsPerSecond,
      burst: Math.max(1, Math.ceil(this.settings.repairsPerSecond / 10)),
      nowMs,
    });
  }

  /** A data row changed (as staged): its partition's tree, if built, follows. */
  onDataChange(
    keyspaceId: number,
    partition: number,
    key: Uint8Array,
    before: StoredRecord | undefined,
    after: StoredRecord | undefined,
  ): void {
    const tree = this.trees.get(treeKey(keyspaceId, partition));
    if (tree === undefined) return;
    tree.update(
      key,
      before === undefined ? undefined : recordDigest(before),
      after === undefined ? undefined : recordDigest(after),
    );
  }

  /** The map changed: which partitions are replicated here may have too. */
  forgetTrees(): void {
    this.trees.clear();
    this.running = null;
  }

  get treeCount(): number {
    return this.trees.size;
  }

  get repairsQueued(): number {
    return this.repairs.length - this.repairsHead;
  }

  /**
   * Starts the next exchange when one is due (`candidates` is asked only then), drops a
   * late one, and hands out the repairs the rate allows.
   */
  tick(
    nowMs: number,
    candidates: () => readonly ExchangeCandidate[],
  ): { sends: AntiEntropySend[]; repairs: RepairOrder[] } {
    const sends: AntiEntropySend[] = [];
    if (this.running !== null && nowMs >= this.running.deadlineMs) {
      this.stats.sessionsTimedOut++;
      this.running = null;
      this.nextSessionMs = nowMs + this.settings.intervalMs;
    }
    if (this.running === null && nowMs >= this.nextSessionMs) {
      const started = this.startNext(candidates(), nowMs);
      if (started !== null) sends.push(started);
      else this.nextSessionMs = nowMs + this.settings.intervalMs;
    }
    return { sends, repairs: this.takeRepairs(nowMs) };
  }

  /**
   * A message from a peer: a request is answered from this node's tree (only for a
   * partition it replicates), a reply moves the running session on. Null: malformed.
   */
  receive(
    from: string,
    message: unknown,
    replicated: (keyspaceId: number, partition: number) => Keyspace | null,
    nowMs: number,
  ): AntiEntropySend[] | null {
    if (!isValidAntiEntropyMessage(message)) return null;
    if (isAntiEntropyRequest(message)) {
      const keyspaceId = message[3];
      const partition = message[4];
      const keyspace = replicated(keyspaceId, partition);
      if (keyspace === null) {
        return [{ to: from, message: refuse(message, RefusalReason.unavailable) }];
      }
      const tree = this.treeOf(keyspaceId, partition);
      const reply = respond(message, tree, (leaves) =>
        new LeafEntryIndex(tree, this.entries(keyspaceId, partition)).entriesOf(leaves),
      );
      return [{ to: from, message: reply }];
    }
    const running = this.running;
    if (running === null || running.peer !== from || sessionIdOf(message) !== running.session.id) {
      return [];
    }
    const step = running.session.receive(message);
    this.queueRepairs(running, step.repairs);
    if (running.session.finished) this.finish(running, nowMs);
    return step.messages.map((request) => ({ to: from, message: request }));
  }

  private startNext(
    candidates: readonly ExchangeCandidate[],
    nowMs: number,
  ): AntiEntropySend | null {
    for (let tried = 0; tried < candidates.length; tried++) {
      const candidate = candidates[(this.turn + tried) % candidates.length]!;
      if (candidate.peers.length === 0) continue;
      const { keyspace, partition } = candidate;
      // A replica that holds nothing of a partition leaves the asking to those that do: two
      // empty replicas never exchange, and one that missed everything is found by the others.
      const tree = this.treeOf(keyspace.id, partition);
      if (tree.keyCount === 0) continue;
      this.turn = (this.turn + tried + 1) % candidates.length;
      // Each partition's peers in turn, so every pair of replicas meets.
      const asked = this.sessionsOf.get(treeKey(keyspace.id, partition)) ?? 0;
      this.sessionsOf.set(treeKey(keyspace.id, partition), asked + 1);
      const peer = candidate.peers[asked % candidate.peers.length]!;
      const index = new LeafEntryIndex(tree, this.entries(keyspace.id, partition));
      this.sessionCount++;
      const session = new AntiEntropySession({
        id: this.sessionIdBase + (this.sessionCount % SESSION_IDS_PER_LIFE),
        keyspaceId: keyspace.id,
        partition,
        tree,
        entriesOf: index.entriesOf,
      });
      this.stats.sessionsStarted++;
      const running: Running = {
        session,
        keyspace,
        peer,
        deadlineMs: nowMs + this.settings.sessionTimeoutMs,
      };
      this.running = running;
      const step = session.start();
      assert(step.messages.length === 1, 'a session starts with its root');
      return { to: peer, message: step.messages[0]! };
    }
    return null;
  }

  private finish(running: Running, nowMs: number): void {
    this.running = null;
    const outcome = running.session.outcome;
    if (outcome === 'same') {
      this.stats.sessionsSame++;
      this.nextSessionMs = nowMs;
      return;
    }
    if (outcome === 'compared' || outcome === 'limited') this.stats.sessionsCompared++;
    else this.stats.sessionsFailed++;
    this.nextSessionMs = nowMs + this.settings.intervalMs;
  }

  private queueRepairs(
    running: Running,
    found: readonly { key: Uint8Array; action: RepairAction }[],
  ): void {
    for (const repair of found) {
      this.stats.repairsFound++;
      if (this.repairsQueued >= REPAIRS_QUEUED_MAX) {
        this.stats.repairsDropped++;
        continue;
      }
      this.repairs.push({
        keyspace: running.keyspace,
        key: repair.key,
        peer: running.peer,
        action: repair.action,
      });
    }
  }

  private takeRepairs(nowMs: number): RepairOrder[] {
    const taken: RepairOrder[] = [];
    while (this.repairsHead < this.repairs.length && this.bucket.take(1, nowMs)) {
      taken.push(this.repairs[this.repairsHead++]!);
    }
    if (this.repairsHead === this.repairs.length) {
      this.repairs.length = 0;
      this.repairsHead = 0;
    }
    return taken;
  }

  private treeOf(keyspaceId: number, partition: number): PartitionTree {
    const key = treeKey(keyspaceId, partition);
    let tree = this.trees.get(key);
    if (tree === undefined) {
      tree = PartitionTree.build(this.entries(keyspaceId, partition));
      this.trees.set(key, tree);
      this.stats.treesBuilt++;
    }
    return tree;
  }

  private entries(keyspaceId: number, partition: number): { key: Uint8Array; digest: number }[] {
    return this.store
      .partitionRecords(keyspaceId, partition)
      .map(({ key, record }) => ({ key, digest: recordDigest(record) }));
  }
}

function treeKey(keyspaceId: number, partition: number): number {
  return keyspaceId * 65_536 + partition;
}
