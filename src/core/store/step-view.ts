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
  /**
   * The step's batches in the order they were emitted, the first `count` places of one array
   * kept from step to step: emptying an array by its length gives its storage up, and the
   * next step's batch would allocate it again.
   */
  private readonly batches: (readonly StorageWrite[] | undefined)[] = [];
  private count = 0;
  /**
   * The newest write per key, by key string, over `batches` up to `indexed`; made by the
   * first read that needs it (most steps have none).
   */
  private index: Map<string, StepWrite> | null = null;
  private indexed = 0;

  constructor(storage: StorageReader) {
    this.storage = storage;
  }

  /** A batch emitted in this step; it must not change afterwards. */
  add(writes: readonly StorageWrite[]): void {
    this.batches[this.count++] = writes;
  }

  /** The step is over: the shell stages its batches, and storage shows them from now on. */
  clear(): void {
    if (this.count === 0) return;
    // The batches are the shell's now: no reference to them stays behind.
    for (let i = 0; i < this.count; i++) this.batches[i] = undefined;
    this.count = 0;
    this.index = null;
    this.indexed = 0;
  }

  get(key: Uint8Array, keyString?: string): Uint8Array | undefined {
    if (this.count === 0) return this.storage.get(key, keyString);
    const own = this.indexedWrites().get(keyString ?? bytesToKeyString(key));
    if (own !== undefined) return own.value ?? undefined;
    return this.storage.get(key, keyString);
  }

  scan(range: KeyRange): StorageEntry[] {
    if (this.count === 0) return this.storage.scan(range);
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
    assert(this.indexed <= this.count, 'the index covers only batches added');
    const index = (this.index ??= new Map());
    for (; this.indexed < this.count; this.indexed++) {
      for (const write of this.batches[this.indexed]!) {
        index.set(write.keyString ?? bytesToKeyString(write.key), write);
      }
    }
    return index;
  }
}
