// Encodes RESP replies into a slab buffer. One writer per connection; `take()` hands the
// bytes written since the last take to the socket as a view of the slab, and later replies
// go after them (the socket may hold the view until it is written, so a slab is never
// rewound, only replaced when full). One slab serves many replies: no allocation per reply. Speaks RESP2 or RESP3 (chosen by HELLO): they differ in nulls, maps,
// booleans and doubles; everything else is the same.

const CRLF = 0x0d0a;
const SLAB_BYTES = 64 * 1024;

export class ReplyWriter {
  protocol: 2 | 3 = 2;
  private buffer = Buffer.allocUnsafe(SLAB_BYTES);
  /** Start of the bytes not yet taken. */
  private start = 0;
  /** End of the bytes written. */
  private length = 0;

  get pendingBytes(): number {
    return this.length - this.start;
  }

  /** The bytes written since the last take, or null if none. */
  take(): Buffer | null {
    if (this.length === this.start) return null;
    const bytes = this.buffer.subarray(this.start, this.length);
    this.start = this.length;
    return bytes;
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const pending = this.length - this.start;
    const next = Buffer.allocUnsafe(Math.max(SLAB_BYTES, (pending + bytes) * 2));
    this.buffer.copy(next, 0, this.start, this.length);
    this.buffer = next;
    this.start = 0;
    this.length = pending;
  }

  private ascii(text: string): void {
    this.reserve(text.length);
    this.length += this.buffer.write(text, this.length, 'latin1');
  }

  private crlf(): void {
    this.reserve(2);
    this.buffer.writeUInt16BE(CRLF, this.length);
    this.length += 2;
  }

  /**
   * `prefix`, a count's decimal digits and CRLF, stored byte by byte: the header of every
   * GET's reply makes no string and no call into the buffer's encoder (nor does +OK).
   */
  private header(prefix: number, count: number): void {
    if (!(count >= 0 && Number.isSafeInteger(count))) {
      throw new Error(`a RESP length or count is a non-negative integer, got ${count}`);
    }
    let digits = 1;
    for (let rest = count; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    this.reserve(digits + 3);
    const buffer = this.buffer;
    buffer[this.length] = prefix;
    let at = this.length + digits;
    for (let rest = count; at > this.length; rest = Math.floor(rest / 10)) {
      buffer[at--] = 0x30 + (rest % 10);
    }
    this.length += digits + 1;
    buffer[this.length++] = 0x0d;
    buffer[this.length++] = 0x0a;
  }

  simple(text: string): void {
    this.ascii(`+${text}\r\n`);
  }

  ok(): void {
    this.reserve(5);
    const buffer = this.buffer;
    buffer[this.length] = 0x2b; // +
    buffer[this.length + 1] = 0x4f; // O
    buffer[this.length + 2] = 0x4b; // K
    buffer[this.length + 3] = 0x0d;
    buffer[this.length + 4] = 0x0a;
    this.length += 5;
  }

  /** `message` starts with the error code word: "ERR ...", "WRONGTYPE ...", "NOAUTH ...". */
  error(message: string): void {
    this.ascii(`-${message.replace(/[\r\n]+/g, ' ')}\r\n`);
  }

  integer(value: number | bigint): void {
    this.ascii(`:${value}\r\n`);
  }

  bulk(value: Uint8Array | null): void {
    if (value === null) return this.null();
    this.header(0x24 /* $ */, value.length);
    this.reserve(value.length + 2);
    this.buffer.set(value, this.length);
    this.length += value.length;
    this.crlf();
  }

  bulkText(text: string): void {
    const bytes = Buffer.byteLength(text);
    this.ascii(`$${bytes}\r\n`);
    this.reserve(bytes + 2);
    this.length += this.buffer.write(text, this.length);
    this.crlf();
  }

  null(): void {
    this.ascii(this.protocol === 3 ? '_\r\n' : '$-1\r\n');
  }

  nullArray(): void {
    this.ascii(this.protocol === 3 ? '_\r\n' : '*-1\r\n');
  }

  arrayHeader(count: number): void {
    this.header(0x2a /* * */, count);
  }

  /** A map of `count` pairs: a RESP3 map, or a flat array of 2×count in RESP2. */
  mapHeader(count: number): void {
    this.ascii(this.protocol === 3 ? `%${count}\r\n` : `*${count * 2}\r\n`);
  }

  /** A set: RESP3 '~', an array in RESP2. */
  setHeader(count: number): void {
    this.ascii(this.protocol === 3 ? `~${count}\r\n` : `*${count}\r\n`);
  }

  /** Verbatim text (INFO, CLIENT INFO): RESP3 verbatim string, bulk string in RESP2. */
  verbatim(text: string): void {
    if (this.protocol === 2) return this.bulkText(text);
    const body = `txt:${text}`;
    this.ascii(`=${Buffer.byteLength(body)}\r\n`);
    this.reserve(Buffer.byteLength(body) + 2);
    this.length += this.buffer.write(body, this.length);
    this.crlf();
  }

  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
  }
}
