// Hybrid logical clock (Kulkarni et al. 2014): timestamps that follow the wall clock but
// never go backwards and order causally related events, even when clocks drift. A timestamp
// is [wall ms, logical counter]; compared lexicographically. Used only to break ties between
// concurrent versions: causality itself is decided by version vectors.

export type HlcTimestamp = readonly [wallMs: number, logical: number];

/** The logical counter is stored in 16 bits. */
export const HLC_LOGICAL_MAX = 0xffff;

export function compareHlc(a: HlcTimestamp, b: HlcTimestamp): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1];
}

export class HybridLogicalClock {
  private wallMs = 0;
  private logical = 0;

  constructor(start: HlcTimestamp = [0, 0]) {
    this.wallMs = start[0];
    this.logical = start[1];
  }

  /** A timestamp for a local event at physical time `nowMs`. */
  now(nowMs: number): HlcTimestamp {
    if (nowMs > this.wallMs) {
      this.wallMs = nowMs;
      this.logical = 0;
    } else {
      this.advanceLogical();
    }
    return [this.wallMs, this.logical];
  }

  /** Merge a timestamp received from elsewhere; returns the timestamp of the receive event. */
  observe(remote: HlcTimestamp, nowMs: number): HlcTimestamp {
    const wallMs = Math.max(this.wallMs, remote[0], nowMs);
    if (wallMs === this.wallMs && wallMs === remote[0]) {
      this.logical = Math.max(this.logical, remote[1]);
      this.advanceLogical();
    } else if (wallMs === this.wallMs) {
      this.advanceLogical();
    } else if (wallMs === remote[0]) {
      this.logical = remote[1];
      this.advanceLogical();
    } else {
      this.logical = 0;
    }
    this.wallMs = wallMs;
    return [this.wallMs, this.logical];
  }

  last(): HlcTimestamp {
    return [this.wallMs, this.logical];
  }

  private advanceLogical(): void {
    if (this.logical < HLC_LOGICAL_MAX) {
      this.logical += 1;
    } else {
      // The counter is full: borrow a millisecond rather than overflow. The clock runs
      // ahead of the wall by at most a millisecond per 65536 events in that millisecond.
      this.wallMs += 1;
      this.logical = 0;
    }
  }
}
