// Version vectors and dots, the causality half of dotted version vectors (Preguiça et al.).
// A version vector maps node ids to counters; a dot (node, counter) names one write. A
// version vector kept sorted by node id makes merge and comparison linear and the encoding
// canonical (equal vectors encode to equal bytes).

import { assert } from '../bytes.ts';

export interface Dot {
  readonly node: string;
  readonly counter: number;
}

/** Entries sorted by node id, counters > 0, no duplicates. */
export type VersionVector = readonly (readonly [node: string, counter: number])[];

export const EMPTY_VECTOR: VersionVector = [];

export function counterOf(vector: VersionVector, node: string): number {
  for (const [entryNode, counter] of vector) if (entryNode === node) return counter;
  return 0;
}

/** Whether the vector has seen the write named by `dot`. */
export function coversDot(vector: VersionVector, dot: Dot): boolean {
  return counterOf(vector, dot.node) >= dot.counter;
}

/** The pointwise maximum. */
export function mergeVectors(a: VersionVector, b: VersionVector): VersionVector {
  const result: (readonly [string, number])[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const left = a[i];
    const right = b[j];
    if (right === undefined || (left !== undefined && left[0] < right[0])) {
      result.push(left!);
      i++;
    } else if (left === undefined || right[0] < left[0]) {
      result.push(right);
      j++;
    } else {
      result.push([left[0], Math.max(left[1], right[1])]);
      i++;
      j++;
    }
  }
  return result;
}

/** The vector with `dot` added (its counter raised to the dot's if lower). */
export function withDot(vector: VersionVector, dot: Dot): VersionVector {
  // Every write makes one: one pass and one new list, where a merge with a vector of one
  // entry would build that vector too (checked against the merge by a property test).
  const result: (readonly [string, number])[] = [];
  let placed = false;
  for (const entry of vector) {
    if (!placed && dot.node <= entry[0]) {
      placed = true;
      if (dot.node === entry[0]) {
        result.push(entry[1] >= dot.counter ? entry : [dot.node, dot.counter]);
        continue;
      }
      result.push([dot.node, dot.counter]);
    }
    result.push(entry);
  }
  if (!placed) result.push([dot.node, dot.counter]);
  assert(result.length >= vector.length, 'a dot never removes an entry');
  return result;
}

/** Whether `a` has seen everything `b` has (a ≥ b pointwise). */
export function descends(a: VersionVector, b: VersionVector): boolean {
  for (const [node, counter] of b) if (counterOf(a, node) < counter) return false;
  return true;
}

export function isValidVector(vector: VersionVector): boolean {
  for (let i = 0; i < vector.length; i++) {
    const entry = vector[i]!;
    if (!(Number.isSafeInteger(entry[1]) && entry[1] > 0)) return false;
    if (i > 0 && !(vector[i - 1]![0] < entry[0])) return false;
  }
  return true;
}
