// RingkvClient: get, put, delete and scan over the HTTP API, routed to a replica of each key.
// With `transport: 'resp'`, get, put, delete and compareAndSet go instead over the nodes'
// Redis protocol port (RINGKV.GET, RINGKV.PUT, RINGKV.DEL, RINGKV.CAS), pipelined on a few
// connections per node; the ring, scan, listing and increment stay on HTTP.
//
// Rules it keeps:
// - Each key request goes to the first alive node of the key's preference list, computed
//   from the ring document (`GET /v1/cluster/ring`) with the keyspace's n. The ring is
//   refreshed every `refreshRingMs`, when a node answers with a newer epoch
//   (`X-Ringkv-Epoch`), and when a node cannot be reached.
// - Reads (get, scan) are retried on the next candidate after a network error, a timeout or
//   a 503. Writes are retried only when the request surely did not reach a node (the
//   connection was refused, or the node answered RINGKV_OVERLOADED, which means it did
//   nothing); after a timeout or a connection lost mid-request a write is never resent, and
//   fails with UNKNOWN_OUTCOME. Attempts are bounded by `retries`, with jittered backoff.
// - Causal contexts are opaque strings: what a read returns is handed back unchanged. Both
//   transports carry the same base64url text, so a context read over one may be written
//   back over the other.
// - Routing, retries and error codes do not depend on the transport: execute() takes the
//   sending of one attempt as a function and applies the same policy to what it returns.
// - The request path is one loop per call: the node comes from the ring view's cached route
//   of the key's partition, the URL and headers are built as strings, and of an answer only
//   the status, two headers and (for reads) the JSON body are looked at.

import { RingkvError, ClientErrorCode, UNKNOWN_KEYSPACE_CODE } from './errors.ts';
import {
  NodeConnections,
  SOCKETS_PER_NODE_DEFAULT,
  type Answer,
  type CallRequest,
} from './http-call.ts';
import {
  RESP_CONNECTIONS_PER_NODE_DEFAULT,
  RespConnections,
  type RespOutcome,
} from './resp-call.ts';
import { RespErrorReply, type RespReply } from './resp-protocol.ts';
import {
  bestIndexOf,
  parseRingDocument,
  RingView,
  type RingKeyspace,
  type RingNode,
} from './ring-view.ts';

export interface ConnectOptions {
  /** host:port of the HTTP interface of one or more nodes; any one that answers will do. */
  readonly endpoints: readonly string[];
  /** The nodes' password, sent as a bearer token. */
  readonly token?: string;
  /** Deadline of one request to one node, answer included. */
  readonly timeoutMs?: number;
  /** Further attempts after the first; 0 sends each request once. */
  readonly retries?: number;
  /** How often the ring is fetched again; 0 turns the periodic refresh off. */
  readonly refreshRingMs?: number;
  /** Wait before the first retry; it doubles with each further one, with jitter. */
  readonly backoffMs?: number;
  /** Most connections kept open to one node; requests beyond them wait for a free one. */
  readonly socketsPerNodeMax?: number;
  /**
   * How get, put and delete reach the nodes: `http` (the default), or `resp`, the nodes'
   * Redis protocol port with pipelining. The ring, scan and listing use HTTP either way.
   */
  readonly transport?: Transport;
  /** With `transport: 'resp'`: connections kept to one node, each carrying many requests. */
  readonly respConnectionsPerNode?: number;
}

/** The protocol of key requests. */
export type Transport = 'http' | 'resp';

/** A quorum override: `one`, `quorum`, `all`, or a number of replicas. */
export type Quorum = 'one' | 'quorum' | 'all' | number;

/** Keys and values: text is sent as its UTF-8 bytes. */
export type BytesLike = string | Uint8Array;

export interface Sibling {
  readonly value: Uint8Array;
  /** Hybrid-logical-clock time of the write: [wall-clock ms, logical counter]. */
  readonly timestamp: readonly [number, number];
}

export interface GetResult {
  /** The winning value, or null when the key has none (never written, deleted, expired). */
  readonly value: Uint8Array | null;
  /** Hand back with a write to say it replaces what was read; '' when the key never existed. */
  readonly context: string;
  /** Every live version, the winner first; more than one only under `conflicts: siblings`. */
  readonly siblings: readonly Sibling[];
  /** Unix time in ms at which the value expires, or null. */
  readonly expiresAtMs: number | null;
  /**
   * Strong keyspaces: the key's version, which each change increments (0: never written);
   * hand it to compareAndSet. Absent on eventual keyspaces.
   */
  readonly version?: number;
}

/** What a compare-and-set expects: the key's version, or its value (null: no value). */
export type Expectation = { readonly version: number } | { readonly value: BytesLike | null };

export interface CompareAndSetResult {
  /** Whether the expectation held and the value was written. */
  readonly applied: boolean;
  /** The key's version after the write, when it was applied. */
  readonly version: number | null;
}

export interface GetOptions {
  readonly r?: Quorum;
}

export interface PutOptions {
  readonly context?: string;
  readonly w?: Quorum;
  readonly ttlMs?: number;
}

export interface DeleteOptions {
  readonly context?: string;
  readonly w?: Quorum;
}

export interface ScanOptions {
  readonly prefix?: BytesLike;
  /** The cursor of the previous page; absent or null for the first. */
  readonly cursor?: string | null;
  /** Most keys on the page (the node's default when absent). */
  readonly limit?: number;
}

export interface ScanPage {
  readonly keys: readonly Uint8Array[];
  /** Pass to the next scan; null once the listing is complete. */
  readonly cursor: string | null;
}

export const TIMEOUT_MS_DEFAULT = 5_000;
export const RETRIES_DEFAULT = 2;
export const REFRESH_RING_MS_DEFAULT = 10_000;
export const BACKOFF_MS_DEFAULT = 25;
/** Ceiling of one backoff wait. */
const BACKOFF_MS_MAX = 1_000;
/** Retries one request may be configured for: a bound on how long a call can go on. */
const RETRIES_MAX = 10;
/** Most connections to one node a client may be configured for. */
const SOCKETS_PER_NODE_MAX = 1024;
/** Most RESP connections to one node a client may be configured for. */
const RESP_CONNECTIONS_PER_NODE_MAX = 64;
/** How long a node this client could not reach is tried after the others. */
const UNREACHABLE_HOLD_MS = 5_000;
/** Fewest ms between two refreshes started by unreachable nodes (not by newer epochs). */
const REFRESH_ON_FAILURE_INTERVAL_MS = 1_000;

const CONTEXT_HEADER = 'x-ringkv-context';
const NOT_FOUND_CODE = 'RINGKV_NOT_FOUND';
const OVERLOADED_CODE = 'RINGKV_OVERLOADED';
const UNAVAILABLE_CODE = 'RINGKV_UNAVAILABLE';
/** A node's error on the RESP port: `ERR RINGKV_<CODE> message`. */
const RESP_ERROR_PATTERN = /^ERR (RINGKV_[A-Z0-9_]+) ?(.*)$/s;
/** Redis's own words for a missing or refused password, as the node's code. */
const RESP_AUTH_ERROR_PATTERN = /^(NOAUTH|WRONGPASS) /;
const UNAUTHORIZED_CODE = 'RINGKV_UNAUTHORIZED';
const STATUS_UNAVAILABLE = 503;
const STATUS_PRECONDITION_FAILED = 412;
const IF_VALUE_HEADER = 'x-ringkv-if-value';
const RING_PATH = '/v1/cluster/ring';

const textEncoder = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
/** Keys made only of these characters stand for themselves in a URL path. */
const UNRESERVED_PATTERN = /^[A-Za-z0-9\-._~]+$/;
/** Characters encodeURIComponent leaves alone that docs/HTTP.md percent-encodes. */
const SUB_DELIMS_PATTERN = /[!'()*]/g;
/** An epoch in X-Ringkv-Epoch: digits, few enough to be a safe integer. */
const EPOCH_PATTERN = /^[0-9]{1,15}$/;
/** Retry kinds: reads may be resent after any failure, writes only when surely not sent. */
const READ = true;
const WRITE = false;

function toBytes(value: BytesLike): Uint8Array {
  return typeof value === 'string' ? textEncoder.encode(value) : value;
}

function invalid(message: string): RingkvError {
  return new RingkvError(ClientErrorCode.INVALID_OPTION, message);
}

function checkQuorum(name: string, quorum: Quorum | undefined): string | undefined {
  if (quorum === undefined) return undefined;
  if (quorum === 'one' || quorum === 'quorum' || quorum === 'all') return quorum;
  if (typeof quorum === 'number' && Number.isSafeInteger(quorum) && quorum >= 1) {
    return String(quorum);
  }
  throw invalid(`${name} must be one, quorum, all or a positive integer, not ${String(quorum)}`);
}

function checkCount(name: string, value: number | undefined, fallback: number, max: number) {
  const result = value ?? fallback;
  if (!(Number.isSafeInteger(result) && result >= 0 && result <= max)) {
    throw invalid(`${name} must be an integer from 0 to ${max}, not ${String(value)}`);
  }
  return result;
}

/**
 * The key as a URL path segment: every byte but letters, digits and `-._~` percent-encoded
 * (docs/HTTP.md); keys that are not UTF-8, and `.` and `..`, which URL parsers drop as path
 * segments, go in base64url (and then the query must say keyEncoding=base64). A text key
 * is encoded from its text, which gives the same bytes as its UTF-8 (a lone surrogate
 * becomes U+FFFD in both), without decoding the bytes back.
 */
function keySegment(key: BytesLike, keyBytes: Uint8Array): { segment: string; base64: boolean } {
  let text: string | null;
  if (typeof key === 'string') {
    if (UNRESERVED_PATTERN.test(key) && key !== '.' && key !== '..') {
      return { segment: key, base64: false };
    }
    text = key.isWellFormed() ? key : key.toWellFormed();
  } else {
    try {
      text = strictUtf8.decode(keyBytes);
    } catch {
      text = null;
    }
  }
  if (text === null || text === '.' || text === '..') {
    return { segment: Buffer.from(keyBytes).toString('base64url'), base64: true };
  }
  const segment = encodeURIComponent(text).replace(
    SUB_DELIMS_PATTERN,
    (character) => `%${character.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return { segment, base64: false };
}

function copyBytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer);
}

function decodeJsonBytes(value: unknown, encoding: unknown): Uint8Array {
  if (typeof value !== 'string') throw badResponse('a value that is not a string');
  if (encoding === 'utf8') return textEncoder.encode(value);
  if (encoding === 'base64') return copyBytes(Buffer.from(value, 'base64'));
  throw badResponse(`a value encoding '${String(encoding)}'`);
}

function badResponse(what: string, nodeId: string | null = null): RingkvError {
  return new RingkvError(ClientErrorCode.BAD_RESPONSE, `a node answered with ${what}`, {
    nodeId,
  });
}

function parseJson(body: Buffer, nodeId: string | null): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (cause) {
    throw new RingkvError(
      ClientErrorCode.BAD_RESPONSE,
      'a node answered with a body that is not JSON',
      {
        nodeId,
        cause,
      },
    );
  }
}

/** The server's error in an answer that is not a success, as a RingkvError. */
function serverError(answer: Answer, nodeId: string | null, attempts: number): RingkvError {
  let code: string | null = null;
  let message = `HTTP ${answer.status}`;
  try {
    const body = JSON.parse(answer.body.toString('utf8')) as {
      error?: { code?: unknown; message?: unknown };
    };
    if (typeof body.error?.code === 'string') code = body.error.code;
    if (typeof body.error?.message === 'string') message = body.error.message;
  } catch {
    code = null;
  }
  if (code === null) {
    return new RingkvError(
      ClientErrorCode.BAD_RESPONSE,
      `a node answered HTTP ${answer.status} without an error code`,
      { status: answer.status, nodeId, attempts },
    );
  }
  return new RingkvError(code, message, { status: answer.status, nodeId, attempts });
}

function errorCodeOf(answer: Answer): string | null {
  try {
    const body = JSON.parse(answer.body.toString('utf8')) as {
      error?: { code?: unknown };
    };
    return typeof body.error?.code === 'string' ? body.error.code : null;
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What a call that got an answer returns to its method. */
interface Reply<T> {
  readonly answer: T;
  readonly nodeId: string;
  readonly attempts: number;
}

/** A node's answer saying it did not do the request (503 over HTTP). */
interface Refusal {
  readonly error: RingkvError;
  /** RINGKV_OVERLOADED: the node did nothing at all, so even a write may go elsewhere. */
  readonly overloaded: boolean;
}

/** What one attempt on one node came to, whatever the transport. */
type Sent<T> =
  | {
      readonly kind: 'answered';
      readonly answer: T;
      /** X-Ringkv-Epoch of the answer, or null. */
      readonly epoch: string | null;
      readonly refusal: Refusal | null;
    }
  | { readonly kind: 'not-sent' | 'timeout' | 'lost'; readonly cause: unknown };

/** Sends one attempt of a request to `node`; never rejects. */
type Send<T> = (node: RingNode, attempt: number) => Promise<Sent<T>>;

/** The headers every request of a client carries, and those of writes, built once. */
interface SharedHeaders {
  readonly plain: Readonly<Record<string, string>>;
  /** Reads ask for JSON by header, not `?format=json`: most gets then have no query at all. */
  readonly read: Readonly<Record<string, string>>;
  readonly put: Readonly<Record<string, string>>;
}

interface Settings {
  readonly endpoints: readonly string[];
  readonly authorization: string | null;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly refreshRingMs: number;
  readonly backoffMs: number;
  readonly socketsPerNodeMax: number;
  readonly transport: Transport;
  readonly respConnectionsPerNode: number;
}

export class RingkvClient {
  private ring: RingView;
  private readonly settings: Settings;
  private readonly connections: NodeConnections;
  /** Null unless the transport is RESP. */
  private readonly respConnections: RespConnections | null;
  private readonly headers: SharedHeaders;
  /** Node id to the time (ms) until which it is tried after the others. */
  private readonly unreachableUntilMs = new Map<string, number>();
  private refreshInFlight: Promise<void> | null = null;
  private lastFailureRefreshAtMs = 0;
  /** The highest epoch a refresh was started for, so one newer epoch starts one refresh. */
  private epochRefreshRequested = 0;
  private refreshTimer: ReturnType<typeof setInterval> | null = null;
  private closed = false;

  private constructor(
    ring: RingView,
    settings: Settings,
    connections: NodeConnections,
    options: ConnectOptions,
  ) {
    this.ring = ring;
    this.settings = settings;
    this.connections = connections;
    this.respConnections =
      settings.transport === 'resp'
        ? new RespConnections(settings.respConnectionsPerNode, options.token ?? null)
        : null;
    const authorization: Record<string, string> =
      settings.authorization === null ? {} : { authorization: settings.authorization };
    this.headers = {
      plain: Object.freeze(authorization),
      read: Object.freeze({ ...authorization, accept: 'application/json' }),
      put: Object.freeze({ ...authorization, 'content-type': 'application/octet-stream' }),
    };
    this.epochRefreshRequested = ring.epoch;
    if (settings.refreshRingMs > 0) {
      this.refreshTimer = setInterval(() => {
        this.refreshRing().catch(() => {
          // The old ring stays in use; the next period or failure tries again.
        });
      }, settings.refreshRingMs);
      // A client left open must not keep the process alive.
      this.refreshTimer.unref();
    }
  }

  /** Fetches the ring from the first endpoint that answers and returns a client routed by it. */
  static async connect(options: ConnectOptions): Promise<RingkvClient> {
    const endpoints = [...options.endpoints];
    if (endpoints.length === 0) throw invalid('endpoints must name at least one host:port');
    for (const endpoint of endpoints) {
      if (!/^(\[[0-9a-fA-F:.]+\]|[^\s/:[\]]+):[0-9]{1,5}$/.test(endpoint)) {
        throw invalid(`endpoint '${endpoint}' is not host:port`);
      }
    }
    const timeoutMs = options.timeoutMs ?? TIMEOUT_MS_DEFAULT;
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
      throw invalid(`timeoutMs must be a positive number, not ${String(timeoutMs)}`);
    }
    const settings: Settings = {
      endpoints,
      authorization: options.token === undefined ? null : `Bearer ${options.token}`,
      timeoutMs,
      retries: checkCount('retries', options.retries, RETRIES_DEFAULT, RETRIES_MAX),
      refreshRingMs: checkCount(
        'refreshRingMs',
        options.refreshRingMs,
        REFRESH_RING_MS_DEFAULT,
        2 ** 31 - 1,
      ),
      backoffMs: checkCount('backoffMs', options.backoffMs, BACKOFF_MS_DEFAULT, BACKOFF_MS_MAX),
      socketsPerNodeMax: checkCount(
        'socketsPerNodeMax',
        options.socketsPerNodeMax,
        SOCKETS_PER_NODE_DEFAULT,
        SOCKETS_PER_NODE_MAX,
      ),
      transport: options.transport ?? 'http',
      respConnectionsPerNode: checkCount(
        'respConnectionsPerNode',
        options.respConnectionsPerNode,
        RESP_CONNECTIONS_PER_NODE_DEFAULT,
        RESP_CONNECTIONS_PER_NODE_MAX,
      ),
    };
    if (settings.socketsPerNodeMax === 0) {
      throw invalid('socketsPerNodeMax must be at least 1');
    }
    if (settings.transport !== 'http' && settings.transport !== 'resp') {
      throw invalid(`transport must be http or resp, not ${String(settings.transport)}`);
    }
    if (settings.respConnectionsPerNode === 0) {
      throw invalid('respConnectionsPerNode must be at least 1');
    }
    const connections = new NodeConnections(settings.socketsPerNodeMax);
    try {
      const ring = await fetchRing(settings, connections, endpoints);
      return new RingkvClient(ring, settings, connections, options);
    } catch (error) {
      connections.close();
      throw error;
    }
  }

  /** The epoch of the ring the client routes by. */
  get ringEpoch(): number {
    return this.ring.epoch;
  }

  /** The ids of the key's replicas, in preference-list order, by the client's current ring. */
  async replicasOf(keyspace: string, key: BytesLike): Promise<readonly string[]> {
    return this.ring.replicaIds(await this.keyspaceOf(keyspace), toBytes(key));
  }

  async get(keyspace: string, key: BytesLike, options: GetOptions = {}): Promise<GetResult> {
    const space = this.knownKeyspace(keyspace) ?? (await this.keyspaceOf(keyspace));
    const keyBytes = toBytes(key);
    const r = checkQuorum('r', options.r);
    if (this.respConnections !== null) {
      const args = ['RINGKV.GET', keyspace, keyBytes];
      if (r !== undefined) args.push('R', r);
      const reply = await this.execute(READ, space, keyBytes, 'get', keyspace, this.sendResp(args));
      return parseRespGet(reply.answer, reply.nodeId, reply.attempts);
    }
    const path = keyPath(keyspace, key, keyBytes, r === undefined ? '' : `r=${r}`);
    const { answer, nodeId, attempts } = await this.execute(
      READ,
      space,
      keyBytes,
      'get',
      keyspace,
      this.sendHttp('GET', path, this.headers.read, undefined),
    );
    if (answer.status === 404 && errorCodeOf(answer) === NOT_FOUND_CODE) {
      const version = versionOfTag(answer.etag);
      return {
        value: null,
        context: answer.context ?? '',
        siblings: [],
        expiresAtMs: null,
        ...(version === null ? {} : { version }),
      };
    }
    if (answer.status !== 200) throw serverError(answer, nodeId, attempts);
    return parseGetAnswer(parseJson(answer.body, nodeId), nodeId);
  }

  async put(
    keyspace: string,
    key: BytesLike,
    value: BytesLike,
    options: PutOptions = {},
  ): Promise<void> {
    const space = this.knownKeyspace(keyspace) ?? (await this.keyspaceOf(keyspace));
    const keyBytes = toBytes(key);
    const w = checkQuorum('w', options.w);
    let query = w === undefined ? '' : `w=${w}`;
    if (options.ttlMs !== undefined) {
      if (!(Number.isSafeInteger(options.ttlMs) && options.ttlMs >= 1)) {
        throw invalid(`ttlMs must be a positive integer, not ${String(options.ttlMs)}`);
      }
      query += `${query === '' ? '' : '&'}ttlMs=${options.ttlMs}`;
    }
    if (this.respConnections !== null) {
      const args = ['RINGKV.PUT', keyspace, keyBytes, toBytes(value)];
      if (options.context !== undefined && options.context !== '') {
        args.push('CONTEXT', options.context);
      }
      if (w !== undefined) args.push('W', w);
      if (options.ttlMs !== undefined) args.push('PX', String(options.ttlMs));
      const reply = await this.execute(
        WRITE,
        space,
        keyBytes,
        'put',
        keyspace,
        this.sendResp(args),
      );
      if (reply.answer !== 'OK')
        throw unexpectedRespReply(reply.answer, reply.nodeId, reply.attempts);
      return;
    }
    const headers =
      options.context === undefined || options.context === ''
        ? this.headers.put
        : { ...this.headers.put, [CONTEXT_HEADER]: options.context };
    const { answer, nodeId, attempts } = await this.execute(
      WRITE,
      space,
      keyBytes,
      'put',
      keyspace,
      this.sendHttp('PUT', keyPath(keyspace, key, keyBytes, query), headers, toBytes(value)),
    );
    if (answer.status !== 200) throw serverError(answer, nodeId, attempts);
  }

  /** Deletes the key; `deleted` says whether it had a live value. */
  async delete(
    keyspace: string,
    key: BytesLike,
    options: DeleteOptions = {},
  ): Promise<{ deleted: boolean }> {
    const space = this.knownKeyspace(keyspace) ?? (await this.keyspaceOf(keyspace));
    const keyBytes = toBytes(key);
    const w = checkQuorum('w', options.w);
    if (this.respConnections !== null) {
      const args = ['RINGKV.DEL', keyspace, keyBytes];
      if (options.context !== undefined && options.context !== '') {
        args.push('CONTEXT', options.context);
      }
      if (w !== undefined) args.push('W', w);
      const reply = await this.execute(
        WRITE,
        space,
        keyBytes,
        'delete',
        keyspace,
        this.sendResp(args),
      );
      if (reply.answer !== 0 && reply.answer !== 1) {
        throw unexpectedRespReply(reply.answer, reply.nodeId, reply.attempts);
      }
      return { deleted: reply.answer === 1 };
    }
    const headers =
      options.context === undefined || options.context === ''
        ? this.headers.plain
        : { ...this.headers.plain, [CONTEXT_HEADER]: options.context };
    const { answer, nodeId, attempts } = await this.execute(
      WRITE,
      space,
      keyBytes,
      'delete',
      keyspace,
      this.sendHttp(
        'DELETE',
        keyPath(keyspace, key, keyBytes, w === undefined ? '' : `w=${w}`),
        headers,
        undefined,
      ),
    );
    if (answer.status !== 200) throw serverError(answer, nodeId, attempts);
    const parsed = parseJson(answer.body, nodeId) as { deleted?: unknown };
    if (typeof parsed.deleted !== 'boolean') throw badResponse('a delete answer without deleted');
    return { deleted: parsed.deleted };
  }

  /**
   * Strong keyspaces: writes `value` if the key is at `expected.version`, or holds
   * `expected.value` (null: has no value), as one linearizable step. Not retried after it
   * may have reached a node (like put), so a lost answer is UNKNOWN_OUTCOME.
   */
  async compareAndSet(
    keyspace: string,
    key: BytesLike,
    expected: Expectation,
    value: BytesLike,
  ): Promise<CompareAndSetResult> {
    const space = this.knownKeyspace(keyspace) ?? (await this.keyspaceOf(keyspace));
    const keyBytes = toBytes(key);
    if ('version' in expected) {
      if (!(Number.isSafeInteger(expected.version) && expected.version >= 0)) {
        throw invalid(`a version is a non-negative integer, not ${String(expected.version)}`);
      }
    }
    if (this.respConnections !== null) {
      const args: (string | Uint8Array)[] = ['RINGKV.CAS', keyspace, keyBytes];
      if ('version' in expected) args.push('VERSION', String(expected.version));
      else if (expected.value === null) args.push('ABSENT');
      else args.push('VALUE', toBytes(expected.value));
      args.push(toBytes(value));
      const reply = await this.execute(
        WRITE,
        space,
        keyBytes,
        'compareAndSet',
        keyspace,
        this.sendResp(args),
      );
      return parseRespCas(reply.answer, reply.nodeId, reply.attempts);
    }
    let headers: Record<string, string>;
    if ('version' in expected) {
      headers = { ...this.headers.put, 'if-match': `"${expected.version}"` };
    } else if (expected.value === null) {
      headers = { ...this.headers.put, 'if-none-match': '*' };
    } else {
      const text = Buffer.from(toBytes(expected.value)).toString('base64url');
      headers = { ...this.headers.put, [IF_VALUE_HEADER]: text };
    }
    const { answer, nodeId, attempts } = await this.execute(
      WRITE,
      space,
      keyBytes,
      'compareAndSet',
      keyspace,
      this.sendHttp('PUT', keyPath(keyspace, key, keyBytes, ''), headers, toBytes(value)),
    );
    if (answer.status === STATUS_PRECONDITION_FAILED) return { applied: false, version: null };
    if (answer.status !== 200) throw serverError(answer, nodeId, attempts);
    return { applied: true, version: versionOfTag(answer.etag) };
  }

  /** Adds `delta` to the key's decimal integer (absent counts as 0); answers the new value. */
  async increment(keyspace: string, key: BytesLike, delta: bigint | number = 1): Promise<bigint> {
    const space = this.knownKeyspace(keyspace) ?? (await this.keyspaceOf(keyspace));
    const keyBytes = toBytes(key);
    if (typeof delta === 'number' && !Number.isSafeInteger(delta)) {
      throw invalid(`an increment is an integer, not ${String(delta)}`);
    }
    const { answer, nodeId, attempts } = await this.execute(
      WRITE,
      space,
      keyBytes,
      'increment',
      keyspace,
      this.sendHttp(
        'POST',
        keyPath(keyspace, key, keyBytes, `incrBy=${String(delta)}`),
        this.headers.plain,
        undefined,
      ),
    );
    if (answer.status !== 200) throw serverError(answer, nodeId, attempts);
    const parsed = parseJson(answer.body, nodeId) as { value?: unknown };
    if (typeof parsed.value !== 'string' || !/^-?[0-9]+$/.test(parsed.value)) {
      throw badResponse('an increment answer without its value', nodeId);
    }
    return BigInt(parsed.value);
  }

  /**
   * One page of the whole-cluster listing of a keyspace. Keys come as bytes, in the
   * cluster's order (by hash, not sorted); a page may hold fewer than `limit` keys, even
   * none, while `cursor` is not null.
   */
  async scan(keyspace: string, options: ScanOptions = {}): Promise<ScanPage> {
    await this.keyspaceOf(keyspace);
    const query = new URLSearchParams({ keyEncoding: 'base64' });
    if (options.prefix !== undefined) {
      const prefix = toBytes(options.prefix);
      if (prefix.length > 0) query.set('prefix', Buffer.from(prefix).toString('base64url'));
    }
    if (options.cursor !== undefined && options.cursor !== null) {
      query.set('cursor', options.cursor);
    }
    if (options.limit !== undefined) {
      if (!(Number.isSafeInteger(options.limit) && options.limit >= 1)) {
        throw invalid(`limit must be a positive integer, not ${String(options.limit)}`);
      }
      query.set('limit', String(options.limit));
    }
    // Pages of one listing go to the same node while it answers: the ring's first alive one.
    const { answer, nodeId, attempts } = await this.execute(
      READ,
      null,
      null,
      'scan',
      keyspace,
      this.sendHttp(
        'GET',
        `/v1/kv/${encodeURIComponent(keyspace)}?${query.toString()}`,
        this.headers.plain,
        undefined,
      ),
    );
    if (answer.status !== 200) throw serverError(answer, nodeId, attempts);
    return parseScanAnswer(parseJson(answer.body, nodeId), nodeId);
  }

  /** Every key of the keyspace (or of a prefix), following scan cursors to the end. */
  async *keys(
    keyspace: string,
    options: { readonly prefix?: BytesLike; readonly pageSize?: number } = {},
  ): AsyncGenerator<Uint8Array, void, undefined> {
    let cursor: string | null = null;
    do {
      const page: ScanPage = await this.scan(keyspace, {
        cursor,
        ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
        ...(options.pageSize === undefined ? {} : { limit: options.pageSize }),
      });
      yield* page.keys;
      cursor = page.cursor;
    } while (cursor !== null);
  }

  /**
   * Fetches the ring again now, from the nodes the client knows and then the endpoints it
   * was given. Concurrent calls share one fetch. A ring older than the one in use is ignored.
   */
  refreshRing(): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    if (this.refreshInFlight !== null) return this.refreshInFlight;
    const known = this.ring.anyNodeCandidates(this.isUnreachable).map((node) => node.http);
    const sources = [...new Set([...known, ...this.settings.endpoints])];
    this.refreshInFlight = fetchRing(this.settings, this.connections, sources)
      .then((ring) => {
        if (ring.epoch >= this.ring.epoch) this.ring = ring;
      })
      .finally(() => {
        this.refreshInFlight = null;
      });
    return this.refreshInFlight;
  }

  /** Stops the periodic refresh; later calls fail with CLOSED. Requests in flight finish. */
  close(): void {
    this.closed = true;
    if (this.refreshTimer !== null) clearInterval(this.refreshTimer);
    this.refreshTimer = null;
    this.connections.close();
    this.respConnections?.close();
  }

  private readonly isUnreachable = (nodeId: string): boolean => {
    const untilMs = this.unreachableUntilMs.get(nodeId);
    if (untilMs === undefined) return false;
    if (untilMs > Date.now()) return true;
    this.unreachableUntilMs.delete(nodeId);
    return false;
  };

  /** The keyspace from the ring in hand, without a turn of the event loop; undefined to look further. */
  private knownKeyspace(name: string): RingKeyspace | undefined {
    return this.closed ? undefined : this.ring.keyspace(name);
  }

  private async keyspaceOf(name: string): Promise<RingKeyspace> {
    if (this.closed) throw closedError();
    const known = this.ring.keyspace(name);
    if (known !== undefined) return known;
    // Perhaps created since the ring was fetched: look once more before giving up.
    await this.refreshRing();
    const fresh = this.ring.keyspace(name);
    if (fresh !== undefined) return fresh;
    throw new RingkvError(
      UNKNOWN_KEYSPACE_CODE,
      `keyspace '${name}' is not in the ring (epoch ${this.ring.epoch})`,
    );
  }

  /** One HTTP attempt: an answer of 503 is a refusal (see the retry policy). */
  private sendHttp(
    method: CallRequest['method'],
    path: string,
    headers: Readonly<Record<string, string>>,
    body: Uint8Array | undefined,
  ): Send<Answer> {
    return async (node, attempt) => {
      const outcome = await this.connections.call({
        method,
        address: node.http,
        path,
        headers,
        ...(body === undefined ? {} : { body }),
        timeoutMs: this.settings.timeoutMs,
      });
      if (outcome.kind !== 'answered') return outcome;
      const refusal =
        outcome.status === STATUS_UNAVAILABLE
          ? {
              error: serverError(outcome, node.id, attempt),
              overloaded: errorCodeOf(outcome) === OVERLOADED_CODE,
            }
          : null;
      return { kind: 'answered', answer: outcome, epoch: outcome.epoch, refusal };
    };
  }

  /**
   * One RESP attempt, to the node's `resp` address from the ring. A RINGKV_UNAVAILABLE or
   * RINGKV_OVERLOADED error reply is a refusal, as a 503 is over HTTP.
   */
  private sendResp(args: readonly (string | Uint8Array)[]): Send<RespReply> {
    const connections = this.respConnections;
    if (connections === null) throw new Error('a RESP request on a client without RESP');
    return async (node, attempt) => {
      if (node.resp === '') {
        const cause = new Error(`the ring gives node '${node.id}' no RESP address`);
        return { kind: 'not-sent', cause };
      }
      const outcome: RespOutcome = await connections.call(node.resp, args, this.settings.timeoutMs);
      if (outcome.kind !== 'answered') return outcome;
      const reply = outcome.reply;
      let refusal: Refusal | null = null;
      if (reply instanceof RespErrorReply) {
        const error = respServerError(reply, node.id, attempt);
        if (error.code === UNAVAILABLE_CODE || error.code === OVERLOADED_CODE) {
          refusal = { error, overloaded: error.code === OVERLOADED_CODE };
        }
      }
      return { kind: 'answered', answer: reply, epoch: null, refusal };
    };
  }

  /**
   * Sends the request until a node answers or the attempts run out (see the file header).
   * `space` and `key` route it to the key's replicas; null sends it to any node.
   */
  private async execute<T>(
    safeToRepeat: boolean,
    space: RingKeyspace | null,
    key: Uint8Array | null,
    operation: string,
    keyspace: string,
    send: Send<T>,
  ): Promise<Reply<T>> {
    const attemptsMax = this.settings.retries + 1;
    // Nodes tried for this call; allocated only when a first attempt fails.
    let tried: string[] | null = null;
    let previous: string | null = null;
    let lastError: RingkvError | null = null;
    for (let attempt = 1; attempt <= attemptsMax; attempt++) {
      if (this.closed) throw closedError();
      if (previous !== null) {
        (tried ??= []).push(previous);
        await sleep(this.backoffBefore(attempt));
      }
      // The ring may have been refreshed during the backoff: route by the one in hand now.
      const ring = this.ring;
      const route =
        space === null || key === null
          ? ring.anyNodeRouteOf()
          : ring.routeOf(space, ring.partitionOf(space, key));
      if (route.nodes.length === 0) throw badResponse('a ring that lists no node');
      const isUnreachable = this.unreachableUntilMs.size === 0 ? null : this.isUnreachable;
      // The best node not yet tried for this request; once all were, start over.
      let index = bestIndexOf(route, isUnreachable, tried);
      if (index === -1) {
        tried = null;
        index = bestIndexOf(route, isUnreachable, null);
      }
      const node = route.nodes[index]!;
      previous = node.id;
      const outcome = await send(node, attempt);
      if (outcome.kind === 'answered') {
        if (isUnreachable !== null) this.unreachableUntilMs.delete(node.id);
        if (outcome.epoch !== null) this.noticeEpoch(outcome.epoch);
        const refusal = outcome.refusal;
        if (refusal !== null && (safeToRepeat || refusal.overloaded)) {
          lastError = refusal.error;
          continue;
        }
        return { answer: outcome.answer, nodeId: node.id, attempts: attempt };
      }
      const address = this.respConnections === null || key === null ? node.http : node.resp;
      const details = { nodeId: node.id, attempts: attempt, cause: outcome.cause };
      const what = describe(operation, keyspace);
      this.noticeUnreachable(node.id);
      if (outcome.kind === 'not-sent') {
        lastError = new RingkvError(
          ClientErrorCode.UNREACHABLE,
          `${what}: could not connect to node '${node.id}' at ${address}`,
          details,
        );
        continue;
      }
      if (!safeToRepeat) {
        throw new RingkvError(
          ClientErrorCode.UNKNOWN_OUTCOME,
          outcome.kind === 'timeout'
            ? `${what}: no answer from node '${node.id}' within ${this.settings.timeoutMs} ms; the write may or may not have been applied`
            : `${what}: the connection to node '${node.id}' failed mid-request; the write may or may not have been applied`,
          details,
        );
      }
      lastError =
        outcome.kind === 'timeout'
          ? new RingkvError(
              ClientErrorCode.TIMEOUT,
              `${what}: no answer from node '${node.id}' within ${this.settings.timeoutMs} ms`,
              details,
            )
          : new RingkvError(
              ClientErrorCode.UNREACHABLE,
              `${what}: the connection to node '${node.id}' failed`,
              details,
            );
    }
    if (lastError === null) throw new Error('a request ended with no attempt');
    throw lastError;
  }

  private backoffBefore(attempt: number): number {
    const ceilingMs = Math.min(this.settings.backoffMs * 2 ** (attempt - 2), BACKOFF_MS_MAX);
    // Half fixed, half random: clients that failed together do not retry together.
    return ceilingMs / 2 + (Math.random() * ceilingMs) / 2;
  }

  private noticeEpoch(text: string): void {
    if (!EPOCH_PATTERN.test(text)) return;
    const epoch = Number(text);
    if (epoch <= this.ring.epoch || epoch <= this.epochRefreshRequested) return;
    this.epochRefreshRequested = epoch;
    this.refreshInBackground();
  }

  private noticeUnreachable(nodeId: string): void {
    this.unreachableUntilMs.set(nodeId, Date.now() + UNREACHABLE_HOLD_MS);
    const nowMs = Date.now();
    if (nowMs - this.lastFailureRefreshAtMs < REFRESH_ON_FAILURE_INTERVAL_MS) return;
    this.lastFailureRefreshAtMs = nowMs;
    this.refreshInBackground();
  }

  private refreshInBackground(): void {
    if (this.closed) return;
    this.refreshRing().catch(() => {
      // Keep routing by the ring in hand; a later trigger tries again.
    });
  }
}

function closedError(): RingkvError {
  return new RingkvError(ClientErrorCode.CLOSED, 'the client was closed');
}

/** How an operation is named in its errors. */
function describe(operation: string, keyspace: string): string {
  return operation === 'scan'
    ? `scan of keyspace '${keyspace}'`
    : `${operation} in keyspace '${keyspace}'`;
}

/** `/v1/kv/{keyspace}/{key}?{query}`, with keyEncoding=base64 added for a base64 key. */
/** The version in an ETag (`"3"`), or null. */
function versionOfTag(etag: string | null): number | null {
  const digits = etag === null ? undefined : /^"([0-9]{1,16})"$/.exec(etag)?.[1];
  return digits === undefined ? null : Number(digits);
}

function keyPath(keyspace: string, key: BytesLike, keyBytes: Uint8Array, query: string): string {
  const { segment, base64 } = keySegment(key, keyBytes);
  const fullQuery = base64
    ? query === ''
      ? 'keyEncoding=base64'
      : `${query}&keyEncoding=base64`
    : query;
  const prefix = `/v1/kv/${encodeURIComponent(keyspace)}/${segment}`;
  return fullQuery === '' ? prefix : `${prefix}?${fullQuery}`;
}

function parseGetAnswer(body: unknown, nodeId: string): GetResult {
  const answer = body as {
    value?: unknown;
    encoding?: unknown;
    context?: unknown;
    expiresAtMs?: unknown;
    siblings?: unknown;
    version?: unknown;
  };
  if (typeof answer.context !== 'string' || !Array.isArray(answer.siblings)) {
    throw badResponse('a read without context or siblings', nodeId);
  }
  const siblings = answer.siblings.map((sibling: unknown): Sibling => {
    const entry = sibling as { value?: unknown; encoding?: unknown; timestamp?: unknown };
    const timestamp = entry.timestamp;
    if (
      !Array.isArray(timestamp) ||
      timestamp.length !== 2 ||
      !timestamp.every((part) => typeof part === 'number')
    ) {
      throw badResponse('a sibling without a [ms, counter] timestamp', nodeId);
    }
    return {
      value: decodeJsonBytes(entry.value, entry.encoding),
      timestamp: [timestamp[0] as number, timestamp[1] as number],
    };
  });
  return {
    value: decodeJsonBytes(answer.value, answer.encoding),
    context: answer.context,
    siblings,
    expiresAtMs: typeof answer.expiresAtMs === 'number' ? answer.expiresAtMs : null,
    ...(typeof answer.version === 'number' ? { version: answer.version } : {}),
  };
}

/** A node's error reply on the RESP port as a RingkvError with the node's code. */
function respServerError(reply: RespErrorReply, nodeId: string, attempts: number): RingkvError {
  const match = RESP_ERROR_PATTERN.exec(reply.message);
  if (match !== null) {
    return new RingkvError(match[1]!, match[2]!, { nodeId, attempts });
  }
  if (RESP_AUTH_ERROR_PATTERN.test(reply.message)) {
    return new RingkvError(UNAUTHORIZED_CODE, reply.message, { nodeId, attempts });
  }
  return new RingkvError(
    ClientErrorCode.BAD_RESPONSE,
    `a node answered with an error without a RINGKV_ code: ${reply.message}`,
    { nodeId, attempts },
  );
}

/** The error for a RESP reply that is not what the command answers. */
function unexpectedRespReply(reply: RespReply, nodeId: string, attempts: number): RingkvError {
  if (reply instanceof RespErrorReply) return respServerError(reply, nodeId, attempts);
  return new RingkvError(ClientErrorCode.BAD_RESPONSE, 'a node answered with an unexpected reply', {
    nodeId,
    attempts,
  });
}

/** RINGKV.GET's reply: [value, context, expiresAtMs, [[value, wallMs, logical], ...]]. */
function parseRespGet(reply: RespReply, nodeId: string, attempts: number): GetResult {
  // A fifth element is a strong key's version.
  if (!Array.isArray(reply) || (reply.length !== 4 && reply.length !== 5)) {
    throw unexpectedRespReply(reply, nodeId, attempts);
  }
  const [value, context, expiresAtMs, siblings, version] = reply;
  if (version !== undefined && typeof version !== 'number') {
    throw badResponse('a RINGKV.GET version that is not an integer', nodeId);
  }
  if (
    !(value === null || Buffer.isBuffer(value)) ||
    !Buffer.isBuffer(context) ||
    typeof expiresAtMs !== 'number' ||
    !Array.isArray(siblings)
  ) {
    throw badResponse('a RINGKV.GET reply of the wrong shape', nodeId);
  }
  return {
    value: value === null ? null : copyBytes(value),
    context: context.toString('latin1'),
    siblings: siblings.map((sibling): Sibling => {
      if (!Array.isArray(sibling) || sibling.length !== 3) {
        throw badResponse('a RINGKV.GET sibling of the wrong shape', nodeId);
      }
      const [siblingValue, wallMs, logical] = sibling;
      if (
        !Buffer.isBuffer(siblingValue) ||
        typeof wallMs !== 'number' ||
        typeof logical !== 'number'
      ) {
        throw badResponse('a RINGKV.GET sibling of the wrong shape', nodeId);
      }
      return { value: copyBytes(siblingValue), timestamp: [wallMs, logical] };
    }),
    expiresAtMs: expiresAtMs === 0 ? null : expiresAtMs,
    ...(version === undefined ? {} : { version }),
  };
}

/** RINGKV.CAS's reply: [applied 1 or 0, the key's version after the command]. */
function parseRespCas(reply: RespReply, nodeId: string, attempts: number): CompareAndSetResult {
  if (!Array.isArray(reply) || reply.length !== 2) {
    throw unexpectedRespReply(reply, nodeId, attempts);
  }
  const [applied, version] = reply;
  if ((applied !== 0 && applied !== 1) || typeof version !== 'number' || version < 0) {
    throw badResponse('a RINGKV.CAS reply of the wrong shape', nodeId);
  }
  // Over HTTP a refused compare-and-set carries no version either: the same result both ways.
  return applied === 1 ? { applied: true, version } : { applied: false, version: null };
}

function parseScanAnswer(body: unknown, nodeId: string): ScanPage {
  const answer = body as { keys?: unknown; keyEncoding?: unknown; cursor?: unknown };
  if (
    !Array.isArray(answer.keys) ||
    !(answer.cursor === null || typeof answer.cursor === 'string')
  ) {
    throw badResponse('a listing without keys or cursor', nodeId);
  }
  const keys = answer.keys.map((key: unknown) => {
    if (typeof key !== 'string') throw badResponse('a listed key that is not a string', nodeId);
    if (answer.keyEncoding === 'base64') return copyBytes(Buffer.from(key, 'base64url'));
    if (answer.keyEncoding === 'utf8') return textEncoder.encode(key);
    throw badResponse(`a listing in key encoding '${String(answer.keyEncoding)}'`, nodeId);
  });
  return { keys, cursor: answer.cursor };
}

/** The first ring document any of `sources` (host:port) gives. */
async function fetchRing(
  settings: Settings,
  connections: NodeConnections,
  sources: readonly string[],
): Promise<RingView> {
  // A node's own refusal (a wrong token, say) says more than another node's silence.
  let answeredError: RingkvError | null = null;
  let lastError: RingkvError | null = null;
  for (const source of sources) {
    const outcome = await connections.call({
      method: 'GET',
      address: source,
      path: RING_PATH,
      headers: settings.authorization === null ? {} : { authorization: settings.authorization },
      timeoutMs: settings.timeoutMs,
    });
    if (outcome.kind !== 'answered') {
      lastError = new RingkvError(
        outcome.kind === 'timeout' ? ClientErrorCode.TIMEOUT : ClientErrorCode.UNREACHABLE,
        `could not fetch the ring from ${source} (${outcome.kind})`,
        { cause: outcome.cause },
      );
      continue;
    }
    if (outcome.status !== 200) {
      answeredError = serverError(outcome, null, 1);
      continue;
    }
    try {
      return new RingView(parseRingDocument(parseJson(outcome.body, null)));
    } catch (error) {
      lastError =
        error instanceof RingkvError
          ? error
          : new RingkvError(ClientErrorCode.BAD_RESPONSE, String(error));
    }
  }
  const error = answeredError ?? lastError;
  if (error === null) throw invalid('no endpoint to fetch the ring from');
  throw error;
}
