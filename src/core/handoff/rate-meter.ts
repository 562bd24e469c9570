// A moving average of bytes per second over a sliding window, for progress and the ETA.
// The window is cut into a fixed number of buckets, so memory stays constant however many
// pages arrive; the oldest bucket leaves the window whole, which makes the average step by
// at most 1/BUCKET_COUNT of the window. Before a whole window has passed since the meter
// started, the average is over the time since the start, so a new transfer's first figures
// are not diluted by time before it existed.

import { assert } from '../bytes.ts';

const BUCKET_COUNT = 20;
export const RATE_WINDOW_MS_MIN = 100;

export class RateMeter {
  private readonly windowMs: number;
  private readonly bucketMs: number;
  private readonly startMs: number;
  /** The bucket number (time / bucketMs) each slot holds, or -1 for none. */
  private readonly bucketNumbers: number[] = new Array<number>(BUCKET_COUNT).fill(-1);
  private readonly bucketBytes: number[] = new Array<number>(BUCKET_COUNT).fill(0);

  constructor(windowMs: number, startMs: number) {
    assert(Number.isFinite(windowMs) && windowMs >= RATE_WINDOW_MS_MIN, 'a rate window');
    assert(Number.isFinite(startMs), 'a start time');
    this.windowMs = windowMs;
    this.bucketMs = windowMs / BUCKET_COUNT;
    this.startMs = startMs;
  }

  add(nowMs: number, bytes: number): void {
    assert(Number.isSafeInteger(bytes) && bytes >= 0, 'bytes are a count');
    const number = Math.floor(nowMs / this.bucketMs);
    const slot = number % BUCKET_COUNT;
    if (this.bucketNumbers[slot] !== number) {
      this.bucketNumbers[slot] = number;
      this.bucketBytes[slot] = 0;
    }
    this.bucketBytes[slot]! += bytes;
  }

  /** The average over the window (or the time since the start, if shorter). */
  bytesPerSecond(nowMs: number): number {
    const current = Math.floor(nowMs / this.bucketMs);
    const oldest = current - BUCKET_COUNT + 1;
    let bytes = 0;
    for (let slot = 0; slot < BUCKET_COUNT; slot++) {
      const number = this.bucketNumbers[slot]!;
      if (number >= oldest && number <= current) bytes += this.bucketBytes[slot]!;
    }
    const windowStartMs = Math.max(this.startMs, oldest * this.bucketMs);
    // At least one bucket's time, so the first page does not read as a burst of infinite rate.
    const spanMs = Math.max(this.bucketMs, nowMs - windowStartMs);
    assert(spanMs <= this.windowMs + this.bucketMs, 'the span stays within the window');
    return (bytes * 1000) / spanMs;
  }
}
