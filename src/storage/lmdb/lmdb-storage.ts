// The LMDB storage engine: a write-ahead log in front of an LMDB B-tree (the `lmdb` package:
// LMDB through an N-API addon with prebuilt binaries).
//
// Why a log. LMDB's copy-on-write B-tree makes a commit of k random keys rewrite about k
// pages and fsync them: tens of microseconds of CPU and milliseconds of sync per small
// batch. So a commit is first appended to the write-ahead log (../wal/), one sequential
// write and, if durable, one fdatasync; its writes go into the memtable, which reads consult
// before LMDB. When the memtable or the log since the last checkpoint grows past its bound,
// a checkpoint writes the memtable into LMDB in key order, in chunks of one transaction
// each, records the last sequence it holds in the `meta` database, waits for LMDB's sync,
// and frees the log segments it covers. A crash loses nothing acknowledged: at open, the
// log is replayed from the sequence after the checkpoint. Replaying a batch that partly
// reached LMDB is harmless: every write sets a key's whole value.
//
// Durability per commit: a durable commit resolves after the log's fdatasync; a relaxed one
// once its frame is written to the file (so a crash of the process loses nothing, a crash
// of the machine may lose the last relaxed batches, never part of one, never out of order).
//
// Long keys: lmdb-js is built with LMDB's key limit of 1978 bytes, while ringkv keys reach
// 8 KiB. A key longer than DIRECT_KEY_BYTES_MAX is stored under its first bytes plus the
// SHA-256 of the whole key, always exactly LONG_KEY_STORED_BYTES long, and its value carries
// the full key in front. Such keys keep their place in the order by their first 1878 bytes;
// among keys that share all of those, the order is by hash. Scans still return every key
// exactly once, with its full bytes. The log and the memtable hold the stored form too, so
// all three agree on the order.

import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { assert, bytesToKeyString } from '../../core/bytes.ts';
import { checkScanLimit } from '../contract.ts';
import type { CommitOptions, KeyRange, Storage, StorageEntry, StorageWrite } from '../contract.ts';
import { DEFAULT_WAL_OPTIONS, WriteAheadLog, type WalOptions } from '../wal/write-ahead-log.ts';
import { INLINE_VALUE_BYTES_MAX, Memtable } from './memtable.ts';
import { ReadCache } from './read-cache.ts';

const DIRECT_KEY_BYTES_MAX = 1910;
const HASH_BYTES = 32;
const LONG_KEY_STORED_BYTES = DIRECT_KEY_BYTES_MAX + 1;
const LONG_KEY_PREFIX_BYTES = LONG_KEY_STORED_BYTES - HASH_BYTES;

function storedKeyOf(key: Uint8Array): Buffer {
  // lmdb-js copies binary keys with Uint8Array.prototype.set, so a plain Uint8Array serves
  // as is: no Buffer view is made on the hot path of every read.
  if (key.length <= DIRECT_KEY_BYTES_MAX) return key as Buffer;
  const stored = Buffer.allocUnsafe(LONG_KEY_STORED_BYTES);
  stored.set(key.subarray(0, LONG_KEY_PREFIX_BYTES), 0);
  createHash('sha256').update(key).digest().copy(stored, LONG_KEY_PREFIX_BYTES);
  return stored;
}

function storedValueOf(key: Uint8Array, value: Uint8Array): Buffer {
  // lmdb-js takes any Uint8Array as a binary value.
  if (key.length <= DIRECT_KEY_BYTES_MAX) return value as Buffer;
  const stored = Buffer.allocUnsafe(4 + key.length + value.length);
  stored.writeUInt32BE(key.length, 0);
  stored.set(key, 4);
  stored.set(value, 4 + key.length);
  return stored;
}

/** The (key, value) a stored entry stands for. */
function entryOf(storedKey: Uint8Array, storedValue: Uint8Array): StorageEntry {
  if (storedKey.length !== LONG_KEY_STORED_BYTES) return { key: storedKey, value: storedValue };
  const view = Buffer.from(storedValue.buffer, storedValue.byteOffset, storedValue.length);
  const keyLength = view.readUInt32BE(0);
  return { key: view.subarray(4, 4 + keyLength), value: view.subarray(4 + keyLength) };
}

/** Bytes of values the read cache keeps. */
export const READ_CACHE_BYTES_MAX = 64 * 1024 * 1024;

export interface LmdbStorageOptions {
  readonly wal: WalOptions;
  /** Memtable bytes that start a checkpoint; at twice this, commits wait for it. */
  readonly memtableBytesMax: number;
  /**
   * Log bytes written since the last checkpoint that start the next one. With values
   * written in place the memtable stops growing under a load that rewrites keys, and this
   * bound starts the checkpoints, each of which writes every key of the memtable: 256 MiB
   * (four times the memtable's bound) makes them rarer than 96 MiB did, for a replay at
   * restart of up to 256 MiB (docs/STORAGE.md).
   */
  readonly logBytesPerCheckpoint: number;
}

export const DEFAULT_LMDB_STORAGE_OPTIONS: LmdbStorageOptions = {
  wal: DEFAULT_WAL_OPTIONS,
  memtableBytesMax: 64 * 1024 * 1024,
  logBytesPerCheckpoint: 256 * 1024 * 1024,
};

/** Keys written to LMDB per checkpoint transaction: the event loop runs between them. */
const CHECKPOINT_CHUNK_KEYS = 2048;
const CHECKPOINT_META_KEY = 'checkpoint-seq';

export class LmdbStorage implements Storage {
  private readonly root: RootDatabase;
  private readonly data: Database<Buffer, Buffer>;
  private readonly meta: Database<number, string>;
  private readonly log: WriteAheadLog;
  private readonly options: LmdbStorageOptions;
  /** Values read from LMDB; replaced whole when each checkpoint starts (read-cache.ts). */
  private cache = new ReadCache(READ_CACHE_BYTES_MAX);
  /** Takes new writes. */
  private active = new Memtable();
  /** Being written into LMDB by the checkpoint in progress. */
  private frozen: Memtable | null = null;
  /**
   * What the last checkpoint wrote, kept as a cache of those values until the next one
   * starts: they are LMDB's values too, and the keys written most are read most. Without
   * it, each key's first write after a checkpoint read its record back from LMDB, a B-tree
   * walk through the native bridge (about 4% of a node's main thread under a SET load).
   * It never coexists with `frozen`, so the memory bound stays as it was.
   */
  private retired: Memtable | null = null;
  private lmdbReads = 0;
  /** Batches staged since the last commit, in the memtable and not yet in the log. */
  private staged: StorageWrite[] = [];
  private checkpointing: Promise<void> | null = null;
  private logBytesAtCheckpoint = 0;
  private failure: Error | null = null;
  private closed = false;
  private checkpointsTotal = 0;

  private constructor(
    root: RootDatabase,
    data: Database<Buffer, Buffer>,
    meta: Database<number, string>,
    log: WriteAheadLog,
    options: LmdbStorageOptions,
  ) {
    this.root = root;
    this.data = data;
    this.meta = meta;
    this.log = log;
    this.options = options;
  }

  static async open(
    dataDir: string,
    options: LmdbStorageOptions = DEFAULT_LMDB_STORAGE_OPTIONS,
  ): Promise<LmdbStorage> {
    mkdirSync(dataDir, { recursive: true });
    const root = open({
      path: dataDir,
      // lmdb-js takes a path with an extension ("data.v2") as a file; ours is a directory.
      noSubdir: false,
      overlappingSync: true,
      separateFlushed: true,
      // The map grows on demand (lmdb-js remaps); this is only the first reservation.
      mapSize: 1024 * 1024 * 1024,
    });
    const data = root.openDB<Buffer, Buffer>({
      name: 'data',
      keyEncoding: 'binary',
      encoding: 'binary',
    });
    const meta = root.openDB<number, string>({ name: 'meta', encoding: 'ordered-binary' });
    const checkpointSeq = meta.get(CHECKPOINT_META_KEY) ?? 0;
    const { log, recovered } = await WriteAheadLog.open(
      path.join(dataDir, 'wal'),
      checkpointSeq,
      options.wal,
    );
    const storage = new LmdbStorage(root, data, meta, log, options);
    for (const batch of recovered) storage.applyToMemtable(batch.writes.map(keepableWrite));
    storage.maybeCheckpoint();
    return storage;
  }

  get(key: Uint8Array, keyString?: string): Uint8Array | undefined {
    if (key.length > DIRECT_KEY_BYTES_MAX) {
      const storedKey = storedKeyOf(key);
      const stored = this.getStored(storedKey);
      if (stored === undefined) return undefined;
      const entry = entryOf(storedKey, stored);
      return Buffer.compare(Buffer.from(entry.key), Buffer.from(key)) === 0
        ? entry.value
        : undefined;
    }
    return this.getStored(key, keyString);
  }

  scan(range: KeyRange): StorageEntry[] {
    checkScanLimit(range.limit);
    const found: StorageEntry[] = [];
    if (range.limit === 0) return found;
    const start = storedKeyOf(range.start);
    const end = range.end === null ? undefined : storedKeyOf(range.end);
    const reverse = range.reverse === true;
    const startString = bytesToKeyString(start);
    const endString = end === undefined ? null : bytesToKeyString(end);
    // Newest first: on a key present in several, the first one's value wins.
    const cursors: Cursor[] = [];
    for (const memtable of [this.active, this.frozen]) {
      if (memtable !== null && memtable.size > 0) {
        cursors.push(new Cursor(memtable.range(startString, endString, reverse)));
      }
    }
    const lmdbRange = this.data.getRange(
      reverse
        ? {
            start: end,
            end: start,
            reverse: true,
            inclusiveEnd: true,
            exclusiveStart: end !== undefined,
          }
        : { start, end },
    );
    const lmdbEntries = lmdbRange[Symbol.iterator]();
    cursors.push(new Cursor(lmdbPairs(lmdbEntries)));
    try {
      while (found.length < range.limit) {
        let next: string | null = null;
        for (const cursor of cursors) {
          const key = cursor.key;
          if (key !== null && (next === null || (reverse ? key > next : key < next))) next = key;
        }
        if (next === null) break;
        let value: Uint8Array | null | undefined;
        for (const cursor of cursors) {
          if (cursor.key !== next) continue;
          if (value === undefined) value = cursor.value;
          cursor.advance();
        }
        if (value !== undefined && value !== null)
          found.push(entryOf(Buffer.from(next, 'latin1'), value));
      }
    } finally {
      lmdbEntries.return?.();
    }
    return found;
  }

  stage(writes: readonly StorageWrite[]): void {
    if (this.failure !== null) throw this.failure;
    if (this.closed) throw new Error('storage is closed');
    const stored = storedWritesOf(writes);
    this.applyToMemtable(stored);
    for (const write of stored) this.staged.push(write);
  }

  async commit(writes: readonly StorageWrite[], options: CommitOptions): Promise<void> {
    if (this.failure !== null) throw this.failure;
    if (this.closed) throw new Error('storage is closed');
    const own = storedWritesOf(writes);
    let stored = own;
    if (this.staged.length > 0) {
      stored = this.staged;
      this.staged = [];
      for (const write of own) stored.push(write);
    }
    const { done } = this.log.append(stored, options.durable, options.syncInline === true);
    this.applyToMemtable(own);
    this.maybeCheckpoint();
    await done;
    // Bounded memory: past twice its bound, the memtable waits for the checkpoint.
    while (this.checkpointing !== null && this.active.bytes >= 2 * this.options.memtableBytesMax) {
      await this.checkpointing;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.checkpointing;
    // Staged batches are in the memtable: the log must hold them before a checkpoint may
    // write it (see checkpoint).
    if (this.failure === null && this.staged.length > 0) {
      const staged = this.staged;
      this.staged = [];
      await this.log.append(staged, true).done;
    }
    if (this.failure === null && this.active.size > 0) await this.checkpoint();
    await this.log.close();
    await this.root.close();
  }

  /** What the engine holds in memory and on its log, for status and tests. */
  stats(): {
    memtableKeys: number;
    memtableBytes: number;
    checkpoints: number;
    logSegments: number;
    /** Point reads that went to LMDB (missed the memtables and the read cache). */
    lmdbReads: number;
  } {
    const older = this.frozen ?? this.retired;
    return {
      memtableKeys: this.active.size + (older?.size ?? 0),
      memtableBytes: this.active.bytes + (older?.bytes ?? 0),
      checkpoints: this.checkpointsTotal,
      logSegments: this.log.files().chain.length,
      lmdbReads: this.lmdbReads,
    };
  }

  /** `keyString`: bytesToKeyString(storedKey), if the caller has it. */
  private getStored(storedKey: Uint8Array, keyString?: string): Uint8Array | undefined {
    let stored = this.active.get(storedKey);
    // At most one of the two is there: the checkpoint in progress, or the last one.
    const older = this.frozen ?? this.retired;
    if (stored === undefined && older !== null) stored = older.get(storedKey);
    if (stored !== undefined) return stored ?? undefined;
    keyString ??= bytesToKeyString(storedKey);
    const cached = this.cache.get(keyString);
    if (cached !== undefined) return cached;
    this.lmdbReads++;
    // getBinary copies out of the map, so the bytes stay valid after later writes.
    const fromLmdb = this.data.getBinary(storedKey as Buffer);
    if (fromLmdb !== undefined) this.cache.set(keyString, fromLmdb);
    return fromLmdb;
  }

  private applyToMemtable(writes: readonly StorageWrite[]): void {
    for (const write of writes) {
      // Long keys were rewritten by storedWriteOf, which drops the caller's key string.
      // A cached LMDB value of this key is stale from now on, but the memtable hides it
      // until the checkpoint that writes the new value to LMDB drops the cache.
      this.active.set(write.key, write.value, write.keyString);
    }
  }

  private maybeCheckpoint(): void {
    if (this.checkpointing !== null || this.closed || this.failure !== null) return;
    // The next commit logs the staged batches and calls again (see checkpoint).
    if (this.staged.length > 0) return;
    const logBytes = this.log.bytesAppended - this.logBytesAtCheckpoint;
    if (
      this.active.bytes < this.options.memtableBytesMax &&
      logBytes < this.options.logBytesPerCheckpoint
    ) {
      return;
    }
    this.checkpointing = this.checkpoint().then(
      () => {
        this.checkpointing = null;
        this.maybeCheckpoint();
      },
      (error: unknown) => {
        this.checkpointing = null;
        this.failure = new Error(
          `checkpoint into LMDB failed: ${error instanceof Error ? error.message : String(error)}`,
        );
      },
    );
  }

  /** Writes the memtable into LMDB and frees the log it covered. */
  private async checkpoint(): Promise<void> {
    // Only logged writes may be checkpointed: a staged batch that a checkpoint cut short had
    // partly written into LMDB would survive a crash in part, with no log frame to replay.
    assert(this.staged.length === 0, 'a checkpoint starts with nothing staged');
    const frozen = this.active;
    // The cache may hold values older than the retired memtable's, which hid them until now:
    // both go. From here the frozen memtable hides the cache's values of the keys it holds,
    // and LMDB's values of every other key stay as they are until the next checkpoint.
    this.retired = null;
    this.cache = new ReadCache(READ_CACHE_BYTES_MAX);
    frozen.freeze();
    this.frozen = frozen;
    this.active = new Memtable();
    const throughSeq = this.log.lastSeq;
    this.logBytesAtCheckpoint = this.log.bytesAppended;
    // Asynchronous puts: the main thread only queues each one (key copied, value by
    // reference: the frozen memtable keeps it alive), and LMDB's write thread does the
    // B-tree work. Puts of one event-loop turn share a transaction; awaiting each chunk's
    // commit keeps the turns, and so the transactions, at CHECKPOINT_CHUNK_KEYS keys.
    let queued = 0;
    for (const { key, value } of frozen.records()) {
      // lmdb-js copies a binary key with Uint8Array.prototype.set: a view serves as is.
      const committed =
        value === null
          ? this.data.remove(key as Buffer)
          : this.data.put(key as Buffer, value as Buffer);
      if (++queued % CHECKPOINT_CHUNK_KEYS === 0) await committed;
    }
    // Batches commit in the order they were queued: the sequence lands after the data.
    await this.meta.put(CHECKPOINT_META_KEY, throughSeq);
    await this.root.flushed;
    // LMDB now holds the frozen memtable's values; it goes on hiding the cache's older ones.
    this.retired = frozen;
    this.frozen = null;
    this.log.release(throughSeq);
    this.checkpointsTotal++;
  }
}

/** A sorted source of (key string, value) pairs for the scan merge. */
class Cursor {
  key: string | null = null;
  value: Uint8Array | null = null;
  private readonly source: Iterator<[string, Uint8Array | null]>;

  constructor(source: Iterator<[string, Uint8Array | null]>) {
    this.source = source;
    this.advance();
  }

  advance(): void {
    const next = this.source.next();
    if (next.done === true) {
      this.key = null;
      this.value = null;
    } else {
      [this.key, this.value] = next.value;
    }
  }
}

function* lmdbPairs(
  entries: Iterator<{ key: Buffer; value: Buffer }>,
): Generator<[string, Uint8Array]> {
  for (let next = entries.next(); next.done !== true; next = entries.next()) {
    // getRange hands out buffers that later reads may reuse: copy the value.
    yield [bytesToKeyString(next.value.key), Buffer.from(next.value.value)];
  }
}

/**
 * A recovered write as the memtable may keep it: the memtable copies keys and small values
 * into its arena but keeps large values as they come, and a recovered one is a view into a
 * whole log segment (RecoveredBatch).
 */
export function keepableWrite(write: StorageWrite): StorageWrite {
  if (write.value === null || write.value.length <= INLINE_VALUE_BYTES_MAX) return write;
  // A copy: on a Buffer, slice() is a view too.
  return { key: write.key, value: new Uint8Array(write.value) };
}

/** `writes` with long keys in their stored form; most batches have none and go as they are. */
function storedWritesOf(writes: readonly StorageWrite[]): StorageWrite[] {
  for (const write of writes) {
    if (write.key.length > DIRECT_KEY_BYTES_MAX) return writes.map(storedWriteOf);
  }
  return writes as StorageWrite[];
}

function storedWriteOf(write: StorageWrite): StorageWrite {
  if (write.key.length <= DIRECT_KEY_BYTES_MAX) return write;
  return {
    key: storedKeyOf(write.key),
    value: write.value === null ? null : storedValueOf(write.key, write.value),
  };
}
