// A token bucket that paces anti-entropy's repairs, in keys or bytes per second: tokens
// accrue at the rate up to the burst, and a repair takes its cost out. Pure: time comes in
// as `nowMs`.
//
// Rules kept:
// - Time that goes back is ignored (no tokens accrue until it passes the latest seen), so a
//   clock step never grants a burst.
// - A cost larger than the burst is not refused forever: it is granted once the bucket is
//   full, and the bucket goes into debt, which later takes repay at the rate. So one large
//   record passes, and the average rate still holds.
// - A rate of 0 pauses: nothing is granted, and nextAvailableMs is Infinity.

import { assert } from '../bytes.ts';

/** Absorbs float rounding, so a take at nextAvailableMs always succeeds. */
const TOKEN_EPSILON = 1e-6;

export interface TokenBucketOptions {
  /** Tokens (keys, or bytes) per second; 0 pauses. */
  readonly ratePerSecond: number;
  /** The most tokens saved up; the bucket starts full. */
  readonly burst: number;
  readonly nowMs: number;
}

export class TokenBucket {
  private rate: number;
  private capacity: number;
  private tokens: number;
  private lastMs: number;

  constructor(options: TokenBucketOptions) {
    assertRate(options.ratePerSecond, options.burst);
    assert(Number.isFinite(options.nowMs), 'nowMs is a time');
    this.rate = options.ratePerSecond;
    this.capacity = options.burst;
    this.tokens = options.burst;
    this.lastMs = options.nowMs;
  }

  get ratePerSecond(): number {
    return this.rate;
  }

  get burst(): number {
    return this.capacity;
  }

  /** Tokens on hand at `nowMs` (negative while in debt). */
  available(nowMs: number): number {
    this.refill(nowMs);
    return this.tokens;
  }

  /** Changes the rate (and the burst) from `nowMs` on; tokens accrued so far are kept. */
  setRate(ratePerSecond: number, nowMs: number, burst: number = this.capacity): void {
    assertRate(ratePerSecond, burst);
    this.refill(nowMs);
    this.rate = ratePerSecond;
    this.capacity = burst;
    this.tokens = Math.min(this.tokens, burst);
  }

  /** Takes `cost` tokens if they are there (or the bucket is full); false takes nothing. */
  take(cost: number, nowMs: number): boolean {
    assert(Number.isFinite(cost) && cost >= 0, `cost ${cost} is a non-negative number`);
    this.refill(nowMs);
    if (cost === 0) return true;
    if (this.tokens + TOKEN_EPSILON < Math.min(cost, this.capacity)) return false;
    this.tokens -= cost;
    assert(this.tokens > -cost - TOKEN_EPSILON, 'a take leaves at most its cost of debt');
    return true;
  }

  /** The earliest time, at or after `nowMs`, at which take(cost) succeeds at this rate. */
  nextAvailableMs(cost: number, nowMs: number): number {
    assert(Number.isFinite(cost) && cost >= 0, `cost ${cost} is a non-negative number`);
    this.refill(nowMs);
    const needed = Math.min(cost, this.capacity) - this.tokens;
    const fromMs = Math.max(nowMs, this.lastMs);
    if (cost === 0 || needed <= TOKEN_EPSILON) return fromMs;
    if (this.rate === 0) return Infinity;
    return fromMs + (needed * 1000) / this.rate;
  }

  private refill(nowMs: number): void {
    assert(Number.isFinite(nowMs), 'nowMs is a time');
    if (nowMs <= this.lastMs) return;
    this.tokens = Math.min(this.capacity, this.tokens + ((nowMs - this.lastMs) * this.rate) / 1000);
    this.lastMs = nowMs;
  }
}

function assertRate(ratePerSecond: number, burst: number): void {
  assert(Number.isFinite(ratePerSecond) && ratePerSecond >= 0, 'a rate is a non-negative number');
  assert(Number.isFinite(burst) && burst > 0, 'a burst is a positive number');
}
