// The storage view the replica store reads through: storage, with the writes of the batches
// emitted during the current step on top.
//
// Why: the shell stages a step's batches in storage when the step returns, so storage shows
// every earlier step's writes, but a step that writes a key and reads it again (a merge of
// replicas' copies, then the increment built on it) must see its own write too. Most steps
// emit at most one batch and read nothing after it: with no writes on top, every read goes
// straight to storage. The first read after a write indexes the step's writes by key.

import { assert, bytesToKeyString, compareBytes } from '../bytes.ts';
import type {
  KeyRange,
  StorageEntry,
  StorageReader,
  StorageWrite,
} from '../../storage/contract.ts';

interface StepWrite {
  readonly key: Uint8Array;
  /** Null: the write deletes the key. */
  readonly value: Uint8Array | null;
}

export class StepView implements StorageReader {
  private readonly storage: StorageReader;
  /** The step's writes in the order they were made. */
  private writes: StorageWrite[] = [];
  /** The newest of them per key, by key string, covering `writes` up to `indexed`. */
  private index = new Map<string, StepWrite>();
  private indexed = 0;

  constructor(storage: StorageReader) {
    this.storage = storage;
  }

  /** A batch emitted in this step. */
  add(writes: readonly StorageWrite[]): void {
    for (const write of writes) this.writes.push(write);
  }

  /** The step is over: the shell stages its batches, and storage shows them from now on. */
  clear(): void {
    if (this.writes.length === 0) return;
    this.writes = [];
    this.index = new Map();
    this.indexed = 0;
  }

  get(key: Uint8Array, keyString?: string): Uint8Array | undefined {
    if (this.writes.length === 0) return this.storage.get(key, keyString);
    const own = this.indexedWrites().get(keyString ?? bytesToKeyString(key));
    if (own !== undefined) return own.value ?? undefined;
    return this.storage.get(key, keyString);
  }

  scan(range: KeyRange): StorageEntry[] {
    if (this.writes.length === 0) return this.storage.scan(range);
    const reverse = range.reverse === true;
    const own: StepWrite[] = [];
    for (const write of this.indexedWrites().values()) {
      if (compareBytes(write.key, range.start) < 0) continue;
      if (range.end !== null && compareBytes(write.key, range.end) >= 0) continue;
      own.push(write);
    }
    if (own.length === 0) return this.storage.scan(range);
    own.sort((a, b) => (reverse ? -1 : 1) * compareBytes(a.key, b.key));
    // Each of the step's keys hides at most one stored entry.
    const stored = this.storage.scan({ ...range, limit: range.limit + own.length });
    const found: StorageEntry[] = [];
    let s = 0;
    let o = 0;
    while (found.length < range.limit && (s < stored.length || o < own.length)) {
      const order =
        s === stored.length
          ? 1
          : o === own.length
            ? -1
            : (reverse ? -1 : 1) * compareBytes(stored[s]!.key, own[o]!.key);
      if (order < 0) {
        found.push(stored[s++]!);
        continue;
      }
      if (order === 0) s++;
      const write = own[o++]!;
      if (write.value !== null) found.push({ key: write.key, value: write.value });
    }
    return found;
  }

  private indexedWrites(): Map<string, StepWrite> {
    assert(this.indexed <= this.writes.length, 'the index covers only writes made');
    for (; this.indexed < this.writes.length; this.indexed++) {
      const write = this.writes[this.indexed]!;
      this.index.set(write.keyString ?? bytesToKeyString(write.key), write);
    }
    return this.index;
  }
}
