// Key-space commands: DEL, EXISTS, TYPE, expiry (EXPIRE, PEXPIRE, TTL, PTTL, PERSIST) and
// iteration (SCAN, KEYS, DBSIZE, FLUSHDB).

import type { ExpireCondition } from '../../../core/requests.ts';
import { integerArgument, NOT_AN_INTEGER, SYNTAX_ERROR, word } from '../arguments.ts';
import type { CommandContext, CommandSpec, OkReply } from '../command-table.ts';

const MS_MAX = BigInt(Number.MAX_SAFE_INTEGER);
/** Keys examined per step of KEYS, which walks the whole keyspace. */
const KEYS_PAGE = 10_000;

function del(context: CommandContext, args: Buffer[]): void {
  const items = args.slice(1).map((key) => ({ key, mutation: { kind: 'delete' } as const }));
  context.call({ op: 'write', keyspace: context.keyspace, items }, (reply, writer) => {
    if (reply.op !== 'write') throw new Error('expected a write reply');
    writer.integer(reply.results.filter((result) => result.applied).length);
  });
}

function readResults(reply: OkReply) {
  if (reply.op !== 'get') throw new Error(`expected a get reply, got ${reply.op}`);
  return reply.results;
}

function exists(context: CommandContext, args: Buffer[]): void {
  context.call(
    { op: 'get', keyspace: context.keyspace, keys: args.slice(1), withVersions: false },
    (reply, writer) =>
      writer.integer(readResults(reply).filter((result) => result.value !== null).length),
  );
}

function type(context: CommandContext, args: Buffer[]): void {
  context.call(
    { op: 'get', keyspace: context.keyspace, keys: [args[1]!], withVersions: false },
    (reply, writer) => writer.simple(readResults(reply)[0]!.value === null ? 'none' : 'string'),
  );
}

const EXPIRE_CONDITIONS: Record<string, ExpireCondition> = {
  nx: 'ifNoExpiry',
  xx: 'ifHasExpiry',
  gt: 'ifGreater',
  lt: 'ifLess',
};

function expireCommand(unitMs: bigint, name: string) {
  return (context: CommandContext, args: Buffer[]): void => {
    const amount = integerArgument(args[2]);
    if (amount === null) return context.reply((writer) => writer.error(NOT_AN_INTEGER));
    let condition: ExpireCondition = 'always';
    for (const arg of args.slice(3)) {
      const chosen = EXPIRE_CONDITIONS[word(arg)];
      if (chosen === undefined) return context.reply((writer) => writer.error(SYNTAX_ERROR));
      if (condition !== 'always') {
        return context.reply((writer) =>
          writer.error('ERR NX and XX, GT or LT options at the same time are not compatible'),
        );
      }
      condition = chosen;
    }
    const ms = amount * unitMs;
    if (ms > MS_MAX || ms < -MS_MAX) {
      return context.reply((writer) =>
        writer.error(`ERR invalid expire time in '${name}' command`),
      );
    }
    // A time that is not in the future deletes the key, as in Redis.
    const expiry =
      ms > 0n ? ({ kind: 'after', ms: Number(ms) } as const) : ({ kind: 'at', atMs: 1 } as const);
    context.call(
      {
        op: 'write',
        keyspace: context.keyspace,
        items: [{ key: args[1]!, mutation: { kind: 'expire', expiry, condition } }],
      },
      (reply, writer) => {
        if (reply.op !== 'write') throw new Error('expected a write reply');
        writer.integer(reply.results[0]!.applied ? 1 : 0);
      },
    );
  };
}

function ttlCommand(unitMs: number) {
  return (context: CommandContext, args: Buffer[]): void => {
    context.call(
      { op: 'get', keyspace: context.keyspace, keys: [args[1]!], withVersions: false },
      (reply, writer) => {
        const result = readResults(reply)[0]!;
        if (result.value === null) return writer.integer(-2);
        if (result.expiresAtMs === 0) return writer.integer(-1);
        const remainingMs = Math.max(0, result.expiresAtMs - Date.now());
        writer.integer(unitMs === 1 ? remainingMs : Math.round(remainingMs / unitMs));
      },
    );
  };
}

function persist(context: CommandContext, args: Buffer[]): void {
  context.call(
    {
      op: 'write',
      keyspace: context.keyspace,
      items: [
        {
          key: args[1]!,
          mutation: { kind: 'expire', expiry: { kind: 'none' }, condition: 'always' },
        },
      ],
    },
    (reply, writer) => {
      if (reply.op !== 'write') throw new Error('expected a write reply');
      writer.integer(reply.results[0]!.applied ? 1 : 0);
    },
  );
}

function scan(context: CommandContext, args: Buffer[]): void {
  const cursorText = args[1]!.toString('latin1');
  const position = context.server.scanCursors.resolve(cursorText);
  if (position === undefined) return context.reply((writer) => writer.error('ERR invalid cursor'));
  let count = 10;
  let match: Buffer | null = null;
  let onlyStrings = true;
  for (let i = 2; i < args.length; i += 2) {
    const option = word(args[i]);
    const value = args[i + 1];
    if (value === undefined) return context.reply((writer) => writer.error(SYNTAX_ERROR));
    if (option === 'count') {
      const parsed = integerArgument(value);
      if (parsed === null) return context.reply((writer) => writer.error(NOT_AN_INTEGER));
      if (parsed < 1n) return context.reply((writer) => writer.error(SYNTAX_ERROR));
      count = Number(parsed > 10_000n ? 10_000n : parsed);
    } else if (option === 'match') {
      match = value;
    } else if (option === 'type') {
      onlyStrings = word(value) === 'string';
    } else {
      return context.reply((writer) => writer.error(SYNTAX_ERROR));
    }
  }
  context.call(
    { op: 'scan', keyspace: context.keyspace, cursor: position, count, match, prefix: null },
    (reply, writer) => {
      if (reply.op !== 'scan') throw new Error('expected a scan reply');
      const next = reply.cursor === null ? '0' : context.server.scanCursors.remember(reply.cursor);
      const keys = onlyStrings ? reply.keys : [];
      writer.arrayHeader(2);
      writer.bulkText(next);
      writer.arrayHeader(keys.length);
      for (const key of keys) writer.bulk(key);
    },
  );
}

function keys(context: CommandContext, args: Buffer[]): void {
  const pattern = args[1]!;
  const found: Uint8Array[] = [];
  const step = (cursor: Uint8Array | null): void => {
    context.callRaw(
      {
        op: 'scan',
        keyspace: context.keyspace,
        cursor,
        count: KEYS_PAGE,
        match: pattern,
        prefix: null,
      },
      (reply) => {
        if (!reply.ok)
          return context.reply((writer) =>
            writer.error(`ERR ${reply.error.code} ${reply.error.message}`),
          );
        if (reply.op !== 'scan') throw new Error('expected a scan reply');
        found.push(...reply.keys);
        if (reply.cursor !== null) return step(reply.cursor);
        context.reply((writer) => {
          writer.arrayHeader(found.length);
          for (const key of found) writer.bulk(key);
        });
      },
    );
  };
  step(null);
}

function dbsize(context: CommandContext): void {
  context.call({ op: 'count', keyspace: context.keyspace }, (reply, writer) => {
    if (reply.op !== 'count') throw new Error('expected a count reply');
    writer.integer(reply.count);
  });
}

function flushdb(context: CommandContext, args: Buffer[]): void {
  if (args.length > 2 || (args.length === 2 && !['sync', 'async'].includes(word(args[1])))) {
    return context.reply((writer) => writer.error(SYNTAX_ERROR));
  }
  context.call({ op: 'flush', keyspace: context.keyspace }, (_reply, writer) => writer.ok());
}

export const KEY_COMMANDS: CommandSpec[] = [
  { name: 'del', arity: -2, flags: ['write'], keys: [1, -1, 1], handler: del },
  { name: 'unlink', arity: -2, flags: ['write', 'fast'], keys: [1, -1, 1], handler: del },
  { name: 'exists', arity: -2, flags: ['readonly', 'fast'], keys: [1, -1, 1], handler: exists },
  { name: 'type', arity: 2, flags: ['readonly', 'fast'], keys: [1, 1, 1], handler: type },
  {
    name: 'expire',
    arity: -3,
    flags: ['write', 'fast'],
    keys: [1, 1, 1],
    handler: expireCommand(1000n, 'expire'),
  },
  {
    name: 'pexpire',
    arity: -3,
    flags: ['write', 'fast'],
    keys: [1, 1, 1],
    handler: expireCommand(1n, 'pexpire'),
  },
  {
    name: 'ttl',
    arity: 2,
    flags: ['readonly', 'fast'],
    keys: [1, 1, 1],
    handler: ttlCommand(1000),
  },
  { name: 'pttl', arity: 2, flags: ['readonly', 'fast'], keys: [1, 1, 1], handler: ttlCommand(1) },
  { name: 'persist', arity: 2, flags: ['write', 'fast'], keys: [1, 1, 1], handler: persist },
  { name: 'scan', arity: -2, flags: ['readonly'], handler: scan },
  { name: 'keys', arity: 2, flags: ['readonly'], handler: keys },
  { name: 'dbsize', arity: 1, flags: ['readonly', 'fast'], handler: dbsize },
  { name: 'flushdb', arity: -1, flags: ['write'], handler: flushdb },
];
