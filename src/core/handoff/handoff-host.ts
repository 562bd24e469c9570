// This node's part in the membership change in progress (docs/HANDOFF.md, "In the node"): it
// pulls every copy the change adds to it, a few partitions at a time, each from the first of
// its sources that is up; it serves the pages other nodes pull from it; and it says when
// every copy it receives is made, which the node then records in the map. Once no change is
// in progress it also drops, slowly, the rows of partitions it does not replicate: those it
// gave away, those an aborted change copied to it, and a fallback coordinator's own copies.
// For chain keyspaces it copies nothing itself: it lists the chains this node must join
// before the change commits, and the node tells it which it has joined (docs/CHAIN.md,
// "Membership changes").
//
// Rules kept:
// - A transfer belongs to one change, named by the change's epoch. Its saved state (a meta
//   row per keyspace and partition) resumes it after a restart only for that same change;
//   a later change starts afresh, and the rows are removed once no change is in progress.
// - A page's records are merged, then its saved state is written; the transfer learns the
//   page is durable only once the batch holding that state is persisted (batches persist in
//   order, so the records are too).
// - Copies start only a while after the change is first seen (startDelayMs): coordinators
//   that have not yet learned of the change write only to the current replicas, and the
//   delay lets those writes land on the sources before the scan passes their keys. Writes
//   coordinated on the change's map reach this node directly (the node double-writes).
// - At most RUNNING_TRANSFERS_MAX transfers run at once; the node's rate limit is shared
//   evenly among them and the other protocols' active copies (strong keyspaces' register
//   copies, chain keyspaces' pre-copies). Pause stops every request of all of them; resume
//   starts them again.

import { assert, prefixEnd } from '../bytes.ts';
import type { ClusterMap } from '../cluster/cluster-map.ts';
import { transfersOf, type Transfer } from '../cluster/membership.ts';
import type { Keyspace } from '../keyspace.ts';
import { metaKey } from '../store/layout.ts';
import type { StoredRecord } from '../store/record.ts';
import type { StorageWrite } from '../../storage/contract.ts';
import {
  HandoffMessageType,
  isPageRequestMessage,
  isValidHandoffMessage,
  RefusalCode,
  type HandoffMessage,
} from './messages.ts';
import { ByteRateLimit } from './rate-limit.ts';
import { RateMeter } from './rate-meter.ts';
import { pageOf, refusalOf, type PartitionScan } from './sender.ts';
import {
  DEFAULT_TRANSFER_CONFIG,
  PartitionTransfer,
  type TransferConfig,
  type TransferProgress,
} from './transfer.ts';

/** What the host needs of the node's store. */
export interface HandoffStore {
  /** Merges a received record into this node's copy; the batch it is in, or null if refused. */
  mergeReceived(
    keyspace: Keyspace,
    key: Uint8Array,
    record: StoredRecord,
    nowMs: number,
  ): number | null;
  persistRows(writes: StorageWrite[], durable: boolean): number;
  scanRows(start: Uint8Array, end: Uint8Array): StorageWrite[];
  readRow(storageKey: Uint8Array): Uint8Array | undefined;
  partitionScan(keyspaceId: number, partition: number): PartitionScan;
  /** Removes keys of a partition this node no longer replicates. */
  dropKeys(keyspaceId: number, partition: number, keys: readonly Uint8Array[]): void;
  readonly lastPersistedBatchId: number;
}

export interface HandoffSend {
  readonly to: string;
  readonly message: HandoffMessage;
}

/** One copy as `/v1/cluster` shows it. */
export interface TransferStatus extends TransferProgress {
  readonly keyspaceId: number;
  readonly partition: number;
}

export interface HandoffStatus {
  /** The epoch naming the change in progress; null without one. */
  readonly changeEpoch: number | null;
  /** Copies this node receives in it: all of them, running, waiting and done. */
  readonly transfers: readonly TransferStatus[];
  readonly copiesWaiting: number;
  readonly copiesDone: number;
  readonly bytesPerSecondLimit: number;
  readonly paused: boolean;
  /**
   * What this node receives per second over all its copies, averaged over the rate window
   * from its first copy's start (the copies' own averages read low: a short copy ends
   * before its meter has a whole window, and a copy that ended drops out of any sum).
   */
  readonly bytesPerSecond: number;
  /**
   * Chains this node joins in the change (partitions of chain keyspaces), and how many it
   * is a caught-up member of; absent when it joins none.
   */
  readonly chainJoins?: { readonly partitions: number; readonly joined: number };
}

/**
 * Copies made by another protocol, held to the node's rate limit and pause: strong
 * keyspaces' register copies and chain keyspaces' pre-copies.
 */
export interface PacedCopies {
  /** Copies started and not done: each takes an even share of the node's limit. */
  readonly activeCopies: number;
  /** Bytes these copies moved so far, ever growing: folded into the node's measured rate. */
  readonly bytesMoved: number;
  /** Each active copy's share of the limit, bytes per second; 0: unlimited. */
  setCopyRate(bytesPerSecond: number): void;
  setCopiesPaused(paused: boolean): void;
}

/**
 * Copies of the same change made by another protocol (strong keyspaces' registers, which
 * move by rewrites through joint quorums, docs/PAXOS.md): shown and counted with these, and
 * held to the same rate limit and pause.
 */
export interface OtherCopies extends PacedCopies {
  copyStatus(nowMs: number): {
    readonly transfers: readonly TransferStatus[];
    readonly waiting: number;
  };
  readonly registerCopies: { readonly count: number; readonly done: number };
}

export interface HandoffHostOptions {
  readonly transfer?: Partial<TransferConfig>;
  /** How long after first seeing a change its copies start. */
  readonly startDelayMs?: number;
  /** Rows of partitions no longer replicated here removed per tick. */
  readonly dropRowsPerTick?: number;
  /** How often, with no change in progress, storage is looked over for rows to drop. */
  readonly straySweepIntervalMs?: number;
}

export const RUNNING_TRANSFERS_MAX = 4;
const SAVED_PREFIX = 'handoff/';
const DROP_ROWS_PER_TICK_DEFAULT = 1024;
const STRAY_SWEEP_INTERVAL_MS_DEFAULT = 30_000;

interface StrayPartition {
  readonly keyspaceId: number;
  readonly partition: number;
  /** The last key removed so far. */
  after: Uint8Array | null;
}

interface Copy {
  readonly transfer: Transfer;
  readonly keyspace: Keyspace;
  /** Null until started (or restored). */
  running: PartitionTransfer | null;
}

export class HandoffHost {
  private readonly nodeId: string;
  private readonly store: HandoffStore;
  private readonly config: TransferConfig;
  private readonly startDelayMs: number;
  private readonly dropRowsPerTick: number;
  private readonly straySweepIntervalMs: number;
  private changeEpoch: number | null = null;
  private changeSeenMs = 0;
  private copies: Copy[] = [];
  /** Partitions whose chain this node joins in the change, and whether it has. */
  private readonly chainJoins = new Map<number, boolean>();
  private readonly byId = new Map<string, Copy>();
  /** Pages waiting for their batch: in the order received, as transfers require. */
  private readonly unpersisted: { batchId: number; copy: Copy; pageNumber: number }[] = [];
  private bytesPerSecond = 0;
  /**
   * The node's whole limit over the bytes its copies receive: a stream copy starts only
   * when it allows. Each copy paces itself at its share of the limit, but starts with no
   * debt, so its first page goes at once: a node with many one-page copies was held by
   * nothing (a simulated join of 3,000 keys over 47 copies arrived at 2.2 MB/s under a
   * limit of 250 KB/s).
   */
  private readonly startLimit = new ByteRateLimit(0);
  private paused = false;
  /** Bytes received over all copies of the change; from its first copy's start. */
  private received: RateMeter | null = null;
  /** The other copies' bytesMoved already counted in `received`. */
  private otherBytesCounted: number | null = null;
  /** Data rows of partitions this node does not replicate, to remove; null: not looked yet. */
  private strayPartitions: StrayPartition[] | null = null;
  /**
   * When storage is next looked over for stray rows: a while after the last map this node
   * adopted (null until the first tick, which counts as one: a node that restarts may hold a
   * map older than the cluster's).
   */
  private sweepAfterMs: number | null = null;
  /** Pages served to other nodes, and page requests refused. */
  pagesServed = 0;
  /** Received records a merge refused (the copy is then stuck: an operator must look). */
  mergesRefused = 0;
  strayRowsDropped = 0;
  /** The other protocol's copies of the change, when the node has them. */
  otherCopies: OtherCopies | null = null;
  /** Chain keyspaces' pre-copies, when the node has them: paced, not counted as copies. */
  precopies: PacedCopies | null = null;

  constructor(nodeId: string, store: HandoffStore, options: HandoffHostOptions = {}) {
    this.nodeId = nodeId;
    this.store = store;
    this.config = { ...DEFAULT_TRANSFER_CONFIG, ...options.transfer };
    this.startDelayMs = options.startDelayMs ?? 5_000;
    this.dropRowsPerTick = options.dropRowsPerTick ?? DROP_ROWS_PER_TICK_DEFAULT;
    this.straySweepIntervalMs = options.straySweepIntervalMs ?? STRAY_SWEEP_INTERVAL_MS_DEFAULT;
    assert(this.startDelayMs >= 0 && this.dropRowsPerTick >= 1, 'handoff options in range');
    assert(this.straySweepIntervalMs > 0, 'stray rows are looked for now and then');
  }

  /**
   * Brings the copies in line with `map`: the change's copies to this node (eventual
   * keyspaces), resumed from their saved state when the change is the same, and the chains
   * it joins (chain keyspaces, one per partition: they share the chains). Call it whenever
   * the map changes.
   */
  sync(map: ClusterMap, keyspaceOf: (id: number) => Keyspace | undefined, nowMs: number): void {
    const epoch = map.change?.epoch ?? null;
    // Any new map may give a partition back to this node: what to drop is looked for again,
    // a while after coordinators have learned the map too.
    this.strayPartitions = null;
    this.sweepAfterMs = nowMs + this.startDelayMs;
    if (epoch === this.changeEpoch) return;
    this.changeEpoch = epoch;
    this.changeSeenMs = nowMs;
    this.copies = [];
    this.chainJoins.clear();
    this.byId.clear();
    this.unpersisted.length = 0;
    this.received = null;
    if (epoch === null) return this.forgetSavedStates(null);
    this.forgetSavedStates(epoch);
    for (const transfer of transfersOf(map)) {
      const keyspace = keyspaceOf(transfer.keyspaceId);
      if (transfer.to !== this.nodeId) continue;
      if (keyspace?.consistency === 'chain') this.chainJoins.set(transfer.partition, false);
      if (keyspace?.consistency !== 'eventual') continue;
      const copy: Copy = { transfer, keyspace, running: null };
      const saved = this.store.readRow(savedKey(epoch, transfer.keyspaceId, transfer.partition));
      if (saved !== undefined) copy.running = this.restored(saved, nowMs);
      this.copies.push(copy);
      this.byId.set(transferIdOf(epoch, transfer, this.nodeId), copy);
    }
  }

  /**
   * Whether this node receives copies in the change in progress and has made them all, the
   * chains it joins included.
   */
  get copiesMade(): boolean {
    const other = this.otherCopies?.registerCopies ?? { count: 0, done: 0 };
    return (
      this.changeEpoch !== null &&
      this.copies.length + other.count + this.chainJoins.size > 0 &&
      other.done === other.count &&
      this.copies.every((copy) => copy.running?.state === 'done') &&
      [...this.chainJoins.values()].every((joined) => joined)
    );
  }

  /** The partitions whose chain this node joins in the change in progress. */
  chainPartitions(): number[] {
    return [...this.chainJoins.keys()];
  }

  /**
   * The node's word on one of those chains: whether it is now a member at the map's chain
   * epoch and caught up. It may go back (a member removed while down joins again).
   */
  noteChainJoined(partition: number, joined: boolean): void {
    assert(this.chainJoins.has(partition), `partition ${partition} is a chain this node joins`);
    this.chainJoins.set(partition, joined);
  }

  setRate(bytesPerSecond: number): void {
    assert(Number.isFinite(bytesPerSecond) && bytesPerSecond >= 0, 'a rate in bytes per second');
    this.bytesPerSecond = bytesPerSecond;
    this.startLimit.setRate(bytesPerSecond);
    this.shareRate();
  }

  setPaused(paused: boolean, nowMs: number): void {
    this.paused = paused;
    this.otherCopies?.setCopiesPaused(paused);
    this.precopies?.setCopiesPaused(paused);
    for (const copy of this.copies) {
      const running = copy.running;
      if (running === null || running.state === 'done' || running.state === 'failed') continue;
      if (paused) running.pause();
      else running.resume(nowMs);
    }
  }

  /** Requests due, new copies started, stalled ones moved to another source. */
  tick(nowMs: number, isUp: (id: string) => boolean): HandoffSend[] {
    const sends: HandoffSend[] = [];
    // Register copies start as soon as the change is seen, without the delay, and a chain's
    // repair pre-copies outside any change too: their shares are kept up to date always.
    this.countOtherBytes(nowMs);
    this.shareRate();
    if (this.changeEpoch === null) {
      this.dropStrayRows();
      return sends;
    }
    if (nowMs - this.changeSeenMs < this.startDelayMs) return sends;
    let running = this.copies.filter((copy) => isActive(copy.running)).length;
    for (const copy of this.copies) {
      if (copy.running !== null || running >= RUNNING_TRANSFERS_MAX) continue;
      if (!this.startLimit.allows(nowMs)) break;
      const source = copy.transfer.sources.find(isUp);
      if (source === undefined) continue;
      copy.running = PartitionTransfer.start(
        { ...identityOf(this.changeEpoch, copy.transfer, this.nodeId), source },
        this.config,
        nowMs,
      );
      if (this.paused) copy.running.pause();
      this.received ??= new RateMeter(this.config.rateWindowMs, nowMs);
      running++;
    }
    this.shareRate();
    for (const copy of this.copies) {
      const transfer = copy.running;
      if (transfer === null || !isActive(transfer)) continue;
      if (transfer.stalled || !isUp(transfer.source)) {
        const sources = copy.transfer.sources;
        const next = sources.find(
          (id, index) => isUp(id) && index > sources.indexOf(transfer.source),
        );
        const other = next ?? sources.find((id) => isUp(id) && id !== transfer.source);
        if (other !== undefined) transfer.changeSource(other, nowMs);
      }
      const request = transfer.tick(nowMs);
      if (request !== null) sends.push({ to: transfer.source, message: request });
    }
    return sends;
  }

  /**
   * A handoff message from a peer: a page request is answered from this node's data (only
   * for partitions it replicates under the map's current owners); a page feeds its copy.
   */
  receive(
    from: string,
    message: unknown,
    replicates: (keyspaceId: number, partition: number) => boolean,
    nowMs: number,
  ): HandoffSend[] | null {
    if (!isValidHandoffMessage(message)) return null;
    if (isPageRequestMessage(message)) {
      const [, , keyspaceId, partition] = message;
      if (!replicates(keyspaceId, partition)) {
        return [{ to: from, message: refusalOf(message, RefusalCode.unavailable) }];
      }
      this.pagesServed++;
      const scan = this.store.partitionScan(keyspaceId, partition);
      return [{ to: from, message: pageOf(scan, message) }];
    }
    const copy = this.byId.get(message[1]);
    const transfer = copy?.running;
    if (copy === undefined || transfer === null || transfer === undefined) return [];
    if (message[0] !== HandoffMessageType.page && message[0] !== HandoffMessageType.refusal) {
      return [];
    }
    const page = transfer.receivePage(message, nowMs);
    if (page === null) return [];
    this.received?.add(nowMs, page.bytes);
    this.startLimit.charge(nowMs, page.bytes);
    for (const entry of page.entries) {
      if (this.store.mergeReceived(copy.keyspace, entry.key, entry.record, nowMs) === null) {
        // The page stays unpersisted: the copy waits, and the change cannot commit.
        this.mergesRefused++;
        return [];
      }
    }
    const { keyspaceId, partition } = copy.transfer;
    const batchId = this.store.persistRows(
      [{ key: savedKey(this.changeEpoch!, keyspaceId, partition), value: page.savedState }],
      true,
    );
    this.unpersisted.push({ batchId, copy, pageNumber: page.pageNumber });
    this.persisted(this.store.lastPersistedBatchId);
    return [];
  }

  /** Batches up to `batchId` are durable: their pages are too. */
  persisted(batchId: number): void {
    while (this.unpersisted.length > 0 && this.unpersisted[0]!.batchId <= batchId) {
      const { copy, pageNumber } = this.unpersisted.shift()!;
      copy.running?.persisted(pageNumber);
    }
  }

  /** Counters and gauges for metrics (names as the node publishes them). */
  stats(nowMs: number) {
    const status = this.status(nowMs);
    let keys = 0;
    let bytes = 0;
    for (const transfer of status.transfers) {
      keys += transfer.keysReceived;
      bytes += transfer.bytesReceived;
    }
    return {
      handoff_copies_waiting: status.copiesWaiting,
      handoff_copies_running: status.transfers.length - status.copiesDone,
      handoff_copies_done: status.copiesDone,
      handoff_keys_received: keys,
      handoff_bytes_received: bytes,
      handoff_bytes_per_second: Math.round(status.bytesPerSecond),
      handoff_pages_served_total: this.pagesServed,
      handoff_stray_rows_dropped_total: this.strayRowsDropped,
    };
  }

  status(nowMs: number): HandoffStatus {
    const transfers: TransferStatus[] = [];
    let copiesWaiting = 0;
    let copiesDone = 0;
    for (const copy of this.copies) {
      const { keyspaceId, partition } = copy.transfer;
      if (copy.running === null) {
        copiesWaiting++;
        continue;
      }
      if (copy.running.state === 'done') copiesDone++;
      transfers.push({ keyspaceId, partition, ...copy.running.progress(nowMs) });
    }
    if (this.otherCopies !== null && this.changeEpoch !== null) {
      const other = this.otherCopies.copyStatus(nowMs);
      copiesWaiting += other.waiting;
      for (const transfer of other.transfers) {
        if (transfer.state === 'done') copiesDone++;
        transfers.push(transfer);
      }
    }
    const joined = [...this.chainJoins.values()].filter((value) => value).length;
    return {
      changeEpoch: this.changeEpoch,
      transfers,
      copiesWaiting,
      copiesDone,
      bytesPerSecondLimit: this.bytesPerSecond,
      paused: this.paused,
      bytesPerSecond: this.received?.bytesPerSecond(nowMs) ?? 0,
      ...(this.chainJoins.size > 0
        ? { chainJoins: { partitions: this.chainJoins.size, joined } }
        : {}),
    };
  }

  /**
   * With no change in progress, a while after the last map and then every
   * straySweepIntervalMs: the partitions of eventual keyspaces this node does not replicate
   * and still holds rows of, to remove a bounded number of rows per tick. They are the
   * partitions it gave away, those a change that was aborted copied to it, and those it
   * wrote to as a fallback coordinator (its copy there is also a hint, handed back apart).
   * None of them is read: reads go to the replicas.
   */
  planStrayDrop(
    keyspaces: readonly Keyspace[],
    partitionCount: number,
    replicatedHere: (keyspace: Keyspace, partition: number) => boolean,
    nowMs: number,
  ): void {
    if (this.changeEpoch !== null) return;
    if (this.sweepAfterMs === null) {
      this.sweepAfterMs = nowMs + this.startDelayMs;
      return;
    }
    if (nowMs < this.sweepAfterMs) return;
    if (this.strayPartitions !== null && this.strayPartitions.length > 0) return;
    this.sweepAfterMs = nowMs + this.straySweepIntervalMs;
    const stray: StrayPartition[] = [];
    for (const keyspace of keyspaces) {
      if (keyspace.consistency !== 'eventual') continue;
      for (let partition = 0; partition < partitionCount; partition++) {
        if (replicatedHere(keyspace, partition)) continue;
        // One row read tells whether the partition holds anything here.
        if (this.store.partitionScan(keyspace.id, partition)(null, 1).length === 0) continue;
        stray.push({ keyspaceId: keyspace.id, partition, after: null });
      }
    }
    assert(stray.length <= keyspaces.length * partitionCount, 'each partition listed once');
    this.strayPartitions = stray;
  }

  private dropStrayRows(): void {
    const stray = this.strayPartitions;
    if (stray === null) return;
    let budget = this.dropRowsPerTick;
    while (stray.length > 0 && budget > 0) {
      const next = stray[0]!;
      // Removals reach storage only when their batch is written: the scan goes on from the
      // last key removed, never over the same rows again.
      const rows = this.store.partitionScan(next.keyspaceId, next.partition)(next.after, budget);
      if (rows.length > 0) {
        this.store.dropKeys(
          next.keyspaceId,
          next.partition,
          rows.map((row) => row.key),
        );
        this.strayRowsDropped += rows.length;
        budget -= rows.length;
        next.after = rows[rows.length - 1]!.key;
      }
      if (budget > 0) stray.shift();
    }
  }

  private restored(saved: Uint8Array, nowMs: number): PartitionTransfer | null {
    try {
      const transfer = PartitionTransfer.restore(saved, this.config, nowMs);
      if (this.paused) transfer.pause();
      return transfer;
    } catch {
      // A saved state that does not decode: the copy starts again from the first key.
      return null;
    }
  }

  /** The limit divided evenly among the active copies of every kind. */
  private shareRate(): void {
    const active = this.copies.filter((copy) => isActive(copy.running));
    const others = (this.otherCopies?.activeCopies ?? 0) + (this.precopies?.activeCopies ?? 0);
    const count = Math.max(1, active.length + others);
    const share = this.bytesPerSecond === 0 ? 0 : this.bytesPerSecond / count;
    assert(share === 0 || share * count <= this.bytesPerSecond * (1 + 1e-9), 'shares sum to it');
    for (const copy of active) copy.running!.setRate(share);
    this.otherCopies?.setCopyRate(share);
    this.precopies?.setCopyRate(share);
  }

  /** What the other copies moved since the last tick, into the node's measured rate. */
  private countOtherBytes(nowMs: number): void {
    const others = [this.otherCopies, this.precopies].filter((other) => other !== null);
    if (others.length === 0) return;
    let moved = 0;
    let active = 0;
    for (const other of others) {
      moved += other.bytesMoved;
      active += other.activeCopies;
    }
    const counted = this.otherBytesCounted ?? moved;
    assert(moved >= counted, 'bytes moved only grow');
    this.otherBytesCounted = moved;
    // The rate reported is the change's: bytes moved with none in progress are not in it.
    if (this.changeEpoch === null || (active === 0 && moved === counted)) return;
    this.received ??= new RateMeter(this.config.rateWindowMs, nowMs);
    this.received.add(nowMs, moved - counted);
    this.startLimit.charge(nowMs, moved - counted);
  }

  /** Removes saved states of every change but `keep`. */
  private forgetSavedStates(keep: number | null): void {
    const start = metaKey(SAVED_PREFIX);
    const end = prefixEnd(start)!;
    const keepPrefix = keep === null ? null : metaKey(`${SAVED_PREFIX}${keep}/`);
    const stale = this.store
      .scanRows(start, end)
      .filter((row) => keepPrefix === null || !startsWith(row.key, keepPrefix));
    if (stale.length > 0) {
      this.store.persistRows(
        stale.map((row) => ({ key: row.key, value: null })),
        false,
      );
    }
  }
}

function isActive(transfer: PartitionTransfer | null): transfer is PartitionTransfer {
  return transfer !== null && (transfer.state === 'running' || transfer.state === 'paused');
}

function transferIdOf(changeEpoch: number, transfer: Transfer, nodeId: string): string {
  return `${changeEpoch}.${transfer.keyspaceId}.${transfer.partition}.${nodeId}`;
}

function identityOf(changeEpoch: number, transfer: Transfer, nodeId: string) {
  return {
    transferId: transferIdOf(changeEpoch, transfer, nodeId),
    keyspaceId: transfer.keyspaceId,
    partition: transfer.partition,
  };
}

function savedKey(changeEpoch: number, keyspaceId: number, partition: number): Uint8Array {
  return metaKey(`${SAVED_PREFIX}${changeEpoch}/${keyspaceId}/${partition}`);
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}
