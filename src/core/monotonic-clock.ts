// A clock that never goes back, made from a wall clock that may (an NTP step, a clock set by
// hand, the simulator's clock jumps). Protocols that time phases and leases from `nowMs`
// need it: after a jump back, deadlines set before the jump would otherwise lie far in the
// future, and an operation would wait that long. The clock advances by the wall clock's
// forward steps only; a step back counts as no time passing.

export class MonotonicClock {
  private lastWallMs: number | null = null;
  private nowMs = 0;

  /** The monotonic time for a wall-clock reading; starts at the first reading. */
  advance(wallMs: number): number {
    if (this.lastWallMs === null) {
      this.nowMs = wallMs;
    } else if (wallMs > this.lastWallMs) {
      this.nowMs += wallMs - this.lastWallMs;
    }
    this.lastWallMs = wallMs;
    return this.nowMs;
  }
}
