// The Storage contract: what every engine (LMDB, in-memory, the simulator's disk) must do.
// Keys and values are byte strings; keys are ordered bytewise. The compliance suite in
// test/storage/compliance.ts holds every engine to this text.
//
// Rules:
// - `get` and `scan` are synchronous and see every commit whose promise has resolved.
// - `commit` applies all its writes atomically, in the order commits were called.
// - A commit with `durable: true` resolves only once it survives a crash of the process
//   (and, for the LMDB engine, of the machine: it is fsynced). A `durable: false` commit
//   may be lost by a crash, but never partly, and never reordered before an earlier one.
// - An engine may keep the key and value arrays handed to `commit`: the caller must not
//   change them afterwards.

/** One write of a batch: `value` null deletes the key. */
export interface StorageWrite {
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
  /**
   * bytesToKeyString(key), when the caller has it already: engines that key maps by it are
   * spared making it again. Must match `key` exactly; engines may ignore it.
   */
  readonly keyString?: string;
}

export interface StorageEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/** A key range: `start` inclusive, `end` exclusive (null: to the end of the key space). */
export interface KeyRange {
  readonly start: Uint8Array;
  readonly end: Uint8Array | null;
  /** At most this many entries (required: every scan is bounded). */
  readonly limit: number;
  readonly reverse?: boolean;
}

/** The read-only view the core is handed: synchronous and cheap. */
export interface StorageReader {
  /** `keyString`: bytesToKeyString(key) if the caller has it (see StorageWrite.keyString). */
  get(key: Uint8Array, keyString?: string): Uint8Array | undefined;
  scan(range: KeyRange): StorageEntry[];
}

export interface CommitOptions {
  readonly durable: boolean;
}

export interface Storage extends StorageReader {
  commit(writes: readonly StorageWrite[], options: CommitOptions): Promise<void>;
  close(): Promise<void>;
}

/** Refuses a scan limit that is not a non-negative integer (every engine checks the same). */
export function checkScanLimit(limit: number): void {
  if (!(Number.isInteger(limit) && limit >= 0)) {
    throw new RangeError(`scan limit must be a non-negative integer, got ${limit}`);
  }
}
