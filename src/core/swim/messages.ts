// The SWIM wire messages and their strict validation. Messages are plain objects of strings
// and numbers (the transport encodes them with msgpack). Whatever comes off the network is
// checked field by field against these shapes before the state machine sees it: a message
// with a missing, extra or ill-typed field, an oversized list or an out-of-range number is
// not a SwimMessage, and the caller drops it.

import { MEMBER_ID_LENGTH_MAX, UPDATES_PER_MESSAGE_MAX } from './config.ts';

export type Liveness = 'alive' | 'suspect' | 'down';

/** One piece of gossip: what the sender believes about a member at an incarnation. */
export interface SwimUpdate {
  readonly id: string;
  readonly liveness: Liveness;
  readonly incarnation: number;
}

/**
 * Every message carries the sender's own incarnation (a message is proof that its sender
 * is alive at that incarnation) and piggybacked updates.
 */
export interface PingMessage {
  readonly type: 'ping';
  readonly sequence: number;
  readonly incarnation: number;
  readonly updates: readonly SwimUpdate[];
}

/** Ask the recipient to ping `target` and relay its ack under `sequence`. */
export interface PingRequestMessage {
  readonly type: 'ping-req';
  readonly sequence: number;
  readonly target: string;
  readonly incarnation: number;
  readonly updates: readonly SwimUpdate[];
}

export interface AckMessage {
  readonly type: 'ack';
  readonly sequence: number;
  readonly incarnation: number;
  readonly updates: readonly SwimUpdate[];
}

export type SwimMessage = PingMessage | PingRequestMessage | AckMessage;

/** Sequence numbers are unsigned 32-bit and wrap. */
export const SEQUENCE_LIMIT = 0x1_0000_0000;

const LIVENESS_VALUES: readonly string[] = ['alive', 'suspect', 'down'];
const UPDATE_KEYS: readonly string[] = ['id', 'liveness', 'incarnation'];
const PING_KEYS: readonly string[] = ['type', 'sequence', 'incarnation', 'updates'];
const PING_REQUEST_KEYS: readonly string[] = [
  'type',
  'sequence',
  'target',
  'incarnation',
  'updates',
];

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Exactly these own keys, no more, no fewer. */
function hasExactKeys(value: Record<string, unknown>, keys: readonly string[]): boolean {
  const own = Object.keys(value);
  if (own.length !== keys.length) return false;
  for (const key of keys) if (!Object.hasOwn(value, key)) return false;
  return true;
}

export function isValidMemberId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MEMBER_ID_LENGTH_MAX;
}

export function isValidIncarnation(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isValidSequence(value: unknown): value is number {
  return (
    typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < SEQUENCE_LIMIT
  );
}

export function isValidUpdate(value: unknown): value is SwimUpdate {
  if (!isPlainObject(value) || !hasExactKeys(value, UPDATE_KEYS)) return false;
  return (
    isValidMemberId(value['id']) &&
    typeof value['liveness'] === 'string' &&
    LIVENESS_VALUES.includes(value['liveness']) &&
    isValidIncarnation(value['incarnation'])
  );
}

function isValidUpdateList(value: unknown): value is readonly SwimUpdate[] {
  if (!Array.isArray(value) || value.length > UPDATES_PER_MESSAGE_MAX) return false;
  for (const update of value) if (!isValidUpdate(update)) return false;
  return true;
}

/** Never throws, whatever it is given. */
export function isValidSwimMessage(value: unknown): value is SwimMessage {
  if (!isPlainObject(value)) return false;
  const type = value['type'];
  if (type === 'ping' || type === 'ack') {
    if (!hasExactKeys(value, PING_KEYS)) return false;
  } else if (type === 'ping-req') {
    if (!hasExactKeys(value, PING_REQUEST_KEYS) || !isValidMemberId(value['target'])) return false;
  } else {
    return false;
  }
  return (
    isValidSequence(value['sequence']) &&
    isValidIncarnation(value['incarnation']) &&
    isValidUpdateList(value['updates'])
  );
}
