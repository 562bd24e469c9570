// Ballots of CASPaxos: a (counter, proposer id) pair, ordered by counter and then by id, so
// that any two are comparable and two proposers never share one. The zero ballot (0, '')
// sits below every ballot a proposer may use (counters start at 1, ids are never empty);
// acceptors hold it for "nothing promised, nothing accepted".

import { assert } from '../bytes.ts';

/** A proposer id on the wire: a non-empty string of at most this many UTF-16 units. */
export const PROPOSER_ID_LENGTH_MAX = 256;

export interface Ballot {
  readonly counter: number;
  readonly proposerId: string;
}

export const ZERO_BALLOT: Ballot = { counter: 0, proposerId: '' };

export function isValidProposerId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= PROPOSER_ID_LENGTH_MAX;
}

/** Whether (counter, proposerId) is the zero ballot or a ballot a proposer may use. */
export function isValidBallot(counter: unknown, proposerId: unknown): boolean {
  if (typeof counter !== 'number' || !Number.isSafeInteger(counter) || counter < 0) return false;
  if (counter === 0) return proposerId === '';
  return isValidProposerId(proposerId);
}

/** Negative, zero or positive as `a` comes before, equals or comes after `b`. */
export function compareBallots(a: Ballot, b: Ballot): number {
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  if (a.proposerId === b.proposerId) return 0;
  // Code-unit order, the order the wire strings compare in on every platform.
  return a.proposerId < b.proposerId ? -1 : 1;
}

export function ballotsEqual(a: Ballot, b: Ballot): boolean {
  return a.counter === b.counter && a.proposerId === b.proposerId;
}

export function maxBallot(a: Ballot, b: Ballot): Ballot {
  return compareBallots(a, b) >= 0 ? a : b;
}

/**
 * The ballot an acceptor promises along with accepting `ballot`: the same proposer's next
 * counter. It is what makes the one-round-trip path possible: the proposer that owns
 * `ballot` may use this one without a prepare phase (docs/PAXOS.md).
 */
export function successorBallot(ballot: Ballot): Ballot {
  assert(ballot.counter > 0, 'only a proposer ballot has a successor');
  assert(ballot.counter < Number.MAX_SAFE_INTEGER, 'ballot counters stay below 2^53');
  return { counter: ballot.counter + 1, proposerId: ballot.proposerId };
}

export function formatBallot(ballot: Ballot): string {
  return `${ballot.counter}.${ballot.proposerId}`;
}
