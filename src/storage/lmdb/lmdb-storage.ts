// The LMDB storage engine (the `lmdb` package: LMDB through an N-API addon with prebuilt
// binaries). One environment, one database, binary keys and values.
//
// Durability per commit: every commit is one LMDB write transaction, queued in call order by
// lmdb-js. With `overlappingSync` (LMDB's default on Linux here) a transaction becomes
// visible first and is fsynced right after; `separateFlushed` lets us wait for either. A
// relaxed commit resolves when visible; a durable one when `flushed` resolves, i.e. after the
// fsync. Relaxed commits are therefore still synced within milliseconds, and never reordered
// or torn: LMDB's copy-on-write B-tree keeps every transaction atomic across a crash.
//
// Long keys: lmdb-js is built with LMDB's key limit of 1978 bytes, while ringkv keys reach
// 8 KiB. A key longer than DIRECT_KEY_BYTES_MAX is stored under its first bytes plus the
// SHA-256 of the whole key, always exactly LONG_KEY_STORED_BYTES long, and its value carries
// the full key in front. Such keys keep their place in the order by their first 1878 bytes;
// among keys that share all of those, the order is by hash. Scans still return every key
// exactly once, with its full bytes.

import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, type RootDatabase } from 'lmdb';
import { bytesToKeyString } from '../../core/bytes.ts';
import { ReadCache } from './read-cache.ts';
import type { CommitOptions, KeyRange, Storage, StorageEntry, StorageWrite } from '../contract.ts';

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

export class LmdbStorage implements Storage {
  private readonly db: RootDatabase<Buffer, Buffer>;
  private readonly cache = new ReadCache(READ_CACHE_BYTES_MAX);
  private closed = false;

  private constructor(db: RootDatabase<Buffer, Buffer>) {
    this.db = db;
  }

  static open(dataDir: string): Promise<LmdbStorage> {
    mkdirSync(dataDir, { recursive: true });
    const db = open<Buffer, Buffer>({
      path: dataDir,
      keyEncoding: 'binary',
      encoding: 'binary',
      overlappingSync: true,
      separateFlushed: true,
      // The map grows on demand (lmdb-js remaps); this is only the first reservation.
      mapSize: 1024 * 1024 * 1024,
    });
    return Promise.resolve(new LmdbStorage(db));
  }

  get(key: Uint8Array): Uint8Array | undefined {
    if (key.length <= DIRECT_KEY_BYTES_MAX) {
      const keyString = bytesToKeyString(key);
      const cached = this.cache.get(keyString);
      if (cached !== undefined) return cached;
      // getBinary copies out of the map, so the bytes stay valid after later writes.
      const stored = this.db.getBinary(key as Buffer);
      if (stored !== undefined) this.cache.set(keyString, stored);
      return stored;
    }
    const stored = this.db.getBinary(storedKeyOf(key));
    if (stored === undefined) return undefined;
    const entry = entryOf(storedKeyOf(key), stored);
    return Buffer.compare(Buffer.from(entry.key), Buffer.from(key)) === 0 ? entry.value : undefined;
  }

  scan(range: KeyRange): StorageEntry[] {
    if (!(Number.isInteger(range.limit) && range.limit >= 0)) {
      throw new RangeError(`scan limit must be a non-negative integer, got ${range.limit}`);
    }
    if (range.limit === 0) return [];
    const start = storedKeyOf(range.start);
    const end = range.end === null ? undefined : storedKeyOf(range.end);
    const reverse = range.reverse === true;
    const options = reverse
      ? {
          start: end,
          end: start,
          reverse: true,
          inclusiveEnd: true,
          exclusiveStart: end !== undefined,
          limit: range.limit,
        }
      : { start, end, limit: range.limit };
    const entries: StorageEntry[] = [];
    for (const { key, value } of this.db.getRange(options)) {
      // getRange hands out buffers that later reads may reuse: copy.
      entries.push(entryOf(Buffer.from(key), Buffer.from(value)));
    }
    return entries;
  }

  async commit(writes: readonly StorageWrite[], options: CommitOptions): Promise<void> {
    if (this.closed) throw new Error('storage is closed');
    const db = this.db;
    await db.transaction(() => {
      for (const write of writes) {
        const storedKey = storedKeyOf(write.key);
        if (write.value === null) db.removeSync(storedKey);
        else db.putSync(storedKey, storedValueOf(write.key, write.value));
      }
    });
    // Visible now: forget what the cache held for the keys written.
    for (const write of writes) {
      if (write.key.length <= DIRECT_KEY_BYTES_MAX) this.cache.delete(bytesToKeyString(write.key));
    }
    if (options.durable) await db.flushed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.flushed;
    await this.db.close();
  }
}
