// Listing: GET /v1/kv/{keyspace}?prefix=&cursor=&limit=&values=. A page holds at most
// `limit` keys and an opaque cursor (base64url of the node's scan cursor) for the next page,
// null once the listing is complete. Following cursors from the first page to null yields
// every key that lived throughout exactly once.
//
// Keys are stored in hash order, so a prefix does not narrow the range scanned: finding a
// page of a rare prefix may mean examining many keys. The work of one page is bounded
// (LIST_EXAMINED_EXTRA_MAX entries beyond `limit`), so a page may hold fewer keys than
// asked, even none, while its cursor is not null. With `values=true` a page also stops once
// its values reach LIST_VALUE_BYTES_MAX, passing that by at most one value.

import type { FastifyInstance } from 'fastify';
import type { NodeApi } from '../../runtime/node-api.ts';
import { ErrorCode } from '../../core/errors.ts';
import { HttpError, HttpErrorCode } from './http-errors.ts';
import {
  checkQueryParameters,
  decodeBase64Url,
  decodeKey,
  encodeBase64Url,
  encodeKey,
  isValidUtf8,
  jsonValue,
  parseKeyEncoding,
  type JsonBytes,
  type KeyEncoding,
  type ParsedQuery,
} from './key-codec.ts';
import { ask } from './node-request.ts';

export const LIST_LIMIT_DEFAULT = 100;
/** Stored entries one page may examine beyond `limit` while looking for matching keys. */
export const LIST_EXAMINED_EXTRA_MAX = 4096;
/** Value bytes after which a page with values stops taking keys. */
export const LIST_VALUE_BYTES_MAX = 8 * 1024 * 1024;

interface ListRoute {
  Params: { keyspace: string };
  Querystring: ParsedQuery;
}

interface Entry extends JsonBytes {
  readonly key: string;
  readonly expiresAtMs: number | null;
}

function parseLimit(text: string | undefined, limitMax: number): number {
  if (text === undefined) return Math.min(LIST_LIMIT_DEFAULT, limitMax);
  const limit = /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : NaN;
  if (!(limit >= 1 && limit <= limitMax)) {
    throw new HttpError(
      ErrorCode.INVALID_ARGUMENT,
      `limit must be an integer from 1 to ${limitMax}, not '${text}'`,
    );
  }
  return limit;
}

function parseBoolean(name: string, text: string | undefined): boolean {
  if (text === undefined || text === 'false') return false;
  if (text === 'true' || text === '') return true;
  throw new HttpError(ErrorCode.INVALID_ARGUMENT, `${name} must be true or false, not '${text}'`);
}

function parseCursor(text: string | undefined): Uint8Array | null {
  if (text === undefined) return null;
  const cursor = text === '' ? null : decodeBase64Url(text);
  if (cursor === null) {
    throw new HttpError(
      ErrorCode.INVALID_ARGUMENT,
      'cursor must be the cursor returned by an earlier page, as given',
    );
  }
  return cursor;
}

/** The encoding a page's keys are given in: the one asked for, unless that would lose bytes. */
function pageKeyEncoding(keys: readonly Uint8Array[], asked: KeyEncoding): KeyEncoding {
  return asked === 'utf8' && keys.every(isValidUtf8) ? 'utf8' : 'base64';
}

export function registerListRoute(app: FastifyInstance, node: NodeApi): void {
  app.get<ListRoute>(
    '/v1/kv/:keyspace',
    { config: { operation: 'list', hot: true } },
    async (request, reply) => {
      checkQueryParameters(request.query, [
        'prefix',
        'cursor',
        'limit',
        'keyEncoding',
        'values',
        'scope',
      ]);
      const scope = request.query.scope ?? 'cluster';
      if (scope !== 'cluster' && scope !== 'node') {
        throw new HttpError(
          HttpErrorCode.BAD_REQUEST,
          `scope must be cluster or node, not '${scope}'`,
        );
      }
      const { keyspace } = request.params;
      const askedEncoding = parseKeyEncoding(request.query.keyEncoding);
      const limit = parseLimit(request.query.limit, node.limits.scanCountMax);
      const withValues = parseBoolean('values', request.query.values);
      const prefixText = request.query.prefix;
      const prefix =
        prefixText === undefined || prefixText === '' ? null : decodeKey(prefixText, askedEncoding);
      let cursor = parseCursor(request.query.cursor);

      const keys: Uint8Array[] = [];
      const values: { value: Uint8Array; expiresAtMs: number }[] = [];
      const examinedMax = limit + LIST_EXAMINED_EXTRA_MAX;
      const valueBytesMax = node.limits.valueBytesMax;
      let examined = 0;
      let valueBytes = 0;
      do {
        let count = Math.min(limit - keys.length, examinedMax - examined);
        if (withValues) {
          // Take no more keys than could fit in the value budget even if every value were
          // as large as allowed (at least one), so the budget is passed by one value at most.
          const fitting = Math.floor((LIST_VALUE_BYTES_MAX - valueBytes) / valueBytesMax);
          count = Math.min(count, Math.max(1, fitting));
        }
        const page = await ask(node, {
          op: 'scan',
          keyspace,
          cursor,
          count,
          match: null,
          prefix,
          scope,
        });
        examined += count;
        cursor = page.cursor;
        if (!withValues) {
          keys.push(...page.keys);
          continue;
        }
        if (page.keys.length === 0) continue;
        const read = await ask(node, { op: 'get', keyspace, keys: page.keys });
        for (let i = 0; i < page.keys.length; i++) {
          const value = read.results[i]?.value;
          // Deleted or expired between the scan and the read: no longer listed.
          if (value === null || value === undefined) continue;
          keys.push(page.keys[i]!);
          values.push({ value, expiresAtMs: read.results[i]!.expiresAtMs });
          valueBytes += value.length;
        }
      } while (
        cursor !== null &&
        keys.length < limit &&
        examined < examinedMax &&
        valueBytes < LIST_VALUE_BYTES_MAX
      );
      if (keys.length > limit) throw new Error(`a page of limit ${limit} got ${keys.length} keys`);

      const keyEncoding = pageKeyEncoding(keys, askedEncoding);
      const keyTexts = keys.map((key) => encodeKey(key, keyEncoding));
      const body: {
        keys: string[];
        keyEncoding: KeyEncoding;
        cursor: string | null;
        entries?: Entry[];
      } = {
        keys: keyTexts,
        keyEncoding,
        cursor: cursor === null ? null : encodeBase64Url(cursor),
      };
      if (withValues) {
        body.entries = values.map(({ value, expiresAtMs }, i) => ({
          key: keyTexts[i]!,
          ...jsonValue(value),
          expiresAtMs: expiresAtMs > 0 ? expiresAtMs : null,
        }));
      }
      return reply.send(body);
    },
  );
}
