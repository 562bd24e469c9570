// The CASPaxos wire messages: compact arrays whose first element names the message. A
// proposer sends prepare, accept, purge and read to acceptors; an acceptor answers each with
// one reply carrying the request id back. Ballots travel as two fields (counter, proposer id),
// a register value as two (bytes or null for a tombstone, version).
//
// Whatever arrives from the network is checked here, field by field, before a proposer or
// an acceptor acts on it: a wrong length, a wrong type, an oversized key or value or an
// out-of-range number makes the message invalid, and the receiver drops and counts it.
// The node's envelope (type and epoch) wraps these arrays; they do not repeat it. The
// sender's epoch in that envelope is what an acceptor's fence compares (docs/PAXOS.md,
// "Acceptor changes"); list and list reply serve a new acceptor's copy of a partition.

import { KEY_BYTES_CEILING, VALUE_BYTES_CEILING } from '../limits.ts';
import { isValidBallot } from './ballot.ts';

export const PaxosMessageType = {
  prepare: 'xp',
  accept: 'xa',
  purge: 'xg',
  read: 'xe',
  promise: 'xr',
  accepted: 'xk',
  conflict: 'xc',
  purgeReply: 'xq',
  readReply: 'xf',
  fenced: 'xz',
  list: 'xl',
  listReply: 'xm',
} as const;

/** requestId, key, ballot counter, ballot proposer id. */
export type PrepareMessage = readonly [
  typeof PaxosMessageType.prepare,
  requestId: number,
  key: Uint8Array,
  counter: number,
  proposerId: string,
];

/** requestId, key, ballot, the value to accept (bytes or null for a tombstone, version). */
export type AcceptMessage = readonly [
  typeof PaxosMessageType.accept,
  requestId: number,
  key: Uint8Array,
  counter: number,
  proposerId: string,
  bytes: Uint8Array | null,
  version: number,
];

/** requestId, key, the ballot the tombstone was sealed at on every acceptor, its version. */
export type PurgeMessage = readonly [
  typeof PaxosMessageType.purge,
  requestId: number,
  key: Uint8Array,
  counter: number,
  proposerId: string,
  version: number,
];

/** requestId, key: what the acceptor holds, without promising anything. */
export type ReadMessage = readonly [
  typeof PaxosMessageType.read,
  requestId: number,
  key: Uint8Array,
];

/** requestId, the ballot of the accepted value (zero: none), the value. */
export type PromiseMessage = readonly [
  typeof PaxosMessageType.promise,
  requestId: number,
  acceptedCounter: number,
  acceptedProposerId: string,
  bytes: Uint8Array | null,
  version: number,
];

export type AcceptedMessage = readonly [typeof PaxosMessageType.accepted, requestId: number];

/** requestId, the ballot the acceptor had promised, which beat the request's. */
export type ConflictMessage = readonly [
  typeof PaxosMessageType.conflict,
  requestId: number,
  promisedCounter: number,
  promisedProposerId: string,
];

/** requestId, whether the key was removed. */
export type PurgeReplyMessage = readonly [
  typeof PaxosMessageType.purgeReply,
  requestId: number,
  removed: boolean,
];

/** requestId, the ballot of the accepted value (zero: none), the value: as in a promise. */
export type ReadReplyMessage = readonly [
  typeof PaxosMessageType.readReply,
  requestId: number,
  acceptedCounter: number,
  acceptedProposerId: string,
  bytes: Uint8Array | null,
  version: number,
];

/**
 * requestId, the acceptor's fence epoch of the key's partition: the request came from a map
 * older than the last change of the partition's acceptors, and was refused without a look at
 * the key. The proposer's node fetches the newer map; the operation retries with it.
 */
export type FencedMessage = readonly [
  typeof PaxosMessageType.fenced,
  requestId: number,
  fenceEpoch: number,
];

/**
 * requestId, keyspace id, partition, the last key listed so far (null: from the start): a
 * node that becomes an acceptor of the partition asks a current one for its register keys,
 * a page at a time (docs/PAXOS.md, "Acceptor changes").
 */
export type ListMessage = readonly [
  typeof PaxosMessageType.list,
  requestId: number,
  keyspaceId: number,
  partition: number,
  after: Uint8Array | null,
];

/**
 * requestId, the acceptor's fence epoch of the partition when it listed, the keys after the
 * cursor in order, whether they are the last, and the acceptor's floors (ballot, version).
 */
export type ListReplyMessage = readonly [
  typeof PaxosMessageType.listReply,
  requestId: number,
  fenceEpoch: number,
  keys: readonly Uint8Array[],
  done: boolean,
  floorCounter: number,
  floorProposerId: string,
  floorVersion: number,
];

export type AcceptorRequest = PrepareMessage | AcceptMessage | PurgeMessage | ReadMessage;
export type AcceptorReply =
  | PromiseMessage
  | AcceptedMessage
  | ConflictMessage
  | PurgeReplyMessage
  | ReadReplyMessage
  | FencedMessage;
export type PaxosMessage = AcceptorRequest | AcceptorReply | ListMessage | ListReplyMessage;

/** Keys in one list reply, at most. */
export const LIST_KEYS_MAX = 1024;
/** Partitions a list request may name (a ring has at most this many). */
const PARTITIONS_MAX = 65_536;

/**
 * Register keys are a user key behind a prefix of up to this many bytes (the node puts the
 * keyspace id there), so they may exceed the user key limit by that much.
 */
export const REGISTER_KEY_PREFIX_BYTES_MAX = 16;
export const REGISTER_KEY_BYTES_MAX = KEY_BYTES_CEILING + REGISTER_KEY_PREFIX_BYTES_MAX;

const isRequestId = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

const isVersion = isRequestId;

function isKey(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length > 0 && value.length <= REGISTER_KEY_BYTES_MAX;
}

function isValueBytes(value: unknown): value is Uint8Array | null {
  return value === null || (value instanceof Uint8Array && value.length <= VALUE_BYTES_CEILING);
}

/** A ballot a proposer may use: not the zero ballot. */
function isProposerBallot(counter: unknown, proposerId: unknown): boolean {
  return isValidBallot(counter, proposerId) && counter !== 0;
}

/** An accepted ballot and value; nothing accepted (the zero ballot) is only a tombstone. */
function isAcceptedValue(fields: readonly unknown[]): boolean {
  return (
    isValidBallot(fields[2], fields[3]) &&
    isValueBytes(fields[4]) &&
    isVersion(fields[5]) &&
    (fields[2] !== 0 || fields[4] === null)
  );
}

const SHAPES: Readonly<Record<string, (fields: readonly unknown[]) => boolean>> = {
  [PaxosMessageType.prepare]: (f) =>
    f.length === 5 && isRequestId(f[1]) && isKey(f[2]) && isProposerBallot(f[3], f[4]),
  [PaxosMessageType.accept]: (f) =>
    f.length === 7 &&
    isRequestId(f[1]) &&
    isKey(f[2]) &&
    isProposerBallot(f[3], f[4]) &&
    isValueBytes(f[5]) &&
    isVersion(f[6]),
  [PaxosMessageType.purge]: (f) =>
    f.length === 6 &&
    isRequestId(f[1]) &&
    isKey(f[2]) &&
    isProposerBallot(f[3], f[4]) &&
    isVersion(f[5]),
  [PaxosMessageType.read]: (f) => f.length === 3 && isRequestId(f[1]) && isKey(f[2]),
  [PaxosMessageType.promise]: (f) => f.length === 6 && isRequestId(f[1]) && isAcceptedValue(f),
  [PaxosMessageType.readReply]: (f) => f.length === 6 && isRequestId(f[1]) && isAcceptedValue(f),
  [PaxosMessageType.accepted]: (f) => f.length === 2 && isRequestId(f[1]),
  [PaxosMessageType.conflict]: (f) =>
    f.length === 4 && isRequestId(f[1]) && isProposerBallot(f[2], f[3]),
  [PaxosMessageType.purgeReply]: (f) =>
    f.length === 3 && isRequestId(f[1]) && typeof f[2] === 'boolean',
  [PaxosMessageType.fenced]: (f) => f.length === 3 && isRequestId(f[1]) && isVersion(f[2]),
  [PaxosMessageType.list]: (f) =>
    f.length === 5 &&
    isRequestId(f[1]) &&
    isKeyspaceId(f[2]) &&
    isPartition(f[3]) &&
    (f[4] === null || isUserKey(f[4])),
  [PaxosMessageType.listReply]: (f) =>
    f.length === 8 &&
    isRequestId(f[1]) &&
    isVersion(f[2]) &&
    Array.isArray(f[3]) &&
    f[3].length <= LIST_KEYS_MAX &&
    (f[3] as unknown[]).every(isUserKey) &&
    typeof f[4] === 'boolean' &&
    isValidBallot(f[5], f[6]) &&
    isVersion(f[7]),
};

function isKeyspaceId(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < 2 ** 32;
}

function isPartition(value: unknown): boolean {
  return (
    typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < PARTITIONS_MAX
  );
}

function isUserKey(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length > 0 && value.length <= KEY_BYTES_CEILING;
}

/** Never throws, whatever it is given. */
export function isValidPaxosMessage(value: unknown): value is PaxosMessage {
  if (!Array.isArray(value) || value.length === 0) return false;
  const type: unknown = value[0];
  if (typeof type !== 'string' || !Object.hasOwn(SHAPES, type)) return false;
  return SHAPES[type]!(value);
}

export function isAcceptorRequest(message: PaxosMessage): message is AcceptorRequest {
  const type = message[0];
  return (
    type === PaxosMessageType.prepare ||
    type === PaxosMessageType.accept ||
    type === PaxosMessageType.purge ||
    type === PaxosMessageType.read
  );
}

/** A list request or its reply: handled by the node's register host, never the proposer. */
export function isListMessage(message: PaxosMessage): message is ListMessage | ListReplyMessage {
  return message[0] === PaxosMessageType.list || message[0] === PaxosMessageType.listReply;
}
