// A map from key strings to values that also walks its keys in order, for the in-memory
// engine. Key strings hold one byte per character (see bytesToKeyString), so JavaScript's
// string order is the bytewise order of the keys.
//
// Point operations go through a Map. The order is kept in sorted chunks of at most
// CHUNK_KEYS_MAX keys (a B-tree of height two): an insert is a binary search over the
// chunks, one within a chunk and a splice of at most CHUNK_KEYS_MAX pointers, so inserts
// stay cheap at millions of keys without the code of a balanced tree.

const CHUNK_KEYS_MAX = 512;

/** Values must not be undefined: undefined means absent. */
export class OrderedMap<V> {
  private readonly values = new Map<string, V>();
  private readonly chunks: string[][] = [];

  get size(): number {
    return this.values.size;
  }

  get(key: string): V | undefined {
    return this.values.get(key);
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  /** Sets the value and returns the one it replaced (one lookup for both). */
  set(key: string, value: V): V | undefined {
    const previous = this.values.get(key);
    this.values.set(key, value);
    if (previous === undefined) this.insertKey(key);
    return previous;
  }

  delete(key: string): boolean {
    if (!this.values.delete(key)) return false;
    const chunkIndex = this.chunkFor(key);
    const chunk = this.chunks[chunkIndex]!;
    chunk.splice(lowerBound(chunk, key), 1);
    if (chunk.length === 0) this.chunks.splice(chunkIndex, 1);
    return true;
  }

  clear(): void {
    this.values.clear();
    this.chunks.length = 0;
  }

  /**
   * The entries with `start` ≤ key < `end` (end null: no bound), in key order, or in
   * reverse order from the last one below `end` down to `start`.
   */
  *range(start: string, end: string | null, reverse = false): Generator<[string, V]> {
    if (this.chunks.length === 0) return;
    if (!reverse) {
      let chunkIndex = this.chunkFor(start);
      let index = lowerBound(this.chunks[chunkIndex]!, start);
      for (; chunkIndex < this.chunks.length; chunkIndex++, index = 0) {
        const chunk = this.chunks[chunkIndex]!;
        for (; index < chunk.length; index++) {
          const key = chunk[index]!;
          if (end !== null && key >= end) return;
          yield [key, this.values.get(key)!];
        }
      }
      return;
    }
    let chunkIndex = end === null ? this.chunks.length - 1 : this.chunkFor(end);
    let index =
      end === null ? this.chunks[chunkIndex]!.length : lowerBound(this.chunks[chunkIndex]!, end);
    // `index` is one past the first candidate.
    for (; chunkIndex >= 0; chunkIndex--) {
      const chunk = this.chunks[chunkIndex]!;
      if (index < 0) index = chunk.length;
      for (index--; index >= 0; index--) {
        const key = chunk[index]!;
        if (key < start) return;
        yield [key, this.values.get(key)!];
      }
    }
  }

  /** Every entry in key order. */
  entries(): Generator<[string, V]> {
    return this.range('', null);
  }

  private insertKey(key: string): void {
    if (this.chunks.length === 0) {
      this.chunks.push([key]);
      return;
    }
    const chunkIndex = this.chunkFor(key);
    const chunk = this.chunks[chunkIndex]!;
    chunk.splice(lowerBound(chunk, key), 0, key);
    if (chunk.length > CHUNK_KEYS_MAX) {
      this.chunks.splice(chunkIndex + 1, 0, chunk.splice(chunk.length >>> 1));
    }
  }

  /** The chunk that holds `key` or where it belongs: the first whose last key is ≥ it. */
  private chunkFor(key: string): number {
    let low = 0;
    let high = this.chunks.length - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const chunk = this.chunks[middle]!;
      if (chunk[chunk.length - 1]! < key) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

/** Index of the first key ≥ `key` in a sorted array. */
function lowerBound(keys: readonly string[], key: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (keys[middle]! < key) low = middle + 1;
    else high = middle;
  }
  return low;
}
