// Merging two replicas' records of one key: the "sync" of dotted version vector sets
// (Preguiça et al.). A record is a causal context (everything its replica has seen) and the
// siblings it holds, each named by its dot. Merging keeps a sibling unless the other replica
// has seen its dot and no longer holds it, which means it was superseded there; the contexts
// join pointwise. The merge is a join: commutative, associative and idempotent, so replicas
// that exchange records in any order, any number of times, converge.
//
// Rules kept:
// - Policy-free: concurrent siblings are all kept, even under `lww`; reads pick the winner
//   (siblings.ts). Dropping by timestamp here would let a causally later write with an older
//   clock lose, and would break associativity.
// - One dot, one sibling. Two forms of one dot differ only when expiry turned one into a
//   tombstone (same dot and timestamp, value null, no expiry); the tombstone wins, since
//   expiry only ever moves a version that way.
// - Siblings come out sorted by dot (node id, then counter), so equal inputs encode to equal
//   bytes whatever order they were merged in.

import { assert, compareBytes } from '../bytes.ts';
import type { Sibling, StoredRecord } from '../store/record.ts';
import { compareHlc } from '../versions/hlc.ts';
import {
  coversDot,
  descends,
  isValidVector,
  mergeVectors,
  type Dot,
} from '../versions/version-vector.ts';

/** The join of two records of one key; undefined only when both are. */
export function mergeRecords(
  a: StoredRecord | undefined,
  b: StoredRecord | undefined,
): StoredRecord | undefined {
  if (a === undefined) return b === undefined ? undefined : canonicalRecord(b);
  if (b === undefined) return canonicalRecord(a);
  assert(isValidVector(a.context) && isValidVector(b.context), 'contexts are version vectors');
  // The merge is a join only for records whose context covers their own dots, which is how
  // every write builds them (writeVersion adds the new dot to the context).
  assert(coversOwnDots(a) && coversOwnDots(b), 'a record has seen the siblings it holds');
  const left = sortedSiblings(a.siblings);
  const right = sortedSiblings(b.siblings);
  const siblings: Sibling[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    const fromLeft = left[i];
    const fromRight = right[j];
    const order =
      fromLeft === undefined
        ? 1
        : fromRight === undefined
          ? -1
          : compareDots(fromLeft.dot, fromRight.dot);
    if (order === 0) {
      pushSibling(siblings, preferredForm(fromLeft!, fromRight!));
      i++;
      j++;
    } else if (order < 0) {
      // Only in `a`: kept unless `b` has seen it (and, not holding it, superseded it).
      if (!coversDot(b.context, fromLeft!.dot)) pushSibling(siblings, fromLeft!);
      i++;
    } else {
      if (!coversDot(a.context, fromRight!.dot)) pushSibling(siblings, fromRight!);
      j++;
    }
  }
  return { context: mergeVectors(a.context, b.context), siblings };
}

/**
 * Whether `a` already holds everything `b` has: merging `b` into `a` gives `a` back (up to
 * sibling order). A replica whose record descends another's needs no repair from it.
 */
export function recordDescends(a: StoredRecord | undefined, b: StoredRecord | undefined): boolean {
  if (b === undefined) return true;
  if (a === undefined) return false;
  if (!descends(a.context, b.context)) return false;
  const left = sortedSiblings(a.siblings);
  const right = sortedSiblings(b.siblings);
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    const fromLeft = left[i];
    const fromRight = right[j];
    const order =
      fromLeft === undefined
        ? 1
        : fromRight === undefined
          ? -1
          : compareDots(fromLeft.dot, fromRight.dot);
    if (order === 0) {
      // Both hold the dot: `a` must already hold the form the merge keeps.
      if (
        preferredForm(fromLeft!, fromRight!) !== fromLeft &&
        !sameSibling(fromLeft!, fromRight!)
      ) {
        return false;
      }
      i++;
      j++;
    } else if (order < 0) {
      // Held by `a` alone: the merge drops it if `b` has seen it.
      if (coversDot(b.context, fromLeft!.dot)) return false;
      i++;
    } else {
      // Held by `b` alone: the merge adds it unless `a` has seen it.
      if (!coversDot(a.context, fromRight!.dot)) return false;
      j++;
    }
  }
  return true;
}

/** Whether two records are the same, sibling order aside. */
export function recordsEqual(a: StoredRecord | undefined, b: StoredRecord | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.context.length !== b.context.length || a.siblings.length !== b.siblings.length) {
    return false;
  }
  for (let index = 0; index < a.context.length; index++) {
    const left = a.context[index]!;
    const right = b.context[index]!;
    if (left[0] !== right[0] || left[1] !== right[1]) return false;
  }
  const left = sortedSiblings(a.siblings);
  const right = sortedSiblings(b.siblings);
  for (let index = 0; index < left.length; index++) {
    if (!sameSibling(left[index]!, right[index]!)) return false;
  }
  return true;
}

/** Dot order: node id, then counter. The canonical order of a record's siblings. */
export function compareDots(a: Dot, b: Dot): number {
  if (a.node !== b.node) return a.node < b.node ? -1 : 1;
  return a.counter - b.counter;
}

function coversOwnDots(record: StoredRecord): boolean {
  for (const sibling of record.siblings) if (!coversDot(record.context, sibling.dot)) return false;
  return true;
}

function canonicalRecord(record: StoredRecord): StoredRecord {
  const siblings = sortedSiblings(record.siblings);
  let distinct = true;
  for (let index = 1; index < siblings.length; index++) {
    if (compareDots(siblings[index - 1]!.dot, siblings[index]!.dot) === 0) distinct = false;
  }
  if (siblings === record.siblings && distinct) return record;
  const unique: Sibling[] = [];
  for (const sibling of siblings) pushSibling(unique, sibling);
  return { context: record.context, siblings: unique };
}

/** The siblings in dot order: the same array when already sorted (the common case). */
function sortedSiblings(siblings: readonly Sibling[]): readonly Sibling[] {
  for (let index = 1; index < siblings.length; index++) {
    if (compareDots(siblings[index - 1]!.dot, siblings[index]!.dot) > 0) {
      return [...siblings].sort((x, y) => compareDots(x.dot, y.dot));
    }
  }
  return siblings;
}

/** Appends in dot order; a repeated dot (one record holding it twice) keeps one form. */
function pushSibling(target: Sibling[], sibling: Sibling): void {
  const last = target[target.length - 1];
  if (last !== undefined && compareDots(last.dot, sibling.dot) === 0) {
    target[target.length - 1] = preferredForm(last, sibling);
    return;
  }
  assert(last === undefined || compareDots(last.dot, sibling.dot) < 0, 'siblings in dot order');
  target.push(sibling);
}

/**
 * Of two forms of one dot, the one the merge keeps: the tombstone, since expiry turns a
 * version into one and nothing turns it back. Forms that differ otherwise cannot come from
 * one write; a fixed total order still picks one, so the merge stays a join on any input.
 */
function preferredForm(x: Sibling, y: Sibling): Sibling {
  if ((x.value === null) !== (y.value === null)) return x.value === null ? x : y;
  return compareForms(x, y) >= 0 ? x : y;
}

function compareForms(x: Sibling, y: Sibling): number {
  const byTime = compareHlc(x.timestamp, y.timestamp);
  if (byTime !== 0) return byTime;
  if (x.expiresAtMs !== y.expiresAtMs) return x.expiresAtMs - y.expiresAtMs;
  if (x.value === null || y.value === null) return 0;
  return compareBytes(x.value, y.value);
}

function sameSibling(x: Sibling, y: Sibling): boolean {
  return (
    compareDots(x.dot, y.dot) === 0 &&
    compareForms(x, y) === 0 &&
    (x.value === null) === (y.value === null)
  );
}
