// How bytes travel in URLs, headers and JSON. Keys in the path are percent-encoded UTF-8 by
// default, or base64url with `keyEncoding=base64` (binary keys, and keys such as `.` and
// `..` that URL normalisation would eat). Contexts and cursors are base64url. Values in JSON
// are UTF-8 text when they are valid UTF-8, base64 otherwise, and say which. Decoding is
// strict: a string that is not the canonical encoding of some bytes is refused, never
// guessed at, so no two spellings name the same key by accident.

import { isUtf8 } from 'node:buffer';
import { HttpError, HttpErrorCode } from './http-errors.ts';

export type KeyEncoding = 'utf8' | 'base64';

const BASE64URL_PATTERN = /^[A-Za-z0-9_-]*={0,2}$/;

/** The bytes of a canonical base64url string (padding optional), or null if it is not one. */
export function decodeBase64Url(text: string): Buffer | null {
  if (!BASE64URL_PATTERN.test(text)) return null;
  const bytes = Buffer.from(text, 'base64url');
  // Canonical: re-encoding gives the same text. This rejects a dangling sixth of a byte
  // ("Q") and non-zero spare bits ("QR" next to "QQ"), which Node would silently drop.
  return bytes.toString('base64url') === text.replace(/=+$/, '') ? bytes : null;
}

export function encodeBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

export function parseKeyEncoding(raw: string | undefined): KeyEncoding {
  if (raw === undefined || raw === 'utf8') return 'utf8';
  if (raw === 'base64') return 'base64';
  throw new HttpError(
    HttpErrorCode.BAD_REQUEST,
    `keyEncoding must be utf8 or base64, not '${raw}'`,
  );
}

/**
 * A key (or key prefix) from its text in the URL, already percent-decoded by the router.
 * Emptiness and size are the node's to judge (RINGKV_KEY_EMPTY, RINGKV_KEY_TOO_LARGE).
 */
export function decodeKey(text: string, encoding: KeyEncoding): Buffer {
  if (encoding === 'utf8') return Buffer.from(text, 'utf8');
  const key = decodeBase64Url(text);
  if (key === null) {
    throw new HttpError(HttpErrorCode.BAD_REQUEST, `'${text}' is not canonical base64url`);
  }
  return key;
}

/** A key for JSON in the given encoding; call only with utf8 when the key is valid UTF-8. */
export function encodeKey(key: Uint8Array, encoding: KeyEncoding): string {
  return encoding === 'base64' ? encodeBase64Url(key) : Buffer.from(key).toString('utf8');
}

export function isValidUtf8(bytes: Uint8Array): boolean {
  return isUtf8(bytes);
}

export interface JsonBytes {
  readonly value: string;
  readonly encoding: 'utf8' | 'base64';
}

/** A value for JSON: its text when it is valid UTF-8, else its standard base64. */
export function jsonValue(value: Uint8Array): JsonBytes {
  const buffer = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return isUtf8(buffer)
    ? { value: buffer.toString('utf8'), encoding: 'utf8' }
    : { value: buffer.toString('base64'), encoding: 'base64' };
}

/** Set on a parsed query string that had a parameter which could not be decoded. */
export const QUERY_ERROR = Symbol('query error');

export type ParsedQuery = Record<string, string> & { [QUERY_ERROR]?: string };

/**
 * Parses a query string strictly: `+` is a space, percent escapes must decode to UTF-8, and
 * each parameter appears once. The router calls this before any hook runs and must not
 * throw there, so a problem is recorded under QUERY_ERROR and reported by a hook.
 */
export function parseQueryString(query: string): ParsedQuery {
  const parsed: ParsedQuery = Object.create(null) as ParsedQuery;
  if (query.length === 0) return parsed;
  for (const pair of query.split('&')) {
    if (pair.length === 0) continue;
    const equals = pair.indexOf('=');
    const rawName = equals === -1 ? pair : pair.slice(0, equals);
    const rawValue = equals === -1 ? '' : pair.slice(equals + 1);
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(rawName.replaceAll('+', ' '));
      value = decodeURIComponent(rawValue.replaceAll('+', ' '));
    } catch {
      parsed[QUERY_ERROR] ??= `query parameter '${rawName}' is not valid percent-encoded UTF-8`;
      continue;
    }
    if (Object.hasOwn(parsed, name)) {
      parsed[QUERY_ERROR] ??= `query parameter '${name}' is given more than once`;
      continue;
    }
    parsed[name] = value;
  }
  return parsed;
}

/** Refuses parameters a route does not take, so a typo (`ttl=` for `ttlMs=`) is not ignored. */
export function checkQueryParameters(query: ParsedQuery, allowed: readonly string[]): void {
  const error = query[QUERY_ERROR];
  if (error !== undefined) throw new HttpError(HttpErrorCode.BAD_REQUEST, error);
  for (const name of Object.keys(query)) {
    if (!allowed.includes(name)) {
      const expected = allowed.length === 0 ? 'none' : allowed.join(', ');
      throw new HttpError(
        HttpErrorCode.BAD_REQUEST,
        `unknown query parameter '${name}' (this route takes: ${expected})`,
      );
    }
  }
}
