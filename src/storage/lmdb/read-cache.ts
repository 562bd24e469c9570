// A bounded cache of values by key for the LMDB engine's point reads. An LMDB lookup costs a
// B-tree walk through lmdb-js's native bridge; a hot key's value is served from here
// instead. Eviction is first-in first-out by bytes: no bookkeeping on hits, so a hit costs
// one map lookup.
//
// Coherence: a key written since its value was cached is in a memtable, which reads consult
// first; the engine drops the whole cache when a checkpoint starts, with the memtable the
// last checkpoint wrote, which hid those values until then. Why not delete each written key
// from the cache instead: that made the map gain and lose an entry per write, and a
// long-lived Map that churns has V8 promote what it held (docs/ARCHITECTURE.md says how).

const ENTRY_OVERHEAD_BYTES = 64;

export class ReadCache {
  private readonly entries = new Map<string, Uint8Array>();
  private readonly bytesMax: number;
  private bytes = 0;

  constructor(bytesMax: number) {
    this.bytesMax = bytesMax;
  }

  get(key: string): Uint8Array | undefined {
    return this.entries.get(key);
  }

  set(key: string, value: Uint8Array): void {
    const cost = value.length + key.length + ENTRY_OVERHEAD_BYTES;
    if (cost > this.bytesMax / 16) return; // a huge value would evict everything else
    this.delete(key);
    this.entries.set(key, value);
    this.bytes += cost;
    while (this.bytes > this.bytesMax) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.delete(oldest.value);
    }
  }

  private delete(key: string): void {
    const value = this.entries.get(key);
    if (value === undefined) return;
    this.entries.delete(key);
    this.bytes -= value.length + key.length + ENTRY_OVERHEAD_BYTES;
  }
}
