// The byte rate limit of a copy: a token bucket of depth zero, kept as virtual scheduling
// (docs/HANDOFF.md, "The rate limit"). Every kind of copy uses this one: the streamed
// transfers of eventual keyspaces, the register copies of strong keyspaces (list pages and
// rewrites) and the chain pre-copies.
//
// Rules kept:
// - Work of B bytes started at time s lets the next piece go at s + B / rate, never earlier.
//   Idle time earns no credit, so an idle copy cannot burst afterwards.
// - Work whose size is only known later is charged then, against the time it started; work
//   that starts before the current slot has run out extends that slot, so pieces running at
//   once add up instead of replacing each other.
// - The debt is kept in bytes, not in time: a rate change spaces the next piece by the new
//   rate at once.

import { assert } from '../bytes.ts';

/** Whether a value is a rate: a finite number of bytes per second, 0 or more, or Infinity. */
export function isValidRate(bytesPerSecond: number): boolean {
  return bytesPerSecond === Infinity || (Number.isFinite(bytesPerSecond) && bytesPerSecond >= 0);
}

export class ByteRateLimit {
  /** Infinity when unlimited. */
  private rateLimit: number;
  /** The current slot on the rate's timeline: when its work started, and its bytes. */
  private slotStartMs = 0;
  private slotBytes = 0;

  /** `bytesPerSecond`: 0 or Infinity for unlimited. */
  constructor(bytesPerSecond: number) {
    assert(isValidRate(bytesPerSecond), 'a rate in bytes per second');
    this.rateLimit = bytesPerSecond === 0 ? Infinity : bytesPerSecond;
  }

  /** Bytes per second; 0 or Infinity: unlimited. The next piece is spaced by the new rate. */
  setRate(bytesPerSecond: number): void {
    if (!isValidRate(bytesPerSecond)) throw new RangeError(`a rate of ${bytesPerSecond} bytes/s`);
    this.rateLimit = bytesPerSecond === 0 ? Infinity : bytesPerSecond;
  }

  /** Bytes per second, Infinity when unlimited. */
  get rate(): number {
    return this.rateLimit;
  }

  get limited(): boolean {
    return this.rateLimit !== Infinity;
  }

  /** The earliest the next piece of work may start; -Infinity when it may start now. */
  dueMs(): number {
    if (this.rateLimit === Infinity || this.slotBytes === 0) return -Infinity;
    return this.slotStartMs + (this.slotBytes * 1000) / this.rateLimit;
  }

  allows(nowMs: number): boolean {
    return nowMs >= this.dueMs();
  }

  /** Charges `bytes` of work that started at `startedMs`. */
  charge(startedMs: number, bytes: number): void {
    assert(Number.isFinite(startedMs), 'work starts at a time');
    assert(Number.isFinite(bytes) && bytes >= 0, 'bytes are a count');
    if (this.slotBytes === 0 || startedMs >= this.dueMs()) {
      // The slot before has run out: this work opens the next one.
      this.slotStartMs = startedMs;
      this.slotBytes = bytes;
    } else {
      this.slotBytes += bytes;
    }
  }

  /**
   * Corrects an earlier charge by `bytes` (negative: it charged too much), for work charged
   * at an estimate when it started. The slot never goes below nothing.
   */
  correct(bytes: number): void {
    assert(Number.isFinite(bytes), 'a correction in bytes');
    this.slotBytes = Math.max(0, this.slotBytes + bytes);
  }
}
