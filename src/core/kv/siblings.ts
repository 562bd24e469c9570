// Reading a record: which versions are live at a given time and which one wins.
// A sibling is live when it is not a tombstone and has not expired. Among concurrent live
// siblings the winner has the greatest HLC timestamp, ties broken by node id, so every
// replica picks the same winner from the same record.

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

export function liveSiblings(record: StoredRecord | undefined, nowMs: number): Sibling[] {
  if (record === undefined) return [];
  const live = record.siblings.filter((sibling) => isLive(sibling, nowMs));
  if (live.length > 1) live.sort(compareSiblingsWinnerFirst);
  return live;
}

/** The winning live sibling, or null when the key has no live value. */
export function winningSibling(record: StoredRecord | undefined, nowMs: number): Sibling | null {
  if (record === undefined) return null;
  let winner: Sibling | null = null;
  for (const sibling of record.siblings) {
    if (!isLive(sibling, nowMs)) continue;
    if (winner === null || compareSiblingsWinnerFirst(sibling, winner) < 0) winner = sibling;
  }
  return winner;
}
