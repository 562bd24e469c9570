// Key routes: GET, PUT and DELETE on /v1/kv/{keyspace}/{key}. The key is the rest of the
// path (it may hold `/`), percent-encoded UTF-8 or base64url with `keyEncoding=base64`.
// Values travel as the raw body in both directions; `format=json` (or Accept:
// application/json) reads them as JSON instead. The causal context travels base64url in
// the X-Ringkv-Context header: a read returns it, a write may hand it back.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode } from '../../core/errors.ts';
import type { Expiry, QuorumSpec, ReadResult, SetCondition } from '../../core/requests.ts';
import type { NodeApi } from '../../runtime/node-api.ts';
import { HttpError, HttpErrorCode } from './http-errors.ts';
import {
  checkQueryParameters,
  decodeBase64Url,
  decodeKey,
  encodeBase64Url,
  encodeKey,
  jsonValue,
  parseKeyEncoding,
  type ParsedQuery,
} from './key-codec.ts';
import { ask } from './node-request.ts';
import { CONTEXT_HEADER, EXPIRES_AT_HEADER } from './route-config.ts';

interface KeyRoute {
  Params: { keyspace: string; '*': string };
  Querystring: ParsedQuery;
}

/** Longest key text quoted back in an error message. */
const KEY_IN_MESSAGE_CHARS_MAX = 100;

function quoteKey(text: string): string {
  return text.length <= KEY_IN_MESSAGE_CHARS_MAX
    ? `'${text}'`
    : `'${text.slice(0, KEY_IN_MESSAGE_CHARS_MAX)}...' (${text.length} chars)`;
}

function wantsJson(request: FastifyRequest<KeyRoute>): boolean {
  const format = request.query.format;
  if (format === 'json') return true;
  if (format === 'raw') return false;
  if (format !== undefined) {
    throw new HttpError(HttpErrorCode.BAD_REQUEST, `format must be raw or json, not '${format}'`);
  }
  return (request.headers.accept ?? '').includes('application/json');
}

function contextOf(request: FastifyRequest<KeyRoute>): Uint8Array | undefined {
  const header = request.headers[CONTEXT_HEADER];
  if (header === undefined) return undefined;
  const context = typeof header === 'string' ? decodeBase64Url(header) : null;
  if (context === null) {
    throw new HttpError(
      ErrorCode.INVALID_CONTEXT,
      `${CONTEXT_HEADER} must be the base64url context of an earlier read, given once`,
    );
  }
  return context;
}

function expiryOf(ttlText: string | undefined): Expiry {
  if (ttlText === undefined) return { kind: 'none' };
  const ttlMs = /^[1-9][0-9]{0,15}$/.test(ttlText) ? Number(ttlText) : NaN;
  if (!Number.isSafeInteger(ttlMs)) {
    throw new HttpError(
      ErrorCode.INVALID_ARGUMENT,
      `ttlMs must be a positive integer number of milliseconds, not '${ttlText}'`,
    );
  }
  return { kind: 'after', ms: ttlMs };
}

/**
 * `?r=` or `?w=`: one, quorum, all, or a number of replicas. The node checks the number
 * against the keyspace's replication factor.
 */
function quorumOf(name: 'r' | 'w', text: string | undefined): { r?: QuorumSpec; w?: QuorumSpec } {
  if (text === undefined) return {};
  if (text === 'one' || text === 'quorum' || text === 'all') return { [name]: text };
  if (/^[1-9][0-9]{0,2}$/.test(text)) return { [name]: Number(text) };
  throw new HttpError(
    ErrorCode.INVALID_ARGUMENT,
    `${name} must be one, quorum, all or a number of replicas, not '${text}'`,
  );
}

/** `If-None-Match: *` writes only an absent key, `If-Match: *` only a present one. */
function conditionOf(request: FastifyRequest<KeyRoute>): SetCondition {
  const ifNoneMatch = request.headers['if-none-match'];
  const ifMatch = request.headers['if-match'];
  for (const [name, value] of [
    ['If-None-Match', ifNoneMatch],
    ['If-Match', ifMatch],
  ] as const) {
    if (value !== undefined && value !== '*') {
      throw new HttpError(HttpErrorCode.BAD_REQUEST, `${name} supports only '*', not '${value}'`);
    }
  }
  if (ifNoneMatch !== undefined && ifMatch !== undefined) {
    throw new HttpError(HttpErrorCode.BAD_REQUEST, 'give If-None-Match or If-Match, not both');
  }
  return ifNoneMatch !== undefined ? 'ifAbsent' : ifMatch !== undefined ? 'ifPresent' : 'always';
}

function readAsJson(
  request: FastifyRequest<KeyRoute>,
  keyText: string,
  read: ReadResult & { value: Uint8Array },
): object {
  return {
    keyspace: request.params.keyspace,
    key: keyText,
    ...jsonValue(read.value),
    context: encodeBase64Url(read.context),
    expiresAtMs: read.expiresAtMs > 0 ? read.expiresAtMs : null,
    siblings: read.siblings.map((sibling) => ({
      ...jsonValue(sibling.value),
      timestamp: sibling.timestamp,
    })),
  };
}

export function registerKvRoutes(app: FastifyInstance, node: NodeApi): void {
  app.get<KeyRoute>(
    '/v1/kv/:keyspace/*',
    { config: { operation: 'get', hot: true } },
    async (request, reply: FastifyReply) => {
      checkQueryParameters(request.query, ['keyEncoding', 'format', 'r']);
      const encoding = parseKeyEncoding(request.query.keyEncoding);
      const json = wantsJson(request);
      const keyText = request.params['*'];
      const key = decodeKey(keyText, encoding);
      const answer = await ask(node, {
        op: 'get',
        keyspace: request.params.keyspace,
        keys: [key],
        ...quorumOf('r', request.query.r),
      });
      const read = answer.results[0];
      if (read === undefined || answer.results.length !== 1) {
        throw new Error(`a get of one key had ${answer.results.length} results`);
      }
      // A deleted key still has a context (its tombstone's): a write that follows a miss
      // can hand it back.
      if (read.context.length > 0) void reply.header(CONTEXT_HEADER, encodeBase64Url(read.context));
      if (read.value === null) {
        throw new HttpError(
          HttpErrorCode.NOT_FOUND,
          `no value under key ${quoteKey(keyText)} in keyspace '${request.params.keyspace}'`,
        );
      }
      if (read.expiresAtMs > 0) void reply.header(EXPIRES_AT_HEADER, String(read.expiresAtMs));
      if (json) {
        return reply.send(
          readAsJson(request, encodeKey(key, encoding), { ...read, value: read.value }),
        );
      }
      const value = read.value;
      return reply
        .type('application/octet-stream')
        .send(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    },
  );

  app.put<KeyRoute>(
    '/v1/kv/:keyspace/*',
    { config: { operation: 'put', hot: true } },
    async (request, reply) => {
      checkQueryParameters(request.query, ['keyEncoding', 'ttlMs', 'w']);
      const encoding = parseKeyEncoding(request.query.keyEncoding);
      const key = decodeKey(request.params['*'], encoding);
      const contentEncoding = request.headers['content-encoding'];
      if (contentEncoding !== undefined && contentEncoding !== 'identity') {
        // The body would be stored as sent; refuse rather than keep bytes the client did
        // not mean as the value.
        throw new HttpError(
          HttpErrorCode.BAD_REQUEST,
          `Content-Encoding '${contentEncoding}' is not supported: send the value as is`,
        );
      }
      const value = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const condition = conditionOf(request);
      const expiry = expiryOf(request.query.ttlMs);
      const context = contextOf(request);
      const answer = await ask(node, {
        op: 'write',
        keyspace: request.params.keyspace,
        items: [
          {
            key,
            mutation: { kind: 'set', value, condition, expiry },
            ...(context === undefined ? {} : { context }),
          },
        ],
        ...quorumOf('w', request.query.w),
      });
      const result = answer.results[0];
      if (result === undefined) throw new Error('a write of one key had no result');
      if (!result.applied) {
        if (condition === 'always') throw new Error('an unconditional set was not applied');
        throw new HttpError(
          HttpErrorCode.PRECONDITION_FAILED,
          condition === 'ifAbsent'
            ? 'the key has a value and If-None-Match: * asked for an absent key'
            : 'the key has no value and If-Match: * asked for a present key',
        );
      }
      return reply.send({ ok: true });
    },
  );

  app.delete<KeyRoute>(
    '/v1/kv/:keyspace/*',
    { config: { operation: 'delete', hot: true } },
    async (request, reply) => {
      checkQueryParameters(request.query, ['keyEncoding', 'w']);
      const key = decodeKey(request.params['*'], parseKeyEncoding(request.query.keyEncoding));
      const context = contextOf(request);
      const answer = await ask(node, {
        op: 'write',
        keyspace: request.params.keyspace,
        items: [
          { key, mutation: { kind: 'delete' }, ...(context === undefined ? {} : { context }) },
        ],
        ...quorumOf('w', request.query.w),
      });
      const result = answer.results[0];
      if (result === undefined) throw new Error('a delete of one key had no result');
      return reply.send({ deleted: result.applied });
    },
  );
}
