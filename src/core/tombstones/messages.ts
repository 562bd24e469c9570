// The wire messages of tombstone purge rounds: compact arrays whose first element names the
// message, carried in the anti-entropy envelope of the peer protocol (the node tells them
// from the exchange's messages by that first element). Whatever arrives is checked here,
// field by field, before the purger acts on it; every list has a ceiling.
//
//   coordinator → member  query   [tq, round, keyspace, partition, keys, tombstones]
//   member → coordinator  answer  [ta, round, states | null]
//   coordinator → member  purge   [tp, round, keyspace, partition, keys, tombstones]
//
// Tombstones travel encoded (store/record.ts), one per key, in the order of the keys. An
// answer holds one CopyState per key asked, in order, or null when the member will not
// answer (it does not know the keyspace, or its map has a membership change in progress).
// A purge names the same pairs; the member removes each row only if it still holds exactly
// that tombstone.

import { KEY_BYTES_CEILING } from '../limits.ts';
import { CopyState } from './tombstone-rules.ts';

export const TombstoneMessageType = {
  query: 'tq',
  answer: 'ta',
  purge: 'tp',
} as const;

/** Keys one query or purge may name. */
export const KEYS_PER_ROUND_CEILING = 1024;
/** Bytes of one encoded tombstone (its context grows with the writers the key has had). */
export const TOMBSTONE_BYTES_CEILING = 64 * 1024;
const KEYSPACE_ID_MAX = 0xffff_ffff;
const PARTITION_MAX = 0xffff;

export type TombstoneQuery = readonly [
  typeof TombstoneMessageType.query,
  roundId: number,
  keyspaceId: number,
  partition: number,
  keys: readonly Uint8Array[],
  tombstones: readonly Uint8Array[],
];

export type TombstoneAnswer = readonly [
  typeof TombstoneMessageType.answer,
  roundId: number,
  states: readonly CopyState[] | null,
];

export type TombstonePurge = readonly [
  typeof TombstoneMessageType.purge,
  roundId: number,
  keyspaceId: number,
  partition: number,
  keys: readonly Uint8Array[],
  tombstones: readonly Uint8Array[],
];

export type TombstoneMessage = TombstoneQuery | TombstoneAnswer | TombstonePurge;

const STATES: readonly unknown[] = Object.values(CopyState);

const isCount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

const isIntegerIn = (value: unknown, low: number, high: number): boolean =>
  typeof value === 'number' && Number.isInteger(value) && value >= low && value <= high;

function isKeyList(value: unknown): value is Uint8Array[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > KEYS_PER_ROUND_CEILING) {
    return false;
  }
  return value.every(
    (key: unknown) =>
      key instanceof Uint8Array && key.length > 0 && key.length <= KEY_BYTES_CEILING,
  );
}

function isTombstoneList(value: unknown, length: number): value is Uint8Array[] {
  return (
    Array.isArray(value) &&
    value.length === length &&
    value.every(
      (bytes: unknown) =>
        bytes instanceof Uint8Array && bytes.length > 0 && bytes.length <= TOMBSTONE_BYTES_CEILING,
    )
  );
}

function isNamedPairs(f: readonly unknown[]): boolean {
  return (
    f.length === 6 &&
    isCount(f[1]) &&
    isIntegerIn(f[2], 0, KEYSPACE_ID_MAX) &&
    isIntegerIn(f[3], 0, PARTITION_MAX) &&
    isKeyList(f[4]) &&
    isTombstoneList(f[5], f[4].length)
  );
}

function isAnswer(f: readonly unknown[]): boolean {
  if (f.length !== 3 || !isCount(f[1])) return false;
  const states = f[2];
  if (states === null) return true;
  return (
    Array.isArray(states) &&
    states.length > 0 &&
    states.length <= KEYS_PER_ROUND_CEILING &&
    states.every((state) => STATES.includes(state))
  );
}

/** Whether a value has the first element of a tombstone message (before it is checked). */
export function isTombstoneMessageType(value: unknown): boolean {
  if (!Array.isArray(value) || value.length === 0) return false;
  const type: unknown = value[0];
  return (
    type === TombstoneMessageType.query ||
    type === TombstoneMessageType.answer ||
    type === TombstoneMessageType.purge
  );
}

/** Never throws, whatever it is given. */
export function isValidTombstoneMessage(value: unknown): value is TombstoneMessage {
  if (!isTombstoneMessageType(value)) return false;
  const fields = value as readonly unknown[];
  return fields[0] === TombstoneMessageType.answer ? isAnswer(fields) : isNamedPairs(fields);
}
