// String commands: GET, SET and its options, MGET, MSET, INCR and friends, APPEND, STRLEN,
// GETDEL. Each turns its arguments into one core request; a multi-key write is one request,
// applied atomically.

import type { Expiry, Mutation, SetCondition } from '../../../core/requests.ts';
import { integerArgument, NOT_AN_INTEGER, SYNTAX_ERROR, word } from '../arguments.ts';
import type { CommandContext, CommandSpec, OkReply } from '../command-table.ts';

const INT64_MIN = -(2n ** 63n);
const MS_MAX = BigInt(Number.MAX_SAFE_INTEGER);

function writeResults(reply: OkReply) {
  if (reply.op !== 'write') throw new Error(`expected a write reply, got ${reply.op}`);
  return reply.results;
}

function readResults(reply: OkReply) {
  if (reply.op !== 'get') throw new Error(`expected a get reply, got ${reply.op}`);
  return reply.results;
}

function get(context: CommandContext, args: Buffer[]): void {
  context.call(
    { op: 'get', keyspace: context.keyspace, keys: [args[1]!], withVersions: false },
    (reply, writer) => writer.bulk(readResults(reply)[0]!.value),
  );
}

interface SetOptions {
  readonly condition: SetCondition;
  readonly expiry: Expiry;
  readonly returnPrevious: boolean;
}

const NO_EXPIRY: Expiry = { kind: 'none' };
/** A plain SET's options: shared, as most SETs have none. */
const PLAIN_SET: SetOptions = { condition: 'always', expiry: NO_EXPIRY, returnPrevious: false };

/** Parses SET's options; a string is an error reply. */
function parseSetOptions(args: Buffer[]): SetOptions | string {
  if (args.length === 3) return PLAIN_SET;
  let condition: SetCondition = 'always';
  let expiry: Expiry = NO_EXPIRY;
  let expirySet = false;
  let returnPrevious = false;
  for (let i = 3; i < args.length; i++) {
    const option = word(args[i]);
    if (option === 'nx' && condition === 'always') condition = 'ifAbsent';
    else if (option === 'xx' && condition === 'always') condition = 'ifPresent';
    else if (option === 'get') returnPrevious = true;
    else if (option === 'keepttl' && !expirySet) {
      expiry = { kind: 'keep' };
      expirySet = true;
    } else if (['ex', 'px', 'exat', 'pxat'].includes(option) && !expirySet && i + 1 < args.length) {
      const amount = integerArgument(args[++i]);
      if (amount === null) return NOT_AN_INTEGER;
      const ms = option === 'ex' || option === 'exat' ? amount * 1000n : amount;
      if (amount <= 0n || ms > MS_MAX) return "ERR invalid expire time in 'set' command";
      expiry =
        option === 'ex' || option === 'px'
          ? { kind: 'after', ms: Number(ms) }
          : { kind: 'at', atMs: Number(ms) };
      expirySet = true;
    } else {
      return SYNTAX_ERROR;
    }
  }
  return { condition, expiry, returnPrevious };
}

function set(context: CommandContext, args: Buffer[]): void {
  const options = parseSetOptions(args);
  if (typeof options === 'string') return context.reply((writer) => writer.error(options));
  const mutation: Mutation = options.returnPrevious
    ? {
        kind: 'set',
        value: args[2]!,
        condition: options.condition,
        expiry: options.expiry,
        returnPrevious: true,
      }
    : { kind: 'set', value: args[2]!, condition: options.condition, expiry: options.expiry };
  context.call(
    { op: 'write', keyspace: context.keyspace, items: [{ key: args[1]!, mutation }] },
    (reply, writer) => {
      const result = writeResults(reply)[0]!;
      if (options.returnPrevious) writer.bulk(result.previous);
      else if (result.applied) writer.ok();
      else writer.null();
    },
  );
}

function mget(context: CommandContext, args: Buffer[]): void {
  context.call(
    { op: 'get', keyspace: context.keyspace, keys: args.slice(1), withVersions: false },
    (reply, writer) => {
      const results = readResults(reply);
      writer.arrayHeader(results.length);
      for (const result of results) writer.bulk(result.value);
    },
  );
}

function mset(context: CommandContext, args: Buffer[]): void {
  if (args.length % 2 !== 1) {
    return context.reply((writer) =>
      writer.error("ERR wrong number of arguments for 'mset' command"),
    );
  }
  const items = [];
  for (let i = 1; i < args.length; i += 2) {
    items.push({
      key: args[i]!,
      mutation: {
        kind: 'set',
        value: args[i + 1]!,
        condition: 'always',
        expiry: { kind: 'none' },
      } as const,
    });
  }
  context.call({ op: 'write', keyspace: context.keyspace, items }, (_reply, writer) => writer.ok());
}

function incrementBy(context: CommandContext, key: Buffer, delta: bigint): void {
  context.call(
    {
      op: 'write',
      keyspace: context.keyspace,
      items: [{ key, mutation: { kind: 'incrBy', delta } }],
    },
    (reply, writer) => writer.integer(writeResults(reply)[0]!.integer),
  );
}

function incrByCommand(sign: 1n | -1n) {
  return (context: CommandContext, args: Buffer[]): void => {
    const amount = integerArgument(args[2]);
    if (amount === null) return context.reply((writer) => writer.error(NOT_AN_INTEGER));
    if (sign === -1n && amount === INT64_MIN) {
      return context.reply((writer) => writer.error('ERR decrement would overflow'));
    }
    incrementBy(context, args[1]!, sign * amount);
  };
}

function append(context: CommandContext, args: Buffer[]): void {
  context.call(
    {
      op: 'write',
      keyspace: context.keyspace,
      items: [{ key: args[1]!, mutation: { kind: 'append', suffix: args[2]! } }],
    },
    (reply, writer) => writer.integer(writeResults(reply)[0]!.length),
  );
}

function strlen(context: CommandContext, args: Buffer[]): void {
  context.call(
    { op: 'get', keyspace: context.keyspace, keys: [args[1]!], withVersions: false },
    (reply, writer) => writer.integer(readResults(reply)[0]!.value?.length ?? 0),
  );
}

function getdel(context: CommandContext, args: Buffer[]): void {
  context.call(
    {
      op: 'write',
      keyspace: context.keyspace,
      items: [{ key: args[1]!, mutation: { kind: 'delete', returnPrevious: true } }],
    },
    (reply, writer) => writer.bulk(writeResults(reply)[0]!.previous),
  );
}

const WRITE = ['write', 'denyoom'];
const READ = ['readonly', 'fast'];

export const STRING_COMMANDS: CommandSpec[] = [
  { name: 'get', arity: 2, flags: READ, keys: [1, 1, 1], handler: get },
  { name: 'set', arity: -3, flags: WRITE, keys: [1, 1, 1], handler: set },
  { name: 'mget', arity: -2, flags: READ, keys: [1, -1, 1], handler: mget },
  { name: 'mset', arity: -3, flags: WRITE, keys: [1, -1, 2], handler: mset },
  {
    name: 'incr',
    arity: 2,
    flags: WRITE,
    keys: [1, 1, 1],
    handler: (c, a) => incrementBy(c, a[1]!, 1n),
  },
  {
    name: 'decr',
    arity: 2,
    flags: WRITE,
    keys: [1, 1, 1],
    handler: (c, a) => incrementBy(c, a[1]!, -1n),
  },
  { name: 'incrby', arity: 3, flags: WRITE, keys: [1, 1, 1], handler: incrByCommand(1n) },
  { name: 'decrby', arity: 3, flags: WRITE, keys: [1, 1, 1], handler: incrByCommand(-1n) },
  { name: 'append', arity: 3, flags: WRITE, keys: [1, 1, 1], handler: append },
  { name: 'strlen', arity: 2, flags: READ, keys: [1, 1, 1], handler: strlen },
  { name: 'getdel', arity: 2, flags: ['write', 'fast'], keys: [1, 1, 1], handler: getdel },
];
