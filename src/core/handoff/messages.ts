// The partition handoff wire messages: compact arrays whose first element names the message.
// The pending owner of a partition (the receiver) pulls it from a current replica (the
// sender) one page at a time: it sends a page request, the sender answers with a page or a
// refusal. Replies echo the cursors they answer, so a reply is self-describing: the receiver
// takes it only when it answers the request it is waiting on, and drops any other (an older
// attempt, a restarted receiver's past) as stale.
//
// A request may also ask the sender to count rows ahead of the stream, from a count cursor
// of its own, within a bounded number of rows and bytes; the receiver adds the counts up to
// learn the partition's size, which progress and the ETA are built on (docs/HANDOFF.md).
//
// Whatever arrives from the network is checked here, field by field, before the receiver or
// the sender acts on it. Every size is bounded; the validators never throw.

import { compareBytes } from '../bytes.ts';
import { KEY_BYTES_CEILING } from '../limits.ts';

export const HandoffMessageType = {
  pageRequest: 'hq',
  page: 'hp',
  refusal: 'hx',
} as const;

/** Why a sender refuses a page request. */
export const RefusalCode = {
  /** The sender does not hold the partition (or the keyspace), or cannot serve it now. */
  unavailable: 'unavailable',
  /** The next row is larger than a page may ever be: no source can send it. */
  recordTooLarge: 'record-too-large',
} as const;
export type RefusalCode = (typeof RefusalCode)[keyof typeof RefusalCode];

/** Transfer ids are chosen by the receiver; this bounds them. */
export const TRANSFER_ID_LENGTH_MAX = 128;
/** Most rows one page may carry, and most a request may ask for. */
export const PAGE_KEYS_CEILING = 10_000;
/** Most bytes (keys plus encoded records) a request may ask one page to carry. */
export const PAGE_BYTES_CEILING = 16 * 1024 * 1024;
/**
 * Most bytes one page may carry at all. A page stops before `bytesMax` unless its first row
 * alone passes it, so a page holds at most max(bytesMax, one row); rows larger than this are
 * refused (`record-too-large`). It leaves room for cursors and framing in a 64 MiB frame.
 */
export const PAGE_REPLY_BYTES_CEILING = 48 * 1024 * 1024;
/** Most rows and bytes one request may ask the sender to count. */
export const COUNT_KEYS_CEILING = 100_000;
export const COUNT_BYTES_CEILING = 256 * 1024 * 1024;
export const KEYSPACE_ID_MAX = 0xffff_ffff;
export const PARTITION_MAX = 0xffff;

/**
 * transferId, keyspaceId, partition, cursor (the last key received, null: from the start),
 * keysMax, bytesMax, countCursor (the last key counted, null: from the start), countKeysMax
 * (0: count nothing), countBytesMax.
 */
export type PageRequestMessage = readonly [
  typeof HandoffMessageType.pageRequest,
  transferId: string,
  keyspaceId: number,
  partition: number,
  cursor: Uint8Array | null,
  keysMax: number,
  bytesMax: number,
  countCursor: Uint8Array | null,
  countKeysMax: number,
  countBytesMax: number,
];

/** A user key of the partition and its encoded StoredRecord (src/core/store/record.ts). */
export type PageEntry = readonly [key: Uint8Array, record: Uint8Array];

/**
 * transferId, the request's cursor (echoed), entries in ascending key order after it, the
 * next cursor (the last entry's key; null: the partition ends with this page), the request's
 * count cursor (echoed), keys and bytes counted after it, and where the count stopped (null:
 * it reached the end of the partition). A request that counted nothing gets 0, 0, null.
 */
export type PageMessage = readonly [
  typeof HandoffMessageType.page,
  transferId: string,
  cursor: Uint8Array | null,
  entries: readonly PageEntry[],
  nextCursor: Uint8Array | null,
  countCursor: Uint8Array | null,
  countedKeys: number,
  countedBytes: number,
  countNextCursor: Uint8Array | null,
];

/** transferId, the request's cursor (echoed), why. */
export type RefusalMessage = readonly [
  typeof HandoffMessageType.refusal,
  transferId: string,
  cursor: Uint8Array | null,
  code: RefusalCode,
];

export type HandoffReply = PageMessage | RefusalMessage;
export type HandoffMessage = PageRequestMessage | HandoffReply;

/** The bytes a row weighs against page limits, rate and progress: its key and its record. */
export function entryBytes(key: Uint8Array, record: Uint8Array): number {
  return key.length + record.length;
}

export function isTransferId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= TRANSFER_ID_LENGTH_MAX;
}

function isKey(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length > 0 && value.length <= KEY_BYTES_CEILING;
}

function isCursor(value: unknown): value is Uint8Array | null {
  return value === null || isKey(value);
}

function isCount(value: unknown, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= max;
}

/** Whether `key` comes strictly after `cursor` (everything comes after the null cursor). */
export function isAfter(key: Uint8Array, cursor: Uint8Array | null): boolean {
  return cursor === null || compareBytes(key, cursor) > 0;
}

function isPageRequest(f: readonly unknown[]): boolean {
  return (
    f.length === 10 &&
    isTransferId(f[1]) &&
    isCount(f[2], KEYSPACE_ID_MAX) &&
    isCount(f[3], PARTITION_MAX) &&
    isCursor(f[4]) &&
    isCount(f[5], PAGE_KEYS_CEILING) &&
    f[5] >= 1 &&
    isCount(f[6], PAGE_BYTES_CEILING) &&
    f[6] >= 1 &&
    isCursor(f[7]) &&
    isCount(f[8], COUNT_KEYS_CEILING) &&
    isCount(f[9], COUNT_BYTES_CEILING)
  );
}

/** Entries well formed, ascending, after the cursor, within the page bounds. */
function areEntries(value: unknown, cursor: Uint8Array | null): value is readonly PageEntry[] {
  if (!Array.isArray(value) || value.length > PAGE_KEYS_CEILING) return false;
  let previous = cursor;
  let bytes = 0;
  for (const entry of value as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2) return false;
    const key: unknown = entry[0];
    const record: unknown = entry[1];
    if (!isKey(key) || !(record instanceof Uint8Array) || record.length === 0) return false;
    if (!isAfter(key, previous)) return false;
    bytes += entryBytes(key, record);
    if (bytes > PAGE_REPLY_BYTES_CEILING) return false;
    previous = key;
  }
  return true;
}

function isPage(f: readonly unknown[]): boolean {
  if (f.length !== 9 || !isTransferId(f[1]) || !isCursor(f[2])) return false;
  const entries = f[3];
  if (!areEntries(entries, f[2])) return false;
  // The next cursor is the last entry's key, or null when the partition ended; a page
  // that is not the last carries at least one entry, so the stream always moves.
  const next = f[4];
  if (next !== null) {
    const last = entries[entries.length - 1];
    if (last === undefined || !isKey(next) || compareBytes(next, last[0]) !== 0) return false;
  }
  const countCursor = f[5];
  const countNext = f[8];
  if (!isCursor(countCursor) || !isCursor(countNext)) return false;
  if (!isCount(f[6], COUNT_KEYS_CEILING) || !isCount(f[7], Number.MAX_SAFE_INTEGER)) return false;
  // A count that stopped short of the end counted something and moved forward.
  if (countNext !== null && (f[6] === 0 || !isAfter(countNext, countCursor))) return false;
  return true;
}

function isRefusal(f: readonly unknown[]): boolean {
  return (
    f.length === 4 &&
    isTransferId(f[1]) &&
    isCursor(f[2]) &&
    (f[3] === RefusalCode.unavailable || f[3] === RefusalCode.recordTooLarge)
  );
}

/** Never throws, whatever it is given. */
export function isValidHandoffMessage(value: unknown): value is HandoffMessage {
  if (!Array.isArray(value) || value.length === 0) return false;
  const fields = value as readonly unknown[];
  switch (fields[0]) {
    case HandoffMessageType.pageRequest:
      return isPageRequest(fields);
    case HandoffMessageType.page:
      return isPage(fields);
    case HandoffMessageType.refusal:
      return isRefusal(fields);
    default:
      return false;
  }
}

export function isPageRequestMessage(message: HandoffMessage): message is PageRequestMessage {
  return message[0] === HandoffMessageType.pageRequest;
}

export function isHandoffReply(message: HandoffMessage): message is HandoffReply {
  return message[0] === HandoffMessageType.page || message[0] === HandoffMessageType.refusal;
}
