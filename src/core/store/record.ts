// The stored form of a key: every live or deleted version (sibling) with its dot, HLC
// timestamp and expiry, and the causal context (version vector) covering them. Replication
// merges records of this shape; a single node always holds one sibling under `lww`.
//
// Encoding (version 1), all integers unsigned varints unless said:
//   u8 1 | context: count, then (node string, counter) sorted by node
//        | siblings: count, then (node string, counter, wallMs, logical, u8 flags,
//          [expiresAtMs if flags&2], [value bytes unless flags&1])
// flags: 1 = tombstone (a delete), 2 = has expiry.

import { fromUtf8 } from '../bytes.ts';
import { ByteReader, ByteWriter, DecodeError } from './byte-codec.ts';
import { VIEW_BYTES_MAX, type ByteSlab } from './byte-slab.ts';
import type { HlcTimestamp } from '../versions/hlc.ts';
import type { ConflictPolicy } from '../keyspace.ts';
import { isValidVector, type Dot, type VersionVector } from '../versions/version-vector.ts';

export interface Sibling {
  readonly dot: Dot;
  readonly timestamp: HlcTimestamp;
  /** Null: a tombstone. */
  readonly value: Uint8Array | null;
  /** Unix ms after which the value is gone; 0 for none. */
  readonly expiresAtMs: number;
}

export interface StoredRecord {
  readonly context: VersionVector;
  readonly siblings: readonly Sibling[];
}

const RECORD_FORMAT_VERSION = 1;
const FLAG_TOMBSTONE = 1;
const FLAG_EXPIRY = 2;
const SIBLINGS_MAX = 1024;
const CONTEXT_ENTRIES_MAX = 4096;

/**
 * Encodes a record. With a slab, a small record is encoded into the slab's scratch writer
 * and copied into the slab (byte-slab.ts says why); a large one gets its own buffer.
 */
export function encodeRecord(record: StoredRecord, slab: ByteSlab | null = null): Uint8Array {
  let valueBytes = 0;
  for (const sibling of record.siblings) valueBytes += sibling.value?.length ?? 0;
  const small = slab !== null && valueBytes < VIEW_BYTES_MAX / 2;
  const writer = small ? slab.scratch() : new ByteWriter(64 + valueBytes);
  writer.uint8(RECORD_FORMAT_VERSION);
  writeVector(writer, record.context);
  writer.varint(record.siblings.length);
  for (const sibling of record.siblings) {
    writer.string(sibling.dot.node).varint(sibling.dot.counter);
    writer.varint(sibling.timestamp[0]).varint(sibling.timestamp[1]);
    const flags =
      (sibling.value === null ? FLAG_TOMBSTONE : 0) | (sibling.expiresAtMs > 0 ? FLAG_EXPIRY : 0);
    writer.uint8(flags);
    if (sibling.expiresAtMs > 0) writer.varint(sibling.expiresAtMs);
    if (sibling.value !== null) writer.bytes(sibling.value);
  }
  return small ? slab.keep(writer.finish()) : writer.finish();
}

/**
 * The bytes encodeRecord gives for the record of one live version written by `node` (its
 * UTF-8 bytes) at `counter`, whose context is that one dot: the record of every plain SET
 * of a single node, encoded without building it (a property test holds the two together).
 */
export function encodeSoleRecord(
  node: Uint8Array,
  counter: number,
  timestamp: HlcTimestamp,
  value: Uint8Array,
  expiresAtMs: number,
  slab: ByteSlab,
): Uint8Array {
  const small = value.length < VIEW_BYTES_MAX / 2;
  const writer = small ? slab.scratch() : new ByteWriter(64 + value.length);
  writer.uint8(RECORD_FORMAT_VERSION).varint(1).bytes(node).varint(counter);
  writer.varint(1).bytes(node).varint(counter).varint(timestamp[0]).varint(timestamp[1]);
  writer.uint8(expiresAtMs > 0 ? FLAG_EXPIRY : 0);
  if (expiresAtMs > 0) writer.varint(expiresAtMs);
  writer.bytes(value);
  return small ? slab.keep(writer.finish()) : writer.finish();
}

/** Decodes a record; throws DecodeError on bytes that are not one. */
export function decodeRecord(bytes: Uint8Array): StoredRecord {
  const reader = new ByteReader(bytes);
  const version = reader.uint8();
  if (version !== RECORD_FORMAT_VERSION) throw new DecodeError(`record format ${version}`);
  const context = readVector(reader);
  const siblingCount = reader.varint();
  if (siblingCount > SIBLINGS_MAX) throw new DecodeError(`${siblingCount} siblings`);
  const siblings: Sibling[] = [];
  for (let i = 0; i < siblingCount; i++) {
    const node = reader.string();
    const counter = reader.varint();
    const wallMs = reader.varint();
    const logical = reader.varint();
    const flags = reader.uint8();
    if ((flags & ~(FLAG_TOMBSTONE | FLAG_EXPIRY)) !== 0) throw new DecodeError(`flags ${flags}`);
    const expiresAtMs = flags & FLAG_EXPIRY ? reader.varint() : 0;
    const value = flags & FLAG_TOMBSTONE ? null : reader.bytes();
    siblings.push({ dot: { node, counter }, timestamp: [wallMs, logical], value, expiresAtMs });
  }
  if (reader.remaining !== 0) throw new DecodeError(`${reader.remaining} trailing bytes`);
  return { context, siblings };
}

export interface WinnerView {
  readonly value: Uint8Array;
  readonly expiresAtMs: number;
}

/**
 * The winning live version of an encoded record, read without building the record: the
 * hot path of a plain GET. Agrees with decodeRecord followed by winningSibling (a property
 * test holds them together). Throws DecodeError on bytes that are not a record.
 */
export function readWinner(
  bytes: Uint8Array,
  nowMs: number,
  policy: ConflictPolicy,
): WinnerView | null {
  const reader = new ByteReader(bytes);
  const version = reader.uint8();
  if (version !== RECORD_FORMAT_VERSION) throw new DecodeError(`record format ${version}`);
  const contextCount = reader.varint();
  if (contextCount > CONTEXT_ENTRIES_MAX) throw new DecodeError(`${contextCount} context entries`);
  for (let i = 0; i < contextCount; i++) {
    reader.skipBytes();
    reader.varint();
  }
  const siblingCount = reader.varint();
  if (siblingCount > SIBLINGS_MAX) throw new DecodeError(`${siblingCount} siblings`);
  // Under lww the latest sibling of all wins, and the key has no value when it is a
  // tombstone or expired; under siblings the latest live one wins.
  let winner: WinnerView | null = null;
  let winnerFound = false;
  let winnerWallMs = 0;
  let winnerLogical = 0;
  // Nodes as offsets into `bytes`: most records have one sibling, and the node's bytes are
  // read only to break a tie.
  let winnerNode = 0;
  let winnerNodeEnd = 0;
  let winnerCounter = 0;
  for (let i = 0; i < siblingCount; i++) {
    const node = reader.skipBytes();
    const nodeEnd = reader.position;
    const counter = reader.varint();
    const wallMs = reader.varint();
    const logical = reader.varint();
    const flags = reader.uint8();
    if ((flags & ~(FLAG_TOMBSTONE | FLAG_EXPIRY)) !== 0) throw new DecodeError(`flags ${flags}`);
    const expiresAtMs = flags & FLAG_EXPIRY ? reader.varint() : 0;
    const value = flags & FLAG_TOMBSTONE ? null : reader.bytes();
    const live = value !== null && (expiresAtMs === 0 || expiresAtMs > nowMs);
    if (policy === 'siblings' && !live) continue;
    const wins =
      !winnerFound ||
      wallMs > winnerWallMs ||
      (wallMs === winnerWallMs &&
        (logical > winnerLogical ||
          (logical === winnerLogical &&
            laterNode(
              fromUtf8(bytes.subarray(node, nodeEnd)),
              counter,
              fromUtf8(bytes.subarray(winnerNode, winnerNodeEnd)),
              winnerCounter,
            ))));
    if (wins) {
      winnerFound = true;
      winner = live ? { value, expiresAtMs } : null;
      winnerWallMs = wallMs;
      winnerLogical = logical;
      winnerNode = node;
      winnerNodeEnd = nodeEnd;
      winnerCounter = counter;
    }
  }
  if (reader.remaining !== 0) throw new DecodeError(`${reader.remaining} trailing bytes`);
  return winner;
}

/**
 * What a blind write under `lww` needs of the record it replaces, when that record's causal
 * context is one entry, of the writing node, and it holds one version: the key's state on a
 * node that alone writes it, which every SET of a single node finds. Read by
 * readSoleVersion without building the record.
 */
export interface SoleVersion {
  /** The writing node's counter in the context. */
  readonly counter: number;
  /** The version's value, if it is live at `nowMs` (else null). */
  readonly live: Uint8Array | null;
  /** The version's expiry; 0 for none. */
  readonly expiresAtMs: number;
}

/**
 * Reads an encoded record as a SoleVersion of `node` (its UTF-8 bytes). Null for a record
 * of any other shape, and for bytes that are not a record: the caller then takes the path
 * that decodes the record in full, and fails there. Agrees with decodeRecord (a property
 * test holds them together).
 */
export function readSoleVersion(
  bytes: Uint8Array,
  node: Uint8Array,
  nowMs: number,
): SoleVersion | null {
  try {
    const reader = new ByteReader(bytes);
    if (reader.uint8() !== RECORD_FORMAT_VERSION || reader.varint() !== 1) return null;
    const contextNode = reader.skipBytes();
    if (!sameBytes(bytes, contextNode, reader.position, node)) return null;
    const counter = reader.varint();
    if (counter === 0 || reader.varint() !== 1) return null;
    reader.skipBytes();
    reader.varint();
    reader.varint();
    reader.varint();
    const flags = reader.uint8();
    if ((flags & ~(FLAG_TOMBSTONE | FLAG_EXPIRY)) !== 0) return null;
    const expiresAtMs = flags & FLAG_EXPIRY ? reader.varint() : 0;
    const value = flags & FLAG_TOMBSTONE ? null : reader.bytes();
    if (reader.remaining !== 0) return null;
    const live = value !== null && (expiresAtMs === 0 || expiresAtMs > nowMs) ? value : null;
    return { counter, live, expiresAtMs };
  } catch (error) {
    if (error instanceof DecodeError) return null;
    throw error;
  }
}

/** Whether bytes[start, end) are `expected`: equalBytes without making a view of the range. */
function sameBytes(bytes: Uint8Array, start: number, end: number, expected: Uint8Array): boolean {
  if (end - start !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (bytes[start + i] !== expected[i]) return false;
  return true;
}

/** Ties on the timestamp go to the greater node id, then the greater counter (as in siblings.ts). */
function laterNode(node: string, counter: number, other: string, otherCounter: number): boolean {
  return node !== other ? node > other : counter > otherCounter;
}

/** The causal context handed to clients: an encoded version vector. */
export function encodeContext(vector: VersionVector): Uint8Array {
  const writer = new ByteWriter(8 + vector.length * 12);
  writer.uint8(RECORD_FORMAT_VERSION);
  writeVector(writer, vector);
  return writer.finish();
}

/** Decodes a client-supplied context; throws DecodeError when malformed. */
export function decodeContext(bytes: Uint8Array): VersionVector {
  const reader = new ByteReader(bytes);
  const version = reader.uint8();
  if (version !== RECORD_FORMAT_VERSION) throw new DecodeError(`context format ${version}`);
  const vector = readVector(reader);
  if (reader.remaining !== 0) throw new DecodeError(`${reader.remaining} trailing bytes`);
  return vector;
}

function writeVector(writer: ByteWriter, vector: VersionVector): void {
  writer.varint(vector.length);
  for (const [node, counter] of vector) writer.string(node).varint(counter);
}

function readVector(reader: ByteReader): VersionVector {
  const count = reader.varint();
  if (count > CONTEXT_ENTRIES_MAX) throw new DecodeError(`${count} context entries`);
  const vector: [string, number][] = [];
  for (let i = 0; i < count; i++) vector.push([reader.string(), reader.varint()]);
  if (!isValidVector(vector)) throw new DecodeError('context not sorted or has zero counters');
  return vector;
}
