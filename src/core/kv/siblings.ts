// Reading a record: which versions are live at a given time and which one wins.
// A sibling is live when it is not a tombstone and has not expired. Siblings are ordered by
// HLC timestamp, ties broken by node id, so every replica picks the same winner from the
// same record. The policy decides what a delete does to the writes concurrent with it:
// - `lww`: the latest sibling of all decides. A live sibling older than a concurrent
//   tombstone (or expired version) is hidden, so an acknowledged DEL is not undone by an
//   earlier write it did not see; the key has no value when the latest is not live.
// - `siblings`: concurrent writes are all kept and returned, so a delete hides only what it
//   has seen (causally); every live sibling is visible, the latest first.

import { compareHlc } from '../versions/hlc.ts';
import type { ConflictPolicy } from '../keyspace.ts';
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

/** The visible live siblings, winner first (see the file's opening for each policy). */
export function liveSiblings(
  record: StoredRecord | undefined,
  nowMs: number,
  policy: ConflictPolicy,
): Sibling[] {
  if (record === undefined) return [];
  let latestGone: Sibling | null = null;
  if (policy === 'lww') {
    for (const sibling of record.siblings) {
      if (isLive(sibling, nowMs)) continue;
      if (latestGone === null || compareSiblingsWinnerFirst(sibling, latestGone) < 0) {
        latestGone = sibling;
      }
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

/**
 * The winning live sibling, or null when the key has no live value: under `lww` the latest
 * sibling of all when it is live; under `siblings` the latest live one.
 */
export function winningSibling(
  record: StoredRecord | undefined,
  nowMs: number,
  policy: ConflictPolicy,
): Sibling | null {
  if (record === undefined) return null;
  let winner: Sibling | null = null;
  for (const sibling of record.siblings) {
    if (policy === 'siblings' && !isLive(sibling, nowMs)) continue;
    if (winner === null || compareSiblingsWinnerFirst(sibling, winner) < 0) winner = sibling;
  }
  return winner !== null && isLive(winner, nowMs) ? winner : null;
}
