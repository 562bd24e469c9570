// What makes a record a tombstone that may go, and how a replica's copy of a key compares
// with a tombstone a purge round names (docs/ANTI-ENTROPY.md, "Tombstones"). Pure.
//
// Rules kept:
// - A tombstone is a record whose every sibling is deleted (value null): a delete, an
//   expired version, or several of them concurrent. A record with any value, even an expired
//   one that expiry has not turned into a tombstone yet, is not one.
// - Its age runs from its newest sibling's HLC wall time: the delete as its coordinator's
//   clock saw it. Clock skew between nodes shifts the age by the skew, which the grace
//   period must dwarf.
// - A copy is `same` only when it is exactly the tombstone (recordsEqual); a missing copy
//   is `absent`; anything else, older, newer or concurrent, `differs`, and keeps the key.

import { assert } from '../bytes.ts';
import { recordsEqual } from '../kv/merge-records.ts';
import type { StoredRecord } from '../store/record.ts';

/** How a member's copy of a key compares with the tombstone a round names. */
export const CopyState = {
  /** No row for the key: never written there, or purged already. */
  absent: 0,
  /** Exactly the tombstone. */
  same: 1,
  /** A different record: one the tombstone covers, a newer write, or a concurrent one. */
  differs: 2,
  /** The member holds a hint for the key, to hand to one of its replicas. */
  hinted: 3,
} as const;
export type CopyState = (typeof CopyState)[keyof typeof CopyState];

export function isTombstone(record: StoredRecord): boolean {
  return record.siblings.length > 0 && record.siblings.every((sibling) => sibling.value === null);
}

/** The HLC wall time of the record's newest sibling: when it was deleted, for a tombstone. */
export function deletedAtMs(record: StoredRecord): number {
  assert(record.siblings.length > 0, 'a stored record holds a sibling');
  let newestMs = 0;
  for (const sibling of record.siblings) newestMs = Math.max(newestMs, sibling.timestamp[0]);
  return newestMs;
}

/** Whether `record` is a tombstone at least `graceMs` old at `nowMs`. */
export function isTombstonePastGrace(
  record: StoredRecord | undefined,
  nowMs: number,
  graceMs: number,
): boolean {
  assert(graceMs >= 0, 'a grace period is not negative');
  if (record === undefined || !isTombstone(record)) return false;
  return nowMs - deletedAtMs(record) >= graceMs;
}

/** How `held` (undefined: no row) compares with `tombstone`. */
export function copyStateOf(held: StoredRecord | undefined, tombstone: StoredRecord): CopyState {
  assert(isTombstone(tombstone), 'a round names tombstones');
  if (held === undefined) return CopyState.absent;
  return recordsEqual(held, tombstone) ? CopyState.same : CopyState.differs;
}

/**
 * Whether every answer lets the key go: each member either holds exactly the tombstone or
 * holds nothing for it. A member that holds an older version would bring it back once the
 * tombstone is gone; a newer or concurrent write makes the tombstone moot anyway; a hint
 * may still carry an older version to a replica.
 */
export function mayPurge(states: readonly CopyState[]): boolean {
  return states.every((state) => state === CopyState.absent || state === CopyState.same);
}

/**
 * Whether a repair should leave out sending `record` to a peer that holds nothing for the
 * key. A tombstone past its grace period is either purged already on the peer or was never
 * needed there: the purge round accepts a missing copy as readily as the tombstone, so
 * sending it would only bring back a row the next round removes again, back and forth.
 */
export function skipsRepairToAbsent(
  record: StoredRecord | undefined,
  nowMs: number,
  graceMs: number,
): boolean {
  return isTombstonePastGrace(record, nowMs, graceMs);
}
