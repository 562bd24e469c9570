// The proposer's settings, their defaults and the limits that bound its state. Every time
// is in milliseconds of the `nowMs` the driver hands in. docs/PAXOS.md explains each.

import { assert } from '../bytes.ts';
import { VALUE_BYTES_CEILING } from '../limits.ts';
import { isValidProposerId } from './ballot.ts';

/** Acceptors of one register: a key's replicas (N) or the cluster map's voters. */
export const ACCEPTORS_MAX = 15;
/** Keys with an operation running or queued at one proposer; more are refused (overloaded). */
export const KEYS_IN_FLIGHT_MAX = 10_000;
/** Operations queued behind the running one on a key; more are refused (overloaded). */
export const QUEUED_OPERATIONS_PER_KEY_MAX = 64;
/** Keys whose one-round-trip promise a proposer remembers; the least recently used go first. */
export const CACHED_KEYS_MAX = 10_000;
/** Attempts an operation may make, the ceiling of ProposerConfig.attemptsMax. */
export const ATTEMPTS_CEILING = 100;

export interface ProposerConfig {
  /** The acceptors of every register this proposer serves, in a fixed order. */
  readonly acceptorIds: readonly string[];
  /** Promises needed to end the prepare phase. */
  readonly prepareQuorum: number;
  /** Accepts needed to end the accept phase. */
  readonly acceptQuorum: number;
  /** A phase without its quorum after this long is abandoned and the operation retried. */
  readonly phaseTimeoutMs: number;
  /** Attempts (prepare and accept rounds) before an operation fails. */
  readonly attemptsMax: number;
  /** Backoff before attempt k+1 is drawn from [0, min(backoffMsMax, backoffMsBase * 2^(k-1))]. */
  readonly backoffMsBase: number;
  readonly backoffMsMax: number;
  /** Largest value a command may write, in bytes. */
  readonly valueBytesMax: number;
  /**
   * Request ids are this plus 1 to 2^32 (wrapping): a node running several proposers gives
   * each a range of its own, per life, so that it can route replies and a late reply to an
   * earlier life matches nothing. A multiple of 2^32; default 0.
   */
  readonly requestIdBase?: number;
  /**
   * Deliberately broken settings, for negative controls only: a node must never set them.
   * - allowDisjointQuorums: accept prepareQuorum + acceptQuorum <= N.
   * - skipPrepare: never run a prepare phase; write the command applied to whatever value
   *   this proposer last saw, under a fresh ballot (no promise backs it).
   * - quorumOfOne: registers that name their own acceptors need one promise and one accept
   *   (with allowDisjointQuorums).
   */
  readonly unsafe?: {
    readonly allowDisjointQuorums?: boolean;
    readonly skipPrepare?: boolean;
    readonly quorumOfOne?: boolean;
  };
}

/** Request ids one proposer draws before it wraps (see `requestIdBase`). */
export const REQUEST_IDS_PER_PROPOSER = 2 ** 32;

export function majority(acceptorCount: number): number {
  return Math.floor(acceptorCount / 2) + 1;
}

/** The defaults for a set of acceptors: majority quorums and LAN-scale timeouts. */
export function defaultProposerConfig(
  acceptorIds: readonly string[],
  overrides: Partial<ProposerConfig> = {},
): ProposerConfig {
  const config: ProposerConfig = {
    acceptorIds,
    prepareQuorum: majority(acceptorIds.length),
    acceptQuorum: majority(acceptorIds.length),
    phaseTimeoutMs: 500,
    attemptsMax: 8,
    backoffMsBase: 5,
    backoffMsMax: 200,
    valueBytesMax: VALUE_BYTES_CEILING,
    ...overrides,
  };
  validateProposerConfig(config);
  return config;
}

export function validateProposerConfig(config: ProposerConfig): void {
  const count = config.acceptorIds.length;
  assert(count >= 1 && count <= ACCEPTORS_MAX, `1..${ACCEPTORS_MAX} acceptors`);
  assert(new Set(config.acceptorIds).size === count, 'acceptor ids are distinct');
  assert(config.acceptorIds.every(isValidProposerId), 'acceptor ids are valid node ids');
  const isQuorum = (size: number): boolean =>
    Number.isSafeInteger(size) && size >= 1 && size <= count;
  assert(isQuorum(config.prepareQuorum) && isQuorum(config.acceptQuorum), 'quorums in 1..N');
  // Every prepare quorum must meet every accept quorum, or two values can both be chosen.
  assert(
    config.prepareQuorum + config.acceptQuorum > count ||
      config.unsafe?.allowDisjointQuorums === true,
    'prepareQuorum + acceptQuorum > N',
  );
  const positive = (value: number): boolean => Number.isSafeInteger(value) && value > 0;
  assert(positive(config.phaseTimeoutMs), 'phaseTimeoutMs is a positive integer');
  assert(
    positive(config.attemptsMax) && config.attemptsMax <= ATTEMPTS_CEILING,
    `attemptsMax in 1..${ATTEMPTS_CEILING}`,
  );
  assert(positive(config.backoffMsBase), 'backoffMsBase is a positive integer');
  assert(
    positive(config.backoffMsMax) && config.backoffMsMax >= config.backoffMsBase,
    'backoffMsMax >= backoffMsBase',
  );
  assert(
    positive(config.valueBytesMax) && config.valueBytesMax <= VALUE_BYTES_CEILING,
    'valueBytesMax within the ceiling',
  );
  const base = config.requestIdBase ?? 0;
  assert(
    Number.isSafeInteger(base + REQUEST_IDS_PER_PROPOSER) &&
      base >= 0 &&
      base % REQUEST_IDS_PER_PROPOSER === 0,
    'requestIdBase is a multiple of 2^32 with its range below 2^53',
  );
}
