// Chain replication on one node: a replica per partition whose chain names this node (or
// that is copying to join one), and one requester for the requests this node coordinates.
// The node hands it configurations from the cluster map, requests and peer messages, and
// gets back messages to send, completions and what the map should hear about. It keeps the
// rules of docs/CHAIN.md that are about a node rather than one replica:
// - A replica's batch is made durable before its sends leave, and sends leave in the order
//   the calls ran: each waits for the last batch emitted before it.
// - Rows live in the chain table, keyed by partition (src/core/store/layout.ts); a replica is
//   restored from them on first use after a restart.
// - Chain keys are the keyspace id (u32) followed by the user key, so every chain keyspace
//   of a partition shares its chain.
// - Request ids come from a range per life of the node (its incarnation), since chains
//   remember requests by requester and id.
// - A replica of a partition this node no longer replicates is dropped with every row it
//   stored (`drop`), as eventual partitions given away are; one that comes back copies anew.
// - A pre-copy copies from one tail. When the map gives the chain another tail before this
//   node is appended, the pre-copy starts over from nothing with a fresh replica: the new
//   tail may be a member appended a moment ago that is still copying itself, holding less
//   than the old tail did, and passes from it cannot continue the old ones.
// - Pre-copies keep the node's handoff rate limit and pause: the handoff host hands each its
//   share of the limit on every tick (docs/HANDOFF.md, "Rate and pause").

import { assert, prefixEnd, utf8 } from '../bytes.ts';
import { MonotonicClock } from '../monotonic-clock.ts';
import {
  CHAIN_TABLE_END,
  CHAIN_TABLE_START,
  chainRowKey,
  ChainRowKind,
  parseChainRowKey,
  sequenceBytes,
} from '../store/layout.ts';
import type { StorageWrite } from '../../storage/contract.ts';
import { tailOf, type ChainConfig } from './chain-config.ts';
import { isValidChainMessage, type ChainMessage } from './messages.ts';
import {
  ChainReplica,
  type ChainBatch,
  type ChainOutput,
  type ChainReplicaOptions,
  type ChainStoredState,
  type PrecopyReport,
  type StoredKey,
} from './replica.ts';
import {
  ChainRequester,
  DEFAULT_REQUESTER_OPTIONS,
  type ChainCompletion,
  type ChainRequest,
  type RequesterOutput,
} from './requester.ts';
import type { ChainLimits, ChainTimings } from './settings.ts';
import {
  decodeChainEntry,
  decodeChainMeta,
  decodeChainRecord,
  decodeRequesterMemory,
  encodeChainEntry,
  encodeChainMeta,
  encodeChainRecord,
  encodeRequesterMemory,
} from './state-codec.ts';

/** Where the host keeps its rows: the node's store, with writes readable at once. */
export interface ChainRowStore {
  persistRows(writes: StorageWrite[], durable: boolean): number;
  scanRows(start: Uint8Array, end: Uint8Array): StorageWrite[];
  readonly lastBatchId: number;
  readonly lastPersistedBatchId: number;
}

export interface ChainHostSend {
  readonly to: string;
  readonly message: ChainMessage;
  /** Send once this batch is persisted; 0: at once. */
  readonly afterBatch: number;
}

export interface ChainHostCompletion {
  readonly operationId: number;
  readonly completion: ChainCompletion;
}

export interface ChainHostOutput {
  readonly sends: readonly ChainHostSend[];
  readonly completions: readonly ChainHostCompletion[];
  /** A replica or the requester saw a newer epoch, or misses a chain: fetch the map. */
  readonly configWanted: boolean;
  /** Pre-copy passes finished, by partition: the map may append this node there. */
  readonly precopied: readonly { readonly partition: number; readonly report: PrecopyReport }[];
}

export interface ChainHostOptions {
  readonly timings?: ChainTimings;
  readonly limits?: ChainLimits;
  readonly unsafe?: ChainReplicaOptions['unsafe'];
}

/** Lives whose request-id ranges are distinct (incarnations modulo this). */
const LIVES_IN_REQUEST_IDS = 2 ** 20;
const REQUEST_IDS_PER_LIFE = 2 ** 32;
const KEYSPACE_ID_BYTES = 4;
const EMPTY = new Uint8Array(0);

/** The chain key of a user key: keyspace id (u32, big-endian), then the key. */
export function chainKeyOf(keyspaceId: number, key: Uint8Array): Uint8Array {
  const chainKey = new Uint8Array(KEYSPACE_ID_BYTES + key.length);
  new DataView(chainKey.buffer).setUint32(0, keyspaceId);
  chainKey.set(key, KEYSPACE_ID_BYTES);
  return chainKey;
}

export class ChainHost {
  readonly nodeId: string;
  readonly requester: ChainRequester;
  private readonly rows: ChainRowStore;
  private readonly options: ChainHostOptions;
  private readonly replicas = new Map<number, ChainReplica>();
  /** Stored states not yet restored (restoring needs the time). */
  private stored: Map<number, ChainStoredState> | null;
  /** Entry rows stored per partition, by sequence number: removed once committed. */
  private readonly entryRows = new Map<number, Set<number>>();
  /** Partitions whose replica was restored from storage and has not copied since. */
  private readonly restored = new Set<number>();
  /** Requester request id -> the node's operation id. */
  private readonly operations = new Map<number, number>();
  private sends: ChainHostSend[] = [];
  private completions: ChainHostCompletion[] = [];
  private configWanted = false;
  private precopied: { partition: number; report: PrecopyReport }[] = [];
  /** Partitions this node pre-copies and is not a member of yet, with the tail it copies from. */
  private readonly precopySources = new Map<number, string>();
  malformedDropped = 0;
  /** Each pre-copy's share of the node's handoff limit (0: unlimited), and the pause. */
  private precopyRate = 0;
  private precopiesPaused = false;
  /** Bytes pre-copied by replicas no longer held. */
  private precopyBytesBefore = 0;
  /** Leases, resends and copies are timed on this: the wall clock may step back. */
  private readonly clock = new MonotonicClock();

  constructor(
    nodeId: string,
    incarnation: number,
    rows: ChainRowStore,
    options: ChainHostOptions = {},
  ) {
    this.nodeId = nodeId;
    this.rows = rows;
    this.options = options;
    this.requester = new ChainRequester({
      selfId: nodeId,
      ...DEFAULT_REQUESTER_OPTIONS,
      requestIdBase: (incarnation % LIVES_IN_REQUEST_IDS) * REQUEST_IDS_PER_LIFE,
    });
    this.stored = readStoredStates(rows);
    for (const [partition, state] of this.stored) {
      this.entryRows.set(partition, new Set(state.entries.map((entry) => entry.sequence)));
    }
  }

  /** Partitions with a replica here (members, copiers, and former members not yet cleared). */
  partitions(): number[] {
    return [...this.replicas.keys(), ...(this.stored?.keys() ?? [])];
  }

  /** Replicas held (restored ones counted once restored). */
  replicaCount(): number {
    return this.replicas.size + (this.stored?.size ?? 0);
  }

  replica(partition: number): ChainReplica | undefined {
    return this.replicas.get(partition);
  }

  /** Replicas pre-copying a partition: each takes a share of the node's handoff limit. */
  get activeCopies(): number {
    let active = 0;
    for (const replica of this.replicas.values()) if (replica.precopying) active++;
    return active;
  }

  /** Bytes every pre-copy on this node received, over its life. */
  get bytesMoved(): number {
    let bytes = this.precopyBytesBefore;
    for (const replica of this.replicas.values()) bytes += replica.precopyBytesReceived;
    return bytes;
  }

  /** Each pre-copy's rate limit in bytes per second (0: unlimited), changed at once. */
  setCopyRate(bytesPerSecond: number): void {
    assert(Number.isFinite(bytesPerSecond) && bytesPerSecond >= 0, 'a rate in bytes per second');
    this.precopyRate = bytesPerSecond;
    for (const replica of this.replicas.values()) replica.setPrecopyRate(bytesPerSecond);
  }

  /** Paused pre-copies ask for no chunk; a chunk already asked for is still taken. */
  setCopiesPaused(paused: boolean): void {
    this.precopiesPaused = paused;
    for (const replica of this.replicas.values()) replica.setPrecopyPaused(paused);
  }

  /** A chain from the map: to the requester, and to this node's replica if it has or needs one. */
  configure(config: ChainConfig, wallMs: number): ChainHostOutput {
    const nowMs = this.clock.advance(wallMs);
    this.restoreAll(nowMs);
    this.requester.learnConfig(config);
    const partition = config.partition;
    const isMember = config.members.some((member) => member.id === this.nodeId);
    let replica = this.replicas.get(partition);
    if (replica === undefined && isMember) replica = this.newReplica(partition);
    if (replica !== undefined) this.take(partition, replica.configure(config, nowMs));
    this.followPrecopySource(partition, nowMs);
    return this.flush();
  }

  /**
   * Forgets a partition whose chain no longer names this node and which it no longer
   * replicates: its replica goes, and every row of the partition is removed in one batch
   * (the replica held its records in memory, so they are no more than it held). Nothing
   * waits on that batch. Answers how many rows it removes.
   */
  drop(partition: number): number {
    const replica = this.replicas.get(partition);
    assert(
      replica === undefined || replica.role() === 'none',
      `a replica dropped from partition ${partition} is no member`,
    );
    this.precopyBytesBefore += replica?.precopyBytesReceived ?? 0;
    this.replicas.delete(partition);
    this.stored?.delete(partition);
    this.entryRows.delete(partition);
    this.restored.delete(partition);
    this.precopySources.delete(partition);
    const start = chainRowKey(partition, ChainRowKind.meta, EMPTY).subarray(0, 3);
    const rows = this.rows.scanRows(start, prefixEnd(start)!);
    if (rows.length > 0) {
      this.rows.persistRows(
        rows.map((row) => ({ key: row.key, value: null })),
        false,
      );
    }
    assert(!this.replicas.has(partition), 'the replica is gone');
    return rows.length;
  }

  /** Starts copying a partition this node is about to join (docs/CHAIN.md, "Extended"). */
  precopy(config: ChainConfig, wallMs: number): ChainHostOutput {
    const nowMs = this.clock.advance(wallMs);
    this.restoreAll(nowMs);
    // A replica restored after a restart acts as no tail for a lease's time (it cannot know
    // what it granted before); a copy starts from nothing anyway, so a fresh replica does
    // it, and the chain it joins is not held up by that wait.
    const existing = this.replicas.get(config.partition);
    const replica =
      existing === undefined || this.restored.has(config.partition)
        ? this.newReplica(config.partition)
        : existing;
    this.restored.delete(config.partition);
    this.take(config.partition, replica.precopy(config, nowMs));
    this.notePrecopySource(replica);
    return this.flush();
  }

  /**
   * After a replica of `partition` took a configuration (from the map, or from a peer that
   * refused it): if it pre-copies and its chain's tail is no longer the one it copied from,
   * it is dropped and a fresh replica pre-copies from the new tail (see the file's opening).
   */
  private followPrecopySource(partition: number, nowMs: number): void {
    const source = this.precopySources.get(partition);
    if (source === undefined) return;
    const replica = this.replicas.get(partition);
    const config = replica?.currentConfig ?? null;
    if (replica === undefined || config === null || replica.role() !== 'none') {
      this.precopySources.delete(partition);
      return;
    }
    if (tailOf(config) === source) return;
    const fresh = this.newReplica(partition);
    this.take(partition, fresh.precopy(config, nowMs));
    assert(fresh.role() === 'none', 'a replica that pre-copies is not a member');
    this.notePrecopySource(fresh);
  }

  private notePrecopySource(replica: ChainReplica): void {
    const config = replica.currentConfig;
    if (config === null || replica.role() !== 'none') {
      this.precopySources.delete(replica.partition);
      return;
    }
    this.precopySources.set(replica.partition, tailOf(config));
  }

  /** Starts a request; null when the requester's bounds are reached (overloaded). */
  submit(
    operationId: number,
    partition: number,
    request: ChainRequest,
    wallMs: number,
    timeoutMs: number,
  ): ChainHostOutput | null {
    const nowMs = this.clock.advance(wallMs);
    this.restoreAll(nowMs);
    const requestId = this.requester.submit(partition, request, nowMs, timeoutMs);
    if (requestId === null) return null;
    this.operations.set(requestId, operationId);
    this.takeRequester(this.requester.takeOutput());
    return this.flush();
  }

  receive(from: string, message: unknown, wallMs: number): ChainHostOutput {
    const nowMs = this.clock.advance(wallMs);
    this.restoreAll(nowMs);
    if (!isValidChainMessage(message)) {
      this.malformedDropped += 1;
      return this.flush();
    }
    if (message.type === 'reply') {
      this.takeRequester(this.requester.receive(from, message, nowMs));
      return this.flush();
    }
    let replica = this.replicas.get(message.partition);
    if (replica === undefined) {
      // A chain this node has not heard of yet: a replica with no configuration refuses
      // nothing it should serve and asks for the map.
      replica = this.newReplica(message.partition);
    }
    this.take(message.partition, replica.receive(from, message, nowMs));
    this.followPrecopySource(message.partition, nowMs);
    return this.flush();
  }

  tick(wallMs: number): ChainHostOutput {
    const nowMs = this.clock.advance(wallMs);
    this.restoreAll(nowMs);
    for (const [partition, replica] of this.replicas) this.take(partition, replica.tick(nowMs));
    this.takeRequester(this.requester.tick(nowMs));
    return this.flush();
  }

  private newReplica(partition: number): ChainReplica {
    const replica = new ChainReplica({ selfId: this.nodeId, partition, ...this.replicaOptions() });
    this.precopyBytesBefore += this.replicas.get(partition)?.precopyBytesReceived ?? 0;
    replica.setPrecopyRate(this.precopyRate);
    replica.setPrecopyPaused(this.precopiesPaused);
    this.replicas.set(partition, replica);
    return replica;
  }

  private replicaOptions(): Omit<ChainReplicaOptions, 'selfId' | 'partition'> {
    return {
      ...(this.options.timings === undefined ? {} : { timings: this.options.timings }),
      ...(this.options.limits === undefined ? {} : { limits: this.options.limits }),
      ...(this.options.unsafe === undefined ? {} : { unsafe: this.options.unsafe }),
    };
  }

  /** Restores every stored replica, once, at the first call that knows the time. */
  private restoreAll(nowMs: number | null): void {
    if (this.stored === null || nowMs === null) return;
    for (const [partition, state] of this.stored) {
      this.restored.add(partition);
      const replica = ChainReplica.restore(
        { selfId: this.nodeId, partition, ...this.replicaOptions() },
        state,
        nowMs,
      );
      replica.setPrecopyRate(this.precopyRate);
      replica.setPrecopyPaused(this.precopiesPaused);
      this.replicas.set(partition, replica);
    }
    this.stored = null;
  }

  private take(partition: number, output: ChainOutput): void {
    if (output.batch !== null) this.rows.persistRows(this.writesOf(output.batch), true);
    const last = this.rows.lastBatchId;
    const afterBatch = last > this.rows.lastPersistedBatchId ? last : 0;
    for (const { to, message } of output.sends) this.sends.push({ to, message, afterBatch });
    if (output.configWanted !== null) this.configWanted = true;
    if (output.precopied !== null) this.precopied.push({ partition, report: output.precopied });
  }

  private takeRequester(output: RequesterOutput): void {
    // Requests carry nothing this node must keep: they leave at once.
    for (const { to, message } of output.sends) this.sends.push({ to, message, afterBatch: 0 });
    if (output.configWanted.length > 0) this.configWanted = true;
    for (const completion of output.completions) {
      const operationId = this.operations.get(completion.requestId);
      if (operationId === undefined) continue;
      this.operations.delete(completion.requestId);
      this.completions.push({ operationId, completion });
    }
  }

  /** The storage writes of a batch, in the order docs/CHAIN.md gives. */
  private writesOf(batch: ChainBatch): StorageWrite[] {
    const partition = batch.partition;
    const writes: StorageWrite[] = [];
    let entries = this.entryRows.get(partition);
    if (entries === undefined) this.entryRows.set(partition, (entries = new Set()));
    if (batch.wipe) {
      const start = chainRowKey(partition, ChainRowKind.record, EMPTY);
      const end = chainRowKey(partition, ChainRowKind.entry, EMPTY);
      end[3] = ChainRowKind.entry + 1;
      for (const row of this.rows.scanRows(start, end)) writes.push({ key: row.key, value: null });
      entries.clear();
    }
    if (batch.meta !== null) {
      writes.push({
        key: chainRowKey(partition, ChainRowKind.meta, EMPTY),
        value: encodeChainMeta(batch.meta),
      });
    }
    for (const { key, record } of batch.records) {
      writes.push({
        key: chainRowKey(partition, ChainRowKind.record, key),
        value: encodeChainRecord(record),
      });
    }
    for (const memory of batch.requesters) {
      writes.push({
        key: chainRowKey(partition, ChainRowKind.requester, utf8(memory.requester)),
        value: encodeRequesterMemory(memory),
      });
    }
    for (const requester of batch.forgottenRequesters) {
      writes.push({
        key: chainRowKey(partition, ChainRowKind.requester, utf8(requester)),
        value: null,
      });
    }
    for (const entry of batch.entries) {
      writes.push({
        key: chainRowKey(partition, ChainRowKind.entry, sequenceBytes(entry.sequence)),
        value: encodeChainEntry(entry),
      });
      entries.add(entry.sequence);
    }
    const through = batch.entriesCommittedThrough;
    if (through !== null) {
      // Entry rows are the sent list, a bounded number: they are tracked here rather than
      // found by a scan with every batch. A removal after a write of the same batch wins.
      for (const sequence of entries) {
        if (sequence > through) continue;
        writes.push({
          key: chainRowKey(partition, ChainRowKind.entry, sequenceBytes(sequence)),
          value: null,
        });
        entries.delete(sequence);
      }
    }
    return writes;
  }

  private flush(): ChainHostOutput {
    const output: ChainHostOutput = {
      sends: this.sends,
      completions: this.completions,
      configWanted: this.configWanted,
      precopied: this.precopied,
    };
    this.sends = [];
    this.completions = [];
    this.configWanted = false;
    this.precopied = [];
    return output;
  }
}

/** Every replica's stored rows, decoded and grouped by partition (malformed rows throw). */
function readStoredStates(rows: ChainRowStore): Map<number, ChainStoredState> {
  interface Partial {
    meta: ChainStoredState['meta'] | null;
    records: StoredKey[];
    requesters: ChainStoredState['requesters'][number][];
    entries: ChainStoredState['entries'][number][];
  }
  const byPartition = new Map<number, Partial>();
  for (const row of rows.scanRows(CHAIN_TABLE_START, CHAIN_TABLE_END)) {
    const { partition, kind, rest } = parseChainRowKey(row.key);
    let state = byPartition.get(partition);
    if (state === undefined) {
      state = { meta: null, records: [], requesters: [], entries: [] };
      byPartition.set(partition, state);
    }
    const value = row.value!;
    switch (kind) {
      case ChainRowKind.meta:
        state.meta = decodeChainMeta(value);
        break;
      case ChainRowKind.record:
        state.records.push({ key: rest.slice(), record: decodeChainRecord(value) });
        break;
      case ChainRowKind.requester:
        state.requesters.push(decodeRequesterMemory(value));
        break;
      case ChainRowKind.entry:
        state.entries.push(decodeChainEntry(value));
        break;
      default:
        assert(false, `a chain row of kind ${kind}`);
    }
  }
  const states = new Map<number, ChainStoredState>();
  for (const [partition, state] of byPartition) {
    // A replica's first batch carries its meta row; rows without one belong to no chain
    // membership and are not restored (the replica starts empty and copies if it joins).
    if (state.meta === null) continue;
    states.set(partition, {
      meta: state.meta,
      records: state.records,
      requesters: state.requesters,
      entries: state.entries,
    });
  }
  return states;
}
