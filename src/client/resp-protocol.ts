// RESP2 for the client side: commands encoded as arrays of bulk strings, and an incremental
// parser of the node's replies that is fed the socket's bytes in whatever pieces they come.
//
// Rules it keeps:
// - The parser never assumes a reply arrives whole: a reply cut anywhere (inside a length,
//   between \r and \n, inside a bulk) is parsed once the rest arrives, and gives the same
//   value as when it came in one piece.
// - Bytes are not copied piece by piece: pieces are kept in a list and joined only when
//   they hold at least as many bytes as the reply being parsed is known to need.
// - Everything is bounded: bulk length, array length, nesting depth and the length of a
//   line. A reply beyond a bound is a protocol error, after which the connection is dropped.

/** An error reply (`-CODE message`). */
export class RespErrorReply {
  readonly message: string;

  constructor(message: string) {
    this.message = message;
  }
}

/** A parsed reply: simple string, error, integer, bulk (null for nil), or array (null for nil). */
export type RespReply = string | RespErrorReply | number | Buffer | null | RespReply[];

export class RespProtocolError extends Error {
  constructor(message: string) {
    super(`RESP protocol error: ${message}`);
    this.name = 'RespProtocolError';
  }
}

/** Largest bulk reply accepted: values are at most 16 MiB; room to spare. */
export const BULK_BYTES_MAX = 512 * 1024 * 1024;
/** Most elements of one array reply. */
export const ARRAY_LENGTH_MAX = 1024 * 1024;
/** Deepest nesting of arrays (RINGKV.GET nests two). */
export const DEPTH_MAX = 8;
/** Longest line (simple string, error, integer, length header). */
export const LINE_BYTES_MAX = 64 * 1024;

const CR = 0x0d;
const LF = 0x0a;

function assert(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${what}`);
}

/**
 * A command as RESP: `*N`, then each argument as a bulk string. Text goes as UTF-8. Written
 * into one buffer sized first: a TextEncoder call and a buffer per argument were a tenth of
 * the client's time under a put load.
 */
export function encodeCommand(args: readonly (string | Uint8Array)[]): Buffer {
  if (args.length === 0) throw new Error('a command needs at least its name');
  const lengths: number[] = [];
  let total = headerBytes('*', args.length);
  for (const arg of args) {
    const length = typeof arg === 'string' ? Buffer.byteLength(arg, 'utf8') : arg.length;
    lengths.push(length);
    total += headerBytes('$', length) + length + 2;
  }
  const encoded = Buffer.allocUnsafe(total);
  let at = encoded.write(`*${args.length}\r\n`, 0, 'latin1');
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const length = lengths[i]!;
    at += encoded.write(`$${length}\r\n`, at, 'latin1');
    if (typeof arg === 'string') at += encoded.write(arg, at, length, 'utf8');
    else {
      encoded.set(arg, at);
      at += length;
    }
    encoded[at++] = CR;
    encoded[at++] = LF;
  }
  assert(at === total, 'an encoded command of the length counted');
  return encoded;
}

/** Bytes of a `*N` or `$N` header line. */
function headerBytes(mark: string, count: number): number {
  return mark.length + String(count).length + 2;
}

/** Not enough bytes yet; `needBytes` is a lower bound of what the reply takes from its start. */
interface Incomplete {
  readonly needBytes: number;
}

const INCOMPLETE_UNKNOWN: Incomplete = { needBytes: 0 };

interface Parsed {
  readonly value: RespReply;
  readonly end: number;
}

/** Feeds on socket data and hands out whole replies in order. */
export class RespReplyParser {
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  /** The current reply cannot be parsed before this many bytes are buffered. */
  private needBytes = 0;

  /** Appends `data` and returns every reply now complete, in order. Throws RespProtocolError. */
  feed(data: Buffer): RespReply[] {
    if (data.length === 0) return [];
    this.chunks.push(data);
    this.bufferedBytes += data.length;
    if (this.bufferedBytes < this.needBytes) return [];
    let buffer = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const replies: RespReply[] = [];
    let offset = 0;
    for (;;) {
      if (offset === buffer.length) {
        this.chunks = [];
        this.bufferedBytes = 0;
        this.needBytes = 0;
        return replies;
      }
      const parsed = parseValue(buffer, offset, 0);
      if ('needBytes' in parsed) {
        buffer = buffer.subarray(offset);
        this.chunks = [buffer];
        this.bufferedBytes = buffer.length;
        this.needBytes = parsed.needBytes - offset;
        return replies;
      }
      replies.push(parsed.value);
      offset = parsed.end;
    }
  }

  /** Bytes received but not yet part of a whole reply. */
  get pendingBytes(): number {
    return this.bufferedBytes;
  }
}

/** The index of the \r of the line starting at `start`, or -1 when it has not arrived. */
function lineEnd(buffer: Buffer, start: number): number {
  const cr = buffer.indexOf(CR, start);
  if (cr === -1) {
    if (buffer.length - start > LINE_BYTES_MAX) throw new RespProtocolError('a line too long');
    return -1;
  }
  if (cr - start > LINE_BYTES_MAX) throw new RespProtocolError('a line too long');
  if (cr + 1 >= buffer.length) return -1;
  if (buffer[cr + 1] !== LF) throw new RespProtocolError('a CR not followed by LF');
  return cr;
}

/**
 * A decimal integer line: an optional minus and 1 to 18 digits. The node's integers (times
 * in ms, counters, lengths) are far below 2^53, so a number holds them exactly.
 */
function integerOf(buffer: Buffer, start: number, end: number): number {
  const text = buffer.toString('latin1', start, end);
  if (!/^-?[0-9]{1,18}$/.test(text)) {
    throw new RespProtocolError(`'${text.slice(0, 32)}' is not an integer`);
  }
  return Number(text);
}

function parseValue(buffer: Buffer, offset: number, depth: number): Parsed | Incomplete {
  if (depth > DEPTH_MAX) throw new RespProtocolError(`arrays nested deeper than ${DEPTH_MAX}`);
  const type = buffer[offset];
  const end = lineEnd(buffer, offset + 1);
  if (end === -1) return INCOMPLETE_UNKNOWN;
  const next = end + 2;
  switch (type) {
    case 0x2b: // '+'
      return { value: buffer.toString('utf8', offset + 1, end), end: next };
    case 0x2d: // '-'
      return { value: new RespErrorReply(buffer.toString('utf8', offset + 1, end)), end: next };
    case 0x3a: // ':'
      return { value: integerOf(buffer, offset + 1, end), end: next };
    case 0x24: {
      // '$'
      const length = integerOf(buffer, offset + 1, end);
      if (length === -1) return { value: null, end: next };
      if (length < 0 || length > BULK_BYTES_MAX) {
        throw new RespProtocolError(`a bulk length of ${length}`);
      }
      const stop = next + length;
      if (stop + 2 > buffer.length) return { needBytes: stop + 2 };
      if (buffer[stop] !== CR || buffer[stop + 1] !== LF) {
        throw new RespProtocolError('a bulk not followed by CRLF');
      }
      // A copy: the reply outlives the socket's buffer, which may be large and reused.
      return { value: Buffer.from(buffer.subarray(next, stop)), end: stop + 2 };
    }
    case 0x2a: {
      // '*'
      const length = integerOf(buffer, offset + 1, end);
      if (length === -1) return { value: null, end: next };
      if (length < 0 || length > ARRAY_LENGTH_MAX) {
        throw new RespProtocolError(`an array length of ${length}`);
      }
      const elements: RespReply[] = [];
      let position = next;
      for (let index = 0; index < length; index++) {
        if (position >= buffer.length) return { needBytes: position + 1 };
        const element = parseValue(buffer, position, depth + 1);
        if ('needBytes' in element) return element;
        elements.push(element.value);
        position = element.end;
      }
      return { value: elements, end: position };
    }
    default:
      throw new RespProtocolError(`a reply starting with byte ${String(type)}`);
  }
}
