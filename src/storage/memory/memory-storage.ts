// The in-memory storage engine: the contract of ./contract.ts with nothing on disk. Used by
// tests, by `--storage memory`, and as the simulator's disk. Deterministic: no timers; a
// commit applies synchronously and resolves in a microtask.
//
// Keys are kept in a sorted array (binary search) beside a Map from key string to value.
// Inserting into the array is a memmove of pointers, cheap at the sizes this engine serves
// (hundreds of thousands of keys); a tree would be faster for millions and more code.

import { bytesToKeyString, compareBytes } from '../../core/bytes.ts';
import type { CommitOptions, KeyRange, Storage, StorageEntry, StorageWrite } from '../contract.ts';

export class MemoryStorage implements Storage {
  private readonly sortedKeys: Uint8Array[] = [];
  private readonly values = new Map<string, Uint8Array>();
  private closed = false;

  get(key: Uint8Array): Uint8Array | undefined {
    return this.values.get(bytesToKeyString(key));
  }

  scan(range: KeyRange): StorageEntry[] {
    if (!(Number.isInteger(range.limit) && range.limit >= 0)) {
      throw new RangeError(`scan limit must be a non-negative integer, got ${range.limit}`);
    }
    const entries: StorageEntry[] = [];
    const first = this.lowerBound(range.start);
    const last = range.end === null ? this.sortedKeys.length : this.lowerBound(range.end);
    if (range.reverse === true) {
      for (let i = last - 1; i >= first && entries.length < range.limit; i--)
        entries.push(this.entryAt(i));
    } else {
      for (let i = first; i < last && entries.length < range.limit; i++)
        entries.push(this.entryAt(i));
    }
    return entries;
  }

  commit(writes: readonly StorageWrite[], _options: CommitOptions): Promise<void> {
    if (this.closed) return Promise.reject(new Error('storage is closed'));
    for (const write of writes) {
      const keyString = bytesToKeyString(write.key);
      if (write.value === null) {
        if (this.values.delete(keyString)) this.sortedKeys.splice(this.lowerBound(write.key), 1);
      } else {
        if (!this.values.has(keyString)) {
          this.sortedKeys.splice(this.lowerBound(write.key), 0, write.key.slice());
        }
        this.values.set(keyString, write.value.slice());
      }
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** Number of keys stored. */
  get size(): number {
    return this.sortedKeys.length;
  }

  private entryAt(index: number): StorageEntry {
    const key = this.sortedKeys[index]!;
    return { key, value: this.values.get(bytesToKeyString(key))! };
  }

  /** Index of the first key ≥ `key`. */
  private lowerBound(key: Uint8Array): number {
    let low = 0;
    let high = this.sortedKeys.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareBytes(this.sortedKeys[middle]!, key) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
