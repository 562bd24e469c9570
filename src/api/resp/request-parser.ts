// Incremental parser of Redis requests: RESP arrays of bulk strings ("multibulk", what every
// client library sends) and inline commands (what a person types into telnet). Pure: bytes
// in, commands out, no I/O.
//
// Bounds: an array has at most ARGUMENTS_MAX elements, a bulk string at most `bulkBytesMax`
// bytes, an inline command at most INLINE_BYTES_MAX. Anything else is a protocol error,
// after which the connection must be closed (as Redis does): the byte stream can no longer
// be trusted to be in step.
//
// Chunks are kept in a list until the bytes a partial command needs have arrived, so a
// 16 MiB value arriving in 64 KiB pieces is copied once, not once per piece.

export const ARGUMENTS_MAX = 1024 * 1024;
export const INLINE_BYTES_MAX = 64 * 1024;
const LENGTH_LINE_BYTES_MAX = 32;
const EMPTY = Buffer.alloc(0);

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

/** What parsing at an offset found: a command's arguments, or one of these. */
const SKIP = 'skip';
const INCOMPLETE = 'incomplete';
type ParseStep = Buffer[] | typeof SKIP | typeof INCOMPLETE;

/**
 * Where readLengthLine leaves its line's value and the offset after it: one object for
 * every call, read at once. Returning a fresh object per line cost an allocation per
 * argument of every command.
 */
const lengthLine = { value: 0, next: 0 };

export class RequestParser {
  private readonly bulkBytesMax: number;
  private buffer: Buffer = EMPTY;
  private offset = 0;
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  private needBytes = 0;
  /** Set by a parse step that found a command or skipped one: where the next one starts. */
  private stepNext = 0;
  /**
   * Set by a step that found too few bytes: the total from the command's start it needs
   * before trying again, or 0 if not known yet.
   */
  private stepNeedBytes = 0;

  constructor(bulkBytesMax: number) {
    this.bulkBytesMax = bulkBytesMax;
  }

  /** Bytes received and not yet parsed into commands. */
  get bufferedBytes(): number {
    return this.buffer.length - this.offset + this.heldBytes;
  }

  /**
   * Feeds bytes; calls `onCommand` for each complete command, in order. Throws
   * ProtocolError on malformed input (commands before the error have been delivered).
   */
  feed(chunk: Buffer, onCommand: (args: Buffer[]) => void): void {
    if (this.needBytes > 0 && this.bufferedBytes + chunk.length < this.needBytes) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      return;
    }
    if (this.offset >= this.buffer.length && this.held.length === 0) {
      this.buffer = chunk;
    } else {
      this.buffer = Buffer.concat([this.buffer.subarray(this.offset), ...this.held, chunk]);
      this.held.length = 0;
      this.heldBytes = 0;
    }
    this.offset = 0;
    this.needBytes = 0;
    while (this.offset < this.buffer.length) {
      const step = this.parseOne(this.buffer, this.offset);
      if (step === INCOMPLETE) {
        this.needBytes = this.stepNeedBytes;
        return;
      }
      this.offset = this.stepNext;
      if (step !== SKIP) onCommand(step);
    }
    this.buffer = EMPTY;
    this.offset = 0;
  }

  private parseOne(buffer: Buffer, start: number): ParseStep {
    if (buffer[start] === 0x2a /* * */) return this.parseMultibulk(buffer, start);
    return this.parseInline(buffer, start);
  }

  private incomplete(needBytes: number): typeof INCOMPLETE {
    this.stepNeedBytes = needBytes;
    return INCOMPLETE;
  }

  private parseMultibulk(buffer: Buffer, start: number): ParseStep {
    if (!readLengthLine(buffer, start + 1, 'multibulk')) return this.incomplete(0);
    const count = lengthLine.value;
    if (count > ARGUMENTS_MAX) throw new ProtocolError('invalid multibulk length');
    if (count <= 0) {
      this.stepNext = lengthLine.next;
      return SKIP;
    }
    const args: Buffer[] = new Array<Buffer>(count);
    let position = lengthLine.next;
    for (let i = 0; i < count; i++) {
      if (position >= buffer.length) return this.incomplete(0);
      if (buffer[position] !== 0x24 /* $ */) {
        throw new ProtocolError(`expected '$', got '${printable(buffer[position]!)}'`);
      }
      if (!readLengthLine(buffer, position + 1, 'bulk')) return this.incomplete(0);
      const length = lengthLine.value;
      if (length < 0 || length > this.bulkBytesMax) throw new ProtocolError('invalid bulk length');
      const from = lengthLine.next;
      const end = from + length;
      if (end + 2 > buffer.length) return this.incomplete(end + 2 - start);
      if (buffer[end] !== 0x0d || buffer[end + 1] !== 0x0a) {
        throw new ProtocolError('bulk string not terminated by CRLF');
      }
      args[i] = buffer.subarray(from, end);
      position = end + 2;
    }
    this.stepNext = position;
    return args;
  }

  private parseInline(buffer: Buffer, start: number): ParseStep {
    const newline = buffer.indexOf(0x0a, start);
    if (newline < 0) {
      if (buffer.length - start > INLINE_BYTES_MAX)
        throw new ProtocolError('too big inline request');
      return this.incomplete(0);
    }
    if (newline - start > INLINE_BYTES_MAX) throw new ProtocolError('too big inline request');
    const end = newline > start && buffer[newline - 1] === 0x0d ? newline - 1 : newline;
    const args = splitInline(buffer.subarray(start, end));
    this.stepNext = newline + 1;
    return args.length === 0 ? SKIP : args;
  }
}

/**
 * Reads a decimal integer terminated by CRLF at `start` into `lengthLine`; false if the line
 * is incomplete.
 */
function readLengthLine(buffer: Buffer, start: number, what: string): boolean {
  let value = 0;
  let negative = false;
  let digits = 0;
  for (let i = start; i < buffer.length; i++) {
    const byte = buffer[i]!;
    if (byte === 0x0d) {
      if (i + 1 >= buffer.length) return false;
      if (buffer[i + 1] !== 0x0a || digits === 0) throw new ProtocolError(`invalid ${what} length`);
      lengthLine.value = negative ? -value : value;
      lengthLine.next = i + 2;
      return true;
    }
    if (byte === 0x2d && i === start) {
      negative = true;
      continue;
    }
    if (byte < 0x30 || byte > 0x39 || i - start >= LENGTH_LINE_BYTES_MAX) {
      throw new ProtocolError(`invalid ${what} length`);
    }
    value = value * 10 + (byte - 0x30);
    digits++;
  }
  if (buffer.length - start > LENGTH_LINE_BYTES_MAX)
    throw new ProtocolError(`invalid ${what} length`);
  return false;
}

/** Splits an inline command on spaces, honouring "double" and 'single' quotes as Redis does. */
export function splitInline(line: Buffer): Buffer[] {
  const args: Buffer[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && (line[i] === 0x20 || line[i] === 0x09)) i++;
    if (i >= line.length) break;
    const quote = line[i] === 0x22 || line[i] === 0x27 ? line[i]! : 0;
    if (quote === 0) {
      const start = i;
      while (i < line.length && line[i] !== 0x20 && line[i] !== 0x09) i++;
      args.push(line.subarray(start, i));
      continue;
    }
    i++;
    const bytes: number[] = [];
    let closed = false;
    while (i < line.length) {
      const byte = line[i]!;
      if (byte === 0x5c /* \ */ && quote === 0x22 && i + 1 < line.length) {
        const escaped = line[i + 1]!;
        const map: Record<number, number> = {
          0x6e: 0x0a,
          0x72: 0x0d,
          0x74: 0x09,
          0x62: 0x08,
          0x61: 0x07,
        };
        bytes.push(map[escaped] ?? escaped);
        i += 2;
        continue;
      }
      if (byte === quote) {
        closed = true;
        i++;
        break;
      }
      bytes.push(byte);
      i++;
    }
    if (!closed) throw new ProtocolError('unbalanced quotes in request');
    if (i < line.length && line[i] !== 0x20 && line[i] !== 0x09) {
      throw new ProtocolError('unbalanced quotes in request');
    }
    args.push(Buffer.from(bytes));
  }
  return args;
}

function printable(byte: number): string {
  return byte >= 0x20 && byte < 0x7f
    ? String.fromCharCode(byte)
    : `\\x${byte.toString(16).padStart(2, '0')}`;
}
