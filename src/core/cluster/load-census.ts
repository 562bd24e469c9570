// What one node holds and serves, for the elastic policy: rows and bytes of data over every
// partition, and client requests per second.
//
// Rules kept:
// - Sizes come from counting storage rows, one partition per step, so no step reads more
//   than one partition; a full pass over the partitions takes about `passMs`. Until one
//   pass is complete the node reports nothing (a partial count would skew the averages).
// - Data rows count whatever the node stores for a partition (records and tombstones of every
//   keyspace), as the handoff plan counts them.
// - Requests per second are counted in one-second buckets; the figure is the average over
//   the last `RATE_WINDOW_S` whole seconds (the second under way is left out), so a burst
//   fades out of it within the window.

import { assert } from '../bytes.ts';
import type { NodeLoad } from './elastic.ts';

export interface PartitionSize {
  readonly keys: number;
  readonly bytes: number;
}

/** The seconds requests per second are averaged over. */
export const RATE_WINDOW_S = 10;
export const CENSUS_PASS_MS_DEFAULT = 30_000;
/** The window's seconds and the one under way. */
const BUCKETS = RATE_WINDOW_S + 1;

export class LoadCensus {
  private readonly sizes: (PartitionSize | undefined)[];
  private next = 0;
  private nextStepMs = 0;
  private passesDone = 0;
  /** Requests per one-second bucket, indexed by second modulo BUCKETS. */
  private readonly buckets = new Array<number>(BUCKETS).fill(0);
  private bucketSecond = 0;
  private startMs: number | null = null;
  private readonly passMs: number;

  constructor(partitionCount: number, passMs: number = CENSUS_PASS_MS_DEFAULT) {
    assert(Number.isSafeInteger(partitionCount) && partitionCount > 0, 'partitions > 0');
    assert(Number.isFinite(passMs) && passMs > 0, 'a census pass takes some time');
    this.passMs = passMs;
    this.sizes = new Array<PartitionSize | undefined>(partitionCount).fill(undefined);
  }

  /** Measures the next partition when its turn has come. */
  tick(nowMs: number, measure: (partition: number) => PartitionSize): void {
    this.startMs ??= nowMs;
    if (nowMs < this.nextStepMs) return;
    this.nextStepMs = nowMs + this.passMs / this.sizes.length;
    const size = measure(this.next);
    assert(size.keys >= 0 && size.bytes >= 0, 'sizes are not negative');
    this.sizes[this.next] = size;
    this.next = (this.next + 1) % this.sizes.length;
    if (this.next === 0) this.passesDone++;
  }

  countRequest(nowMs: number): void {
    this.roll(nowMs);
    this.buckets[this.bucketSecond % BUCKETS]!++;
  }

  /** This node's load, or undefined before the first full pass. */
  load(nowMs: number): NodeLoad | undefined {
    if (this.passesDone === 0) return undefined;
    this.roll(nowMs);
    let keys = 0;
    let bytes = 0;
    for (const size of this.sizes) {
      keys += size!.keys;
      bytes += size!.bytes;
    }
    // A node up for less than the window averages over the whole seconds it has been up.
    const upS = Math.max(1, Math.floor(nowMs / 1000) - Math.floor((this.startMs ?? nowMs) / 1000));
    const requests =
      this.buckets.reduce((sum, count) => sum + count, 0) -
      this.buckets[this.bucketSecond % BUCKETS]!;
    return { keys, bytes, requestsPerSecond: requests / Math.min(RATE_WINDOW_S, upS) };
  }

  /** Empties the buckets of the seconds that passed since the last count. */
  private roll(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    if (second <= this.bucketSecond) return;
    const passed = Math.min(second - this.bucketSecond, BUCKETS);
    for (let step = 1; step <= passed; step++) {
      this.buckets[(this.bucketSecond + step) % BUCKETS] = 0;
    }
    this.bucketSecond = second;
  }
}
