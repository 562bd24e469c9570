// SWIM timings and limits, their defaults, and the bounds they imply: the worst-case time
// from a crash to `down` at every live member, and from a restart to `alive` everywhere.
// Every timing is in milliseconds of the `nowMs` the driver hands in; docs/SWIM.md derives
// each bound and the false-positive rate of the defaults.

import { assert } from '../bytes.ts';

export interface SwimConfig {
  /** One probe per period. */
  readonly probeIntervalMs: number;
  /** Wait for a direct ack before asking others to probe indirectly. */
  readonly probeTimeoutMs: number;
  /** k: members asked to ping-req an unresponsive target. */
  readonly indirectProbes: number;
  /** A suspect that is not refuted within this time is declared down. */
  readonly suspicionTimeoutMs: number;
  /** Updates carried per message, the recipient's own suspicion included. */
  readonly piggybackMax: number;
  /** lambda: each update is piggybacked lambda * ceil(log2(M + 1)) times. */
  readonly retransmitMultiplier: number;
  /** Down members are pinged one at a time at this interval, so a recovered node is seen. */
  readonly downProbeIntervalMs: number;
  /** The longest gap the driver promises between two ticks; it enters the bounds. */
  readonly tickIntervalMsMax: number;
}

/** Members a Swim instance tracks, itself included. */
export const MEMBER_COUNT_MAX = 1024;
/** A member id on the wire: a non-empty string of at most this many UTF-16 units. */
export const MEMBER_ID_LENGTH_MAX = 256;
/** Updates accepted in one message from the network, whatever piggybackMax says. */
export const UPDATES_PER_MESSAGE_MAX = 64;
/** Indirect probes this node runs for others at once; more ping-reqs are dropped. */
export const FORWARDS_MAX = 256;

export const DEFAULT_SWIM_CONFIG: SwimConfig = {
  probeIntervalMs: 1000,
  probeTimeoutMs: 400,
  indirectProbes: 3,
  suspicionTimeoutMs: 5000,
  piggybackMax: 8,
  retransmitMultiplier: 3,
  downProbeIntervalMs: 3000,
  tickIntervalMsMax: 100,
};

export function validateSwimConfig(config: SwimConfig): void {
  const positive = (value: number): boolean => Number.isSafeInteger(value) && value > 0;
  assert(positive(config.probeIntervalMs), 'probeIntervalMs is a positive integer');
  assert(positive(config.probeTimeoutMs), 'probeTimeoutMs is a positive integer');
  assert(positive(config.tickIntervalMsMax), 'tickIntervalMsMax is a positive integer');
  // The indirect stage must get a tick of its own before the period ends.
  assert(
    config.probeTimeoutMs + config.tickIntervalMsMax < config.probeIntervalMs,
    'probeTimeoutMs + tickIntervalMsMax < probeIntervalMs',
  );
  assert(
    Number.isSafeInteger(config.indirectProbes) && config.indirectProbes >= 0,
    'indirectProbes is a non-negative integer',
  );
  assert(positive(config.suspicionTimeoutMs), 'suspicionTimeoutMs is a positive integer');
  assert(
    positive(config.piggybackMax) && config.piggybackMax <= UPDATES_PER_MESSAGE_MAX,
    `piggybackMax is in 1..${UPDATES_PER_MESSAGE_MAX}`,
  );
  assert(positive(config.retransmitMultiplier), 'retransmitMultiplier is a positive integer');
  assert(positive(config.downProbeIntervalMs), 'downProbeIntervalMs is a positive integer');
}

/** How many times one update is piggybacked before it leaves the queue. */
export function retransmitLimit(config: SwimConfig, memberCount: number): number {
  assert(memberCount >= 1, 'a membership holds at least this node');
  return config.retransmitMultiplier * Math.ceil(Math.log2(memberCount + 1));
}

/**
 * The worst-case time from a crash to `down` at every live member, M members in all.
 * A prober visits each of the other M - 1 members once per round and reshuffles between
 * rounds, so the crashed node's next probe starts at most 2(M - 1) - 1 periods after the
 * last one that succeeded; that probe fails at the end of its period, and the suspicion
 * times out S later. Each of those two deadlines is seen at the next tick. A live member
 * reaches `down` this way on its own, and gossip can only make it sooner.
 * Assumes the crashed node had no refutation in flight at the crash (docs/SWIM.md).
 */
export function detectionBoundMs(config: SwimConfig, memberCount: number): number {
  assert(memberCount >= 2 && memberCount <= MEMBER_COUNT_MAX, 'memberCount in 2..1024');
  const others = memberCount - 1;
  return (
    2 * others * config.probeIntervalMs + config.suspicionTimeoutMs + 2 * config.tickIntervalMsMax
  );
}

/**
 * The worst-case time from a restart to `alive` at every live member, when no message is
 * lost and delays stay under the probe timeout. The restarted node's first ping is answered
 * with its own `down` (it learns, and raises its incarnation before the period ends); every
 * message it sends carries its incarnation, and its first two probe rounds reach every
 * member at least once after the raise.
 */
export function recoveryBoundMs(config: SwimConfig, memberCount: number): number {
  assert(memberCount >= 2 && memberCount <= MEMBER_COUNT_MAX, 'memberCount in 2..1024');
  const others = memberCount - 1;
  return 2 * others * config.probeIntervalMs + 2 * config.tickIntervalMsMax;
}
