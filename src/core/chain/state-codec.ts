// The stored form of a chain replica's state, in four kinds of rows: one meta row per
// partition (configuration, membership, applied sequence), one row per key (its record), one
// row per remembered requester (its recent writes and their answers), and one row per entry
// not yet known committed (the sent list, which a restarted replica must still be able to
// pass on). Batches the replica emits name rows of these kinds; the shell stores the bytes.
//
// Every encoding is versioned (a leading format byte) and canonical: equal states encode to
// equal bytes, and a decoder accepts only the bytes its encoder would produce. It checks every
// field, refuses trailing bytes, and finally re-encodes what it read and compares, which also
// refuses over-long varints and strings that are not valid UTF-8. Malformed bytes raise
// DecodeError, never anything else.
//
// Formats (version 1), integers unsigned varints unless said:
//   record:    u8 1 | u8 flags (1 = tombstone) | version | sequence | [value bytes]
//   meta:      u8 1 | partition | u8 hasConfig | [epoch | count | (id string | since)*]
//              | memberSinceEpoch | appliedSequence | readyAtSequence | u8 flags (1 = caught up)
//   entry:     u8 1 | sequence | requester string | requestId | u8 hasChange
//              | [key bytes | u8 flags (1 = tombstone) | version | [value bytes]] | outcome
//   requester: u8 1 | requester string | lastSequence | count
//              | (requestId | sequence | outcome)*, request ids ascending
//   outcome:   u8 0 | u8 applied | version | u8 hasValue | [value bytes]
//           or u8 1 | code string | message string

import { equalBytes } from '../bytes.ts';
import { ErrorCode } from '../errors.ts';
import { KEY_BYTES_CEILING, VALUE_BYTES_CEILING } from '../limits.ts';
import { ByteReader, ByteWriter, DecodeError } from '../store/byte-codec.ts';
import { isValidChainConfig, type ChainConfig, type ChainMember } from './chain-config.ts';
import type { ChainEntry, RememberedRequest, RequesterMemory } from './messages.ts';
import type { ChainRecord, KeyChange, WriteOutcome } from './operations.ts';
import {
  ERROR_MESSAGE_LENGTH_MAX,
  REPLICAS_PER_CHAIN_MAX,
  REQUESTS_PER_REQUESTER_CEILING,
} from './settings.ts';

const FORMAT_VERSION = 1;
const FLAG_TOMBSTONE = 1;
const FLAG_CAUGHT_UP = 1;
const OUTCOME_DONE = 0;
const OUTCOME_ERROR = 1;
const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** What a replica keeps about its partition besides the records and requesters. */
export interface ChainMeta {
  readonly partition: number;
  /** The newest configuration the replica has adopted, or null before any. */
  readonly config: ChainConfig | null;
  /** The `sinceEpoch` of the membership the data belongs to; 0 when not a member. */
  readonly memberSinceEpoch: number;
  readonly appliedSequence: number;
  /** A new tail answers nothing before it has applied this far (what its copy began at). */
  readonly readyAtSequence: number;
  /** False while a new member is still copying the partition. */
  readonly caughtUp: boolean;
}

function readFormat(reader: ByteReader, what: string): void {
  const format = reader.uint8();
  if (format !== FORMAT_VERSION) throw new DecodeError(`${what} format ${format}`);
}

function finish<T>(
  reader: ByteReader,
  bytes: Uint8Array,
  value: T,
  encode: (value: T) => Uint8Array,
): T {
  if (reader.remaining !== 0) throw new DecodeError(`${reader.remaining} trailing bytes`);
  // Only the encoder's own bytes are accepted: this refuses every non-canonical spelling.
  if (!equalBytes(encode(value), bytes)) throw new DecodeError('not the canonical encoding');
  return value;
}

function readValue(reader: ByteReader): Uint8Array {
  const length = reader.varint();
  if (length > VALUE_BYTES_CEILING) throw new DecodeError(`a value of ${length} bytes`);
  return reader.raw(length).slice();
}

// --- records ---

export function encodeChainRecord(record: ChainRecord): Uint8Array {
  const writer = new ByteWriter(16 + (record.value?.length ?? 0));
  writer.uint8(FORMAT_VERSION).uint8(record.value === null ? FLAG_TOMBSTONE : 0);
  writer.varint(record.version).varint(record.sequence);
  if (record.value !== null) writer.bytes(record.value);
  return writer.finish();
}

export function decodeChainRecord(bytes: Uint8Array): ChainRecord {
  const reader = new ByteReader(bytes);
  readFormat(reader, 'record');
  const flags = reader.uint8();
  if ((flags & ~FLAG_TOMBSTONE) !== 0) throw new DecodeError(`record flags ${flags}`);
  const version = reader.varint();
  const sequence = reader.varint();
  // A stored record was made by some change: version and sequence start at 1.
  if (version < 1 || sequence < 1) throw new DecodeError('a record has version and sequence');
  const value = flags & FLAG_TOMBSTONE ? null : readValue(reader);
  return finish(reader, bytes, { value, version, sequence }, encodeChainRecord);
}

// --- meta ---

export function encodeChainMeta(meta: ChainMeta): Uint8Array {
  const writer = new ByteWriter(64);
  writer.uint8(FORMAT_VERSION).varint(meta.partition);
  writer.uint8(meta.config === null ? 0 : 1);
  if (meta.config !== null) {
    writer.varint(meta.config.epoch).varint(meta.config.members.length);
    for (const member of meta.config.members) writer.string(member.id).varint(member.sinceEpoch);
  }
  writer.varint(meta.memberSinceEpoch).varint(meta.appliedSequence).varint(meta.readyAtSequence);
  writer.uint8(meta.caughtUp ? FLAG_CAUGHT_UP : 0);
  return writer.finish();
}

export function decodeChainMeta(bytes: Uint8Array): ChainMeta {
  const reader = new ByteReader(bytes);
  readFormat(reader, 'meta');
  const partition = reader.varint();
  const hasConfig = reader.uint8();
  if (hasConfig > 1) throw new DecodeError(`config flag ${hasConfig}`);
  let config: ChainConfig | null = null;
  if (hasConfig === 1) {
    const epoch = reader.varint();
    const count = reader.varint();
    if (count > REPLICAS_PER_CHAIN_MAX) throw new DecodeError(`${count} members`);
    const members: ChainMember[] = [];
    for (let index = 0; index < count; index++) {
      members.push({ id: reader.string(), sinceEpoch: reader.varint() });
    }
    const candidate = { partition, epoch, members };
    if (!isValidChainConfig(candidate)) throw new DecodeError('an invalid chain configuration');
    config = candidate;
  }
  const memberSinceEpoch = reader.varint();
  const appliedSequence = reader.varint();
  const readyAtSequence = reader.varint();
  const flags = reader.uint8();
  if ((flags & ~FLAG_CAUGHT_UP) !== 0) throw new DecodeError(`meta flags ${flags}`);
  if (config === null && memberSinceEpoch !== 0) {
    throw new DecodeError('a membership without a configuration');
  }
  if (config !== null && memberSinceEpoch > config.epoch) {
    throw new DecodeError('a membership from a later epoch than the configuration');
  }
  const meta: ChainMeta = {
    partition,
    config,
    memberSinceEpoch,
    appliedSequence,
    readyAtSequence,
    caughtUp: (flags & FLAG_CAUGHT_UP) !== 0,
  };
  return finish(reader, bytes, meta, encodeChainMeta);
}

// --- requesters ---

function writeOutcome(writer: ByteWriter, outcome: WriteOutcome): void {
  if (outcome.kind === 'done') {
    writer
      .uint8(OUTCOME_DONE)
      .uint8(outcome.applied ? 1 : 0)
      .varint(outcome.version);
    writer.uint8(outcome.value === null ? 0 : 1);
    if (outcome.value !== null) writer.bytes(outcome.value);
    return;
  }
  writer.uint8(OUTCOME_ERROR).string(outcome.code).string(outcome.message);
}

function readOutcome(reader: ByteReader): WriteOutcome {
  const kind = reader.uint8();
  if (kind === OUTCOME_DONE) {
    const applied = reader.uint8();
    if (applied > 1) throw new DecodeError(`applied flag ${applied}`);
    const version = reader.varint();
    const hasValue = reader.uint8();
    if (hasValue > 1) throw new DecodeError(`value flag ${hasValue}`);
    const value = hasValue === 1 ? readValue(reader) : null;
    return { kind: 'done', applied: applied === 1, version, value };
  }
  if (kind !== OUTCOME_ERROR) throw new DecodeError(`outcome kind ${kind}`);
  const code = reader.string();
  const message = reader.string();
  if (!ERROR_CODES.has(code)) throw new DecodeError(`error code ${code}`);
  if (message.length > ERROR_MESSAGE_LENGTH_MAX) throw new DecodeError('an error message too long');
  return { kind: 'error', code: code as ErrorCode, message };
}

export function encodeRequesterMemory(memory: RequesterMemory): Uint8Array {
  const writer = new ByteWriter(32 + 24 * memory.requests.length);
  writer.uint8(FORMAT_VERSION).string(memory.requester).varint(memory.lastSequence);
  writer.varint(memory.requests.length);
  for (const request of memory.requests) {
    writer.varint(request.requestId).varint(request.sequence);
    writeOutcome(writer, request.outcome);
  }
  return writer.finish();
}

export function decodeRequesterMemory(bytes: Uint8Array): RequesterMemory {
  const reader = new ByteReader(bytes);
  readFormat(reader, 'requester');
  const requester = reader.string();
  if (requester.length === 0) throw new DecodeError('an empty requester id');
  const lastSequence = reader.varint();
  const count = reader.varint();
  if (count > REQUESTS_PER_REQUESTER_CEILING) throw new DecodeError(`${count} requests`);
  const requests: RememberedRequest[] = [];
  for (let index = 0; index < count; index++) {
    const requestId = reader.varint();
    const sequence = reader.varint();
    const outcome = readOutcome(reader);
    const previous = requests[requests.length - 1];
    if (previous !== undefined && requestId <= previous.requestId) {
      throw new DecodeError('request ids must ascend');
    }
    if (sequence < 1 || sequence > lastSequence) throw new DecodeError('a request out of order');
    requests.push({ requestId, sequence, outcome });
  }
  return finish(reader, bytes, { requester, lastSequence, requests }, encodeRequesterMemory);
}

// --- entries ---

export function encodeChainEntry(entry: ChainEntry): Uint8Array {
  const change = entry.change;
  const writer = new ByteWriter(48 + (change?.key.length ?? 0) + (change?.value?.length ?? 0));
  writer.uint8(FORMAT_VERSION).varint(entry.sequence).string(entry.requester);
  writer.varint(entry.requestId).uint8(change === null ? 0 : 1);
  if (change !== null) {
    writer.bytes(change.key).uint8(change.value === null ? FLAG_TOMBSTONE : 0);
    writer.varint(change.version);
    if (change.value !== null) writer.bytes(change.value);
  }
  writeOutcome(writer, entry.outcome);
  return writer.finish();
}

export function decodeChainEntry(bytes: Uint8Array): ChainEntry {
  const reader = new ByteReader(bytes);
  readFormat(reader, 'entry');
  const sequence = reader.varint();
  const requester = reader.string();
  const requestId = reader.varint();
  const hasChange = reader.uint8();
  if (sequence < 1) throw new DecodeError('an entry has a sequence number');
  if (requester.length === 0) throw new DecodeError('an empty requester id');
  if (hasChange > 1) throw new DecodeError(`change flag ${hasChange}`);
  let change: KeyChange | null = null;
  if (hasChange === 1) {
    const keyLength = reader.varint();
    if (keyLength < 1 || keyLength > KEY_BYTES_CEILING) throw new DecodeError('a key length');
    const key = reader.raw(keyLength).slice();
    const flags = reader.uint8();
    if ((flags & ~FLAG_TOMBSTONE) !== 0) throw new DecodeError(`change flags ${flags}`);
    const version = reader.varint();
    if (version < 1) throw new DecodeError('a change makes version 1 or later');
    const value = flags & FLAG_TOMBSTONE ? null : readValue(reader);
    change = { key, value, version };
  }
  const outcome = readOutcome(reader);
  return finish(
    reader,
    bytes,
    { sequence, requester, requestId, change, outcome },
    encodeChainEntry,
  );
}
