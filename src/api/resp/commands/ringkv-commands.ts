// ringkv's own commands: RINGKV.GET, RINGKV.PUT and RINGKV.DEL carry what plain Redis
// commands cannot: the causal context of a read, the live siblings with their timestamps,
// and per-request r and w. RINGKV.CAS is the compare-and-set of strong and chain keyspaces,
// on the key's version or its value. The TypeScript client's RESP transport speaks them.
//
// Rules they keep:
// - The keyspace is named in every command (not chosen with SELECT), as on the HTTP API.
// - The causal context travels as the same base64url text the HTTP API uses in
//   X-Ringkv-Context, so a context read on one protocol can be handed back on the other.
//   Decoding is strict: text that is not the canonical base64url of some bytes is refused.
// - Errors are `-ERR RINGKV_<CODE> message`, the node's stable codes (docs/ERRORS.md); a bad
//   argument is RINGKV_INVALID_ARGUMENT or RINGKV_INVALID_CONTEXT.

import { ErrorCode } from '../../../core/errors.ts';
import type { CompareExpectation, Expiry, QuorumSpec, WriteItem } from '../../../core/requests.ts';
import { integerArgument, word } from '../arguments.ts';
import type { CommandContext, CommandSpec, OkReply } from '../command-table.ts';

const BASE64URL_PATTERN = /^[A-Za-z0-9_-]*={0,2}$/;
const MS_MAX = BigInt(Number.MAX_SAFE_INTEGER);
/** Versions count a key's changes; they stay exact as JavaScript numbers. */
const VERSION_MAX = BigInt(Number.MAX_SAFE_INTEGER);
const CAS_FORMS = 'RINGKV.CAS takes VERSION n value, VALUE expected value or ABSENT value';
/** Digits of a replica count: the node checks it against the keyspace's n. */
const REPLICA_COUNT_PATTERN = /^[1-9][0-9]{0,2}$/;

/** The options of one command once parsed; a string is the error to answer. */
interface Options {
  quorum?: QuorumSpec;
  context?: Uint8Array;
  expiry: Expiry;
}

function invalidArgument(message: string): string {
  return `ERR ${ErrorCode.INVALID_ARGUMENT} ${message}`;
}

function decodeContext(text: string): Uint8Array | null {
  if (!BASE64URL_PATTERN.test(text)) return null;
  const bytes = Buffer.from(text, 'base64url');
  // Canonical only: Node would silently drop spare bits and a dangling character.
  return bytes.toString('base64url') === text.replace(/=+$/, '') ? bytes : null;
}

/** The quorum an `R` or `W` option names, or null when it names none. */
function quorumOf(arg: Buffer): QuorumSpec | null {
  const text = word(arg);
  if (text === 'one' || text === 'quorum' || text === 'all') return text;
  if (REPLICA_COUNT_PATTERN.test(text)) return Number(text);
  return null;
}

function badQuorum(name: string, arg: Buffer): string {
  const text = word(arg);
  return invalidArgument(
    `${name} must be one, quorum, all or a number of replicas, not '${text.slice(0, 32)}'`,
  );
}

/**
 * Parses `[NAME value]...` from `first` on; `allowed` lists the option words the command
 * takes. Each option may be given once.
 */
function parseOptions(args: Buffer[], first: number, allowed: readonly string[]): Options | string {
  const options: Options = { expiry: { kind: 'none' } };
  const seen = new Set<string>();
  for (let index = first; index < args.length; index += 2) {
    const name = word(args[index]);
    const value = args[index + 1];
    if (!allowed.includes(name)) {
      return invalidArgument(
        `unknown option '${name.slice(0, 32)}'; expected ${allowed.join(', ')}`,
      );
    }
    if (value === undefined) return invalidArgument(`option ${name} needs a value`);
    if (seen.has(name)) return invalidArgument(`option ${name} given twice`);
    seen.add(name);
    if (name === 'r' || name === 'w') {
      const quorum = quorumOf(value);
      if (quorum === null) return badQuorum(name, value);
      options.quorum = quorum;
    } else if (name === 'context') {
      const context = decodeContext(value.toString('latin1'));
      if (context === null) {
        return `ERR ${ErrorCode.INVALID_CONTEXT} CONTEXT must be the base64url context of an earlier read`;
      }
      options.context = context;
    } else {
      const ms = integerArgument(value);
      if (ms === null || ms < 1n || ms > MS_MAX) {
        return invalidArgument('PX must be a positive integer number of milliseconds');
      }
      options.expiry = { kind: 'after', ms: Number(ms) };
    }
  }
  return options;
}

function keyspaceOf(args: Buffer[]): string {
  return args[1]!.toString('utf8');
}

function writeResultOf(reply: OkReply) {
  if (reply.op !== 'write') throw new Error(`expected a write reply, got ${reply.op}`);
  const result = reply.results[0];
  if (result === undefined) throw new Error('a write reply without its one result');
  return result;
}

function ringkvGet(context: CommandContext, args: Buffer[]): void {
  const options = parseOptions(args, 3, ['r']);
  if (typeof options === 'string') return context.reply((writer) => writer.error(options));
  context.call(
    {
      op: 'get',
      keyspace: keyspaceOf(args),
      keys: [args[2]!],
      withVersions: true,
      ...(options.quorum === undefined ? {} : { r: options.quorum }),
    },
    (reply, writer) => {
      if (reply.op !== 'get') throw new Error(`expected a get reply, got ${reply.op}`);
      const read = reply.results[0];
      if (read === undefined) throw new Error('a get reply without its one result');
      // Strong keyspaces add the key's version as a fifth element.
      writer.arrayHeader(read.version === undefined ? 4 : 5);
      writer.bulk(read.value);
      writer.bulkText(
        Buffer.from(read.context.buffer, read.context.byteOffset, read.context.byteLength).toString(
          'base64url',
        ),
      );
      writer.integer(read.expiresAtMs);
      writer.arrayHeader(read.siblings.length);
      for (const sibling of read.siblings) {
        writer.arrayHeader(3);
        writer.bulk(sibling.value);
        writer.integer(sibling.timestamp[0]);
        writer.integer(sibling.timestamp[1]);
      }
      if (read.version !== undefined) writer.integer(read.version);
    },
  );
}

function writeRequest(args: Buffer[], item: WriteItem, options: Options) {
  return {
    op: 'write',
    keyspace: keyspaceOf(args),
    items: [item],
    ...(options.quorum === undefined ? {} : { w: options.quorum }),
  } as const;
}

function ringkvPut(context: CommandContext, args: Buffer[]): void {
  const options = parseOptions(args, 4, ['context', 'w', 'px']);
  if (typeof options === 'string') return context.reply((writer) => writer.error(options));
  const item: WriteItem = {
    key: args[2]!,
    mutation: { kind: 'set', value: args[3]!, condition: 'always', expiry: options.expiry },
    ...(options.context === undefined ? {} : { context: options.context }),
  };
  context.call(writeRequest(args, item, options), (reply, writer) => {
    writeResultOf(reply);
    writer.ok();
  });
}

function ringkvDel(context: CommandContext, args: Buffer[]): void {
  const options = parseOptions(args, 3, ['context', 'w']);
  if (typeof options === 'string') return context.reply((writer) => writer.error(options));
  const item: WriteItem = {
    key: args[2]!,
    mutation: { kind: 'delete' },
    ...(options.context === undefined ? {} : { context: options.context }),
  };
  context.call(writeRequest(args, item, options), (reply, writer) => {
    writer.integer(writeResultOf(reply).applied ? 1 : 0);
  });
}

/** What RINGKV.CAS compares and writes, from `args[3]` on; a string is the error to answer. */
function casOf(args: Buffer[]): { expected: CompareExpectation; value: Buffer } | string {
  const form = word(args[3]);
  if (form === 'version' && args.length === 6) {
    const version = integerArgument(args[4]);
    if (version === null || version < 0n || version > VERSION_MAX) {
      return invalidArgument('VERSION must be a non-negative integer read from RINGKV.GET');
    }
    return { expected: { version: Number(version) }, value: args[5]! };
  }
  if (form === 'value' && args.length === 6)
    return { expected: { value: args[4]! }, value: args[5]! };
  if (form === 'absent' && args.length === 5) return { expected: { value: null }, value: args[4]! };
  return invalidArgument(CAS_FORMS);
}

/**
 * RINGKV.CAS keyspace key VERSION n value | VALUE expected value | ABSENT value: writes the
 * value if the key is at version n, holds the expected value, or has none. Answers
 * [applied (1 or 0), the key's version after the command]: the new version when applied,
 * the one that did not match otherwise.
 */
function ringkvCas(context: CommandContext, args: Buffer[]): void {
  const cas = casOf(args);
  if (typeof cas === 'string') return context.reply((writer) => writer.error(cas));
  const item: WriteItem = {
    key: args[2]!,
    mutation: { kind: 'compareAndSet', expected: cas.expected, value: cas.value },
  };
  context.call(writeRequest(args, item, { expiry: { kind: 'none' } }), (reply, writer) => {
    const result = writeResultOf(reply);
    if (result.version === undefined) {
      throw new Error('a compare-and-set answered without the version of its key');
    }
    writer.arrayHeader(2);
    writer.integer(result.applied ? 1 : 0);
    writer.integer(result.version);
  });
}

export const RINGKV_COMMANDS: CommandSpec[] = [
  {
    name: 'ringkv.get',
    arity: -3,
    flags: ['readonly', 'fast'],
    keys: [2, 2, 1],
    handler: ringkvGet,
  },
  {
    name: 'ringkv.put',
    arity: -4,
    flags: ['write', 'denyoom'],
    keys: [2, 2, 1],
    handler: ringkvPut,
  },
  { name: 'ringkv.del', arity: -3, flags: ['write', 'fast'], keys: [2, 2, 1], handler: ringkvDel },
  {
    name: 'ringkv.cas',
    arity: -5,
    flags: ['write', 'denyoom'],
    keys: [2, 2, 1],
    handler: ringkvCas,
  },
];
