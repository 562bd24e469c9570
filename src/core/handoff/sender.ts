// The sending side of partition handoff: one page request in, one reply out, built from a
// scan of the partition's rows. The sender keeps no state between requests (the receiver's
// cursors say where to go on), so a sender that crashes or restarts loses nothing, and any
// replica of the partition can answer any request.
//
// Rules it keeps: rows go out in ascending key order, strictly after the request's cursor; a
// page stops at the request's (and the sender's own) key and byte limits, but always carries
// at least one row when one remains, however large; a row larger than any page may be is
// refused, never skipped. The rows it reads are bounded: scans start small and double, so a
// page of a few large records does not read many more large records than it sends.

import { assert } from '../bytes.ts';
import { dataKey, dataPrefix, dataPrefixEnd, DATA_KEY_OVERHEAD } from '../store/layout.ts';
import type { StorageReader } from '../../storage/contract.ts';
import {
  COUNT_BYTES_CEILING,
  COUNT_KEYS_CEILING,
  entryBytes,
  HandoffMessageType,
  isAfter,
  PAGE_BYTES_CEILING,
  PAGE_KEYS_CEILING,
  PAGE_REPLY_BYTES_CEILING,
  RefusalCode,
  type PageEntry,
  type PageMessage,
  type PageRequestMessage,
  type RefusalMessage,
} from './messages.ts';

/** A row of the partition: a user key and its encoded StoredRecord. */
export interface PartitionRow {
  readonly key: Uint8Array;
  readonly record: Uint8Array;
}

/**
 * The rows of one partition whose keys come strictly after `after` (null: from the first),
 * in ascending key order, exactly `limit` of them unless the partition ends first.
 */
export type PartitionScan = (after: Uint8Array | null, limit: number) => readonly PartitionRow[];

/** The sender's own bounds, whatever a request asks for. */
export interface SenderLimits {
  readonly pageKeysMax: number;
  readonly pageBytesMax: number;
  readonly countKeysMax: number;
  readonly countBytesMax: number;
  /** Largest row that may travel; a larger one is refused with `record-too-large`. */
  readonly entryBytesMax: number;
}

export const DEFAULT_SENDER_LIMITS: SenderLimits = {
  pageKeysMax: PAGE_KEYS_CEILING,
  pageBytesMax: 4 * 1024 * 1024,
  countKeysMax: 32_768,
  countBytesMax: 64 * 1024 * 1024,
  entryBytesMax: PAGE_REPLY_BYTES_CEILING,
};

/** The first scan of a walk reads this many rows; each next one twice as many, to this cap. */
const SCAN_CHUNK_ROWS_FIRST = 1;
const SCAN_CHUNK_ROWS_MAX = 1024;

/** What a walk does with a row: keep it and go on, or stop before it. */
const Take = { andContinue: 0, stopBefore: 1 } as const;
type Take = (typeof Take)[keyof typeof Take];

/**
 * Reads rows after `after` in growing chunks, handing each to `visit` until it says stop or
 * `rowsMax` rows were read. Returns whether the partition ended before the walk stopped.
 */
function walkRows(
  scan: PartitionScan,
  after: Uint8Array | null,
  rowsMax: number,
  visit: (row: PartitionRow) => Take,
): boolean {
  assert(Number.isSafeInteger(rowsMax) && rowsMax >= 1, 'a walk reads at least one row');
  let chunkRows = SCAN_CHUNK_ROWS_FIRST;
  let rowsRead = 0;
  let previous = after;
  while (rowsRead < rowsMax) {
    const limit = Math.min(chunkRows, rowsMax - rowsRead);
    const rows = scan(previous, limit);
    assert(rows.length <= limit, 'a scan returns at most its limit');
    for (const row of rows) {
      assert(isAfter(row.key, previous), 'a scan returns ascending keys after its start');
      rowsRead++;
      const take = visit(row);
      if (take !== Take.andContinue) return false;
      previous = row.key;
    }
    if (rows.length < limit) return true;
    chunkRows = Math.min(chunkRows * 2, SCAN_CHUNK_ROWS_MAX);
  }
  return false;
}

/** A refusal answering `request`. */
export function refusalOf(request: PageRequestMessage, code: RefusalCode): RefusalMessage {
  return [HandoffMessageType.refusal, request[1], request[4], code];
}

/**
 * The reply to a (validated) page request, built from `scan` over the requested partition:
 * the page after the request's cursor, and the count it asked for. Pure: it only reads.
 */
export function pageOf(
  scan: PartitionScan,
  request: PageRequestMessage,
  limits: SenderLimits = DEFAULT_SENDER_LIMITS,
): PageMessage | RefusalMessage {
  const [, transferId, , , cursor, keysAsked, bytesAsked, countCursor] = request;
  const keysMax = Math.min(keysAsked, limits.pageKeysMax, PAGE_KEYS_CEILING);
  const bytesMax = Math.min(bytesAsked, limits.pageBytesMax, PAGE_BYTES_CEILING);
  const entryBytesMax = Math.min(limits.entryBytesMax, PAGE_REPLY_BYTES_CEILING);
  assert(keysMax >= 1 && bytesMax >= 1, 'a page request asks for at least one row and byte');

  const entries: PageEntry[] = [];
  let bytes = 0;
  let tooLarge = false;
  // One row past keysMax is read to learn whether the partition ends with this page.
  const ended = walkRows(scan, cursor, keysMax + 1, (row) => {
    const size = entryBytes(row.key, row.record);
    if (entries.length === keysMax) return Take.stopBefore;
    if (entries.length > 0 && bytes + size > bytesMax) return Take.stopBefore;
    if (size > entryBytesMax) {
      // Only a page's first row can be refused; otherwise the next page starts with it.
      tooLarge = entries.length === 0;
      return Take.stopBefore;
    }
    entries.push([row.key, row.record]);
    bytes += size;
    return Take.andContinue;
  });
  if (tooLarge) return refusalOf(request, RefusalCode.recordTooLarge);
  assert(ended || entries.length > 0, 'a page that is not the last carries a row');
  const last = entries[entries.length - 1];
  const nextCursor = ended ? null : last![0];

  const count = countAhead(scan, request, limits);
  return [
    HandoffMessageType.page,
    transferId,
    cursor,
    entries,
    nextCursor,
    countCursor,
    count.keys,
    count.bytes,
    count.next,
  ];
}

interface CountResult {
  readonly keys: number;
  readonly bytes: number;
  /** Where the count stopped; null when it reached the end (or counted nothing by request). */
  readonly next: Uint8Array | null;
}

/** Counts rows after the request's count cursor, within the request's and sender's bounds. */
function countAhead(
  scan: PartitionScan,
  request: PageRequestMessage,
  limits: SenderLimits,
): CountResult {
  const [, , , , , , , countCursor, countKeysAsked, countBytesAsked] = request;
  const keysMax = Math.min(countKeysAsked, limits.countKeysMax, COUNT_KEYS_CEILING);
  if (keysMax === 0) return { keys: 0, bytes: 0, next: null };
  const bytesMax = Math.min(countBytesAsked, limits.countBytesMax, COUNT_BYTES_CEILING);
  const counted = { keys: 0, bytes: 0, last: null as Uint8Array | null };
  // As for a page, one row past the bounds is read to learn whether the count has ended.
  const ended = walkRows(scan, countCursor, keysMax + 1, (row) => {
    // At least one row is counted, so the count always moves forward.
    if (counted.keys > 0 && (counted.keys === keysMax || counted.bytes >= bytesMax)) {
      return Take.stopBefore;
    }
    counted.keys++;
    counted.bytes += entryBytes(row.key, row.record);
    counted.last = row.key;
    return Take.andContinue;
  });
  assert(counted.keys <= keysMax, 'the count stays within its bound');
  assert(ended || counted.keys > 0, 'a count that did not end counted a row');
  const next = ended ? null : counted.last;
  return { keys: counted.keys, bytes: counted.bytes, next };
}

/**
 * A PartitionScan over the node's storage, in the data table's layout (layout.ts). It sees
 * what the storage holds: every batch of earlier steps, durable or only staged;
 * docs/HANDOFF.md says why that suffices while the node writes to both owners.
 */
export function storagePartitionScan(
  reader: StorageReader,
  keyspaceId: number,
  partition: number,
): PartitionScan {
  const prefix = dataPrefix(keyspaceId, partition);
  const end = dataPrefixEnd(keyspaceId, partition);
  return (after, limit) => {
    // The smallest storage key after `after` is its data key followed by a zero byte.
    let start = prefix;
    if (after !== null) {
      const afterKey = dataKey(keyspaceId, partition, after);
      start = new Uint8Array(afterKey.length + 1);
      start.set(afterKey);
    }
    const rows = reader.scan({ start, end, limit });
    return rows.map((row) => ({ key: row.key.subarray(DATA_KEY_OVERHEAD), record: row.value }));
  };
}
