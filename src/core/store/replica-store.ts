// One node's local copy of the data: the records it holds as a replica, the hints it holds
// as a fallback, and the writes it has accepted but not yet persisted. Pure: every change
// becomes a persist effect that the owner (src/core/node.ts) hands to the shell, and every
// answer says which batch must be durable before a client may see it.
//
// The shell stages each persist effect in storage as the step that emitted it returns (the
// storage contract's `stage`), and the store reads the batches of the step under way on top
// of storage (step-view.ts), so reads see every write at once. Until a durable batch is
// persisted, reads of its keys wait for it (`unsynced`). Batches are persisted in the order
// they were emitted; `persisted` asserts it.

import { assert, bytesToKeyString, fromUtf8, prefixEnd, utf8 } from '../bytes.ts';
import { ErrorCode, kvError, type KvError } from '../errors.ts';
import type { ConflictPolicy, Keyspace } from '../keyspace.ts';
import type { Limits } from '../limits.ts';
import type { ClientRequest, Mutation, ReadResult, WriteItem, WriteResult } from '../requests.ts';
import {
  applyMutation,
  resolveExpiry,
  writeVersion,
  type MutationOutcome,
} from '../kv/apply-mutation.ts';
import { globMatches } from '../kv/glob.ts';
import { mergeRecords, recordDescends, recordsEqual } from '../kv/merge-records.ts';
import { liveSiblings, winningSibling } from '../kv/siblings.ts';
import { partitionOf } from '../ring/partition.ts';
import { ByteReader, ByteWriter, DecodeError } from './byte-codec.ts';
import { ByteSlab } from './byte-slab.ts';
import { StepView } from './step-view.ts';
import { UnsyncedKeys } from './unsynced-keys.ts';
import {
  dataKey,
  dataPrefix,
  dataPrefixEnd,
  EXPIRY_TABLE_START,
  expiryKey,
  expiryKeyAfter,
  hintKey,
  hintPrefix,
  HINT_TABLE_END,
  HINT_TABLE_START,
  metaKey,
  parseExpiryKey,
  parseHintKey,
} from './layout.ts';
import {
  decodeContext,
  decodeRecord,
  encodeContext,
  encodeRecord,
  encodeSoleRecord,
  readSoleVersion,
  readWinner,
  type SoleVersion,
  type StoredRecord,
} from './record.ts';
import { HybridLogicalClock, type HlcTimestamp } from '../versions/hlc.ts';
import type { VersionVector } from '../versions/version-vector.ts';
import type { StorageReader, StorageWrite } from '../../storage/contract.ts';

export interface PersistEffect {
  readonly type: 'persist';
  readonly batchId: number;
  readonly writes: readonly StorageWrite[];
  readonly durable: boolean;
}

/** An answer that may be given once batch `waitFor` is persisted (0: at once). */
export type Outcome<T> =
  | { readonly ok: true; readonly value: T; readonly waitFor: number }
  | { readonly ok: false; readonly error: KvError };

export interface LocalWrite {
  readonly results: readonly WriteResult[];
  /** The records this write stored, by user key, to replicate. */
  readonly written: readonly { readonly key: Uint8Array; readonly record: StoredRecord }[];
}

/** `written` of a write that changed nothing or that no one replicates. */
const NOTHING_WRITTEN: LocalWrite['written'] = Object.freeze([]);

/** The record of one live version of `node` at `counter`, whose context is that dot. */
function soleRecord(
  node: string,
  counter: number,
  timestamp: HlcTimestamp,
  value: Uint8Array,
  expiresAtMs: number,
): StoredRecord {
  return {
    context: [[node, counter]],
    siblings: [{ dot: { node, counter }, timestamp, value, expiresAtMs }],
  };
}

export interface ScanPage {
  readonly keys: readonly Uint8Array[];
  readonly cursor: Uint8Array | null;
}

export interface HintEntry {
  readonly keyspaceId: number;
  readonly key: Uint8Array;
  readonly record: StoredRecord;
}

const HLC_META_KEY = metaKey('hlc');
const INCARNATION_META_KEY = metaKey('incarnation');
/**
 * How far ahead of the clock the stored HLC ceiling is set. A restarted node starts its
 * clock at the stored ceiling, so it never reissues a timestamp; the ceiling is rewritten
 * only when the clock passes it, about once a second under load, not with every batch.
 */
const HLC_CEILING_AHEAD_MS = 1000;
const COUNT_SCAN_CHUNK = 4096;
/** Rows a plan counts in one partition before it calls the size unknown. */
const SIZE_SCAN_ROWS_MAX = 100_000;
const FLUSH_BATCH_WRITES_MAX = 8192;
/** Bytes of a scan cursor before the key: partition (u16). */
const CURSOR_HEADER_BYTES = 2;
/** Hints counted at start-up beyond which the count is taken as "full". */
const HINT_COUNT_SCAN_MAX = 1 << 22;

export class ReplicaStore {
  readonly nodeId: string;
  /**
   * Told of every change to a data row (storage key, record before, record after; undefined
   * when absent) as it is staged, before it is durable: anti-entropy keeps its trees by it.
   */
  onDataChange:
    | ((
        storageKey: Uint8Array,
        before: StoredRecord | undefined,
        after: StoredRecord | undefined,
      ) => void)
    | null = null;
  /** The name this node's new versions carry in their dots (see beginIncarnation). */
  private actorId: string;
  /** actorId in UTF-8. */
  private actorBytes: Uint8Array;
  /** This life's number (0 until beginIncarnation). */
  incarnation = 0;
  private readonly limits: Limits;
  private readonly partitionCount: number;
  /** Storage, with this step's batches on top (the shell stages them as the step returns). */
  private readonly view: StepView;
  private readonly clock: HybridLogicalClock;
  /** The HLC wall time stored as the ceiling: every timestamp issued is below it. */
  private hlcCeilingMs: number;
  /** The durable batches not yet persisted, by the keys they write. */
  private readonly unsynced = new UnsyncedKeys();
  /** Off only in tests, which compare the single-item write path with the general one. */
  singleItemPath = true;
  private nextBatchId = 1;
  private persistedBatchId = 0;
  private persists: PersistEffect[] = [];
  /** Where the records handed to storage are encoded (byte-slab.ts). */
  private readonly slab = new ByteSlab();
  /** Hints held for other nodes (counted at start, then kept up to date). */
  private hints: number;

  constructor(nodeId: string, limits: Limits, partitionCount: number, view: StorageReader) {
    assert(nodeId.length > 0, 'node id is empty');
    assert(Number.isInteger(Math.log2(partitionCount)), 'partition count is a power of two');
    this.nodeId = nodeId;
    this.actorId = nodeId;
    this.actorBytes = utf8(nodeId);
    this.limits = limits;
    this.partitionCount = partitionCount;
    this.view = new StepView(view);
    const storedCeiling = readHlc(view);
    this.clock = new HybridLogicalClock(storedCeiling);
    this.hlcCeilingMs = storedCeiling[0];
    this.hints = view.scan({
      start: HINT_TABLE_START,
      end: HINT_TABLE_END,
      limit: HINT_COUNT_SCAN_MAX,
    }).length;
  }

  /**
   * The persist effects emitted since the last call, in emission order. The caller stages
   * them in storage before the store is asked anything again.
   */
  drainPersists(): PersistEffect[] {
    const persists = this.persists;
    if (persists.length > 0) {
      this.persists = [];
      this.view.clear();
    }
    return persists;
  }

  get lastPersistedBatchId(): number {
    return this.persistedBatchId;
  }

  /** Batches emitted and not yet persisted. */
  pendingBatchCount(): number {
    return this.nextBatchId - 1 - this.persistedBatchId;
  }

  hintCount(): number {
    return this.hints;
  }

  // ---- what a single node does for a client: the coordinator's local half ----

  get(
    keyspace: Keyspace,
    keys: readonly Uint8Array[],
    withVersions: boolean,
    nowMs: number,
  ): Outcome<ReadResult[]> {
    const invalid = this.checkKeys(keys);
    if (invalid !== null) return { ok: false, error: invalid };
    let waitFor = 0;
    const results: ReadResult[] = [];
    for (const key of keys) {
      const storageKey = this.storageKeyOf(keyspace, key);
      if (!this.unsynced.empty) waitFor = Math.max(waitFor, this.unsynced.batchOf(storageKey));
      let record: StoredRecord | undefined;
      if (!withVersions) {
        // The hot path of a plain GET: the winner straight from the stored bytes.
        const bytes = this.view.get(storageKey);
        const winner = bytes === undefined ? null : readWinner(bytes, nowMs, keyspace.conflicts);
        results.push(
          winner === null
            ? ABSENT
            : { ...ABSENT, value: winner.value, expiresAtMs: winner.expiresAtMs },
        );
        continue;
      } else {
        record = this.readStored(storageKey);
      }
      results.push(
        withVersions
          ? readResultOf(record, nowMs, keyspace.conflicts)
          : winnerOnlyOf(record, nowMs, keyspace.conflicts),
      );
    }
    return { ok: true, value: results, waitFor };
  }

  /**
   * Applies a client's write items atomically as the coordinator: each changed key gets a
   * new version with a dot of this node. Nothing is written if any item fails. `replicate`:
   * the caller sends the records written to other replicas; without it, `written` is empty
   * (a cluster of one, whose plain SET then builds no record but its bytes).
   */
  write(
    keyspace: Keyspace,
    items: readonly WriteItem[],
    nowMs: number,
    replicate = true,
  ): Outcome<LocalWrite> {
    const invalid = this.checkWriteItems(items);
    if (invalid !== null) return { ok: false, error: invalid };
    if (items.length === 1 && this.singleItemPath) {
      return this.writeOne(keyspace, items[0]!, nowMs, replicate);
    }
    // Stage every item first: the request is atomic, so an error in a later item must leave
    // nothing written. Items on the same key see the earlier items' results.
    const staged = new Map<
      string,
      {
        key: Uint8Array;
        storageKey: Uint8Array;
        before: StoredRecord | undefined;
        after: StoredRecord | undefined;
      }
    >();
    const results: WriteResult[] = [];
    let waitFor = 0;
    for (const item of items) {
      const storageKey = this.storageKeyOf(keyspace, item.key);
      const keyString = bytesToKeyString(storageKey);
      let entry = staged.get(keyString);
      if (entry === undefined) {
        waitFor = Math.max(waitFor, this.unsynced.batchOf(storageKey));
        const before = this.readStored(storageKey, keyString);
        entry = { key: item.key, storageKey, before, after: before };
        staged.set(keyString, entry);
      }
      const outcome = this.applyItem(keyspace, item, entry.after, nowMs);
      if (!outcome.ok) return { ok: false, error: outcome.error };
      if (outcome.next !== null) entry.after = outcome.next;
      results.push(outcome.result);
    }
    const writes: StorageWrite[] = [];
    const written: { key: Uint8Array; record: StoredRecord }[] = [];
    for (const entry of staged.values()) {
      if (entry.after === entry.before) continue;
      this.stageRecordWrite(writes, entry.storageKey, entry.before, entry.after!);
      if (replicate) written.push({ key: entry.key, record: entry.after! });
    }
    if (writes.length === 0) return { ok: true, value: { results, written }, waitFor };
    const durable = keyspace.durability === 'sync';
    const batchId = this.persist(writes, durable);
    return { ok: true, value: { results, written }, waitFor: durable ? batchId : waitFor };
  }

  /** One item's mutation applied to `record` (its context decoded first), for both paths. */
  private applyItem(
    keyspace: Keyspace,
    item: WriteItem,
    record: StoredRecord | undefined,
    nowMs: number,
  ): MutationOutcome {
    const context = decodeItemContext(item);
    if (context !== null && 'code' in context) return { ok: false, error: context };
    return applyMutation({
      record,
      mutation: item.mutation,
      context,
      nodeId: this.actorId,
      nowMs,
      clock: this.clock,
      policy: keyspace.conflicts,
      limits: this.limits,
      // A cluster node (one with an incarnation) writes tombstones even for absent keys.
      tombstoneAbsent: this.incarnation > 0,
    });
  }

  /**
   * `write` for a request of one item, the common SET: the same records, results and batch
   * as the general path, without its staging map and lists (tested against it).
   */
  private writeOne(
    keyspace: Keyspace,
    item: WriteItem,
    nowMs: number,
    replicate: boolean,
  ): Outcome<LocalWrite> {
    const storageKey = this.storageKeyOf(keyspace, item.key);
    const mutation = item.mutation;
    if (
      mutation.kind === 'set' &&
      mutation.condition === 'always' &&
      mutation.expiry.kind !== 'keep' &&
      item.context === undefined &&
      keyspace.conflicts === 'lww' &&
      this.onDataChange === null
    ) {
      const written = this.writeBlindSet(
        keyspace,
        item.key,
        mutation,
        storageKey,
        nowMs,
        replicate,
      );
      if (written !== null) return written;
    }
    const waitFor = this.unsynced.batchOf(storageKey);
    const before = this.readStored(storageKey);
    const outcome = this.applyItem(keyspace, item, before, nowMs);
    if (!outcome.ok) return { ok: false, error: outcome.error };
    const results = [outcome.result];
    const after = outcome.next;
    if (after === null || after === before)
      return { ok: true, value: { results, written: NOTHING_WRITTEN }, waitFor };
    assert(after !== undefined, 'a write leaves a record');
    const writes: StorageWrite[] = [];
    this.stageRecordWrite(writes, storageKey, before, after);
    const durable = keyspace.durability === 'sync';
    const batchId = this.persist(writes, durable);
    const written = replicate ? [{ key: item.key, record: after }] : NOTHING_WRITTEN;
    return { ok: true, value: { results, written }, waitFor: durable ? batchId : waitFor };
  }

  /**
   * writeOne for a plain SET under lww over a record that only this node's versions wrote
   * (or none): the same result, batch and record, with the old record read as a
   * SoleVersion instead of decoded, and the new one built directly. Null when the stored
   * record is of another shape. Why: it is the SET of every single node, and decoding
   * the old record and deriving the new one through applyMutation cost about a tenth of
   * the node's main thread under redis-benchmark -P 16 (BENCHMARKS.md). The new record is
   * built as an object only to be replicated.
   */
  private writeBlindSet(
    keyspace: Keyspace,
    key: Uint8Array,
    mutation: Extract<Mutation, { kind: 'set' }>,
    storageKey: Uint8Array,
    nowMs: number,
    replicate: boolean,
  ): Outcome<LocalWrite> | null {
    const bytes = this.view.get(storageKey);
    let sole: SoleVersion | null = null;
    if (bytes !== undefined) {
      sole = readSoleVersion(bytes, this.actorBytes, nowMs);
      if (sole === null) return null;
    }
    const expiresAtMs = resolveExpiry(mutation.expiry, null, nowMs);
    const counter = (sole?.counter ?? 0) + 1;
    const timestamp = this.clock.now(nowMs);
    const value = mutation.value;
    const writes: StorageWrite[] = [];
    const oldExpiry = sole?.expiresAtMs ?? 0;
    this.stageExpiryChanges(
      writes,
      storageKey,
      oldExpiry === 0 ? NO_EXPIRY_TIMES : [oldExpiry],
      expiresAtMs === 0 ? NO_EXPIRY_TIMES : [expiresAtMs],
    );
    writes.push({
      key: storageKey,
      value: encodeSoleRecord(this.actorBytes, counter, timestamp, value, expiresAtMs, this.slab),
    });
    const durable = keyspace.durability === 'sync';
    const batchId = this.persist(writes, durable);
    const written: LocalWrite['written'] = replicate
      ? [{ key, record: soleRecord(this.actorId, counter, timestamp, value, expiresAtMs) }]
      : NOTHING_WRITTEN;
    return {
      ok: true,
      value: {
        results: [{ applied: true, previous: sole?.live ?? null, integer: 0n, length: 0 }],
        written,
      },
      // A durable batch is persisted after every earlier one, so the reply, which may carry
      // the old value (SET ... GET), waits for this batch only. A relaxed one waits for the
      // key's unsynced batch, if any (a relaxed batch marks none): looked up only here, a
      // hash spared on the durable SET.
      waitFor: durable ? batchId : this.unsynced.batchOf(storageKey),
    };
  }

  scan(
    keyspace: Keyspace,
    request: Extract<ClientRequest, { op: 'scan' }>,
    nowMs: number,
  ): Outcome<ScanPage> {
    const countMax = this.limits.scanCountMax;
    if (!(Number.isInteger(request.count) && request.count >= 1 && request.count <= countMax)) {
      return {
        ok: false,
        error: kvError(
          ErrorCode.INVALID_ARGUMENT,
          `scan count must be an integer from 1 to ${countMax}`,
        ),
      };
    }
    const prefix = dataPrefix(keyspace.id);
    let start = prefix;
    if (request.cursor !== null && request.cursor.length > 0) {
      if (request.cursor.length < CURSOR_HEADER_BYTES) {
        return { ok: false, error: kvError(ErrorCode.INVALID_ARGUMENT, 'invalid scan cursor') };
      }
      start = new Uint8Array(prefix.length + request.cursor.length);
      start.set(prefix);
      start.set(request.cursor, prefix.length);
    }
    // Examine at most `count` stored entries (a hint, as in Redis), plus one to learn
    // whether more follow.
    const entries = this.view.scan({
      start,
      end: dataPrefixEnd(keyspace.id),
      limit: request.count + 1,
    });
    const keys: Uint8Array[] = [];
    let cursor: Uint8Array | null = null;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (i === request.count) {
        cursor = entry.key.slice(prefix.length);
        break;
      }
      const userKey = entry.key.subarray(prefix.length + CURSOR_HEADER_BYTES);
      if (request.prefix !== null && !startsWith(userKey, request.prefix)) continue;
      if (request.match !== null && !globMatches(request.match, userKey)) continue;
      const record = decodeRecord(entry.value);
      if (liveSiblings(record, nowMs, keyspace.conflicts).length === 0) continue;
      keys.push(userKey.slice());
    }
    return { ok: true, value: { keys, cursor }, waitFor: 0 };
  }

  /**
   * The live keys of one partition after `afterKey` (exclusive; null: from its start), in key
   * order, at most `limit`, and whether the partition has more.
   */
  scanPartition(
    keyspace: Keyspace,
    partition: number,
    afterKey: Uint8Array | null,
    limit: number,
    nowMs: number,
  ): { keys: Uint8Array[]; more: boolean } {
    assert(limit >= 1, 'scan limit is at least 1');
    const prefix = dataPrefix(keyspace.id, partition);
    let start = prefix;
    if (afterKey !== null) {
      start = new Uint8Array(prefix.length + afterKey.length + 1);
      start.set(prefix);
      start.set(afterKey, prefix.length);
    }
    const entries = this.view.scan({ start, end: prefixEnd(prefix), limit: limit + 1 });
    const keys: Uint8Array[] = [];
    for (let i = 0; i < entries.length && i < limit; i++) {
      const entry = entries[i]!;
      const record = decodeRecord(entry.value);
      if (liveSiblings(record, nowMs, keyspace.conflicts).length === 0) continue;
      keys.push(entry.key.slice(prefix.length));
    }
    return { keys, more: entries.length > limit };
  }

  /**
   * Every record of one partition of a keyspace, as written last (persisted or not), in key
   * order: what anti-entropy builds a partition's tree from.
   */
  partitionRecords(
    keyspaceId: number,
    partition: number,
  ): { key: Uint8Array; record: StoredRecord }[] {
    const prefix = dataPrefix(keyspaceId, partition);
    const records: { key: Uint8Array; record: StoredRecord }[] = [];
    for (let start = prefix; ;) {
      const rows = this.view.scan({ start, end: prefixEnd(prefix), limit: COUNT_SCAN_CHUNK });
      for (const row of rows) {
        records.push({ key: row.key.slice(prefix.length), record: decodeRecord(row.value) });
      }
      if (rows.length < COUNT_SCAN_CHUNK) break;
      const last = rows[rows.length - 1]!.key;
      start = new Uint8Array(last.length + 1);
      start.set(last);
    }
    return records;
  }

  /**
   * Rows and bytes (keys and stored records) this node holds for one partition of a
   * keyspace, for a plan or a load count; undefined when it holds none or more than `rowsMax`.
   */
  partitionSize(
    keyspaceId: number,
    partition: number,
    rowsMax: number = SIZE_SCAN_ROWS_MAX,
  ): { keys: number; bytes: number } | undefined {
    const prefix = dataPrefix(keyspaceId, partition);
    const rows = this.view.scan({
      start: prefix,
      end: prefixEnd(prefix),
      limit: rowsMax === Number.MAX_SAFE_INTEGER ? rowsMax : rowsMax + 1,
    });
    if (rows.length === 0 || rows.length > rowsMax) return undefined;
    let bytes = 0;
    for (const row of rows) bytes += row.key.length - prefix.length + row.value.length;
    return { keys: rows.length, bytes };
  }

  count(keyspace: Keyspace, nowMs: number, partitions: ReadonlySet<number> | null): number {
    let count = 0;
    this.forEachLiveKey(keyspace, nowMs, (storageKey) => {
      if (partitions === null || partitions.has(partitionOfDataKey(storageKey))) count++;
    });
    return count;
  }

  /** Writes tombstones over every live key of a keyspace; answers how many there were. */
  flush(keyspace: Keyspace, nowMs: number): Outcome<number> {
    const targets: { storageKey: Uint8Array; record: StoredRecord }[] = [];
    this.forEachLiveKey(keyspace, nowMs, (storageKey, record) =>
      targets.push({ storageKey, record }),
    );
    let writes: StorageWrite[] = [];
    let lastBatchId = 0;
    const durable = keyspace.durability === 'sync';
    for (const { storageKey, record } of targets) {
      const tombstone = writeVersion(
        {
          record,
          mutation: { kind: 'delete' },
          context: null,
          nodeId: this.actorId,
          nowMs,
          clock: this.clock,
          policy: keyspace.conflicts,
          limits: this.limits,
        },
        null,
        0,
      );
      this.stageRecordWrite(writes, storageKey, record, tombstone);
      if (writes.length >= FLUSH_BATCH_WRITES_MAX) {
        lastBatchId = this.persist(writes, durable);
        writes = [];
      }
    }
    if (writes.length > 0) lastBatchId = this.persist(writes, durable);
    return { ok: true, value: targets.length, waitFor: durable ? lastBatchId : 0 };
  }

  // ---- what a replica does for a coordinator ----

  /** This node's record of a key, persisted or not. */
  readRecord(keyspace: Keyspace, key: Uint8Array): Outcome<StoredRecord | undefined> {
    return this.readAt(this.storageKeyOf(keyspace, key));
  }

  /**
   * Merges a record received from another replica into this node's copy. Answers the merged
   * record, and the batch to wait for before acknowledging (the merge's, or an earlier
   * unpersisted one whose state the merge contains).
   */
  mergeRecord(
    keyspace: Keyspace,
    key: Uint8Array,
    incoming: StoredRecord,
    nowMs: number,
  ): Outcome<StoredRecord> {
    return this.mergeAt(this.storageKeyOf(keyspace, key), keyspace, incoming, nowMs, true);
  }

  // ---- hints: what a fallback holds for an unreachable owner ----

  readHint(owner: string, keyspace: Keyspace, key: Uint8Array): Outcome<StoredRecord | undefined> {
    return this.readAt(hintKey(owner, this.storageKeyOf(keyspace, key)));
  }

  /** Stores (merges) a hint; refuses when the hint table is full. */
  mergeHint(
    owner: string,
    keyspace: Keyspace,
    key: Uint8Array,
    incoming: StoredRecord,
    hintsMax: number,
    nowMs: number,
  ): Outcome<StoredRecord> {
    const storageKey = hintKey(owner, this.storageKeyOf(keyspace, key));
    const exists = this.readAt(storageKey);
    if (exists.ok && exists.value === undefined && this.hints >= hintsMax) {
      return {
        ok: false,
        error: kvError(ErrorCode.OVERLOADED, `${this.hints} hints held, the limit is ${hintsMax}`),
      };
    }
    const outcome = this.mergeAt(storageKey, keyspace, incoming, nowMs, false);
    if (outcome.ok && exists.ok && exists.value === undefined) this.hints++;
    return outcome;
  }

  /** Up to `limit` hints held for `owner`, in key order. */
  hintsFor(owner: string, limit: number): HintEntry[] {
    const prefix = hintPrefix(owner);
    const entries = this.view.scan({ start: prefix, end: prefixEnd(prefix), limit });
    const hints: HintEntry[] = [];
    for (const entry of entries) {
      const record = decodeRecord(entry.value);
      const { dataKey: storageDataKey } = parseHintKey(entry.key);
      hints.push({
        keyspaceId: keyspaceIdOfDataKey(storageDataKey),
        key: storageDataKey.slice(1 + 6),
        record,
      });
    }
    return hints;
  }

  /** The owners this node holds hints for, with how many (bounded scan). */
  hintOwners(limit: number): Map<string, number> {
    const owners = new Map<string, number>();
    const entries = this.view.scan({ start: HINT_TABLE_START, end: HINT_TABLE_END, limit });
    for (const entry of entries) {
      const { owner } = parseHintKey(entry.key);
      owners.set(owner, (owners.get(owner) ?? 0) + 1);
    }
    return owners;
  }

  /**
   * Drops a hint once its owner has acknowledged `delivered`, unless the hint changed since
   * (a newer write arrived meanwhile, which a later handoff delivers).
   */
  dropHint(owner: string, keyspaceId: number, key: Uint8Array, delivered: StoredRecord): void {
    const partition = partitionOf(keyspaceId, key, this.partitionCount);
    const storageKey = hintKey(owner, dataKey(keyspaceId, partition, key));
    const current = this.readAt(storageKey);
    if (!current.ok || current.value === undefined) return;
    if (!recordsEqual(current.value, delivered)) return;
    this.persist([{ key: storageKey, value: null }], false);
    this.hints--;
  }

  /**
   * Removes keys of one partition outright, expiry index entries included: this node no
   * longer replicates the partition (a membership change gave it away). Not a delete: no
   * tombstone is left, since no read comes here for these keys any more. Not durable: a
   * removal lost in a crash is simply made again.
   */
  dropKeys(keyspaceId: number, partition: number, keys: readonly Uint8Array[]): void {
    const writes: StorageWrite[] = [];
    for (const key of keys) {
      const storageKey = dataKey(keyspaceId, partition, key);
      const record = this.readStored(storageKey);
      for (const expiresAtMs of expiryTimesOf(record)) {
        writes.push({ key: expiryKey(expiresAtMs, storageKey), value: null });
      }
      writes.push({ key: storageKey, value: null });
      this.onDataChange?.(storageKey, record, undefined);
    }
    if (writes.length > 0) this.persist(writes, false);
  }

  // ---- tombstone purges (docs/ANTI-ENTROPY.md, "Tombstones") ----

  /**
   * Up to `limit` stored rows of one partition after `afterKey` (exclusive; null: from its
   * start), in key order, each with its record as written last, persisted or not, and
   * whether the partition has more rows.
   */
  partitionRecordsAfter(
    keyspaceId: number,
    partition: number,
    afterKey: Uint8Array | null,
    limit: number,
  ): {
    records: { key: Uint8Array; record: StoredRecord }[];
    more: boolean;
    lastKey: Uint8Array | null;
  } {
    assert(limit >= 1, 'a page holds at least one row');
    const prefix = dataPrefix(keyspaceId, partition);
    let start = prefix;
    if (afterKey !== null) {
      start = new Uint8Array(prefix.length + afterKey.length + 1);
      start.set(prefix);
      start.set(afterKey, prefix.length);
    }
    const rows = this.view.scan({ start, end: prefixEnd(prefix), limit: limit + 1 });
    const records: { key: Uint8Array; record: StoredRecord }[] = [];
    let lastKey: Uint8Array | null = null;
    for (let i = 0; i < rows.length && i < limit; i++) {
      const row = rows[i]!;
      lastKey = row.key.slice(prefix.length);
      records.push({ key: lastKey, record: decodeRecord(row.value) });
    }
    return { records, more: rows.length > limit, lastKey };
  }

  /** Whether this node holds a hint for the key for any of `owners`. */
  holdsHintFor(owners: readonly string[], keyspaceId: number, key: Uint8Array): boolean {
    if (this.hints === 0) return false;
    const storageKey = dataKey(keyspaceId, partitionOf(keyspaceId, key, this.partitionCount), key);
    for (const owner of owners) {
      const hint = this.readAt(hintKey(owner, storageKey));
      if (hint.ok && hint.value !== undefined) return true;
    }
    return false;
  }

  /**
   * Removes a key's row, with no tombstone left behind, if its record as written last is
   * exactly `expected`; anything else (a write that came since, a row already gone) is
   * kept. Answers whether the row was removed. Not durable: a removal lost in a crash
   * leaves the tombstone, which a later round purges again.
   */
  purgeIfEqual(keyspaceId: number, key: Uint8Array, expected: StoredRecord): boolean {
    const storageKey = dataKey(keyspaceId, partitionOf(keyspaceId, key, this.partitionCount), key);
    const current = this.readAt(storageKey);
    assert(current.ok, 'a local read cannot fail');
    if (current.value === undefined || !recordsEqual(current.value, expected)) return false;
    const writes: StorageWrite[] = [];
    for (const expiresAtMs of expiryTimesOf(current.value)) {
      writes.push({ key: expiryKey(expiresAtMs, storageKey), value: null });
    }
    writes.push({ key: storageKey, value: null });
    this.onDataChange?.(storageKey, current.value, undefined);
    this.persist(writes, false);
    return true;
  }

  // ---- ticks: expiry ----

  tick(nowMs: number): void {
    const expired = this.view.scan({
      start: EXPIRY_TABLE_START,
      end: expiryKeyAfter(nowMs),
      limit: this.limits.expiryPurgePerTickMax,
    });
    if (expired.length === 0) return;
    const writes: StorageWrite[] = [];
    const done = new Set<string>();
    for (const entry of expired) {
      const { expiresAtMs, dataKey: storageKey } = parseExpiryKey(entry.key);
      writes.push({ key: entry.key, value: null });
      const keyString = bytesToKeyString(storageKey);
      if (done.has(keyString)) continue;
      done.add(keyString);
      const record = this.readStored(storageKey);
      if (record === undefined) continue;
      // Expiry turns the expired versions into tombstones with the same dots: it is not a
      // new write, and every replica reaches the same record on its own.
      let changed = false;
      const siblings = record.siblings.map((sibling) => {
        if (sibling.value === null || sibling.expiresAtMs === 0 || sibling.expiresAtMs > nowMs) {
          return sibling;
        }
        changed = true;
        return { ...sibling, value: null, expiresAtMs: 0 };
      });
      if (!changed || !siblings.some((s) => s.expiresAtMs === expiresAtMs || s.value === null))
        continue;
      const next: StoredRecord = { context: record.context, siblings };
      writes.push({ key: storageKey, value: encodeRecord(next, this.slab) });
      this.onDataChange?.(storageKey, record, next);
    }
    // The purge need not be durable: if it is lost, the index entries are still there and a
    // later tick does it again.
    this.persist(writes, false);
  }

  // ---- persistence ----

  persisted(batchId: number): void {
    assert(batchId === this.persistedBatchId + 1, `batch ${batchId} persisted out of order`);
    assert(batchId < this.nextBatchId, `batch ${batchId} was never emitted`);
    this.persistedBatchId = batchId;
    this.unsynced.persisted(batchId);
  }

  /** The id of the last batch emitted (0: none yet). */
  get lastBatchId(): number {
    return this.nextBatchId - 1;
  }

  /**
   * Writes rows of a table the store does not interpret, atomically in a batch of their own;
   * they read back through `readRow` at once. Answers the batch id.
   */
  persistRows(writes: StorageWrite[], durable: boolean): number {
    return this.persist(writes, durable, false);
  }

  /**
   * Every row in [start, end) as written last, persisted or not, in key order. Meant for
   * small ranges and start-up: it reads the whole range.
   */
  scanRows(start: Uint8Array, end: Uint8Array): StorageWrite[] {
    const rows: StorageWrite[] = [];
    for (let from = start; ;) {
      const entries = this.view.scan({ start: from, end, limit: COUNT_SCAN_CHUNK });
      for (const entry of entries) rows.push(entry);
      if (entries.length < COUNT_SCAN_CHUNK) break;
      const last = entries[entries.length - 1]!.key;
      from = new Uint8Array(last.length + 1);
      from.set(last);
    }
    return rows;
  }

  /** A row as written last, persisted or not. */
  readRow(storageKey: Uint8Array): Uint8Array | undefined {
    return this.view.get(storageKey);
  }

  /**
   * Starts a new life of this node as a writer of versions: from now on its dots carry a
   * name that no earlier life used (the node id in the first life, then `id~2`, `id~3`...).
   * A coordinator sends a new version to the replicas while its own copy is still being
   * written; if it crashes before that copy is durable, it comes back without the dot it
   * issued, and would issue the same dot again to other content, which the replicas would
   * take for the version they hold. Answers the batch that makes the new life durable: no
   * version of it may leave the node before then.
   */
  beginIncarnation(): number {
    const stored = this.view.get(INCARNATION_META_KEY);
    const previous = stored === undefined ? 0 : Number(fromUtf8(stored));
    assert(Number.isSafeInteger(previous) && previous >= 0, 'the stored incarnation is a count');
    const incarnation = previous + 1;
    this.incarnation = incarnation;
    this.actorId = incarnation === 1 ? this.nodeId : `${this.nodeId}~${incarnation}`;
    this.actorBytes = utf8(this.actorId);
    return this.persist(
      [{ key: INCARNATION_META_KEY, value: utf8(String(incarnation)) }],
      true,
      false,
    );
  }

  /** Writes arbitrary meta entries (the cluster map) in a batch of their own. */
  persistMeta(name: string, value: Uint8Array, durable: boolean): number {
    return this.persist([{ key: metaKey(name), value }], durable, false);
  }

  readMeta(name: string): Uint8Array | undefined {
    return this.view.get(metaKey(name));
  }

  /**
   * Emits a persist effect and returns its batch id. The shell stages it in storage as the
   * step returns: from then on reads see it. Until a durable batch is persisted, reads of
   * its keys through `readAt` wait for it, unless `readsWait` is false (rows and meta
   * entries, whose readers do not wait).
   */
  private persist(writes: StorageWrite[], durable: boolean, readsWait = true): number {
    const batchId = this.nextBatchId++;
    if (durable && readsWait) for (const write of writes) this.unsynced.mark(write.key, batchId);
    this.emitPersist(batchId, writes, durable);
    return batchId;
  }

  private emitPersist(batchId: number, writes: StorageWrite[], durable: boolean): void {
    assert(batchId === this.nextBatchId - 1, 'a batch is emitted as it is numbered');
    // A batch whose timestamps may pass the stored ceiling raises it, in the same batch: a
    // record cannot survive a crash without the ceiling that covers its timestamp.
    if (this.clock.last()[0] >= this.hlcCeilingMs) {
      this.hlcCeilingMs = this.clock.last()[0] + HLC_CEILING_AHEAD_MS;
      writes.push({ key: HLC_META_KEY, value: encodeHlc([this.hlcCeilingMs, 0]) });
    }
    this.persists.push({ type: 'persist', batchId, writes, durable });
    this.view.add(writes);
  }

  private readAt(storageKey: Uint8Array): Outcome<StoredRecord | undefined> {
    const waitFor = this.unsynced.batchOf(storageKey);
    return { ok: true, value: this.readStored(storageKey), waitFor };
  }

  private mergeAt(
    storageKey: Uint8Array,
    keyspace: Keyspace,
    incoming: StoredRecord,
    nowMs: number,
    isData: boolean,
  ): Outcome<StoredRecord> {
    const current = this.readAt(storageKey);
    assert(current.ok, 'a local read cannot fail');
    // Timestamps seen from other nodes move this node's clock on (HLC receive rule).
    for (const sibling of incoming.siblings) this.clock.observe(sibling.timestamp, nowMs);
    if (current.value !== undefined && recordDescends(current.value, incoming)) {
      return { ok: true, value: current.value, waitFor: current.waitFor };
    }
    const merged = mergeRecords(current.value, incoming)!;
    const writes: StorageWrite[] = [];
    if (isData) {
      this.stageRecordWrite(writes, storageKey, current.value, merged);
    } else {
      writes.push({ key: storageKey, value: encodeRecord(merged, this.slab) });
    }
    const durable = keyspace.durability === 'sync';
    const batchId = this.persist(writes, durable);
    return { ok: true, value: merged, waitFor: durable ? batchId : current.waitFor };
  }

  /** Adds the writes that store `after` in place of `before`, expiry index included. */
  private stageRecordWrite(
    writes: StorageWrite[],
    storageKey: Uint8Array,
    before: StoredRecord | undefined,
    after: StoredRecord,
  ): void {
    this.stageExpiryChanges(writes, storageKey, expiryTimesOf(before), expiryTimesOf(after));
    writes.push({ key: storageKey, value: encodeRecord(after, this.slab) });
    this.onDataChange?.(storageKey, before, after);
  }

  /** Adds the expiry index's entries for times that appear or disappear with a write. */
  private stageExpiryChanges(
    writes: StorageWrite[],
    storageKey: Uint8Array,
    beforeExpiries: readonly number[],
    afterExpiries: readonly number[],
  ): void {
    for (const expiresAtMs of beforeExpiries) {
      if (!afterExpiries.includes(expiresAtMs)) {
        writes.push({ key: expiryKey(expiresAtMs, storageKey), value: null });
      }
    }
    for (const expiresAtMs of afterExpiries) {
      if (!beforeExpiries.includes(expiresAtMs)) {
        writes.push({ key: expiryKey(expiresAtMs, storageKey), value: new Uint8Array(0) });
      }
    }
  }

  /** Visits every live key of a keyspace, in storage order. */
  private forEachLiveKey(
    keyspace: Keyspace,
    nowMs: number,
    visit: (storageKey: Uint8Array, record: StoredRecord) => void,
  ): void {
    const end = dataPrefixEnd(keyspace.id);
    let start = dataPrefix(keyspace.id);
    for (;;) {
      const entries = this.view.scan({ start, end, limit: COUNT_SCAN_CHUNK });
      for (const entry of entries) {
        const record = decodeRecord(entry.value);
        if (liveSiblings(record, nowMs, keyspace.conflicts).length > 0) visit(entry.key, record);
      }
      if (entries.length < COUNT_SCAN_CHUNK) break;
      const last = entries[entries.length - 1]!.key;
      start = new Uint8Array(last.length + 1);
      start.set(last);
    }
  }

  private readStored(storageKey: Uint8Array, keyString?: string): StoredRecord | undefined {
    const bytes = this.view.get(storageKey, keyString);
    // Storage is ours: a record that does not decode is corruption, and must stop the node
    // rather than be served or overwritten (decodeRecord throws).
    return bytes === undefined ? undefined : decodeRecord(bytes);
  }

  private storageKeyOf(keyspace: Keyspace, key: Uint8Array): Uint8Array {
    return dataKey(keyspace.id, partitionOf(keyspace.id, key, this.partitionCount), key);
  }

  checkKeys(keys: readonly Uint8Array[]): KvError | null {
    const limits = this.limits;
    if (keys.length > limits.keysPerRequestMax) {
      return kvError(
        ErrorCode.INVALID_ARGUMENT,
        `${keys.length} keys in one request, the limit is ${limits.keysPerRequestMax}`,
      );
    }
    for (const key of keys) {
      if (key.length === 0) return kvError(ErrorCode.KEY_EMPTY, 'keys must not be empty');
      if (key.length > limits.keyBytesMax) {
        return kvError(
          ErrorCode.KEY_TOO_LARGE,
          `key is ${key.length} bytes, the limit is ${limits.keyBytesMax}`,
        );
      }
    }
    return null;
  }

  checkWriteItems(items: readonly WriteItem[]): KvError | null {
    const keyError = this.checkKeys(items.map((item) => item.key));
    if (keyError !== null) return keyError;
    const valueBytesMax = this.limits.valueBytesMax;
    for (const { mutation } of items) {
      const bytes =
        mutation.kind === 'set'
          ? mutation.value.length
          : mutation.kind === 'append'
            ? mutation.suffix.length
            : 0;
      if (bytes > valueBytesMax) {
        return kvError(
          ErrorCode.VALUE_TOO_LARGE,
          `value is ${bytes} bytes, the limit is ${valueBytesMax}`,
        );
      }
      if (mutation.kind === 'set' || mutation.kind === 'expire') {
        const expiry = mutation.expiry;
        if (
          (expiry.kind === 'at' && !(Number.isSafeInteger(expiry.atMs) && expiry.atMs > 0)) ||
          (expiry.kind === 'after' && !(Number.isSafeInteger(expiry.ms) && expiry.ms > 0))
        ) {
          return kvError(ErrorCode.INVALID_ARGUMENT, 'invalid expire time');
        }
      }
    }
    return null;
  }
}

const NO_EXPIRY_TIMES: readonly number[] = [];

/** The distinct nonzero expiry times of a record's siblings. */
function expiryTimesOf(record: StoredRecord | undefined): readonly number[] {
  if (record === undefined) return NO_EXPIRY_TIMES;
  let times: number[] | null = null;
  for (const sibling of record.siblings) {
    if (sibling.expiresAtMs === 0) continue;
    times ??= [];
    if (!times.includes(sibling.expiresAtMs)) times.push(sibling.expiresAtMs);
  }
  return times ?? NO_EXPIRY_TIMES;
}

export function readResultOf(
  record: StoredRecord | undefined,
  nowMs: number,
  policy: ConflictPolicy,
): ReadResult {
  const live = liveSiblings(record, nowMs, policy);
  const winner = live[0];
  return {
    value: winner?.value ?? null,
    expiresAtMs: winner?.expiresAtMs ?? 0,
    context: record === undefined ? new Uint8Array(0) : encodeContext(record.context),
    siblings: live.map((sibling) => ({ value: sibling.value!, timestamp: sibling.timestamp })),
  };
}

export const ABSENT: ReadResult = {
  value: null,
  expiresAtMs: 0,
  context: new Uint8Array(0),
  siblings: [],
};

export function winnerOnlyOf(
  record: StoredRecord | undefined,
  nowMs: number,
  policy: ConflictPolicy,
): ReadResult {
  const winner = winningSibling(record, nowMs, policy);
  if (winner === null) return ABSENT;
  return {
    value: winner.value,
    expiresAtMs: winner.expiresAtMs,
    context: ABSENT.context,
    siblings: [],
  };
}

function partitionOfDataKey(storageKey: Uint8Array): number {
  return (storageKey[5]! << 8) | storageKey[6]!;
}

function keyspaceIdOfDataKey(storageKey: Uint8Array): number {
  return (
    ((storageKey[1]! << 24) | (storageKey[2]! << 16) | (storageKey[3]! << 8) | storageKey[4]!) >>> 0
  );
}

function encodeHlc(timestamp: HlcTimestamp): Uint8Array {
  return new ByteWriter(16).varint(timestamp[0]).varint(timestamp[1]).finish();
}

function readHlc(view: StorageReader): HlcTimestamp {
  const bytes = view.get(HLC_META_KEY);
  if (bytes === undefined) return [0, 0];
  const reader = new ByteReader(bytes);
  return [reader.varint(), reader.varint()];
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (prefix.length > bytes.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** The causal context of a write item: null if it has none, an error if it does not decode. */
function decodeItemContext(item: WriteItem): VersionVector | KvError | null {
  if (item.context === undefined || item.context.length === 0) return null;
  try {
    return decodeContext(item.context);
  } catch (error) {
    const reason = error instanceof DecodeError ? error.message : String(error);
    return kvError(ErrorCode.INVALID_CONTEXT, `bad causal context: ${reason}`);
  }
}
