// The byte layout of the write-ahead log: a segment header, then frames, one per committed
// batch. Everything is little-endian.
//
//   segment header (16 bytes): magic "RKW1" | salt u32 | first sequence u64
//   frame: payload length u32 | crc32 u32 | sequence u64 | payload
//   payload: write count u32, then per write: key length u32 | value length + 1 u32
//            (0: a delete) | key | value
//
// A frame's CRC covers its sequence and payload and starts from the segment's salt, a
// random number drawn each time a segment file is (re)used. Old frames left in a recycled
// file therefore never check out, even where their sequence number would fit.

import { crc32 } from 'node:zlib';
import type { StorageWrite } from '../contract.ts';

export const SEGMENT_HEADER_BYTES = 16;
export const FRAME_HEADER_BYTES = 16;
const SEGMENT_MAGIC = 0x31574b52; // "RKW1" read as a little-endian u32
const TWO_TO_32 = 2 ** 32;

export interface SegmentHeader {
  readonly salt: number;
  readonly firstSeq: number;
}

export function encodeSegmentHeader(header: SegmentHeader): Buffer {
  const bytes = Buffer.alloc(SEGMENT_HEADER_BYTES);
  bytes.writeUInt32LE(SEGMENT_MAGIC, 0);
  bytes.writeUInt32LE(header.salt, 4);
  writeSeq(bytes, 8, header.firstSeq);
  return bytes;
}

/** The header at the start of `bytes`, or null if there is none. */
export function decodeSegmentHeader(bytes: Uint8Array): SegmentHeader | null {
  if (bytes.length < SEGMENT_HEADER_BYTES) return null;
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (view.readUInt32LE(0) !== SEGMENT_MAGIC) return null;
  return { salt: view.readUInt32LE(4), firstSeq: readSeq(view, 8) };
}

/** Encodes one batch as a frame. */
export function encodeFrame(seq: number, salt: number, writes: readonly StorageWrite[]): Buffer {
  let payloadBytes = 4;
  for (const write of writes) {
    payloadBytes += 8 + write.key.length + (write.value === null ? 0 : write.value.length);
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payloadBytes);
  frame.writeUInt32LE(payloadBytes, 0);
  writeSeq(frame, 8, seq);
  let offset = FRAME_HEADER_BYTES;
  frame.writeUInt32LE(writes.length, offset);
  offset += 4;
  for (const write of writes) {
    frame.writeUInt32LE(write.key.length, offset);
    frame.writeUInt32LE(write.value === null ? 0 : write.value.length + 1, offset + 4);
    offset += 8;
    frame.set(write.key, offset);
    offset += write.key.length;
    if (write.value !== null) {
      frame.set(write.value, offset);
      offset += write.value.length;
    }
  }
  frame.writeUInt32LE(crc32(frame.subarray(8), salt), 4);
  return frame;
}

/** Re-signs an encoded frame for a segment with another salt. */
export function resaltFrame(frame: Buffer, salt: number): void {
  frame.writeUInt32LE(crc32(frame.subarray(8), salt), 4);
}

/**
 * The end of the frame at `offset` if it is whole, checks out against `salt`, has sequence
 * `expectedSeq` and its writes' lengths add up to its payload; otherwise null (the end of
 * the log in this segment). Nothing is decoded: decodeWrites does that.
 */
export function checkFrame(
  segment: Buffer,
  offset: number,
  salt: number,
  expectedSeq: number,
): number | null {
  if (offset + FRAME_HEADER_BYTES > segment.length) return null;
  const payloadBytes = segment.readUInt32LE(offset);
  const end = offset + FRAME_HEADER_BYTES + payloadBytes;
  if (payloadBytes < 4 || end > segment.length) return null;
  if (readSeq(segment, offset + 8) !== expectedSeq) return null;
  if (crc32(segment.subarray(offset + 8, end), salt) !== segment.readUInt32LE(offset + 4)) {
    return null;
  }
  // The CRC matched, so the lengths are what was written; check them anyway.
  const count = segment.readUInt32LE(offset + FRAME_HEADER_BYTES);
  let cursor = offset + FRAME_HEADER_BYTES + 4;
  for (let i = 0; i < count; i++) {
    if (cursor + 8 > end) return null;
    const keyLength = segment.readUInt32LE(cursor);
    const valueField = segment.readUInt32LE(cursor + 4);
    cursor += 8 + keyLength + (valueField === 0 ? 0 : valueField - 1);
    if (cursor > end) return null;
  }
  return cursor === end ? end : null;
}

/** The writes of a frame that checkFrame passed: views into `segment`. */
export function decodeWrites(segment: Buffer, offset: number): StorageWrite[] {
  const count = segment.readUInt32LE(offset + FRAME_HEADER_BYTES);
  const writes: StorageWrite[] = [];
  let cursor = offset + FRAME_HEADER_BYTES + 4;
  for (let i = 0; i < count; i++) {
    const keyLength = segment.readUInt32LE(cursor);
    const valueField = segment.readUInt32LE(cursor + 4);
    cursor += 8;
    const key = segment.subarray(cursor, cursor + keyLength);
    cursor += keyLength;
    const valueLength = valueField === 0 ? 0 : valueField - 1;
    const value = valueField === 0 ? null : segment.subarray(cursor, cursor + valueLength);
    cursor += valueLength;
    writes.push({ key, value });
  }
  return writes;
}

function writeSeq(bytes: Buffer, offset: number, seq: number): void {
  bytes.writeUInt32LE(seq % TWO_TO_32, offset);
  bytes.writeUInt32LE(Math.floor(seq / TWO_TO_32), offset + 4);
}

function readSeq(bytes: Buffer, offset: number): number {
  return bytes.readUInt32LE(offset) + bytes.readUInt32LE(offset + 4) * TWO_TO_32;
}
