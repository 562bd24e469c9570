// Anti-entropy's wire messages: compact arrays whose first element names the message. The
// initiator (A) sends requests, each naming its session, its step, the keyspace and the
// partition; the responder (B) answers each with one reply carrying the session and the
// step back, so that A can ignore a late or duplicated answer. The node's envelope (type and
// epoch) wraps these arrays; they do not repeat it.
//
//   A → B  root      [ar, session, step, keyspace, partition, leafCount, fanout, rootHash]
//   A → B  children  [ac, session, step, keyspace, partition, level, nodes]
//   A → B  entries   [ae, session, step, keyspace, partition, leaves, afterLeaf, afterKey]
//   B → A  same      [as, session, step]
//   B → A  hashes    [ah, session, step, hashes]
//   B → A  entries   [aa, session, step, keys, digests, complete]
//   B → A  refused   [ax, session, step, reason]
//
// Hashes travel as bytes, 8 per node (merkle-tree.ts). Node and leaf lists are strictly
// ascending. Whatever arrives is checked here, field by field, before a session or the
// responder acts on it; every list and byte count has a ceiling, so a valid message is
// bounded in size whatever the sender's settings.

import { KEY_BYTES_CEILING } from '../limits.ts';
import { LEAF_COUNT_MAX, NODE_HASH_BYTES, TREE_FANOUT, isValidLeafCount } from './merkle-tree.ts';
import { isValidRecordDigest } from './record-digest.ts';

export const AntiEntropyMessageType = {
  root: 'ar',
  children: 'ac',
  entries: 'ae',
  same: 'as',
  hashes: 'ah',
  entriesReply: 'aa',
  refused: 'ax',
} as const;

/** Why a responder would not answer a request. */
export const RefusalReason = {
  /** The trees differ in leaf count or fanout: the two nodes are configured differently. */
  shape: 1,
  /** A level, node or leaf that the responder's tree does not have. */
  range: 2,
  /** More nodes or leaves than the responder's limits allow in one request. */
  limit: 3,
  /** The responder holds no tree for the partition (not a replica of it, or not built yet). */
  unavailable: 4,
} as const;
export type RefusalReason = (typeof RefusalReason)[keyof typeof RefusalReason];

/** Ceilings of any valid message; a node's own limits (exchange.ts) are at most these. */
export const NODES_PER_REQUEST_CEILING = 1024;
export const LEAVES_PER_REQUEST_CEILING = 1024;
export const ENTRIES_PER_REPLY_CEILING = 16_384;
/** Key bytes in one entries reply. */
export const ENTRY_KEY_BYTES_PER_REPLY_CEILING = 4 * 1024 * 1024;
/** The children of the most nodes one request may name. */
export const HASH_BYTES_PER_REPLY_CEILING =
  NODES_PER_REQUEST_CEILING * TREE_FANOUT * NODE_HASH_BYTES;
/** The highest level above the leaves (65536 leaves, fanout 16: 4096, 256, 16, 1). */
const LEVEL_MAX = 4;
const FANOUT_CEILING = 256;
const KEYSPACE_ID_MAX = 0xffff_ffff;
const PARTITION_MAX = 0xffff;

export type RootRequest = readonly [
  typeof AntiEntropyMessageType.root,
  sessionId: number,
  step: number,
  keyspaceId: number,
  partition: number,
  leafCount: number,
  fanout: number,
  rootHash: Uint8Array,
];

/** The hashes of the children of `nodes`, which sit at `level` (1 is just above the leaves). */
export type ChildrenRequest = readonly [
  typeof AntiEntropyMessageType.children,
  sessionId: number,
  step: number,
  keyspaceId: number,
  partition: number,
  level: number,
  nodes: readonly number[],
];

/**
 * The (key, digest) entries of `leaves`, in (leaf, key) order, starting strictly after the
 * key `afterKey` of leaf `afterLeaf`; `afterKey` null (and `afterLeaf` 0) starts at the top.
 */
export type EntriesRequest = readonly [
  typeof AntiEntropyMessageType.entries,
  sessionId: number,
  step: number,
  keyspaceId: number,
  partition: number,
  leaves: readonly number[],
  afterLeaf: number,
  afterKey: Uint8Array | null,
];

export type SameReply = readonly [
  typeof AntiEntropyMessageType.same,
  sessionId: number,
  step: number,
];

/** The hashes asked for, 8 bytes each, in the order asked. */
export type HashesReply = readonly [
  typeof AntiEntropyMessageType.hashes,
  sessionId: number,
  step: number,
  hashes: Uint8Array,
];

/**
 * Entries in (leaf, key) order. `complete` false: more follow the last key, and the
 * initiator asks again from there (so a reply that is not complete holds at least one key).
 */
export type EntriesReply = readonly [
  typeof AntiEntropyMessageType.entriesReply,
  sessionId: number,
  step: number,
  keys: readonly Uint8Array[],
  digests: readonly number[],
  complete: boolean,
];

export type RefusedReply = readonly [
  typeof AntiEntropyMessageType.refused,
  sessionId: number,
  step: number,
  reason: RefusalReason,
];

export type AntiEntropyRequest = RootRequest | ChildrenRequest | EntriesRequest;
export type AntiEntropyReply = SameReply | HashesReply | EntriesReply | RefusedReply;
export type AntiEntropyMessage = AntiEntropyRequest | AntiEntropyReply;

const isCount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

const isStep = (value: unknown): value is number => isCount(value) && value >= 1;

const isIntegerIn = (value: unknown, low: number, high: number): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= low && value <= high;

const isKey = (value: unknown): value is Uint8Array =>
  value instanceof Uint8Array && value.length <= KEY_BYTES_CEILING;

/** A non-empty, strictly ascending list of integers in [0, high], at most `lengthMax` long. */
function isIndexList(value: unknown, lengthMax: number, high: number): value is number[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > lengthMax) return false;
  let previous = -1;
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (!isIntegerIn(item, previous + 1, high)) return false;
    previous = item;
  }
  return true;
}

function isRequestHead(f: readonly unknown[]): boolean {
  return (
    isCount(f[1]) &&
    isStep(f[2]) &&
    isIntegerIn(f[3], 0, KEYSPACE_ID_MAX) &&
    isIntegerIn(f[4], 0, PARTITION_MAX)
  );
}

function isEntriesRequest(f: readonly unknown[]): boolean {
  if (f.length !== 8 || !isRequestHead(f)) return false;
  const leaves = f[5];
  if (!isIndexList(leaves, LEAVES_PER_REQUEST_CEILING, LEAF_COUNT_MAX - 1)) return false;
  if (f[7] === null) return f[6] === 0;
  return isKey(f[7]) && typeof f[6] === 'number' && leaves.includes(f[6]);
}

function isEntriesReply(f: readonly unknown[]): boolean {
  if (f.length !== 6 || !isCount(f[1]) || !isStep(f[2]) || typeof f[5] !== 'boolean') return false;
  const keys = f[3];
  const digests = f[4];
  if (!Array.isArray(keys) || !Array.isArray(digests)) return false;
  if (keys.length > ENTRIES_PER_REPLY_CEILING || keys.length !== digests.length) return false;
  if (f[5] === false && keys.length === 0) return false;
  let keyBytes = 0;
  for (let i = 0; i < keys.length; i++) {
    const key: unknown = keys[i];
    if (!isKey(key) || !isValidRecordDigest(digests[i])) return false;
    keyBytes += key.length;
  }
  return keyBytes <= ENTRY_KEY_BYTES_PER_REPLY_CEILING;
}

const SHAPES: Readonly<Record<string, (fields: readonly unknown[]) => boolean>> = {
  [AntiEntropyMessageType.root]: (f) =>
    f.length === 8 &&
    isRequestHead(f) &&
    isValidLeafCount(f[5]) &&
    isIntegerIn(f[6], 2, FANOUT_CEILING) &&
    f[7] instanceof Uint8Array &&
    f[7].length === NODE_HASH_BYTES,
  [AntiEntropyMessageType.children]: (f) =>
    f.length === 7 &&
    isRequestHead(f) &&
    isIntegerIn(f[5], 1, LEVEL_MAX) &&
    isIndexList(f[6], NODES_PER_REQUEST_CEILING, LEAF_COUNT_MAX / TREE_FANOUT - 1),
  [AntiEntropyMessageType.entries]: isEntriesRequest,
  [AntiEntropyMessageType.same]: (f) => f.length === 3 && isCount(f[1]) && isStep(f[2]),
  [AntiEntropyMessageType.hashes]: (f) =>
    f.length === 4 &&
    isCount(f[1]) &&
    isStep(f[2]) &&
    f[3] instanceof Uint8Array &&
    f[3].length > 0 &&
    f[3].length % NODE_HASH_BYTES === 0 &&
    f[3].length <= HASH_BYTES_PER_REPLY_CEILING,
  [AntiEntropyMessageType.entriesReply]: isEntriesReply,
  [AntiEntropyMessageType.refused]: (f) =>
    f.length === 4 &&
    isCount(f[1]) &&
    isStep(f[2]) &&
    Object.values(RefusalReason).includes(f[3] as RefusalReason),
};

/** Never throws, whatever it is given. */
export function isValidAntiEntropyMessage(value: unknown): value is AntiEntropyMessage {
  if (!Array.isArray(value) || value.length === 0) return false;
  const type: unknown = value[0];
  if (typeof type !== 'string' || !Object.hasOwn(SHAPES, type)) return false;
  return SHAPES[type]!(value);
}

export function isAntiEntropyRequest(message: AntiEntropyMessage): message is AntiEntropyRequest {
  const type = message[0];
  return (
    type === AntiEntropyMessageType.root ||
    type === AntiEntropyMessageType.children ||
    type === AntiEntropyMessageType.entries
  );
}

/** The session a message belongs to, for routing. */
export function sessionIdOf(message: AntiEntropyMessage): number {
  return message[1];
}
