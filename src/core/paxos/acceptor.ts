// The CASPaxos acceptor as pure functions: each takes the state of one key (and the
// acceptor's floors) and returns the new state and the answer. Nothing here does I/O.
//
// Rules kept:
// - Durability first: an answer may leave the node only once the write it comes with is
//   durable, and after every write produced before it (an answer that changes nothing may
//   still have been computed from an earlier write not yet durable). stepAcceptor says so
//   by returning the write and the reply together.
// - A prepare must carry a ballot strictly above the promise. A proposer that restarts has
//   forgotten its counters and may pick a ballot its previous life used; refusing an equal
//   ballot means at most one life ever gathers a quorum of promises for a ballot, so two
//   values can never be accepted under one ballot.
// - Accepting ballot b also promises b's successor (the same proposer's next counter), so
//   the proposer that gets a quorum of accepts holds the promises for its next ballot: the
//   one-round-trip path.
// - A key that is not stored reads through the floors: promised at the floor ballot, a
//   tombstone at the floor version. A purge raises both, so a message older than the
//   tombstone is refused and a version never repeats (docs/PAXOS.md, "Deletion and purge").

import { assert } from '../bytes.ts';
import { ballotsEqual, compareBallots, maxBallot, successorBallot, ZERO_BALLOT } from './ballot.ts';
import type { Ballot } from './ballot.ts';
import { registerValuesEqual } from './register.ts';
import type { RegisterValue } from './register.ts';
import { isValidPaxosMessage, PaxosMessageType } from './messages.ts';
import type { AcceptorReply, PaxosMessage } from './messages.ts';

export interface AcceptorKeyState {
  /** No prepare at or below it, and no accept below it, is granted. */
  readonly promised: Ballot;
  /** The ballot `value` was accepted at; the zero ballot when nothing was. */
  readonly accepted: Ballot;
  readonly value: RegisterValue;
}

/** Acceptor-wide state: what a key that is not stored reads as. Raised by every purge. */
export interface AcceptorFloors {
  readonly promised: Ballot;
  readonly version: number;
}

export const INITIAL_FLOORS: AcceptorFloors = { promised: ZERO_BALLOT, version: 0 };

/** The state of a key this acceptor does not store. */
export function absentKeyState(floors: AcceptorFloors): AcceptorKeyState {
  return {
    promised: floors.promised,
    accepted: ZERO_BALLOT,
    value: { bytes: null, version: floors.version },
  };
}

/** Whether the state keeps the acceptor's invariants (checked on decode and in tests). */
export function isConsistentKeyState(state: AcceptorKeyState): boolean {
  if (compareBallots(state.accepted, state.promised) > 0) return false;
  // Nothing accepted means nothing but a tombstone can be held.
  if (state.accepted.counter === 0 && state.value.bytes !== null) return false;
  return Number.isSafeInteger(state.value.version) && state.value.version >= 0;
}

export type PrepareAnswer =
  | { readonly kind: 'promise'; readonly accepted: Ballot; readonly value: RegisterValue }
  | { readonly kind: 'conflict'; readonly promised: Ballot };

export type AcceptAnswer =
  { readonly kind: 'accepted' } | { readonly kind: 'conflict'; readonly promised: Ballot };

export interface Transition<Answer> {
  /** The new state: the very object passed in when nothing changed. */
  readonly state: AcceptorKeyState;
  readonly answer: Answer;
}

export function prepare(state: AcceptorKeyState, ballot: Ballot): Transition<PrepareAnswer> {
  assert(ballot.counter > 0, 'a prepare carries a proposer ballot');
  if (compareBallots(ballot, state.promised) <= 0) {
    return { state, answer: { kind: 'conflict', promised: state.promised } };
  }
  const next: AcceptorKeyState = { ...state, promised: ballot };
  assert(isConsistentKeyState(next), 'a promise keeps the state consistent');
  return { state: next, answer: { kind: 'promise', accepted: state.accepted, value: state.value } };
}

export function accept(
  state: AcceptorKeyState,
  ballot: Ballot,
  value: RegisterValue,
): Transition<AcceptAnswer> {
  assert(ballot.counter > 0, 'an accept carries a proposer ballot');
  if (ballotsEqual(ballot, state.accepted)) {
    // A copy of an accept already taken (the network duplicates): the same answer again.
    // One ballot carries one value, so a different one under it is refused.
    if (registerValuesEqual(value, state.value)) return { state, answer: { kind: 'accepted' } };
    return { state, answer: { kind: 'conflict', promised: state.promised } };
  }
  if (compareBallots(ballot, state.promised) < 0) {
    return { state, answer: { kind: 'conflict', promised: state.promised } };
  }
  const next: AcceptorKeyState = { promised: successorBallot(ballot), accepted: ballot, value };
  assert(isConsistentKeyState(next), 'an accept keeps the state consistent');
  return { state: next, answer: { kind: 'accepted' } };
}

/**
 * Whether the key may be removed: it holds the tombstone the purge sealed, at that ballot
 * and version, and nothing has been promised since beyond the seal's own successor.
 */
export function mayPurge(state: AcceptorKeyState, sealed: Ballot, version: number): boolean {
  return (
    ballotsEqual(state.accepted, sealed) &&
    state.value.bytes === null &&
    state.value.version === version &&
    compareBallots(state.promised, successorBallot(sealed)) <= 0
  );
}

/** The floors once a key sealed at `sealed` with `version` is removed. */
export function raiseFloors(
  floors: AcceptorFloors,
  sealed: Ballot,
  version: number,
): AcceptorFloors {
  const next = {
    promised: maxBallot(floors.promised, successorBallot(sealed)),
    version: Math.max(floors.version, version),
  };
  assert(compareBallots(next.promised, floors.promised) >= 0, 'floors never go down');
  return next;
}

/** What must be durable before the reply leaves the node. */
export type AcceptorWrite =
  | { readonly kind: 'none' }
  | { readonly kind: 'put'; readonly key: Uint8Array; readonly state: AcceptorKeyState }
  /** Remove the key and store the raised floors, atomically. */
  | { readonly kind: 'purge'; readonly key: Uint8Array; readonly floors: AcceptorFloors };

export interface AcceptorOutput {
  readonly write: AcceptorWrite;
  readonly reply: AcceptorReply;
}

const NO_WRITE: AcceptorWrite = { kind: 'none' };

/**
 * One acceptor step for a message from the network: null when the message is not a
 * well-formed request (the caller drops and counts it). `stateOf` reads the key's stored
 * state (undefined when not stored); it is called only for a valid message.
 */
export function stepAcceptor(
  message: unknown,
  stateOf: (key: Uint8Array) => AcceptorKeyState | undefined,
  floors: AcceptorFloors,
): AcceptorOutput | null {
  if (!isValidPaxosMessage(message)) return null;
  const request = message as PaxosMessage;
  switch (request[0]) {
    case PaxosMessageType.prepare: {
      const [, requestId, key, counter, proposerId] = request;
      const current = stateOf(key) ?? absentKeyState(floors);
      const { state, answer } = prepare(current, { counter, proposerId });
      if (answer.kind === 'conflict') {
        return { write: NO_WRITE, reply: conflictReply(requestId, answer.promised) };
      }
      return {
        write: { kind: 'put', key, state },
        reply: [
          PaxosMessageType.promise,
          requestId,
          answer.accepted.counter,
          answer.accepted.proposerId,
          answer.value.bytes,
          answer.value.version,
        ],
      };
    }
    case PaxosMessageType.accept: {
      const [, requestId, key, counter, proposerId, bytes, version] = request;
      const current = stateOf(key) ?? absentKeyState(floors);
      const { state, answer } = accept(current, { counter, proposerId }, { bytes, version });
      if (answer.kind === 'conflict') {
        return { write: NO_WRITE, reply: conflictReply(requestId, answer.promised) };
      }
      const write: AcceptorWrite = state === current ? NO_WRITE : { kind: 'put', key, state };
      return { write, reply: [PaxosMessageType.accepted, requestId] };
    }
    case PaxosMessageType.read: {
      // What the acceptor holds, promising nothing: the proposer's quorum read.
      const [, requestId, key] = request;
      const current = stateOf(key) ?? absentKeyState(floors);
      return {
        write: NO_WRITE,
        reply: [
          PaxosMessageType.readReply,
          requestId,
          current.accepted.counter,
          current.accepted.proposerId,
          current.value.bytes,
          current.value.version,
        ],
      };
    }
    case PaxosMessageType.purge: {
      const [, requestId, key, counter, proposerId, version] = request;
      const sealed: Ballot = { counter, proposerId };
      const current = stateOf(key);
      if (current === undefined || !mayPurge(current, sealed, version)) {
        return { write: NO_WRITE, reply: [PaxosMessageType.purgeReply, requestId, false] };
      }
      return {
        write: { kind: 'purge', key, floors: raiseFloors(floors, sealed, version) },
        reply: [PaxosMessageType.purgeReply, requestId, true],
      };
    }
    default:
      // A reply sent to an acceptor is well formed but not for it.
      return null;
  }
}

function conflictReply(requestId: number, promised: Ballot): AcceptorReply {
  return [PaxosMessageType.conflict, requestId, promised.counter, promised.proposerId];
}
