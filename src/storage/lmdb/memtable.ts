// Writes that the write-ahead log holds but LMDB does not yet: the newest state of each key
// written since the last checkpoint, with null for a delete (it hides the key in LMDB).
// Reads consult it before LMDB; a checkpoint writes it into LMDB in key order.

import { OrderedMap } from '../memory/ordered-map.ts';

/** Bytes counted per entry beyond its key and value: the Map slot, the order, the object. */
const ENTRY_OVERHEAD_BYTES = 80;

export class Memtable {
  readonly entries = new OrderedMap<Uint8Array | null>();
  /** About the bytes of memory the entries take. */
  bytes = 0;

  get(keyString: string): Uint8Array | null | undefined {
    return this.entries.get(keyString);
  }

  set(keyString: string, value: Uint8Array | null): void {
    const previous = this.entries.set(keyString, value);
    if (previous !== undefined) this.bytes -= entryBytes(keyString, previous);
    this.bytes += entryBytes(keyString, value);
  }

  get size(): number {
    return this.entries.size;
  }
}

function entryBytes(keyString: string, value: Uint8Array | null): number {
  return keyString.length + (value === null ? 0 : value.length) + ENTRY_OVERHEAD_BYTES;
}
