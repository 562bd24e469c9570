// Messages between nodes: compact arrays whose first element names the message and whose
// second is the sender's map epoch (so a node that falls behind learns it on any message).
// Records travel in their storage encoding (record.ts), which is canonical and versioned.
// Every message that arrives is checked here before the node acts on it; a malformed one is
// dropped and counted, never trusted.
//
// A request carries an op id chosen by the sender; the answer carries it back. Op id 0 asks
// for no answer (read repair).

import type { SwimMessage } from '../swim/messages.ts';
import type { PaxosMessage } from '../paxos/messages.ts';
import type { ChainMessage } from '../chain/messages.ts';
import type { ClientReply, ClientRequest } from '../requests.ts';
import type { MemberInfo } from './cluster-map.ts';

export const MessageType = {
  swim: 's',
  hello: 'h',
  /** A node asking a member to be added to the cluster as a standby. */
  join: 'j',
  map: 'm',
  mapFetch: 'mf',
  forward: 'f',
  forwardReply: 'fr',
  read: 'r',
  readReply: 'rr',
  put: 'p',
  putReply: 'pr',
  putIfNewer: 'pn',
  putIfNewerReply: 'pnr',
  scan: 'sc',
  scanReply: 'scr',
  count: 'c',
  countReply: 'cr',
  flush: 'fl',
  flushReply: 'flr',
  /** CASPaxos, to an acceptor or back to a proposer (src/core/paxos/messages.ts). */
  paxos: 'x',
  /** Chain replication (src/core/chain/messages.ts). */
  chain: 'ch',
  /** Partition handoff while the membership changes (src/core/handoff/messages.ts). */
  handoff: 'ho',
  /** Merkle exchanges between replicas (src/core/antientropy/messages.ts). */
  antiEntropy: 'ae',
  /** The elastic policy's load reports (src/core/cluster/elastic-host.ts). */
  load: 'ld',
} as const;

/** How a replica answered a putIfNewer. */
export const PutIfNewerStatus = {
  stored: 0,
  /** Not stored: the receiver's copy holds a version the record does not cover. */
  stale: 1,
  refused: 2,
} as const;

export type PeerMessage =
  | readonly [typeof MessageType.swim, number, SwimMessage]
  /** A founding member announcing itself: its addresses and the founders it expects. */
  | readonly [typeof MessageType.hello, number, MemberInfo, readonly string[], boolean]
  /** A node asking to join, with its addresses. */
  | readonly [typeof MessageType.join, number, MemberInfo]
  | readonly [typeof MessageType.map, number, Uint8Array]
  | readonly [typeof MessageType.mapFetch, number]
  /** opId, the request, the sender's incarnation (with opId it names the request). */
  | readonly [typeof MessageType.forward, number, number, ClientRequest, number]
  | readonly [typeof MessageType.forwardReply, number, number, ClientReply]
  /** opId, keyspace id, key, the owner this fallback stands in for ('' when a replica). */
  | readonly [typeof MessageType.read, number, number, number, Uint8Array, string]
  /** opId, ok, encoded record (empty: none), error message. */
  | readonly [typeof MessageType.readReply, number, number, boolean, Uint8Array, string]
  /** opId, keyspace id, key, encoded record, hint owner ('' when a replica). */
  | readonly [typeof MessageType.put, number, number, number, Uint8Array, Uint8Array, string]
  | readonly [typeof MessageType.putReply, number, number, boolean, string]
  /** As put, but stored only if the record holds everything the receiver's copy has. */
  | readonly [typeof MessageType.putIfNewer, number, number, number, Uint8Array, Uint8Array, string]
  /** opId, PutIfNewerStatus, the receiver's copy when stale (else empty), error message. */
  | readonly [typeof MessageType.putIfNewerReply, number, number, number, Uint8Array, string]
  /** opId, keyspace id, partition, after key (empty: from the start), limit. */
  | readonly [typeof MessageType.scan, number, number, number, number, Uint8Array, number]
  /** opId, keys, more. */
  | readonly [typeof MessageType.scanReply, number, number, readonly Uint8Array[], boolean]
  /** opId, keyspace id, partitions counted by the receiver. */
  | readonly [typeof MessageType.count, number, number, number, readonly number[]]
  | readonly [typeof MessageType.countReply, number, number, number]
  | readonly [typeof MessageType.flush, number, number, number]
  | readonly [typeof MessageType.flushReply, number, number, number]
  /** Checked field by field by the register host. */
  | readonly [typeof MessageType.paxos, number, PaxosMessage]
  /** Checked field by field by the chain host. */
  | readonly [typeof MessageType.chain, number, ChainMessage]
  /** Checked field by field by the handoff host. */
  | readonly [typeof MessageType.handoff, number, unknown]
  /** Checked field by field by the anti-entropy host. */
  | readonly [typeof MessageType.antiEntropy, number, unknown]
  /** Checked field by field by the elastic host. */
  | readonly [typeof MessageType.load, number, unknown];

const isInt = (value: unknown): value is number => Number.isSafeInteger(value);
const isBytes = (value: unknown): value is Uint8Array => value instanceof Uint8Array;
const isString = (value: unknown): value is string => typeof value === 'string';

function isMember(value: unknown): value is MemberInfo {
  if (typeof value !== 'object' || value === null) return false;
  const member = value as Record<string, unknown>;
  return ['id', 'peer', 'http', 'resp'].every((field) => isString(member[field]));
}

/** put and putIfNewer: opId, keyspace id, key, encoded record, hint owner. */
function isPutShape(f: readonly unknown[]): boolean {
  return (
    f.length === 7 && isInt(f[2]) && isInt(f[3]) && isBytes(f[4]) && isBytes(f[5]) && isString(f[6])
  );
}

/** Shape checks for each message type; fields the handlers check again are only typed here. */
const SHAPES: Record<string, (fields: readonly unknown[]) => boolean> = {
  [MessageType.swim]: (f) => f.length === 3,
  [MessageType.hello]: (f) =>
    f.length === 5 &&
    isMember(f[2]) &&
    Array.isArray(f[3]) &&
    f[3].every(isString) &&
    typeof f[4] === 'boolean',
  [MessageType.join]: (f) => f.length === 3 && isMember(f[2]),
  [MessageType.map]: (f) => f.length === 3 && isBytes(f[2]),
  [MessageType.mapFetch]: (f) => f.length === 2,
  [MessageType.forward]: (f) =>
    f.length === 5 && isInt(f[2]) && isClientRequestShape(f[3]) && isInt(f[4]),
  [MessageType.forwardReply]: (f) =>
    f.length === 4 && isInt(f[2]) && typeof f[3] === 'object' && f[3] !== null,
  [MessageType.read]: (f) =>
    f.length === 6 && isInt(f[2]) && isInt(f[3]) && isBytes(f[4]) && isString(f[5]),
  [MessageType.readReply]: (f) =>
    f.length === 6 && isInt(f[2]) && typeof f[3] === 'boolean' && isBytes(f[4]) && isString(f[5]),
  [MessageType.put]: isPutShape,
  [MessageType.putReply]: (f) =>
    f.length === 5 && isInt(f[2]) && typeof f[3] === 'boolean' && isString(f[4]),
  [MessageType.putIfNewer]: isPutShape,
  [MessageType.putIfNewerReply]: (f) =>
    f.length === 6 && isInt(f[2]) && isInt(f[3]) && isBytes(f[4]) && isString(f[5]),
  [MessageType.scan]: (f) =>
    f.length === 7 && isInt(f[2]) && isInt(f[3]) && isInt(f[4]) && isBytes(f[5]) && isInt(f[6]),
  [MessageType.scanReply]: (f) =>
    f.length === 5 &&
    isInt(f[2]) &&
    Array.isArray(f[3]) &&
    f[3].every(isBytes) &&
    typeof f[4] === 'boolean',
  [MessageType.count]: (f) =>
    f.length === 5 && isInt(f[2]) && isInt(f[3]) && Array.isArray(f[4]) && f[4].every(isInt),
  [MessageType.countReply]: (f) => f.length === 4 && isInt(f[2]) && isInt(f[3]),
  [MessageType.flush]: (f) => f.length === 4 && isInt(f[2]) && isInt(f[3]),
  [MessageType.flushReply]: (f) => f.length === 4 && isInt(f[2]) && isInt(f[3]),
  [MessageType.paxos]: (f) => f.length === 3 && Array.isArray(f[2]),
  [MessageType.chain]: (f) => f.length === 3 && typeof f[2] === 'object' && f[2] !== null,
  [MessageType.handoff]: (f) => f.length === 3 && Array.isArray(f[2]),
  [MessageType.antiEntropy]: (f) => f.length === 3 && Array.isArray(f[2]),
  [MessageType.load]: (f) => f.length === 3 && Array.isArray(f[2]),
};

export function isPeerMessage(value: unknown): value is PeerMessage {
  if (!Array.isArray(value) || value.length < 2) return false;
  const shape = SHAPES[value[0] as string];
  return shape !== undefined && isInt(value[1]) && shape(value);
}

const REQUEST_OPS = new Set(['get', 'write', 'scan', 'count', 'flush', 'createKeyspace']);

function isClientRequestShape(value: unknown): value is ClientRequest {
  if (typeof value !== 'object' || value === null) return false;
  const request = value as Record<string, unknown>;
  if (!REQUEST_OPS.has(request.op as string) || !isString(request.keyspace)) return false;
  if (request.op === 'get') return Array.isArray(request.keys) && request.keys.every(isBytes);
  if (request.op === 'write') {
    return (
      Array.isArray(request.items) &&
      request.items.every(
        (item: unknown) =>
          typeof item === 'object' &&
          item !== null &&
          isBytes((item as Record<string, unknown>).key) &&
          isMutationShape((item as Record<string, unknown>).mutation),
      )
    );
  }
  return true;
}

function isMutationShape(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const mutation = value as Record<string, unknown>;
  switch (mutation.kind) {
    case 'set':
      return isBytes(mutation.value) && isString(mutation.condition) && isExpiry(mutation.expiry);
    case 'delete':
      return true;
    case 'incrBy':
      return typeof mutation.delta === 'bigint';
    case 'append':
      return isBytes(mutation.suffix);
    case 'expire':
      return isExpiry(mutation.expiry) && isString(mutation.condition);
    case 'compareAndSet': {
      if (!isBytes(mutation.value)) return false;
      const expected = mutation.expected as Record<string, unknown> | null;
      if (typeof expected !== 'object' || expected === null) return false;
      return 'version' in expected
        ? isInt(expected.version)
        : expected.value === null || isBytes(expected.value);
    }
    default:
      return false;
  }
}

function isExpiry(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const expiry = value as Record<string, unknown>;
  switch (expiry.kind) {
    case 'none':
    case 'keep':
      return true;
    case 'at':
      return isInt(expiry.atMs);
    case 'after':
      return isInt(expiry.ms);
    default:
      return false;
  }
}
