// How the core lays its data out in the ordered key space of Storage. The first byte names
// the table; integers are big-endian so that keys sort by them:
//   meta     0x00 | name (utf-8)                                        → bytes
//   data     0x10 | keyspace id u32 | partition u16 | key              → encoded StoredRecord
//   expiry   0x20 | expires-at ms u64 | keyspace id u32 | partition u16 | key → empty
//   hint     0x30 | owner length u8 | owner (utf-8) | keyspace id u32 | partition u16 | key
//                                                                     → encoded StoredRecord
//   paxos    0x40 | keyspace id u32 | partition u16 | key              → acceptor key state
//   chain    0x50 | partition u16 | kind u8 | (meta: nothing; record: keyspace id u32 | key;
//                  requester: id (utf-8); entry: sequence u64)         → chain row (state-codec)
// Data sorted by (keyspace, partition) lets a partition be streamed with one range scan.
// The expiry index sorted by time lets each tick find what has expired without a full scan.

import { ByteReader } from './byte-codec.ts';
import { fromUtf8, prefixEnd, utf8 } from '../bytes.ts';

export const TABLE_META = 0x00;
export const TABLE_DATA = 0x10;
export const TABLE_EXPIRY = 0x20;
/** Writes a fallback node holds for an unreachable owner (sloppy quorum, hinted handoff). */
export const TABLE_HINT = 0x30;
/** CASPaxos acceptor state of each register (strong keyspaces, the cluster map). */
export const TABLE_PAXOS = 0x40;
/** Chain replication's rows, per partition (src/core/chain/state-codec.ts). */
export const TABLE_CHAIN = 0x50;
export const ChainRowKind = { meta: 0, record: 1, requester: 2, entry: 3 } as const;
export type ChainRowKind = (typeof ChainRowKind)[keyof typeof ChainRowKind];
/** Node ids are at most this many UTF-8 bytes: hint keys carry them behind one length byte. */
export const NODE_ID_BYTES_MAX = 255;

/** Bytes a data key adds to the user's key. */
export const DATA_KEY_OVERHEAD = 7;

export function metaKey(name: string): Uint8Array {
  const nameBytes = utf8(name);
  const key = new Uint8Array(1 + nameBytes.length);
  key[0] = TABLE_META;
  key.set(nameBytes, 1);
  return key;
}

function writeKeyspacePartition(
  target: Uint8Array,
  offset: number,
  keyspaceId: number,
  partition: number,
): void {
  target[offset] = keyspaceId >>> 24;
  target[offset + 1] = (keyspaceId >>> 16) & 0xff;
  target[offset + 2] = (keyspaceId >>> 8) & 0xff;
  target[offset + 3] = keyspaceId & 0xff;
  target[offset + 4] = partition >>> 8;
  target[offset + 5] = partition & 0xff;
}

export function dataKey(keyspaceId: number, partition: number, key: Uint8Array): Uint8Array {
  const storageKey = new Uint8Array(DATA_KEY_OVERHEAD + key.length);
  storageKey[0] = TABLE_DATA;
  writeKeyspacePartition(storageKey, 1, keyspaceId, partition);
  storageKey.set(key, DATA_KEY_OVERHEAD);
  return storageKey;
}

/** The prefix of every data key of a keyspace, or of one partition of it. */
export function dataPrefix(keyspaceId: number, partition?: number): Uint8Array {
  if (partition === undefined) {
    const prefix = new Uint8Array(5);
    prefix[0] = TABLE_DATA;
    writeKeyspacePartition(prefix, 1, keyspaceId, 0);
    return prefix.subarray(0, 5);
  }
  const prefix = new Uint8Array(DATA_KEY_OVERHEAD);
  prefix[0] = TABLE_DATA;
  writeKeyspacePartition(prefix, 1, keyspaceId, partition);
  return prefix;
}

export function dataPrefixEnd(keyspaceId: number, partition?: number): Uint8Array | null {
  return prefixEnd(dataPrefix(keyspaceId, partition));
}

export interface DataKeyParts {
  readonly keyspaceId: number;
  readonly partition: number;
  readonly key: Uint8Array;
}

export function parseDataKey(storageKey: Uint8Array): DataKeyParts {
  const reader = new ByteReader(storageKey);
  if (reader.uint8() !== TABLE_DATA) throw new Error('not a data key');
  const keyspaceId = reader.uint32();
  const partition = reader.uint16();
  return { keyspaceId, partition, key: reader.rest() };
}

const EXPIRY_TIME_BYTES = 8;

export function expiryKey(expiresAtMs: number, storageDataKey: Uint8Array): Uint8Array {
  const key = new Uint8Array(1 + EXPIRY_TIME_BYTES + storageDataKey.length - 1);
  key[0] = TABLE_EXPIRY;
  const high = Math.floor(expiresAtMs / 0x1_0000_0000);
  const low = expiresAtMs % 0x1_0000_0000;
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  view.setUint32(1, high);
  view.setUint32(5, low);
  key.set(storageDataKey.subarray(1), 1 + EXPIRY_TIME_BYTES);
  return key;
}

export interface ExpiryKeyParts {
  readonly expiresAtMs: number;
  readonly dataKey: Uint8Array;
}

export function parseExpiryKey(key: Uint8Array): ExpiryKeyParts {
  const reader = new ByteReader(key);
  if (reader.uint8() !== TABLE_EXPIRY) throw new Error('not an expiry key');
  const expiresAtMs = reader.uint64();
  const rest = reader.rest();
  const storageDataKey = new Uint8Array(1 + rest.length);
  storageDataKey[0] = TABLE_DATA;
  storageDataKey.set(rest, 1);
  return { expiresAtMs, dataKey: storageDataKey };
}

export const EXPIRY_TABLE_START = new Uint8Array([TABLE_EXPIRY]);

/** The first expiry key strictly after every entry expiring at or before `nowMs`. */
export function expiryKeyAfter(nowMs: number): Uint8Array {
  const key = new Uint8Array(1 + EXPIRY_TIME_BYTES);
  key[0] = TABLE_EXPIRY;
  const view = new DataView(key.buffer);
  const next = nowMs + 1;
  view.setUint32(1, Math.floor(next / 0x1_0000_0000));
  view.setUint32(5, next % 0x1_0000_0000);
  return key;
}

/** The prefix of every hint held for `owner`. */
export function hintPrefix(owner: string): Uint8Array {
  const ownerBytes = utf8(owner);
  if (ownerBytes.length === 0 || ownerBytes.length > NODE_ID_BYTES_MAX) {
    throw new Error(`node id of ${ownerBytes.length} bytes`);
  }
  const prefix = new Uint8Array(2 + ownerBytes.length);
  prefix[0] = TABLE_HINT;
  prefix[1] = ownerBytes.length;
  prefix.set(ownerBytes, 2);
  return prefix;
}

/** A hint key: the owner's prefix followed by the data key without its table byte. */
export function hintKey(owner: string, storageDataKey: Uint8Array): Uint8Array {
  const prefix = hintPrefix(owner);
  const key = new Uint8Array(prefix.length + storageDataKey.length - 1);
  key.set(prefix);
  key.set(storageDataKey.subarray(1), prefix.length);
  return key;
}

export const HINT_TABLE_START = new Uint8Array([TABLE_HINT]);
export const HINT_TABLE_END = new Uint8Array([TABLE_HINT + 1]);

export interface HintKeyParts {
  readonly owner: string;
  readonly dataKey: Uint8Array;
}

export function parseHintKey(key: Uint8Array): HintKeyParts {
  if (key[0] !== TABLE_HINT || key.length < 2) throw new Error('not a hint key');
  const ownerLength = key[1]!;
  const owner = fromUtf8(key.subarray(2, 2 + ownerLength));
  const rest = key.subarray(2 + ownerLength);
  const storageDataKey = new Uint8Array(1 + rest.length);
  storageDataKey[0] = TABLE_DATA;
  storageDataKey.set(rest, 1);
  return { owner, dataKey: storageDataKey };
}

/** An acceptor's row for register `key` of keyspace `keyspaceId`, sorted like data keys. */
export function paxosKey(keyspaceId: number, partition: number, key: Uint8Array): Uint8Array {
  const storageKey = dataKey(keyspaceId, partition, key);
  storageKey[0] = TABLE_PAXOS;
  return storageKey;
}

/** The prefix of every acceptor row of a keyspace, or of one partition of it. */
export function paxosPrefix(keyspaceId: number, partition?: number): Uint8Array {
  const prefix = dataPrefix(keyspaceId, partition);
  prefix[0] = TABLE_PAXOS;
  return prefix;
}

export function parsePaxosKey(storageKey: Uint8Array): DataKeyParts {
  if (storageKey[0] !== TABLE_PAXOS) throw new Error('not an acceptor row');
  const reader = new ByteReader(storageKey);
  reader.uint8();
  const keyspaceId = reader.uint32();
  const partition = reader.uint16();
  return { keyspaceId, partition, key: reader.rest() };
}

/** The key of a chain row: the partition, the row's kind, then what names the row. */
export function chainRowKey(partition: number, kind: ChainRowKind, rest: Uint8Array): Uint8Array {
  const key = new Uint8Array(4 + rest.length);
  key[0] = TABLE_CHAIN;
  key[1] = partition >>> 8;
  key[2] = partition & 0xff;
  key[3] = kind;
  key.set(rest, 4);
  return key;
}

/** An entry row's name: its sequence number, big-endian, so rows sort by it. */
export function sequenceBytes(sequence: number): Uint8Array {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, Math.floor(sequence / 0x1_0000_0000));
  view.setUint32(4, sequence % 0x1_0000_0000);
  return bytes;
}

export const CHAIN_TABLE_START = new Uint8Array([TABLE_CHAIN]);
export const CHAIN_TABLE_END = new Uint8Array([TABLE_CHAIN + 1]);

/** The partition and kind of a chain row key, and the bytes after them. */
export function parseChainRowKey(key: Uint8Array): {
  readonly partition: number;
  readonly kind: number;
  readonly rest: Uint8Array;
} {
  if (key[0] !== TABLE_CHAIN || key.length < 4) throw new Error('not a chain row');
  return { partition: (key[1]! << 8) | key[2]!, kind: key[3]!, rest: key.subarray(4) };
}
