// Key routes: GET, PUT and DELETE on /v1/kv/{keyspace}/{key}. The key is the rest of the
// path (it may hold `/`), percent-encoded UTF-8 or base64url with `keyEncoding=base64`.
// Values travel as the raw body in both directions; `format=json` (or Accept:
// application/json) reads them as JSON instead. The causal context travels base64url in
// the X-Ringkv-Context header: a read returns it, a write may hand it back.
// On strong keyspaces a key has a version instead, returned as the ETag ("3"); a PUT with
// `If-Match: "3"` is a compare-and-set on it, one with X-Ringkv-If-Value (base64url) a
// compare-and-set on the value. POST with `?incrBy=N` increments (any keyspace).

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode } from '../../core/errors.ts';
import type {
  CompareExpectation,
  Expiry,
  Mutation,
  QuorumSpec,
  ReadResult,
  SetCondition,
} from '../../core/requests.ts';
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
import { CONTEXT_HEADER, EXPIRES_AT_HEADER, IF_VALUE_HEADER } from './route-config.ts';

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

/** A version as an entity tag: `"3"`, or 3 as given by hand. */
const VERSION_TAG = /^"?(0|[1-9][0-9]{0,15})"?$/;

/**
 * The condition of a PUT: `If-None-Match: *` writes only an absent key, `If-Match: *` only a
 * present one; `If-Match: "3"` (strong keyspaces) only version 3, and X-Ringkv-If-Value
 * only the value given.
 */
function conditionOf(
  request: FastifyRequest<KeyRoute>,
): SetCondition | { readonly expected: CompareExpectation } {
  const ifNoneMatch = request.headers['if-none-match'];
  const ifMatch = request.headers['if-match'];
  const ifValue = request.headers[IF_VALUE_HEADER];
  const given = [ifNoneMatch, ifMatch, ifValue].filter((value) => value !== undefined);
  if (given.length > 1) {
    throw new HttpError(
      HttpErrorCode.BAD_REQUEST,
      `give one of If-None-Match, If-Match and ${IF_VALUE_HEADER}, not several`,
    );
  }
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch !== '*') {
      throw new HttpError(
        HttpErrorCode.BAD_REQUEST,
        `If-None-Match supports only '*', not '${ifNoneMatch}'`,
      );
    }
    return 'ifAbsent';
  }
  if (ifMatch !== undefined) {
    if (ifMatch === '*') return 'ifPresent';
    const version = VERSION_TAG.exec(ifMatch)?.[1];
    if (version === undefined || !Number.isSafeInteger(Number(version))) {
      throw new HttpError(
        HttpErrorCode.BAD_REQUEST,
        `If-Match takes '*' or a version read from the ETag ("3"), not '${ifMatch}'`,
      );
    }
    return { expected: { version: Number(version) } };
  }
  if (ifValue !== undefined) {
    const value = typeof ifValue === 'string' ? decodeBase64Url(ifValue) : null;
    if (value === null) {
      throw new HttpError(
        HttpErrorCode.BAD_REQUEST,
        `${IF_VALUE_HEADER} must be the expected value in base64url, given once`,
      );
    }
    return { expected: { value } };
  }
  return 'always';
}

/** `?incrBy=N`: a signed 64-bit integer, 1 when absent. */
function incrementOf(text: string | undefined): bigint {
  if (text === undefined) return 1n;
  if (/^-?(0|[1-9][0-9]{0,18})$/.test(text)) {
    const delta = BigInt(text);
    if (delta >= -(2n ** 63n) && delta < 2n ** 63n) return delta;
  }
  throw new HttpError(
    ErrorCode.INVALID_ARGUMENT,
    `incrBy must be a signed 64-bit integer, not '${text}'`,
  );
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
    ...(read.version === undefined ? {} : { version: read.version }),
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
      // A strong key's version, absent keys included: If-Match on it creates the key.
      if (read.version !== undefined) void reply.header('etag', `"${read.version}"`);
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
      const mutation: Mutation =
        typeof condition === 'string'
          ? { kind: 'set', value, condition, expiry }
          : { kind: 'compareAndSet', expected: condition.expected, value };
      if (typeof condition !== 'string' && request.query.ttlMs !== undefined) {
        throw new HttpError(
          ErrorCode.INVALID_ARGUMENT,
          'a compare-and-set takes no ttlMs: keys of strong keyspaces have no expiry',
        );
      }
      const answer = await ask(node, {
        op: 'write',
        keyspace: request.params.keyspace,
        items: [{ key, mutation, ...(context === undefined ? {} : { context }) }],
        ...quorumOf('w', request.query.w),
      });
      const result = answer.results[0];
      if (result === undefined) throw new Error('a write of one key had no result');
      if (result.version !== undefined) void reply.header('etag', `"${result.version}"`);
      if (!result.applied) {
        if (condition === 'always') throw new Error('an unconditional set was not applied');
        throw new HttpError(
          HttpErrorCode.PRECONDITION_FAILED,
          condition === 'ifAbsent'
            ? 'the key has a value and If-None-Match: * asked for an absent key'
            : condition === 'ifPresent'
              ? 'the key has no value and If-Match: * asked for a present key'
              : 'version' in condition.expected
                ? `the key is at version ${result.version ?? '?'}, not ${condition.expected.version}`
                : `the key does not hold the value ${IF_VALUE_HEADER} expected`,
        );
      }
      return reply.send({
        ok: true,
        ...(result.version === undefined ? {} : { version: result.version }),
      });
    },
  );

  app.post<KeyRoute>(
    '/v1/kv/:keyspace/*',
    { config: { operation: 'incr', hot: true } },
    async (request, reply) => {
      checkQueryParameters(request.query, ['keyEncoding', 'incrBy', 'w']);
      const key = decodeKey(request.params['*'], parseKeyEncoding(request.query.keyEncoding));
      const delta = incrementOf(request.query.incrBy);
      const answer = await ask(node, {
        op: 'write',
        keyspace: request.params.keyspace,
        items: [{ key, mutation: { kind: 'incrBy', delta } }],
        ...quorumOf('w', request.query.w),
      });
      const result = answer.results[0];
      if (result === undefined) throw new Error('an increment of one key had no result');
      if (result.version !== undefined) void reply.header('etag', `"${result.version}"`);
      return reply.send({
        value: String(result.integer),
        ...(result.version === undefined ? {} : { version: result.version }),
      });
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
