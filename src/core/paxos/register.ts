// The register CASPaxos keeps per key, and the commands clients run on it. A command is a
// pure function of the current value: the proposer reads the value in its prepare phase,
// applies the command, and writes the result in its accept phase. Rules kept here:
// - A value is bytes or a tombstone (null), with a version that every change increments by
//   one and nothing else touches: a get, a failed compare-and-set, a delete of what is
//   already deleted and a failed increment leave value and version as they were.
// - A never-written key reads as a tombstone at version 0 (or at the acceptor's version
//   floor after a purge, docs/PAXOS.md), so that a version never repeats for a key.
// - A failed increment is an error that changes nothing.

import { assert, equalBytes } from '../bytes.ts';
import { formatRedisInteger, isInt64, parseRedisInteger } from '../kv/redis-integer.ts';

export interface RegisterValue {
  /** The bytes, or null for a tombstone (deleted or never written). */
  readonly bytes: Uint8Array | null;
  /** How many changes the register has seen; a compare-and-set may name it. */
  readonly version: number;
}

export const ABSENT_VALUE: RegisterValue = { bytes: null, version: 0 };

export type Command =
  | { readonly kind: 'get' }
  | { readonly kind: 'put'; readonly value: Uint8Array }
  /** Set `value` if the register holds bytes (Redis's SET XX). */
  | { readonly kind: 'put-if-present'; readonly value: Uint8Array }
  | { readonly kind: 'delete' }
  /** Set `value` if the register holds `expected` (null: a tombstone). */
  | {
      readonly kind: 'cas-value';
      readonly expected: Uint8Array | null;
      readonly value: Uint8Array;
    }
  /** Set `value` if the register's version is `expectedVersion`. */
  | { readonly kind: 'cas-version'; readonly expectedVersion: number; readonly value: Uint8Array }
  /** Add `delta` to a decimal signed 64-bit integer; a tombstone counts as 0. */
  | { readonly kind: 'incr'; readonly delta: bigint };

export type CommandKind = Command['kind'];

export type CommandErrorCode = 'not-an-integer' | 'integer-overflow';

export type CommandResult =
  | {
      readonly ok: true;
      /** The value to write back: the old one itself when nothing changes. */
      readonly next: RegisterValue;
      /** For a compare-and-set: whether it set the value. True for the other commands. */
      readonly applied: boolean;
    }
  | { readonly ok: false; readonly code: CommandErrorCode; readonly message: string };

function changed(current: RegisterValue, bytes: Uint8Array | null): RegisterValue {
  assert(current.version < Number.MAX_SAFE_INTEGER, 'a version stays below 2^53');
  return { bytes, version: current.version + 1 };
}

/** Applies `command` to `current`. Pure; never throws on a well-formed command. */
export function applyCommand(current: RegisterValue, command: Command): CommandResult {
  assert(Number.isSafeInteger(current.version) && current.version >= 0, 'a version is counted');
  switch (command.kind) {
    case 'get':
      return { ok: true, next: current, applied: true };
    case 'put':
      return { ok: true, next: changed(current, command.value), applied: true };
    case 'put-if-present':
      if (current.bytes === null) return { ok: true, next: current, applied: false };
      return { ok: true, next: changed(current, command.value), applied: true };
    case 'delete':
      // Deleting a tombstone is no change: the version stays, so it names one value.
      if (current.bytes === null) return { ok: true, next: current, applied: true };
      return { ok: true, next: changed(current, null), applied: true };
    case 'cas-value': {
      const matches =
        command.expected === null
          ? current.bytes === null
          : current.bytes !== null && equalBytes(current.bytes, command.expected);
      if (!matches) return { ok: true, next: current, applied: false };
      return { ok: true, next: changed(current, command.value), applied: true };
    }
    case 'cas-version':
      if (current.version !== command.expectedVersion) {
        return { ok: true, next: current, applied: false };
      }
      return { ok: true, next: changed(current, command.value), applied: true };
    case 'incr': {
      const base = current.bytes === null ? 0n : parseRedisInteger(current.bytes);
      if (base === null) {
        return { ok: false, code: 'not-an-integer', message: 'the value is not an integer' };
      }
      const sum = base + command.delta;
      if (!isInt64(sum)) {
        return { ok: false, code: 'integer-overflow', message: 'increment would overflow' };
      }
      return { ok: true, next: changed(current, formatRedisInteger(sum)), applied: true };
    }
  }
}

export function registerValuesEqual(a: RegisterValue, b: RegisterValue): boolean {
  if (a.version !== b.version) return false;
  if (a.bytes === null || b.bytes === null) return a.bytes === b.bytes;
  return equalBytes(a.bytes, b.bytes);
}
