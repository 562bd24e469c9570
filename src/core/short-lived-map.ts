// A map for entries that come and go fast, held by an object that lives long: the requests
// in flight, the waiters on a batch. Deleting marks an entry dead instead of removing it,
// and the table is replaced whole once no entry is live, or rebuilt from the live ones once
// most are dead.
//
// Why: V8 replaces a Map's hash table as it grows and shrinks, and a replaced table keeps a
// link to the table that replaced it. Once one table of a long-lived Map has reached the old
// generation, each later table is kept alive through that chain in every young-generation
// collection, with what it held, until the next full collection. A Map that gains and loses
// an entry per request so had a tenth of everything allocated promoted (see also
// store/pending-records.ts). A table that only grows, and is then dropped, forms no chain.
//
// Values must not be undefined: undefined marks a dead entry.

/** Below this many entries a table of mostly dead ones is left as it is. */
const REBUILD_ENTRIES_MIN = 4096;

export class ShortLivedMap<K, V> {
  private map = new Map<K, V | undefined>();
  private live = 0;
  private readonly rebuildEntriesMin: number;

  /** `rebuildEntriesMin`: tests make it small. */
  constructor(rebuildEntriesMin = REBUILD_ENTRIES_MIN) {
    this.rebuildEntriesMin = rebuildEntriesMin;
  }

  /** Live entries. */
  get size(): number {
    return this.live;
  }

  /** Entries the table holds, dead ones included (for tests). */
  get held(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  set(key: K, value: V): void {
    if (this.map.get(key) === undefined) this.live++;
    this.map.set(key, value);
  }

  delete(key: K): boolean {
    if (this.map.get(key) === undefined) return false;
    this.live--;
    if (this.live === 0) {
      this.map = new Map();
    } else if (this.map.size >= this.rebuildEntriesMin && this.map.size >= 4 * this.live) {
      const rebuilt = new Map<K, V | undefined>();
      for (const [liveKey, value] of this.map) {
        if (value !== undefined && liveKey !== key) rebuilt.set(liveKey, value);
      }
      this.map = rebuilt;
    } else {
      this.map.set(key, undefined);
    }
    return true;
  }

  clear(): void {
    this.map = new Map();
    this.live = 0;
  }

  /** The live values, in the order their keys were first set. */
  *values(): Generator<V> {
    for (const value of this.map.values()) if (value !== undefined) yield value;
  }
}
