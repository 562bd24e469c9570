// Work that waits for a storage batch to be persisted, kept in the order it must run: by
// batch id, and in the order it was added within one batch.
//
// Why a queue and not a map from batch id to a list. Batches persist in id order, and work
// is nearly always added for the newest batch, so a queue takes each item at its tail and
// hands it out from its head. Under a durable write load every request is a batch of its
// own, and a map entry, an array and three hash lookups per request were a few percent of
// the node's main thread: taking them out cut the CPU of a durable SET through
// bench:resp-path by 4% (median of five alternating rounds, every round lower). Work for an
// older batch (a read of a key whose write is still pending) is rare; it is inserted in its
// place by a binary search.
//
// Items must not be undefined. Both arrays are emptied whole once every item is handed out,
// and compacted once most of them are, so they neither grow without bound nor chain old
// tables (docs/ARCHITECTURE.md: "Long-lived objects keep short-lived entries out of plain
// Maps").

/** Handed-out items below which a queue that is not empty is left uncompacted. */
const COMPACT_HEAD_MIN = 1024;

export class BatchWaiters<T> {
  private batchIds: number[] = [];
  private items: (T | undefined)[] = [];
  private head = 0;
  private readonly compactHeadMin: number;

  /** `compactHeadMin`: tests make it small. */
  constructor(compactHeadMin = COMPACT_HEAD_MIN) {
    this.compactHeadMin = compactHeadMin;
  }

  /** Items waiting. */
  get size(): number {
    return this.batchIds.length - this.head;
  }

  /** Places the arrays hold, items handed out but not yet compacted away included (tests). */
  get held(): number {
    return this.batchIds.length;
  }

  /** Adds `item` to run once batch `batchId` is persisted, after those added before it. */
  add(batchId: number, item: T): void {
    const ids = this.batchIds;
    const length = ids.length;
    if (length === this.head || ids[length - 1]! <= batchId) {
      ids.push(batchId);
      this.items.push(item);
      return;
    }
    // After every item of a batch up to this one.
    let low = this.head;
    let high = length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (ids[middle]! <= batchId) low = middle + 1;
      else high = middle;
    }
    ids.splice(low, 0, batchId);
    this.items.splice(low, 0, item);
  }

  /** Removes and answers the first item, if its batch is at or below `batchId`. */
  take(batchId: number): T | undefined {
    const head = this.head;
    if (head === this.batchIds.length || this.batchIds[head]! > batchId) return undefined;
    const item = this.items[head];
    this.items[head] = undefined;
    this.head = head + 1;
    if (this.head === this.batchIds.length) {
      this.batchIds.length = 0;
      this.items.length = 0;
      this.head = 0;
    } else if (this.head >= this.compactHeadMin && 2 * this.head >= this.batchIds.length) {
      this.batchIds = this.batchIds.slice(this.head);
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
