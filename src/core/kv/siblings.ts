// Reading a record: which versions are live at a given time and which one wins.
// A sibling is live when it is not a tombstone and has not expired. Siblings are ordered by
// HLC timestamp, ties broken by node id, so every replica picks the same winner from the
// same record. A delete (or an expiry) is ordered against the writes concurrent with it the
// same way: a live sibling older than a concurrent tombstone or expired version is hidden,
// so an acknowledged DEL is not undone by an earlier write it did not see. The winner is
// the latest sibling of all; the key has no value when that one is not live.

import { compareHlc } from '../versions/hlc.ts';
import type { Sibling, StoredRecord } from '../store/record.ts';

export function isLive(sibling: Sibling, nowMs: number): boolean {
  return sibling.value !== null && (sibling.expiresAtMs === 0 || sibling.expiresAtMs > nowMs);
}

/** Orders siblings winner first. */
export function compareSiblingsWinnerFirst(a: Sibling, b: Sibling): number {
  const byTime = compareHlc(b.timestamp, a.timestamp);
  if (byTime !== 0) return byTime;
  return a.dot.node < b.dot.node ? 1 : a.dot.node > b.dot.node ? -1 : b.dot.counter - a.dot.counter;
}

/** The visible live siblings, winner first: those later than every sibling that is not live. */
export function liveSiblings(record: StoredRecord | undefined, nowMs: number): Sibling[] {
  if (record === undefined) return [];
  let latestGone: Sibling | null = null;
  for (const sibling of record.siblings) {
    if (isLive(sibling, nowMs)) continue;
    if (latestGone === null || compareSiblingsWinnerFirst(sibling, latestGone) < 0) {
      latestGone = sibling;
    }
  }
  const live = record.siblings.filter(
    (sibling) =>
      isLive(sibling, nowMs) &&
      (latestGone === null || compareSiblingsWinnerFirst(sibling, latestGone) < 0),
  );
  if (live.length > 1) live.sort(compareSiblingsWinnerFirst);
  return live;
}

/** The latest sibling when it is live, or null: the key has no live value. */
export function winningSibling(record: StoredRecord | undefined, nowMs: number): Sibling | null {
  if (record === undefined) return null;
  let winner: Sibling | null = null;
  for (const sibling of record.siblings) {
    if (winner === null || compareSiblingsWinnerFirst(sibling, winner) < 0) winner = sibling;
  }
  return winner !== null && isLive(winner, nowMs) ? winner : null;
}
