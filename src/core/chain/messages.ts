// Chain replication's wire messages and their strict validation. Messages are plain objects of
// strings, numbers, booleans and Uint8Arrays (the transport encodes them with msgpack). What
// comes off the network is checked field by field before a state machine sees it: a missing,
// extra or ill-typed field, an oversized list or an out-of-range number makes it malformed,
// and the receiver drops it and counts it. Every message names its partition and the sender's
// chain epoch.
//
// Between replicas: forward (entries down the chain), ack (applied and committed sequence
// numbers up the chain, with a lease request), lease (a grant down), copy-request and
// copy-chunk (a new tail copying the partition), refused (an older epoch, with the newer
// configuration). Between requesters and replicas: write, read, and the reply.

import { ErrorCode } from '../errors.ts';
import { VALUE_BYTES_CEILING } from '../limits.ts';
import {
  isValidChainConfig,
  isValidEpoch,
  isValidNodeId,
  isValidPartition,
  type ChainConfig,
} from './chain-config.ts';
import type { ChainOperation, KeyChange, WriteOutcome } from './operations.ts';
import {
  CHAIN_KEY_BYTES_CEILING,
  ENTRIES_PER_MESSAGE_CEILING,
  ERROR_MESSAGE_LENGTH_MAX,
  RECORDS_PER_CHUNK_CEILING,
  REQUESTERS_CEILING,
  REQUESTS_PER_REQUESTER_CEILING,
} from './settings.ts';

/** One write as it travels down the chain: its place, who asked, and what it did. */
export interface ChainEntry {
  readonly sequence: number;
  /** Where the tail sends the answer. */
  readonly requester: string;
  readonly requestId: number;
  /** Null: the write left the key unchanged (a failed compare, an error). */
  readonly change: KeyChange | null;
  readonly outcome: WriteOutcome;
}

/** A write a partition remembers so that a copy of the request is never applied twice. */
export interface RememberedRequest {
  readonly requestId: number;
  readonly sequence: number;
  readonly outcome: WriteOutcome;
}

/** A requester's recent writes, oldest request id first. */
export interface RequesterMemory {
  readonly requester: string;
  /** The sequence number of its latest write: the order in which requesters are forgotten. */
  readonly lastSequence: number;
  readonly requests: readonly RememberedRequest[];
}

export interface CopiedRecord {
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
  readonly version: number;
  readonly sequence: number;
}

export interface ForwardMessage {
  readonly type: 'forward';
  readonly partition: number;
  readonly epoch: number;
  /** Consecutive sequence numbers, lowest first. */
  readonly entries: readonly ChainEntry[];
}

export interface AckMessage {
  readonly type: 'ack';
  readonly partition: number;
  readonly epoch: number;
  /** Every entry up to here is applied at the sender. */
  readonly appliedSequence: number;
  /** Every entry up to here is known applied at the tail. */
  readonly committedSequence: number;
  /** The sender's clock when it asked for a lease, or null when it asks for none. */
  readonly leaseRequestedAtMs: number | null;
}

export interface LeaseMessage {
  readonly type: 'lease';
  readonly partition: number;
  readonly epoch: number;
  /** Echoes the request: the holder counts the lease from when it asked. */
  readonly requestedAtMs: number;
  readonly durationMs: number;
}

export interface CopyRequestMessage {
  readonly type: 'copy-request';
  readonly partition: number;
  readonly epoch: number;
  /** Only records changed after this sequence number are wanted (0: all). */
  readonly fromSequence: number;
  /** Resume after this key (bytewise order); null starts a pass. */
  readonly afterKey: Uint8Array | null;
}

export interface CopyChunkMessage {
  readonly type: 'copy-chunk';
  readonly partition: number;
  readonly epoch: number;
  /** Echo the request, so that an answer is matched to the question. */
  readonly fromSequence: number;
  readonly afterKey: Uint8Array | null;
  /** The sender's applied and committed sequence numbers when it built the chunk. */
  readonly appliedSequence: number;
  readonly committedSequence: number;
  readonly records: readonly CopiedRecord[];
  /** Where the next chunk starts, or null when this chunk ends the pass. */
  readonly nextKey: Uint8Array | null;
  /** The remembered requests, on the chunk that ends the pass only. */
  readonly requesters: readonly RequesterMemory[];
}

export interface RefusedMessage {
  readonly type: 'refused';
  readonly partition: number;
  /** The refuser's epoch, newer than the one refused. */
  readonly epoch: number;
  readonly config: ChainConfig;
}

export interface WriteRequestMessage {
  readonly type: 'write';
  readonly partition: number;
  readonly epoch: number;
  readonly requestId: number;
  readonly operation: ChainOperation;
}

export interface ReadRequestMessage {
  readonly type: 'read';
  readonly partition: number;
  readonly epoch: number;
  readonly requestId: number;
  readonly key: Uint8Array;
}

/**
 * written, read: the answer. invalid: the request is malformed, nothing was done. refused:
 * the requester's configuration is older than the replica's or names the wrong replica;
 * nothing was done; try again with `config`. retry: nothing was done yet; send the same
 * request again later (the replica is behind, still copying, waiting on a lease, or full).
 */
export type ChainReply =
  | { readonly status: 'written'; readonly outcome: WriteOutcome }
  | { readonly status: 'read'; readonly value: Uint8Array | null; readonly version: number }
  | { readonly status: 'invalid'; readonly code: ErrorCode; readonly message: string }
  | { readonly status: 'refused'; readonly config: ChainConfig }
  | { readonly status: 'retry'; readonly reason: RetryReason };

export type RetryReason = 'behind' | 'not-ready' | 'overloaded';

export interface ReplyMessage {
  readonly type: 'reply';
  readonly partition: number;
  readonly epoch: number;
  readonly requestId: number;
  readonly reply: ChainReply;
}

export type ChainPeerMessage =
  | ForwardMessage
  | AckMessage
  | LeaseMessage
  | CopyRequestMessage
  | CopyChunkMessage
  | RefusedMessage;

export type ChainRequestMessage = WriteRequestMessage | ReadRequestMessage;

/** Everything a replica may receive. */
export type ChainInboundMessage = ChainPeerMessage | ChainRequestMessage;

export type ChainMessage = ChainInboundMessage | ReplyMessage;

// --- validation ---

type Fields = Record<string, unknown>;

function isPlainObject(value: unknown): value is Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function hasExactKeys(value: Fields, keys: readonly string[]): boolean {
  const own = Object.keys(value);
  if (own.length !== keys.length) return false;
  for (const key of keys) if (!Object.hasOwn(value, key)) return false;
  return true;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isBytes(value: unknown, lengthMax: number): value is Uint8Array {
  return value instanceof Uint8Array && value.length <= lengthMax;
}

function isKey(value: unknown): value is Uint8Array {
  return isBytes(value, CHAIN_KEY_BYTES_CEILING) && value.length > 0;
}

function isValueOrNull(value: unknown): value is Uint8Array | null {
  return value === null || isBytes(value, VALUE_BYTES_CEILING);
}

const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

function isErrorFields(code: unknown, message: unknown): boolean {
  return (
    typeof code === 'string' &&
    ERROR_CODES.has(code) &&
    typeof message === 'string' &&
    message.length <= ERROR_MESSAGE_LENGTH_MAX
  );
}

export function isValidWriteOutcome(value: unknown): value is WriteOutcome {
  if (!isPlainObject(value)) return false;
  if (value['kind'] === 'done') {
    return (
      hasExactKeys(value, ['kind', 'applied', 'version', 'value']) &&
      typeof value['applied'] === 'boolean' &&
      isCount(value['version']) &&
      isValueOrNull(value['value'])
    );
  }
  if (value['kind'] === 'error') {
    return (
      hasExactKeys(value, ['kind', 'code', 'message']) &&
      isErrorFields(value['code'], value['message'])
    );
  }
  return false;
}

function isValidKeyChange(value: unknown): value is KeyChange {
  return (
    isPlainObject(value) &&
    hasExactKeys(value, ['key', 'value', 'version']) &&
    isKey(value['key']) &&
    isValueOrNull(value['value']) &&
    isCount(value['version']) &&
    value['version'] >= 1
  );
}

export function isValidOperation(candidate: unknown): candidate is ChainOperation {
  if (!isPlainObject(candidate) || !isKey(candidate['key'])) return false;
  // `returnPrevious: true` may come with any write but an increment; it is checked apart.
  let value: Fields = candidate;
  if (Object.hasOwn(candidate, 'returnPrevious')) {
    if (candidate['returnPrevious'] !== true || candidate['kind'] === 'incr') return false;
    value = { ...candidate };
    delete value['returnPrevious'];
  }
  switch (value['kind']) {
    case 'put':
    case 'put-if-present':
      return (
        hasExactKeys(value, ['kind', 'key', 'value']) &&
        isBytes(value['value'], VALUE_BYTES_CEILING)
      );
    case 'delete':
      return hasExactKeys(value, ['kind', 'key']);
    case 'cas':
      return (
        hasExactKeys(value, ['kind', 'key', 'expected', 'value']) &&
        isValueOrNull(value['expected']) &&
        isBytes(value['value'], VALUE_BYTES_CEILING)
      );
    case 'cas-version':
      return (
        hasExactKeys(value, ['kind', 'key', 'expectedVersion', 'value']) &&
        isCount(value['expectedVersion']) &&
        isBytes(value['value'], VALUE_BYTES_CEILING)
      );
    case 'incr':
      return (
        hasExactKeys(value, ['kind', 'key', 'delta']) &&
        typeof value['delta'] === 'number' &&
        Number.isSafeInteger(value['delta'])
      );
    default:
      return false;
  }
}

function isValidEntry(value: unknown): value is ChainEntry {
  return (
    isPlainObject(value) &&
    hasExactKeys(value, ['sequence', 'requester', 'requestId', 'change', 'outcome']) &&
    isCount(value['sequence']) &&
    value['sequence'] >= 1 &&
    isValidNodeId(value['requester']) &&
    isCount(value['requestId']) &&
    (value['change'] === null || isValidKeyChange(value['change'])) &&
    isValidWriteOutcome(value['outcome'])
  );
}

function isValidCopiedRecord(value: unknown): value is CopiedRecord {
  return (
    isPlainObject(value) &&
    hasExactKeys(value, ['key', 'value', 'version', 'sequence']) &&
    isKey(value['key']) &&
    isValueOrNull(value['value']) &&
    isCount(value['version']) &&
    value['version'] >= 1 &&
    isCount(value['sequence']) &&
    value['sequence'] >= 1
  );
}

export function isValidRememberedRequest(value: unknown): value is RememberedRequest {
  return (
    isPlainObject(value) &&
    hasExactKeys(value, ['requestId', 'sequence', 'outcome']) &&
    isCount(value['requestId']) &&
    isCount(value['sequence']) &&
    value['sequence'] >= 1 &&
    isValidWriteOutcome(value['outcome'])
  );
}

export function isValidRequesterMemory(value: unknown): value is RequesterMemory {
  if (!isPlainObject(value) || !hasExactKeys(value, ['requester', 'lastSequence', 'requests'])) {
    return false;
  }
  const requests = value['requests'];
  if (!isValidNodeId(value['requester']) || !isCount(value['lastSequence'])) return false;
  if (!Array.isArray(requests) || requests.length > REQUESTS_PER_REQUESTER_CEILING) return false;
  let previousId = -1;
  for (const request of requests as unknown[]) {
    if (!isValidRememberedRequest(request) || request.requestId <= previousId) return false;
    previousId = request.requestId;
  }
  return true;
}

function isListOf<T>(
  value: unknown,
  lengthMax: number,
  isItem: (item: unknown) => item is T,
): value is readonly T[] {
  if (!Array.isArray(value) || value.length > lengthMax) return false;
  for (const item of value as unknown[]) if (!isItem(item)) return false;
  return true;
}

const READ_REPLY_KEYS = ['status', 'value', 'version'];

export function isValidReply(value: unknown): value is ChainReply {
  if (!isPlainObject(value)) return false;
  switch (value['status']) {
    case 'written':
      return hasExactKeys(value, ['status', 'outcome']) && isValidWriteOutcome(value['outcome']);
    case 'read':
      return (
        hasExactKeys(value, READ_REPLY_KEYS) &&
        isValueOrNull(value['value']) &&
        isCount(value['version'])
      );
    case 'invalid':
      return (
        hasExactKeys(value, ['status', 'code', 'message']) &&
        isErrorFields(value['code'], value['message'])
      );
    case 'refused':
      return hasExactKeys(value, ['status', 'config']) && isValidChainConfig(value['config']);
    case 'retry':
      return (
        hasExactKeys(value, ['status', 'reason']) &&
        (value['reason'] === 'behind' ||
          value['reason'] === 'not-ready' ||
          value['reason'] === 'overloaded')
      );
    default:
      return false;
  }
}

const FIELDS_BY_TYPE: Readonly<Record<string, readonly string[]>> = {
  forward: ['type', 'partition', 'epoch', 'entries'],
  ack: ['type', 'partition', 'epoch', 'appliedSequence', 'committedSequence', 'leaseRequestedAtMs'],
  lease: ['type', 'partition', 'epoch', 'requestedAtMs', 'durationMs'],
  'copy-request': ['type', 'partition', 'epoch', 'fromSequence', 'afterKey'],
  'copy-chunk': [
    'type',
    'partition',
    'epoch',
    'fromSequence',
    'afterKey',
    'appliedSequence',
    'committedSequence',
    'records',
    'nextKey',
    'requesters',
  ],
  refused: ['type', 'partition', 'epoch', 'config'],
  write: ['type', 'partition', 'epoch', 'requestId', 'operation'],
  read: ['type', 'partition', 'epoch', 'requestId', 'key'],
  reply: ['type', 'partition', 'epoch', 'requestId', 'reply'],
};

/** Never throws, whatever it is given. */
export function isValidChainMessage(value: unknown): value is ChainMessage {
  if (!isPlainObject(value) || typeof value['type'] !== 'string') return false;
  const fields = Object.hasOwn(FIELDS_BY_TYPE, value['type'])
    ? FIELDS_BY_TYPE[value['type']]
    : undefined;
  if (fields === undefined || !hasExactKeys(value, fields)) return false;
  if (!isValidPartition(value['partition']) || !isValidEpoch(value['epoch'])) return false;
  switch (value['type']) {
    case 'forward': {
      const entries = value['entries'];
      if (!isListOf(entries, ENTRIES_PER_MESSAGE_CEILING, isValidEntry)) return false;
      if (entries.length === 0) return false;
      for (let index = 1; index < entries.length; index++) {
        if (entries[index]!.sequence !== entries[index - 1]!.sequence + 1) return false;
      }
      return true;
    }
    case 'ack':
      return (
        isCount(value['appliedSequence']) &&
        isCount(value['committedSequence']) &&
        value['committedSequence'] <= value['appliedSequence'] &&
        (value['leaseRequestedAtMs'] === null || Number.isFinite(value['leaseRequestedAtMs']))
      );
    case 'lease':
      return (
        typeof value['requestedAtMs'] === 'number' &&
        Number.isFinite(value['requestedAtMs']) &&
        isCount(value['durationMs'])
      );
    case 'copy-request':
      return (
        isCount(value['fromSequence']) && (value['afterKey'] === null || isKey(value['afterKey']))
      );
    case 'copy-chunk':
      return (
        isCount(value['fromSequence']) &&
        (value['afterKey'] === null || isKey(value['afterKey'])) &&
        isCount(value['appliedSequence']) &&
        isCount(value['committedSequence']) &&
        value['committedSequence'] <= value['appliedSequence'] &&
        isListOf(value['records'], RECORDS_PER_CHUNK_CEILING, isValidCopiedRecord) &&
        (value['nextKey'] === null || isKey(value['nextKey'])) &&
        isListOf(value['requesters'], REQUESTERS_CEILING, isValidRequesterMemory)
      );
    case 'refused':
      return (
        isValidChainConfig(value['config']) &&
        value['config'].epoch === value['epoch'] &&
        value['config'].partition === value['partition']
      );
    case 'write':
      return isCount(value['requestId']) && isValidOperation(value['operation']);
    case 'read':
      return isCount(value['requestId']) && isKey(value['key']);
    case 'reply':
      return isCount(value['requestId']) && isValidReply(value['reply']);
    default:
      return false;
  }
}
