// The Storage contract: what every engine (LMDB, in-memory, the simulator's disk) must do.
// Keys and values are byte strings; keys are ordered bytewise. The compliance suite in
// test/storage/compliance.ts holds every engine to this text.
//
// Rules:
// - `get` and `scan` are synchronous and see every batch staged and every commit called.
// - `stage` applies a batch for reads at once; it becomes durable with the next commit,
//   which persists every batch staged before it, then its own writes, as one atomic unit.
//   Why: the core reads its own writes back at once (a SET reads the record it replaces),
//   and the shell commits the batches of many requests together a moment later. Reading
//   them from storage spares an overlay of unpersisted records in front of it (what that
//   overlay cost: docs/STORAGE.md).
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
  /**
   * A hint for a durable commit: sync on the calling thread, blocking it, rather than hand
   * the sync to an I/O thread and hear back. The caller asks when it has little else to do
   * meanwhile (the node's shell: a group of up to 16 KiB, a light load, while the disk was
   * quick), to spare the hand-off's wake-ups; an engine may ignore it.
   */
  readonly syncInline?: boolean;
}

export interface Storage extends StorageReader {
  /**
   * Applies `writes` for reads at once. The next `commit` persists them; until it resolves,
   * a crash may lose them, with every batch staged after them.
   */
  stage(writes: readonly StorageWrite[]): void;
  /** Persists every batch staged since the last commit, then `writes`, as one batch. */
  commit(writes: readonly StorageWrite[], options: CommitOptions): Promise<void>;
  close(): Promise<void>;
}

/** Refuses a scan limit that is not a non-negative integer (every engine checks the same). */
export function checkScanLimit(limit: number): void {
  if (!(Number.isInteger(limit) && limit >= 0)) {
    throw new RangeError(`scan limit must be a non-negative integer, got ${limit}`);
  }
}
