// The acceptor's durable state as bytes: one record per key and one for the floors. Both
// are canonical (one state, one encoding: equal states give equal bytes) and versioned by
// a leading format byte. Decoding refuses anything malformed with DecodeError: a wrong
// format byte, a truncated or overlong record, a ballot that is not one, an accepted
// ballot above the promise, a value beyond the ceiling, or bytes that are valid but not the
// canonical encoding (a varint with a needless continuation byte, a string that is not
// valid UTF-8), which is checked by encoding the decoded state again and comparing.
//
// Key state, format 1:
//   u8 1 | promised: varint counter, string id | accepted: varint counter, string id
//        | u8 kind (0 tombstone, 1 bytes) | varint version | (kind 1) varint length, bytes
// Floors, format 1:
//   u8 1 | promised: varint counter, string id | varint version

import { equalBytes } from '../bytes.ts';
import { VALUE_BYTES_CEILING } from '../limits.ts';
import { ByteReader, ByteWriter, DecodeError } from '../store/byte-codec.ts';
import { isValidBallot } from './ballot.ts';
import type { Ballot } from './ballot.ts';
import { isConsistentKeyState } from './acceptor.ts';
import type { AcceptorFloors, AcceptorKeyState } from './acceptor.ts';

export const KEY_STATE_FORMAT = 1;
export const FLOORS_FORMAT = 1;

const KIND_TOMBSTONE = 0;
const KIND_BYTES = 1;

function writeBallot(writer: ByteWriter, ballot: Ballot): void {
  writer.varint(ballot.counter).string(ballot.proposerId);
}

function readBallot(reader: ByteReader, what: string): Ballot {
  const counter = reader.varint();
  const proposerId = reader.string();
  if (!isValidBallot(counter, proposerId)) throw new DecodeError(`${what} is not a ballot`);
  return { counter, proposerId };
}

export function encodeKeyState(state: AcceptorKeyState): Uint8Array {
  const bytes = state.value.bytes;
  const writer = new ByteWriter(32 + (bytes?.length ?? 0));
  writer.uint8(KEY_STATE_FORMAT);
  writeBallot(writer, state.promised);
  writeBallot(writer, state.accepted);
  writer.uint8(bytes === null ? KIND_TOMBSTONE : KIND_BYTES);
  writer.varint(state.value.version);
  if (bytes !== null) writer.bytes(bytes);
  return writer.finish();
}

export function decodeKeyState(encoded: Uint8Array): AcceptorKeyState {
  const reader = new ByteReader(encoded);
  const format = reader.uint8();
  if (format !== KEY_STATE_FORMAT) throw new DecodeError(`unknown key state format ${format}`);
  const promised = readBallot(reader, 'the promised ballot');
  const accepted = readBallot(reader, 'the accepted ballot');
  const kind = reader.uint8();
  if (kind !== KIND_TOMBSTONE && kind !== KIND_BYTES) {
    throw new DecodeError(`unknown value kind ${kind}`);
  }
  const version = reader.varint();
  let bytes: Uint8Array | null = null;
  if (kind === KIND_BYTES) {
    const length = reader.varint();
    if (length > VALUE_BYTES_CEILING) throw new DecodeError('value beyond the size ceiling');
    bytes = reader.raw(length).slice();
  }
  if (reader.remaining !== 0) throw new DecodeError('trailing bytes after the key state');
  const state: AcceptorKeyState = { promised, accepted, value: { bytes, version } };
  // A stored state always comes from a granted prepare or accept.
  if (promised.counter === 0) throw new DecodeError('a stored key state has a promise');
  if (!isConsistentKeyState(state)) throw new DecodeError('inconsistent key state');
  if (!equalBytes(encodeKeyState(state), encoded)) throw new DecodeError('not canonical');
  return state;
}

export function encodeFloors(floors: AcceptorFloors): Uint8Array {
  const writer = new ByteWriter(24);
  writer.uint8(FLOORS_FORMAT);
  writeBallot(writer, floors.promised);
  writer.varint(floors.version);
  return writer.finish();
}

export function decodeFloors(encoded: Uint8Array): AcceptorFloors {
  const reader = new ByteReader(encoded);
  const format = reader.uint8();
  if (format !== FLOORS_FORMAT) throw new DecodeError(`unknown floors format ${format}`);
  const promised = readBallot(reader, 'the floor ballot');
  const version = reader.varint();
  if (reader.remaining !== 0) throw new DecodeError('trailing bytes after the floors');
  const floors: AcceptorFloors = { promised, version };
  if (!equalBytes(encodeFloors(floors), encoded)) throw new DecodeError('not canonical');
  return floors;
}
