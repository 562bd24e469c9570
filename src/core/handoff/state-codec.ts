// The saved state of a receiving partition transfer: who it is (transfer id, keyspace,
// partition, source) and how far it has durably come (the cursor, what has arrived, what has
// been counted). The receiver writes it together with a page's records, or after them, so
// a receiver restored from it re-asks at most the pages that were not yet durable.
//
// The encoding is versioned (a leading format byte) and canonical: equal states encode to
// equal bytes, and the decoder accepts only the bytes its encoder would produce (it checks
// each field, refuses trailing bytes, then re-encodes and compares). Malformed bytes raise
// DecodeError, never anything else.
//
// Format 1, integers unsigned varints unless said:
//   u8 1 | transferId string | keyspaceId | partition | source string
//        | u8 flags (1 complete, 2 count complete, 4 has cursor, 8 has count cursor)
//        | [cursor bytes] | keysDurable | bytesDurable | countedKeys | countedBytes
//        | [countCursor bytes]

import { equalBytes } from '../bytes.ts';
import { KEY_BYTES_CEILING } from '../limits.ts';
import { ByteReader, ByteWriter, DecodeError } from '../store/byte-codec.ts';
import { NODE_ID_BYTES_MAX } from '../store/layout.ts';
import { isTransferId, KEYSPACE_ID_MAX, PARTITION_MAX } from './messages.ts';

const FORMAT_VERSION = 1;
const FLAG_COMPLETE = 1;
const FLAG_COUNT_COMPLETE = 2;
const FLAG_HAS_CURSOR = 4;
const FLAG_HAS_COUNT_CURSOR = 8;
const FLAGS_ALL = FLAG_COMPLETE | FLAG_COUNT_COMPLETE | FLAG_HAS_CURSOR | FLAG_HAS_COUNT_CURSOR;

/** What a receiver keeps durably about one transfer. */
export interface SavedTransfer {
  readonly transferId: string;
  readonly keyspaceId: number;
  readonly partition: number;
  /** The replica it streams from (a hint for the node; any replica may serve). */
  readonly source: string;
  /** The last key whose page is durable; null before the first page. */
  readonly cursor: Uint8Array | null;
  /** The last page is durable: the whole partition has arrived. */
  readonly complete: boolean;
  readonly keysDurable: number;
  readonly bytesDurable: number;
  /** Rows and bytes the sources counted from the partition's start up to `countCursor`. */
  readonly countedKeys: number;
  readonly countedBytes: number;
  readonly countCursor: Uint8Array | null;
  /** The count reached the partition's end: countedKeys is the partition's size. */
  readonly countComplete: boolean;
}

export function encodeSavedTransfer(saved: SavedTransfer): Uint8Array {
  const writer = new ByteWriter(
    64 + (saved.cursor?.length ?? 0) + (saved.countCursor?.length ?? 0),
  );
  writer.uint8(FORMAT_VERSION).string(saved.transferId);
  writer.varint(saved.keyspaceId).varint(saved.partition).string(saved.source);
  const flags =
    (saved.complete ? FLAG_COMPLETE : 0) |
    (saved.countComplete ? FLAG_COUNT_COMPLETE : 0) |
    (saved.cursor !== null ? FLAG_HAS_CURSOR : 0) |
    (saved.countCursor !== null ? FLAG_HAS_COUNT_CURSOR : 0);
  writer.uint8(flags);
  if (saved.cursor !== null) writer.bytes(saved.cursor);
  writer.varint(saved.keysDurable).varint(saved.bytesDurable);
  writer.varint(saved.countedKeys).varint(saved.countedBytes);
  if (saved.countCursor !== null) writer.bytes(saved.countCursor);
  return writer.finish();
}

function readKey(reader: ByteReader): Uint8Array {
  const length = reader.varint();
  if (length < 1 || length > KEY_BYTES_CEILING) throw new DecodeError(`a key of ${length} bytes`);
  return reader.raw(length).slice();
}

export function decodeSavedTransfer(bytes: Uint8Array): SavedTransfer {
  const reader = new ByteReader(bytes);
  const format = reader.uint8();
  if (format !== FORMAT_VERSION) throw new DecodeError(`saved transfer format ${format}`);
  const transferId = reader.string();
  const keyspaceId = reader.varint();
  const partition = reader.varint();
  const source = reader.string();
  if (!isTransferId(transferId)) throw new DecodeError('a transfer id out of bounds');
  if (keyspaceId > KEYSPACE_ID_MAX || partition > PARTITION_MAX) {
    throw new DecodeError(`keyspace ${keyspaceId}, partition ${partition} out of range`);
  }
  if (source.length === 0 || source.length > NODE_ID_BYTES_MAX) throw new DecodeError('a source');
  const flags = reader.uint8();
  if ((flags & ~FLAGS_ALL) !== 0) throw new DecodeError(`saved transfer flags ${flags}`);
  const cursor = flags & FLAG_HAS_CURSOR ? readKey(reader) : null;
  const keysDurable = reader.varint();
  const bytesDurable = reader.varint();
  const countedKeys = reader.varint();
  const countedBytes = reader.varint();
  const countCursor = flags & FLAG_HAS_COUNT_CURSOR ? readKey(reader) : null;
  const countComplete = (flags & FLAG_COUNT_COMPLETE) !== 0;
  // A finished count has nowhere left to go on from.
  if (countComplete && countCursor !== null)
    throw new DecodeError('a finished count with a cursor');
  if (reader.remaining !== 0) throw new DecodeError(`${reader.remaining} trailing bytes`);
  const saved: SavedTransfer = {
    transferId,
    keyspaceId,
    partition,
    source,
    cursor,
    complete: (flags & FLAG_COMPLETE) !== 0,
    keysDurable,
    bytesDurable,
    countedKeys,
    countedBytes,
    countCursor,
    countComplete,
  };
  // Only the encoder's own bytes are accepted: this refuses every non-canonical spelling.
  if (!equalBytes(encodeSavedTransfer(saved), bytes)) {
    throw new DecodeError('not the canonical encoding');
  }
  return saved;
}
