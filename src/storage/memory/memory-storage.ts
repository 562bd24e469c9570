// The in-memory storage engine: the contract of ./contract.ts with nothing on disk. Used by
// tests, by `--storage memory`, and as the simulator's disk. Deterministic: no timers; a
// commit applies synchronously and resolves in a microtask.

import { bytesToKeyString, keyStringToBytes } from '../../core/bytes.ts';
import type { CommitOptions, KeyRange, Storage, StorageEntry, StorageWrite } from '../contract.ts';
import { checkScanLimit } from '../contract.ts';
import { OrderedMap } from './ordered-map.ts';

export class MemoryStorage implements Storage {
  private readonly entries = new OrderedMap<Uint8Array>();
  private closed = false;

  get(key: Uint8Array, keyString?: string): Uint8Array | undefined {
    return this.entries.get(keyString ?? bytesToKeyString(key));
  }

  scan(range: KeyRange): StorageEntry[] {
    checkScanLimit(range.limit);
    const found: StorageEntry[] = [];
    if (range.limit === 0) return found;
    const end = range.end === null ? null : bytesToKeyString(range.end);
    for (const [key, value] of this.entries.range(
      bytesToKeyString(range.start),
      end,
      range.reverse === true,
    )) {
      found.push({ key: keyStringToBytes(key), value });
      if (found.length === range.limit) break;
    }
    return found;
  }

  /**
   * Staging is applying: this engine loses nothing in a crash, unless the simulator takes
   * back what was not yet durable (undoOf).
   */
  stage(writes: readonly StorageWrite[]): void {
    if (this.closed) throw new Error('storage is closed');
    this.apply(writes);
  }

  commit(writes: readonly StorageWrite[], _options: CommitOptions): Promise<void> {
    if (this.closed) return Promise.reject(new Error('storage is closed'));
    this.apply(writes);
    return Promise.resolve();
  }

  /**
   * Asked before `writes` are applied: the writes that take each of their keys back to its
   * value now. Applied after `writes`, they undo them (the simulator's crash loses the
   * writes that were not yet durable so).
   */
  undoOf(writes: readonly StorageWrite[]): StorageWrite[] {
    const undo: StorageWrite[] = [];
    for (let i = writes.length - 1; i >= 0; i--) {
      const key = writes[i]!.key;
      undo.push({ key, value: this.get(key) ?? null });
    }
    return undo;
  }

  /** Applies `writes` at once (undoOf's writes, say). */
  apply(writes: readonly StorageWrite[]): void {
    for (const write of writes) {
      const key = write.keyString ?? bytesToKeyString(write.key);
      if (write.value === null) this.entries.delete(key);
      // A copy (on a Buffer, slice() would be a view).
      else this.entries.set(key, new Uint8Array(write.value));
    }
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** Number of keys stored. */
  get size(): number {
    return this.entries.size;
  }
}
