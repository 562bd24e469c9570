// Little binary writer and reader for the core's on-disk and wire encodings: unsigned
// varints (LEB128, up to 2^53 - 1, using arithmetic rather than 32-bit bit operations),
// fixed big-endian integers (so that encoded keys sort as numbers), and length-prefixed bytes.

import { utf8, fromUtf8 } from '../bytes.ts';

/** The last short ASCII string decoded, with its bytes (see ByteReader.string). */
let lastString: { readonly bytes: Uint8Array; readonly text: string } = {
  bytes: new Uint8Array(0),
  text: '',
};

export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

export class ByteWriter {
  private buffer: Uint8Array;
  private offset = 0;

  constructor(initialCapacity = 64) {
    this.buffer = new Uint8Array(initialCapacity);
  }

  private reserve(bytes: number): void {
    if (this.offset + bytes <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < this.offset + bytes) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.buffer.subarray(0, this.offset));
    this.buffer = next;
  }

  uint8(value: number): this {
    this.reserve(1);
    this.buffer[this.offset++] = value;
    return this;
  }

  varint(value: number): this {
    if (!(Number.isSafeInteger(value) && value >= 0)) throw new RangeError(`varint ${value}`);
    this.reserve(8);
    const buffer = this.buffer;
    // Above 31 bits (a millisecond timestamp) the low 28 bits go first, as four bytes, so that
    // the rest (at most 25 bits) fits the 32-bit bit operations of the common case.
    if (value > 0x7fffffff) {
      const low = value % 0x1000_0000;
      buffer[this.offset++] = (low & 0x7f) | 0x80;
      buffer[this.offset++] = ((low >>> 7) & 0x7f) | 0x80;
      buffer[this.offset++] = ((low >>> 14) & 0x7f) | 0x80;
      buffer[this.offset++] = (low >>> 21) | 0x80;
      value = Math.floor(value / 0x1000_0000);
    }
    while (value >= 0x80) {
      buffer[this.offset++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buffer[this.offset++] = value;
    return this;
  }

  uint16(value: number): this {
    this.reserve(2);
    this.buffer[this.offset++] = value >>> 8;
    this.buffer[this.offset++] = value & 0xff;
    return this;
  }

  uint32(value: number): this {
    this.reserve(4);
    this.buffer[this.offset++] = value >>> 24;
    this.buffer[this.offset++] = (value >>> 16) & 0xff;
    this.buffer[this.offset++] = (value >>> 8) & 0xff;
    this.buffer[this.offset++] = value & 0xff;
    return this;
  }

  /** A non-negative safe integer as 8 big-endian bytes. */
  uint64(value: number): this {
    if (!(Number.isSafeInteger(value) && value >= 0)) throw new RangeError(`uint64 ${value}`);
    this.uint32(Math.floor(value / 0x1_0000_0000));
    return this.uint32(value % 0x1_0000_0000);
  }

  raw(bytes: Uint8Array): this {
    this.reserve(bytes.length);
    this.buffer.set(bytes, this.offset);
    this.offset += bytes.length;
    return this;
  }

  bytes(bytes: Uint8Array): this {
    return this.varint(bytes.length).raw(bytes);
  }

  string(text: string): this {
    // Short ASCII strings (node ids, mostly) are written directly: TextEncoder is costly
    // for a few bytes.
    if (text.length < 128) {
      this.reserve(1 + text.length);
      const lengthOffset = this.offset;
      this.buffer[this.offset++] = text.length;
      for (let i = 0; i < text.length; i++) {
        const code = text.charCodeAt(i);
        if (code >= 0x80) {
          this.offset = lengthOffset;
          return this.bytes(utf8(text));
        }
        this.buffer[this.offset++] = code;
      }
      return this;
    }
    return this.bytes(utf8(text));
  }

  /** Bytes the writer can hold before it grows. */
  get capacity(): number {
    return this.buffer.length;
  }

  /** Empties the writer for reuse; bytes `finish` returned before are overwritten. */
  reset(): this {
    this.offset = 0;
    return this;
  }

  /** The bytes written. The writer must not be used afterwards (unless reset). */
  finish(): Uint8Array {
    return this.buffer.subarray(0, this.offset);
  }
}

export class ByteReader {
  private offset = 0;
  private readonly bytesIn: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.bytesIn = bytes;
  }

  /** Offset of the next byte to read. */
  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.bytesIn.length - this.offset;
  }

  /** Whether the next bytes are `expected` (the caller checked they are there). */
  private matchesAhead(expected: Uint8Array): boolean {
    const bytes = this.bytesIn;
    const offset = this.offset;
    for (let i = 0; i < expected.length; i++) if (bytes[offset + i] !== expected[i]) return false;
    return true;
  }

  private need(count: number): void {
    if (this.offset + count > this.bytesIn.length) {
      throw new DecodeError(`truncated: need ${count} bytes at offset ${this.offset}`);
    }
  }

  uint8(): number {
    this.need(1);
    return this.bytesIn[this.offset++]!;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const byte = this.uint8();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(value)) throw new DecodeError('varint out of range');
        return value;
      }
      scale *= 0x80;
    }
    throw new DecodeError('varint longer than 8 bytes');
  }

  uint16(): number {
    this.need(2);
    const value = (this.bytesIn[this.offset]! << 8) | this.bytesIn[this.offset + 1]!;
    this.offset += 2;
    return value;
  }

  uint32(): number {
    this.need(4);
    const b = this.bytesIn;
    const o = this.offset;
    this.offset += 4;
    return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }

  uint64(): number {
    const high = this.uint32();
    const low = this.uint32();
    const value = high * 0x1_0000_0000 + low;
    if (!Number.isSafeInteger(value)) throw new DecodeError('uint64 beyond 2^53');
    return value;
  }

  raw(count: number): Uint8Array {
    this.need(count);
    const slice = this.bytesIn.subarray(this.offset, this.offset + count);
    this.offset += count;
    return slice;
  }

  bytes(): Uint8Array {
    return this.raw(this.varint());
  }

  /** Skips a length-prefixed byte string; answers where its bytes start (no view made). */
  skipBytes(): number {
    const length = this.varint();
    this.need(length);
    const start = this.offset;
    this.offset += length;
    return start;
  }

  string(): string {
    const length = this.varint();
    this.need(length);
    // Node ids fill every record's context and dots, so the same few strings come back on
    // every decode: the last one is kept and reused when its bytes match, compared in
    // place (no view made).
    const last = lastString;
    if (length === last.bytes.length && this.matchesAhead(last.bytes)) {
      this.offset += length;
      return last.text;
    }
    const bytes = this.raw(length);
    if (bytes.length < 64) {
      let ascii = true;
      for (let i = 0; i < bytes.length; i++) if (bytes[i]! >= 0x80) ascii = false;
      if (ascii) {
        const text = String.fromCharCode.apply(null, bytes as unknown as number[]);
        lastString = { bytes: bytes.slice(), text };
        return text;
      }
    }
    return fromUtf8(bytes);
  }

  rest(): Uint8Array {
    return this.raw(this.remaining);
  }
}
