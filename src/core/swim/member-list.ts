// What one node believes about every other member: liveness, incarnation, and when a
// suspicion started. Updates are ordered by the SWIM paper's precedence, with down kept as
// a liveness state rather than a removal:
//   alive(i)   overrides alive(j), suspect(j) and down(j)   when i > j
//   suspect(i) overrides alive(j)                            when i >= j
//              overrides suspect(j) and down(j)              when i > j
//   down(i)    overrides alive(j) and suspect(j)             when i >= j
//              overrides down(j)                             when i > j
// Only the member itself raises its incarnation, so a higher incarnation is always newer
// news, and at one incarnation the order is alive < suspect < down.

import { assert } from '../bytes.ts';
import { MEMBER_COUNT_MAX } from './config.ts';
import type { Liveness, SwimUpdate } from './messages.ts';

export interface MemberRecord {
  readonly id: string;
  liveness: Liveness;
  incarnation: number;
  /** When the current suspicion started; meaningful while liveness is 'suspect'. */
  suspectedAtMs: number;
}

const RANK: Readonly<Record<Liveness, number>> = { alive: 0, suspect: 1, down: 2 };

/** Does `incoming` replace what is held as (`liveness`, `incarnation`)? */
export function supersedes(
  incoming: { readonly liveness: Liveness; readonly incarnation: number },
  held: { readonly liveness: Liveness; readonly incarnation: number },
): boolean {
  assert(incoming.incarnation >= 0 && held.incarnation >= 0, 'incarnations are non-negative');
  if (incoming.incarnation !== held.incarnation) return incoming.incarnation > held.incarnation;
  return RANK[incoming.liveness] > RANK[held.liveness];
}

export class MemberList {
  private readonly records = new Map<string, MemberRecord>();
  private readonly suspectIds = new Set<string>();

  get size(): number {
    return this.records.size;
  }

  get(id: string): MemberRecord | undefined {
    return this.records.get(id);
  }

  has(id: string): boolean {
    return this.records.has(id);
  }

  all(): IterableIterator<MemberRecord> {
    return this.records.values();
  }

  /** Ids of members currently suspect, for the suspicion timers. */
  suspects(): readonly string[] {
    return [...this.suspectIds];
  }

  add(id: string): MemberRecord {
    assert(!this.records.has(id), `member ${id} is added once`);
    assert(this.records.size < MEMBER_COUNT_MAX, 'membership is bounded');
    const record: MemberRecord = { id, liveness: 'alive', incarnation: 0, suspectedAtMs: 0 };
    this.records.set(id, record);
    return record;
  }

  remove(id: string): void {
    this.records.delete(id);
    this.suspectIds.delete(id);
  }

  /**
   * Applies an update if it takes precedence; returns the liveness held before, or
   * undefined when the update was stale (or about a non-member) and nothing changed.
   */
  apply(update: SwimUpdate, nowMs: number): Liveness | undefined {
    const record = this.records.get(update.id);
    if (record === undefined || !supersedes(update, record)) return undefined;
    const before = record.liveness;
    record.liveness = update.liveness;
    record.incarnation = update.incarnation;
    if (update.liveness === 'suspect') {
      // A suspicion at a newer incarnation is a new suspicion with its own timer.
      record.suspectedAtMs = nowMs;
      this.suspectIds.add(update.id);
    } else {
      this.suspectIds.delete(update.id);
    }
    assert(record.liveness !== 'suspect' || this.suspectIds.has(record.id), 'suspects tracked');
    return before;
  }
}
