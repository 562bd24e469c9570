// The digest of a stored record: what two replicas compare to learn whether they hold the
// same version of a key without sending the values.
//
// Rules kept:
// - Canonical: built from the context's entries sorted by node and the siblings sorted by
//   dot, so two replicas holding one logical record in different orders agree.
// - A dot names one version, its value and timestamp included, so neither is hashed (a
//   16 MiB value costs nothing here). What one dot may still differ in is hashed: the
//   tombstone flag and the expiry (expiry turns a version into a tombstone in place).
// - The digest is a non-negative safe integer of 53 bits: one JavaScript number, compared
//   with ===, carried on the wire as one msgpack integer. Two different records collide with
//   probability 2^-53, and a collision only delays a repair until either record changes.
// - Stable across versions and platforms: replicas of different releases compare digests.

import { assert } from '../bytes.ts';
import type { Sibling, StoredRecord } from '../store/record.ts';
import type { VersionVector } from '../versions/version-vector.ts';
import { Hash64 } from './hash64.ts';

/** Seeds the record digest's hash; no other hash in anti-entropy uses it. */
const RECORD_DIGEST_SEED = 0x7265_6364;
/** Separates the context's words from the siblings' in the hashed stream. */
const SIBLINGS_MARK = 0x5349_424c;
const HIGH_BITS_MASK = 0x1f_ffff;
const TWO_TO_32 = 0x1_0000_0000;

/** The largest digest: 2^53 - 1. */
export const RECORD_DIGEST_MAX = Number.MAX_SAFE_INTEGER;

export function recordDigest(record: StoredRecord): number {
  const hash = new Hash64(RECORD_DIGEST_SEED);
  const context = sortedContext(record.context);
  hash.word(context.length);
  for (const [node, counter] of context) hash.text(node).safeInteger(counter);
  const siblings = sortedSiblings(record.siblings);
  hash.word(SIBLINGS_MARK).word(siblings.length);
  for (const sibling of siblings) {
    hash.text(sibling.dot.node).safeInteger(sibling.dot.counter);
    hash.word(sibling.value === null ? 1 : 0).safeInteger(sibling.expiresAtMs);
  }
  hash.finish();
  const digest = (hash.high & HIGH_BITS_MASK) * TWO_TO_32 + hash.low;
  assert(Number.isSafeInteger(digest) && digest >= 0, 'a digest is a safe integer');
  return digest;
}

export function isValidRecordDigest(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** The context sorted by node; a valid vector already is, and is returned as it is. */
function sortedContext(context: VersionVector): VersionVector {
  let sorted = true;
  for (let i = 1; i < context.length && sorted; i++) sorted = context[i - 1]![0] < context[i]![0];
  if (sorted) return context;
  return [...context].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
}

/**
 * Siblings in a total order: by dot, then (for the two forms one dot may take) tombstones
 * first, then by expiry, so that even such a pair hashes the same in either order.
 */
function sortedSiblings(siblings: readonly Sibling[]): readonly Sibling[] {
  let sorted = true;
  for (let i = 1; i < siblings.length && sorted; i++) {
    sorted = compareSiblings(siblings[i - 1]!, siblings[i]!) <= 0;
  }
  return sorted ? siblings : [...siblings].sort(compareSiblings);
}

function compareSiblings(a: Sibling, b: Sibling): number {
  if (a.dot.node !== b.dot.node) return a.dot.node < b.dot.node ? -1 : 1;
  if (a.dot.counter !== b.dot.counter) return a.dot.counter - b.dot.counter;
  const aTombstone = a.value === null ? 0 : 1;
  const bTombstone = b.value === null ? 0 : 1;
  if (aTombstone !== bTombstone) return aTombstone - bTombstone;
  return a.expiresAtMs - b.expiresAtMs;
}
