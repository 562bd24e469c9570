// Parsing command arguments the way Redis does: integers in Redis's strict decimal form,
// case-insensitive option words.

import { parseRedisInteger } from '../../core/kv/redis-integer.ts';

export function word(arg: Buffer | undefined): string {
  return arg === undefined ? '' : arg.toString('latin1').toLowerCase();
}

/** A signed 64-bit integer argument, or null when it is not one. */
export function integerArgument(arg: Buffer | undefined): bigint | null {
  return arg === undefined ? null : parseRedisInteger(arg);
}

export const NOT_AN_INTEGER = 'ERR value is not an integer or out of range';
export const SYNTAX_ERROR = 'ERR syntax error';
