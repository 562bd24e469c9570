// Integers as Redis stores them: decimal strings of a signed 64-bit value, no sign '+', no
// leading zeros, no spaces. INCR and friends parse and print exactly this form.

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const DIGITS_MAX = 20;

/** Parses a Redis integer, or returns null when the bytes are not one. */
export function parseRedisInteger(bytes: Uint8Array): bigint | null {
  const length = bytes.length;
  if (length === 0 || length > DIGITS_MAX) return null;
  let index = 0;
  const negative = bytes[0] === 0x2d; // '-'
  if (negative) {
    index = 1;
    if (length === 1) return null;
  }
  // A leading zero is allowed only for "0" itself.
  if (bytes[index] === 0x30 && length > index + 1) return null;
  if (negative && bytes[index] === 0x30) return null; // "-0"
  let text = '';
  for (; index < length; index++) {
    const byte = bytes[index]!;
    if (byte < 0x30 || byte > 0x39) return null;
    text += String.fromCharCode(byte);
  }
  const value = BigInt(text);
  const signed = negative ? -value : value;
  if (signed < INT64_MIN || signed > INT64_MAX) return null;
  return signed;
}

export function isInt64(value: bigint): boolean {
  return value >= INT64_MIN && value <= INT64_MAX;
}

export function formatRedisInteger(value: bigint): Uint8Array {
  const text = value.toString();
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}
