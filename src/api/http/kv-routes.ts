// Key-value routes: GET, PUT and DELETE on /v1/kv/{keyspace}/{key}, and listing with a
// prefix and a cursor on /v1/kv/{keyspace}. Keys in the path are percent-encoded UTF-8, or
// base64url with `?keyEncoding=base64` for binary keys. Values travel as the raw body. The
// causal context travels base64url-encoded in the X-Ringkv-Context header.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ClientReply, ClientRequest, Expiry } from '../../core/requests.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import type { NodeApi } from '../../runtime/node-api.ts';
import { HttpError, HttpErrorCode } from './http-errors.ts';

export const CONTEXT_HEADER = 'x-ringkv-context';
export const EXPIRES_AT_HEADER = 'x-ringkv-expires-at';
/** Core scan calls one listing page may make; the page may then hold fewer keys than asked. */
const LIST_CALLS_PER_PAGE_MAX = 64;

interface KeyParams {
  keyspace: string;
  '*': string;
}

interface KeyQuery {
  keyEncoding?: string;
  format?: string;
  ttlMs?: string;
}

interface ListQuery {
  prefix?: string;
  cursor?: string;
  limit?: string;
  keyEncoding?: string;
}

function submit(
  node: NodeApi,
  request: ClientRequest,
): Promise<Extract<ClientReply, { ok: true }>> {
  return new Promise((resolve, reject) => {
    node.submit(request, (reply) =>
      reply.ok ? resolve(reply) : reject(HttpError.from(reply.error)),
    );
  });
}

function decodeKey(raw: string, encoding: string | undefined): Buffer {
  if (encoding === undefined || encoding === 'utf8') {
    if (raw.length === 0) throw new HttpError('RINGKV_KEY_EMPTY', 'the key is empty');
    return Buffer.from(raw, 'utf8');
  }
  if (encoding === 'base64') {
    if (!/^[A-Za-z0-9_-]*={0,2}$/.test(raw))
      throw new HttpError(HttpErrorCode.BAD_REQUEST, 'the key is not base64url');
    const key = Buffer.from(raw, 'base64url');
    if (key.length === 0) throw new HttpError('RINGKV_KEY_EMPTY', 'the key is empty');
    return key;
  }
  throw new HttpError(
    HttpErrorCode.BAD_REQUEST,
    `keyEncoding must be utf8 or base64, got '${encoding}'`,
  );
}

function encodeKey(key: Uint8Array, encoding: string | undefined): string {
  return encoding === 'base64'
    ? Buffer.from(key).toString('base64url')
    : Buffer.from(key).toString('utf8');
}

/** A value for JSON: text when it is valid UTF-8, else base64. */
function jsonValue(value: Uint8Array): { value: string; encoding: 'utf8' | 'base64' } {
  const buffer = Buffer.from(value);
  const text = buffer.toString('utf8');
  return Buffer.from(text, 'utf8').equals(buffer)
    ? { value: text, encoding: 'utf8' }
    : { value: buffer.toString('base64'), encoding: 'base64' };
}

function contextOf(request: FastifyRequest): Uint8Array | undefined {
  const header = request.headers[CONTEXT_HEADER];
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || !/^[A-Za-z0-9_-]*$/.test(header)) {
    throw new HttpError('RINGKV_INVALID_CONTEXT', `${CONTEXT_HEADER} must be base64url`);
  }
  return Buffer.from(header, 'base64url');
}

export function registerKvRoutes(app: FastifyInstance, node: NodeApi, metrics: Metrics): void {
  const timed = async <T>(operation: string, work: () => Promise<T>): Promise<T> => {
    const startedAt = performance.now();
    let ok = false;
    try {
      const result = await work();
      ok = true;
      return result;
    } finally {
      metrics.observeRequest('http', operation, ok, (performance.now() - startedAt) / 1000);
    }
  };

  app.get<{ Params: KeyParams; Querystring: KeyQuery }>('/v1/kv/:keyspace/*', (request, reply) =>
    timed('get', async () => {
      const key = decodeKey(request.params['*'], request.query.keyEncoding);
      const result = await submit(node, {
        op: 'get',
        keyspace: request.params.keyspace,
        keys: [key],
      });
      if (result.op !== 'get') throw new Error('expected a get reply');
      const read = result.results[0]!;
      if (read.context.length > 0)
        void reply.header(CONTEXT_HEADER, Buffer.from(read.context).toString('base64url'));
      const wantsJson =
        request.query.format === 'json' ||
        (request.headers.accept ?? '').includes('application/json');
      if (read.value === null) {
        throw new HttpError(
          HttpErrorCode.NOT_FOUND,
          `key '${encodeKey(key, request.query.keyEncoding)}' not found`,
        );
      }
      if (read.expiresAtMs > 0) void reply.header(EXPIRES_AT_HEADER, String(read.expiresAtMs));
      if (wantsJson) {
        return reply.send({
          keyspace: request.params.keyspace,
          key: encodeKey(key, request.query.keyEncoding),
          ...jsonValue(read.value),
          context: Buffer.from(read.context).toString('base64url'),
          expiresAtMs: read.expiresAtMs,
          siblings: read.siblings.map((sibling) => ({
            ...jsonValue(sibling.value),
            timestamp: sibling.timestamp,
          })),
        });
      }
      return reply.type('application/octet-stream').send(Buffer.from(read.value));
    }),
  );

  app.put<{ Params: KeyParams; Querystring: KeyQuery }>('/v1/kv/:keyspace/*', (request, reply) =>
    timed('put', async () => {
      const key = decodeKey(request.params['*'], request.query.keyEncoding);
      const value = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      let expiry: Expiry = { kind: 'none' };
      if (request.query.ttlMs !== undefined) {
        const ttlMs = Number(request.query.ttlMs);
        if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
          throw new HttpError('RINGKV_INVALID_ARGUMENT', 'ttlMs must be a positive integer');
        }
        expiry = { kind: 'after', ms: ttlMs };
      }
      const ifAbsent = request.headers['if-none-match'] === '*';
      const context = contextOf(request);
      const result = await submit(node, {
        op: 'write',
        keyspace: request.params.keyspace,
        items: [
          {
            key,
            mutation: { kind: 'set', value, condition: ifAbsent ? 'ifAbsent' : 'always', expiry },
            ...(context === undefined ? {} : { context }),
          },
        ],
      });
      if (result.op !== 'write') throw new Error('expected a write reply');
      if (!result.results[0]!.applied) {
        throw new HttpError(HttpErrorCode.PRECONDITION_FAILED, 'the key exists (If-None-Match: *)');
      }
      return reply.send({ ok: true });
    }),
  );

  app.delete<{ Params: KeyParams; Querystring: KeyQuery }>('/v1/kv/:keyspace/*', (request, reply) =>
    timed('delete', async () => {
      const key = decodeKey(request.params['*'], request.query.keyEncoding);
      const context = contextOf(request);
      const result = await submit(node, {
        op: 'write',
        keyspace: request.params.keyspace,
        items: [
          { key, mutation: { kind: 'delete' }, ...(context === undefined ? {} : { context }) },
        ],
      });
      if (result.op !== 'write') throw new Error('expected a write reply');
      return reply.send({ deleted: result.results[0]!.applied });
    }),
  );

  const list = (
    request: FastifyRequest<{ Params: { keyspace: string }; Querystring: ListQuery }>,
    reply: FastifyReply,
  ) =>
    timed('list', async () => {
      const { prefix, cursor, keyEncoding } = request.query;
      const limitMax = node.limits.scanCountMax;
      const limit = request.query.limit === undefined ? 100 : Number(request.query.limit);
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > limitMax) {
        throw new HttpError(
          'RINGKV_INVALID_ARGUMENT',
          `limit must be an integer from 1 to ${limitMax}`,
        );
      }
      if (cursor !== undefined && !/^[A-Za-z0-9_-]+$/.test(cursor)) {
        throw new HttpError(
          'RINGKV_INVALID_ARGUMENT',
          'cursor must be a cursor returned by an earlier page',
        );
      }
      // A page holds at most `limit` keys; the core examines at most `limit` entries per
      // call, so a page may need several calls when keys are filtered out.
      const keys: string[] = [];
      let position: Uint8Array | null =
        cursor === undefined ? null : Buffer.from(cursor, 'base64url');
      const prefixBytes =
        prefix === undefined || prefix === '' ? null : decodeKey(prefix, keyEncoding);
      let calls = 0;
      do {
        calls++;
        const result = await submit(node, {
          op: 'scan',
          keyspace: request.params.keyspace,
          cursor: position,
          count: limit - keys.length,
          match: null,
          prefix: prefixBytes,
        });
        if (result.op !== 'scan') throw new Error('expected a scan reply');
        for (const key of result.keys) keys.push(encodeKey(key, keyEncoding));
        position = result.cursor;
        // Bound the work of one page: a rare prefix may need the whole keyspace examined.
      } while (position !== null && keys.length < limit && calls < LIST_CALLS_PER_PAGE_MAX);
      return reply.send({
        keys,
        cursor: position === null ? null : Buffer.from(position).toString('base64url'),
      });
    });
  app.get('/v1/kv/:keyspace', list);
}
