// Chain replication's timings and limits, their defaults and their validation. Every bound a
// replica or a requester keeps is named here; docs/CHAIN.md lists them with the reason for
// each. Timings are milliseconds of the `nowMs` the driver hands in.

import { assert } from '../bytes.ts';
import { KEY_BYTES_CEILING, VALUE_BYTES_CEILING } from '../limits.ts';

/** Keys may carry a prefix (the node puts the keyspace id there) beyond the user key limit. */
export const CHAIN_KEY_BYTES_CEILING = KEY_BYTES_CEILING + 16;

export interface ChainTimings {
  /** A forward not acknowledged as applied within this time is sent again. */
  readonly retransmitAfterMs: number;
  /** The longest read lease a predecessor grants its successor. */
  readonly leaseMs: number;
  /**
   * Added to every wait on leases granted earlier, for clocks that run at slightly different
   * rates: a grantor waits leaseMs + clockDriftMarginMs, the holder counts leaseMs.
   */
  readonly clockDriftMarginMs: number;
  /** A successor acknowledges (and asks for a lease) at least this often. */
  readonly ackIntervalMs: number;
  /** An unanswered copy request is sent again after this time. */
  readonly copyRetryAfterMs: number;
}

export interface ChainLimits {
  /** Entries applied at the head and not yet known committed; more writes are refused. */
  readonly sentEntriesMax: number;
  /** Entries carried by one forward message. */
  readonly entriesPerForwardMax: number;
  /**
   * Value bytes carried by one forward message (one entry may exceed it on its own): with the
   * largest value, a message stays within the transport's frame limit (64 MiB).
   */
  readonly forwardValueBytesMax: number;
  /** Records carried by one copy chunk. */
  readonly recordsPerChunkMax: number;
  /** Value bytes carried by one copy chunk (one record may exceed it on its own). */
  readonly chunkValueBytesMax: number;
  /** Requesters whose recent writes a partition remembers for deduplication. */
  readonly requestersMax: number;
  /** Writes remembered per requester; a requester keeps at most this many outstanding. */
  readonly requestsPerRequesterMax: number;
  readonly keyBytesMax: number;
  readonly valueBytesMax: number;
}

/** Replicas in one chain. A chain is a partition's preference list, so N is small. */
export const REPLICAS_PER_CHAIN_MAX = 16;
/** A replica or requester id on the wire: a non-empty string of at most this many units. */
export const NODE_ID_LENGTH_MAX = 256;
/** Partitions are numbered below this (the ring's partition count is a power of two). */
export const PARTITION_LIMIT = 0x1_0000;
/** Earlier configurations a replica remembers, for diagnostics and the negative control. */
export const CONFIGS_REMEMBERED_MAX = 8;
/** Error messages carried in replies are cut to this many characters. */
export const ERROR_MESSAGE_LENGTH_MAX = 512;

/** Hard ceilings that message validation enforces whatever a deployment configures. */
export const ENTRIES_PER_MESSAGE_CEILING = 4096;
export const RECORDS_PER_CHUNK_CEILING = 65_536;
export const REQUESTERS_CEILING = 65_536;
export const REQUESTS_PER_REQUESTER_CEILING = 1024;

export const DEFAULT_CHAIN_TIMINGS: ChainTimings = {
  retransmitAfterMs: 200,
  leaseMs: 2000,
  clockDriftMarginMs: 100,
  ackIntervalMs: 100,
  copyRetryAfterMs: 500,
};

export const DEFAULT_CHAIN_LIMITS: ChainLimits = {
  sentEntriesMax: 1024,
  entriesPerForwardMax: 64,
  forwardValueBytesMax: 4 * 1024 * 1024,
  recordsPerChunkMax: 256,
  chunkValueBytesMax: 4 * 1024 * 1024,
  requestersMax: 256,
  requestsPerRequesterMax: 16,
  keyBytesMax: KEY_BYTES_CEILING,
  valueBytesMax: VALUE_BYTES_CEILING,
};

function isPositiveInteger(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0;
}

export function validateChainTimings(timings: ChainTimings): void {
  assert(isPositiveInteger(timings.retransmitAfterMs), 'retransmitAfterMs is a positive integer');
  assert(isPositiveInteger(timings.leaseMs), 'leaseMs is a positive integer');
  assert(
    Number.isSafeInteger(timings.clockDriftMarginMs) && timings.clockDriftMarginMs >= 0,
    'clockDriftMarginMs is a non-negative integer',
  );
  assert(isPositiveInteger(timings.ackIntervalMs), 'ackIntervalMs is a positive integer');
  // A lease that cannot be renewed before it runs out makes every tail flap.
  assert(timings.ackIntervalMs * 2 < timings.leaseMs, 'two ack intervals fit in a lease');
  assert(isPositiveInteger(timings.copyRetryAfterMs), 'copyRetryAfterMs is a positive integer');
}

export function validateChainLimits(limits: ChainLimits): void {
  assert(isPositiveInteger(limits.sentEntriesMax), 'sentEntriesMax is a positive integer');
  assert(
    isPositiveInteger(limits.entriesPerForwardMax) &&
      limits.entriesPerForwardMax <= ENTRIES_PER_MESSAGE_CEILING,
    `entriesPerForwardMax is in 1..${ENTRIES_PER_MESSAGE_CEILING}`,
  );
  assert(
    isPositiveInteger(limits.recordsPerChunkMax) &&
      limits.recordsPerChunkMax <= RECORDS_PER_CHUNK_CEILING,
    `recordsPerChunkMax is in 1..${RECORDS_PER_CHUNK_CEILING}`,
  );
  assert(isPositiveInteger(limits.forwardValueBytesMax), 'forwardValueBytesMax is positive');
  assert(isPositiveInteger(limits.chunkValueBytesMax), 'chunkValueBytesMax is positive');
  assert(
    isPositiveInteger(limits.requestersMax) && limits.requestersMax <= REQUESTERS_CEILING,
    `requestersMax is in 1..${REQUESTERS_CEILING}`,
  );
  assert(
    isPositiveInteger(limits.requestsPerRequesterMax) &&
      limits.requestsPerRequesterMax <= REQUESTS_PER_REQUESTER_CEILING,
    `requestsPerRequesterMax is in 1..${REQUESTS_PER_REQUESTER_CEILING}`,
  );
  assert(
    isPositiveInteger(limits.keyBytesMax) && limits.keyBytesMax <= CHAIN_KEY_BYTES_CEILING,
    'keyBytesMax is within the ceiling',
  );
  assert(
    isPositiveInteger(limits.valueBytesMax) && limits.valueBytesMax <= VALUE_BYTES_CEILING,
    'valueBytesMax is within the ceiling',
  );
}
