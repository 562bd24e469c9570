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

type ParseStep =
  | { readonly kind: 'command'; readonly args: Buffer[]; readonly next: number }
  | { readonly kind: 'skip'; readonly next: number }
  /** `needBytes`: total bytes from the command start needed before trying again, or 0. */
  | { readonly kind: 'incomplete'; readonly needBytes: number };

export class RequestParser {
  private readonly bulkBytesMax: number;
  private buffer: Buffer = EMPTY;
  private offset = 0;
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  private needBytes = 0;

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
      if (step.kind === 'incomplete') {
        this.needBytes = step.needBytes;
        return;
      }
      this.offset = step.next;
      if (step.kind === 'command') onCommand(step.args);
    }
    this.buffer = EMPTY;
    this.offset = 0;
  }

  private parseOne(buffer: Buffer, start: number): ParseStep {
    if (buffer[start] === 0x2a /* * */) return this.parseMultibulk(buffer, start);
    return this.parseInline(buffer, start);
  }

  private parseMultibulk(buffer: Buffer, start: number): ParseStep {
    const header = readLengthLine(buffer, start + 1, 'multibulk');
    if (header === null) return { kind: 'incomplete', needBytes: 0 };
    const count = header.value;
    if (count > ARGUMENTS_MAX) throw new ProtocolError('invalid multibulk length');
    if (count <= 0) return { kind: 'skip', next: header.next };
    const args: Buffer[] = new Array<Buffer>(count);
    let position = header.next;
    for (let i = 0; i < count; i++) {
      if (position >= buffer.length) return { kind: 'incomplete', needBytes: 0 };
      if (buffer[position] !== 0x24 /* $ */) {
        throw new ProtocolError(`expected '$', got '${printable(buffer[position]!)}'`);
      }
      const line = readLengthLine(buffer, position + 1, 'bulk');
      if (line === null) return { kind: 'incomplete', needBytes: 0 };
      const length = line.value;
      if (length < 0 || length > this.bulkBytesMax) throw new ProtocolError('invalid bulk length');
      const end = line.next + length;
      if (end + 2 > buffer.length) return { kind: 'incomplete', needBytes: end + 2 - start };
      if (buffer[end] !== 0x0d || buffer[end + 1] !== 0x0a) {
        throw new ProtocolError('bulk string not terminated by CRLF');
      }
      args[i] = buffer.subarray(line.next, end);
      position = end + 2;
    }
    return { kind: 'command', args, next: position };
  }

  private parseInline(buffer: Buffer, start: number): ParseStep {
    const newline = buffer.indexOf(0x0a, start);
    if (newline < 0) {
      if (buffer.length - start > INLINE_BYTES_MAX)
        throw new ProtocolError('too big inline request');
      return { kind: 'incomplete', needBytes: 0 };
    }
    if (newline - start > INLINE_BYTES_MAX) throw new ProtocolError('too big inline request');
    const end = newline > start && buffer[newline - 1] === 0x0d ? newline - 1 : newline;
    const args = splitInline(buffer.subarray(start, end));
    if (args.length === 0) return { kind: 'skip', next: newline + 1 };
    return { kind: 'command', args, next: newline + 1 };
  }
}

/** Reads a decimal integer terminated by CRLF at `start`; null if the line is incomplete. */
function readLengthLine(
  buffer: Buffer,
  start: number,
  what: string,
): { value: number; next: number } | null {
  let value = 0;
  let negative = false;
  let digits = 0;
  for (let i = start; i < buffer.length; i++) {
    const byte = buffer[i]!;
    if (byte === 0x0d) {
      if (i + 1 >= buffer.length) return null;
      if (buffer[i + 1] !== 0x0a || digits === 0) throw new ProtocolError(`invalid ${what} length`);
      return { value: negative ? -value : value, next: i + 2 };
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
  return null;
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
