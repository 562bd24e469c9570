// A latency histogram in the HDR layout: values (integer microseconds) fall into buckets
// whose width doubles every power of two, each split into 2048 sub-buckets, so any recorded
// value is known to within 1/1024 of itself (3 significant digits) over the whole range.
// Memory is fixed at construction; recording is a few integer operations and never
// allocates. Count, sum, min and max are kept exactly; percentiles are read from buckets.

import { assert } from '../core/bytes.ts';

/** 2048 sub-buckets resolve 1 part in 1000 (3 significant digits) with a power of two. */
const SUB_BUCKET_HALF_COUNT_MAGNITUDE = 10;
const SUB_BUCKET_HALF_COUNT = 1 << SUB_BUCKET_HALF_COUNT_MAGNITUDE;
const TWO_TO_THE_32 = 0x1_0000_0000;

/** Values above this are recorded as this (and counted in `clampedCount`): about 19 hours. */
export const HISTOGRAM_VALUE_MAX = 2 ** 36 - 1;

export interface LatencySummary {
  readonly count: number;
  readonly meanUs: number;
  readonly minUs: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly p999Us: number;
  readonly maxUs: number;
}

function floorLog2(value: number): number {
  if (value < TWO_TO_THE_32) return 31 - Math.clz32(value);
  return 63 - Math.clz32(Math.floor(value / TWO_TO_THE_32));
}

/** Which bucket holds `value`: bucket 0 holds [0, 2048), bucket b > 0 holds [1024·2^b, 2048·2^b). */
function bucketIndexOf(value: number): number {
  return Math.max(0, floorLog2(value) - SUB_BUCKET_HALF_COUNT_MAGNITUDE);
}

function countsIndexOf(value: number): number {
  const bucketIndex = bucketIndexOf(value);
  const subBucketIndex = Math.floor(value / 2 ** bucketIndex);
  // Bucket 0 uses all 2048 sub-buckets; higher buckets only their upper half (the lower
  // half would repeat the previous bucket's range), hence the offset.
  return bucketIndex * SUB_BUCKET_HALF_COUNT + subBucketIndex;
}

function lowestValueAt(countsIndex: number): number {
  const bucketIndex = Math.max(0, Math.floor(countsIndex / SUB_BUCKET_HALF_COUNT) - 1);
  const subBucketIndex = countsIndex - bucketIndex * SUB_BUCKET_HALF_COUNT;
  return subBucketIndex * 2 ** bucketIndex;
}

function widthAt(countsIndex: number): number {
  return 2 ** Math.max(0, Math.floor(countsIndex / SUB_BUCKET_HALF_COUNT) - 1);
}

const COUNTS_LENGTH = countsIndexOf(HISTOGRAM_VALUE_MAX) + 1;

export class Histogram {
  private readonly counts = new Float64Array(COUNTS_LENGTH);
  private totalCount = 0;
  private sum = 0;
  private minimum = Infinity;
  private maximum = 0;
  /** Values recorded above HISTOGRAM_VALUE_MAX (kept at the maximum, never dropped). */
  clampedCount = 0;

  get count(): number {
    return this.totalCount;
  }

  /** Records one value in microseconds; fractions are rounded, negatives are a bug. */
  record(valueUs: number, times = 1): void {
    assert(valueUs >= 0 && Number.isFinite(valueUs), 'histogram value must be finite and >= 0');
    assert(Number.isInteger(times) && times > 0, 'histogram count must be a positive integer');
    let value = Math.round(valueUs);
    if (value > HISTOGRAM_VALUE_MAX) {
      value = HISTOGRAM_VALUE_MAX;
      this.clampedCount += times;
    }
    this.counts[countsIndexOf(value)]! += times;
    this.totalCount += times;
    this.sum += value * times;
    if (value < this.minimum) this.minimum = value;
    if (value > this.maximum) this.maximum = value;
  }

  /** Adds every value recorded in `other` to this histogram. */
  merge(other: Histogram): void {
    assert(other !== this, 'a histogram cannot merge itself');
    if (other.totalCount === 0) return;
    for (let index = 0; index < COUNTS_LENGTH; index++) {
      const count = other.counts[index]!;
      if (count !== 0) this.counts[index]! += count;
    }
    this.totalCount += other.totalCount;
    this.sum += other.sum;
    this.clampedCount += other.clampedCount;
    this.minimum = Math.min(this.minimum, other.minimum);
    this.maximum = Math.max(this.maximum, other.maximum);
  }

  get meanUs(): number {
    return this.totalCount === 0 ? 0 : this.sum / this.totalCount;
  }

  get minUs(): number {
    return this.totalCount === 0 ? 0 : this.minimum;
  }

  get maxUs(): number {
    return this.maximum;
  }

  /**
   * The value at `percentile` (0 to 100) by nearest rank: the smallest recorded value that at
   * least that share of the values do not exceed, reported as the top of its sub-bucket (so
   * never below the exact answer, and above it by less than 1/1024 of it), capped at the
   * exact maximum.
   */
  valueAtPercentile(percentile: number): number {
    assert(percentile >= 0 && percentile <= 100, 'percentile must be in [0, 100]');
    if (this.totalCount === 0) return 0;
    const rank = Math.max(1, Math.ceil((percentile / 100) * this.totalCount));
    let seen = 0;
    for (let index = 0; index < COUNTS_LENGTH; index++) {
      seen += this.counts[index]!;
      if (seen >= rank) {
        const top = lowestValueAt(index) + widthAt(index) - 1;
        return Math.min(Math.max(top, this.minimum), this.maximum);
      }
    }
    assert(false, 'histogram counts do not add up to its total');
    return this.maximum;
  }

  summary(): LatencySummary {
    return {
      count: this.totalCount,
      meanUs: this.meanUs,
      minUs: this.minUs,
      p50Us: this.valueAtPercentile(50),
      p99Us: this.valueAtPercentile(99),
      p999Us: this.valueAtPercentile(99.9),
      maxUs: this.maxUs,
    };
  }
}
