// Byte-string helpers for the core, which works on Uint8Array only (no Buffer: the core
// must run anywhere and stay free of Node APIs).

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });

export const EMPTY_BYTES = new Uint8Array(0);

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Bytewise comparison, the order storage keys are kept in. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const difference = a[i]! - b[i]!;
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const result = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    result.set(part, offset);
    offset += part.length;
  }
  return result;
}

/**
 * A string with one char per byte, usable as a Map key. Storage keys are at most a few KiB,
 * so the loop is cheap; chunks keep `fromCharCode` within argument limits.
 */
export function bytesToKeyString(bytes: Uint8Array): string {
  if (bytes.length <= 1024) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  let result = '';
  for (let offset = 0; offset < bytes.length; offset += 1024) {
    const chunk = bytes.subarray(offset, offset + 1024);
    result += String.fromCharCode.apply(null, chunk as unknown as number[]);
  }
  return result;
}

/** The bytes of a key string made by bytesToKeyString. */
export function keyStringToBytes(keyString: string): Uint8Array {
  const bytes = new Uint8Array(keyString.length);
  for (let i = 0; i < keyString.length; i++) bytes[i] = keyString.charCodeAt(i);
  return bytes;
}

/** The smallest byte string greater than every string that starts with `prefix`, or null. */
export function prefixEnd(prefix: Uint8Array): Uint8Array | null {
  const end = prefix.slice();
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return null;
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}
