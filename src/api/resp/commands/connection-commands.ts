// Connection and server commands: PING, ECHO, SELECT, AUTH, HELLO, CLIENT, QUIT, INFO,
// CONFIG GET and COMMAND. None of them touches keys except INFO's keyspace section.

import { timingSafeEqual } from 'node:crypto';
import os from 'node:os';
import { globMatches } from '../../../core/kv/glob.ts';
import { integerArgument, SYNTAX_ERROR, word } from '../arguments.ts';
import type { CommandContext, CommandSpec } from '../command-table.ts';
import type { ReplyWriter } from '../reply-writer.ts';

/** The Redis version ringkv answers to: clients gate features on it. */
export const REDIS_COMPATIBLE_VERSION = '7.2.0';
export const RINGKV_VERSION = '0.1.0';

const WRONGPASS = 'WRONGPASS invalid username-password pair or user is disabled.';

function passwordMatches(expected: string, given: Buffer): boolean {
  const expectedBytes = Buffer.from(expected);
  return expectedBytes.length === given.length && timingSafeEqual(expectedBytes, given);
}

/** Checks AUTH credentials; returns an error reply or null when accepted. */
function authenticate(
  context: CommandContext,
  user: Buffer | null,
  password: Buffer,
): string | null {
  const expected = context.server.password;
  if (expected === null) {
    return 'ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?';
  }
  if ((user !== null && user.toString() !== 'default') || !passwordMatches(expected, password))
    return WRONGPASS;
  context.authenticated = true;
  return null;
}

function ping(context: CommandContext, args: Buffer[]): void {
  if (args.length > 2)
    return context.reply((w) => w.error("ERR wrong number of arguments for 'ping' command"));
  context.reply((w) => (args.length === 2 ? w.bulk(args[1]!) : w.simple('PONG')));
}

function select(context: CommandContext, args: Buffer[]): void {
  const index = integerArgument(args[1]);
  if (index === null)
    return context.reply((w) => w.error('ERR value is not an integer or out of range'));
  const keyspace = context.server.node.keyspaces()[Number(index)];
  if (index < 0n || keyspace === undefined)
    return context.reply((w) => w.error('ERR DB index is out of range'));
  context.keyspace = keyspace.name;
  context.keyspaceIndex = Number(index);
  context.reply((w) => w.ok());
}

function auth(context: CommandContext, args: Buffer[]): void {
  if (args.length > 3) return context.reply((w) => w.error(SYNTAX_ERROR));
  const error = authenticate(context, args.length === 3 ? args[1]! : null, args[args.length - 1]!);
  context.reply((w) => (error === null ? w.ok() : w.error(error)));
}

function hello(context: CommandContext, args: Buffer[]): void {
  let protocol = context.protocol;
  let i = 1;
  if (args.length > 1) {
    const version = integerArgument(args[1]);
    if (version === null)
      return context.reply((w) =>
        w.error('ERR Protocol version is not an integer or out of range'),
      );
    if (version !== 2n && version !== 3n)
      return context.reply((w) => w.error('NOPROTO unsupported protocol version'));
    protocol = Number(version) as 2 | 3;
    i = 2;
  }
  let name: string | null = null;
  for (; i < args.length; i++) {
    const option = word(args[i]);
    if (option === 'auth' && i + 2 < args.length) {
      const error = authenticate(context, args[i + 1]!, args[i + 2]!);
      if (error !== null) return context.reply((w) => w.error(error));
      i += 2;
    } else if (option === 'setname' && i + 1 < args.length) {
      name = args[++i]!.toString();
    } else {
      return context.reply((w) =>
        w.error(`ERR Syntax error in HELLO option '${args[i]!.toString()}'`),
      );
    }
  }
  if (context.server.password !== null && !context.authenticated) {
    return context.reply((w) =>
      w.error(
        'NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time',
      ),
    );
  }
  if (name !== null) context.clientName = name;
  context.protocol = protocol;
  context.reply((w) => {
    w.protocol = protocol;
    w.mapHeader(7);
    w.bulkText('server');
    w.bulkText('redis');
    w.bulkText('version');
    w.bulkText(REDIS_COMPATIBLE_VERSION);
    w.bulkText('proto');
    w.integer(protocol);
    w.bulkText('id');
    w.integer(context.id);
    w.bulkText('mode');
    w.bulkText('standalone');
    w.bulkText('role');
    w.bulkText('master');
    w.bulkText('modules');
    w.arrayHeader(0);
  });
}

function client(context: CommandContext, args: Buffer[]): void {
  const sub = word(args[1]);
  switch (sub) {
    case 'setname': {
      if (args.length !== 3)
        return context.reply((w) =>
          w.error("ERR wrong number of arguments for 'client|setname' command"),
        );
      const name = args[2]!.toString();
      if (/[\s]/.test(name))
        return context.reply((w) =>
          w.error('ERR Client names cannot contain spaces, newlines or special characters.'),
        );
      context.clientName = name;
      return context.reply((w) => w.ok());
    }
    case 'getname':
      return context.reply((w) =>
        context.clientName === '' ? w.null() : w.bulkText(context.clientName),
      );
    case 'id':
      return context.reply((w) => w.integer(context.id));
    case 'info':
      return context.reply((w) => w.verbatim(`${context.describe()}\n`));
    case 'list':
      return context.reply((w) =>
        w.verbatim(
          context.server
            .listClients()
            .map((line) => `${line}\n`)
            .join(''),
        ),
      );
    case 'setinfo':
      return context.reply((w) => (args.length === 4 ? w.ok() : w.error(SYNTAX_ERROR)));
    default:
      return context.reply((w) =>
        w.error(`ERR unknown subcommand '${args[1]?.toString() ?? ''}'. Try CLIENT HELP.`),
      );
  }
}

function info(context: CommandContext, args: Buffer[]): void {
  const section = args.length > 1 ? word(args[1]) : 'default';
  const everything = ['default', 'all', 'everything'].includes(section);
  const server = context.server;
  const parts: string[] = [];
  if (everything || section === 'server') {
    parts.push(
      [
        '# Server',
        `redis_version:${REDIS_COMPATIBLE_VERSION}`,
        `ringkv_version:${RINGKV_VERSION}`,
        'redis_mode:standalone',
        `os:${os.type()} ${os.release()} ${os.arch()}`,
        `process_id:${process.pid}`,
        `tcp_port:${server.port()}`,
        `uptime_in_seconds:${Math.floor((Date.now() - server.startedAtMs) / 1000)}`,
        `node_id:${server.node.status().nodeId}`,
      ].join('\r\n'),
    );
  }
  if (everything || section === 'clients') {
    parts.push(['# Clients', `connected_clients:${server.connectionCount()}`].join('\r\n'));
  }
  if (everything || section === 'stats') {
    const status = server.node.status();
    parts.push(
      [
        '# Stats',
        `total_connections_received:${server.connectionsReceived()}`,
        `total_commands_processed:${server.commandsProcessed()}`,
        `storage_commits:${status.commitsTotal}`,
        `storage_commit_batch_mean:${status.commitBatchSizeMean.toFixed(2)}`,
      ].join('\r\n'),
    );
  }
  if (everything || section === 'keyspaces' || section === 'cluster') {
    // ringkv's own sections: the keyspaces SELECT picks by index, and the cluster's members.
    if (everything || section === 'keyspaces') {
      parts.push(
        [
          '# Keyspaces',
          ...server.node
            .keyspaces()
            .map(
              (k, index) =>
                `db${index}:name=${k.name},n=${k.n},r=${k.r},w=${k.w},consistency=${k.consistency},conflicts=${k.conflicts},durability=${k.durability}`,
            ),
        ].join('\r\n'),
      );
    }
    if (everything || section === 'cluster') {
      const cluster = server.node.clusterStatus();
      parts.push(
        [
          '# Cluster',
          `cluster_state:${cluster.state}`,
          `cluster_epoch:${cluster.epoch}`,
          `cluster_members:${cluster.members.length}`,
          ...cluster.members.map(
            (m) =>
              `member_${m.id}:liveness=${m.liveness},partitions=${m.partitionsOwned},resp=${m.resp}`,
          ),
          `hints_pending:${cluster.hintsTotal}`,
        ].join('\r\n'),
      );
    }
  }
  const text = (keyspaceLines: readonly string[]): string => {
    if (keyspaceLines.length > 0) parts.push(['# Keyspace', ...keyspaceLines].join('\r\n'));
    return `${parts.join('\r\n\r\n')}\r\n`;
  };
  if (!(everything || section === 'keyspace')) return context.reply((w) => w.verbatim(text([])));
  // Counts are shared between INFO calls and may be a few seconds old (keyspace-counts.ts).
  // The counts may come from another connection's INFO: answer into this command's own slot.
  const answer = context.replyLater();
  server.keyspaceCounts.get(
    server.node,
    (request, onReply) => server.node.submit(request, onReply),
    (lines) => answer((w) => w.verbatim(text(lines))),
  );
}

function quit(context: CommandContext): void {
  context.reply((w) => w.ok());
  context.closeAfterReply();
}

/**
 * What CONFIG GET answers: ringkv's behaviour in Redis's terms, for the tools and clients
 * that ask before they start and warn if the command fails (redis-benchmark asks for
 * `save` and `appendonly`, job queues for `maxmemory-policy`). Read-only: ringkv is
 * configured when it starts (docs/CONFIGURATION.md). `appendfsync` follows the selected
 * keyspace: a durable write is synced before its reply, a relaxed one is left to the OS.
 */
function configParameters(context: CommandContext): [name: string, value: string][] {
  const keyspaces = context.server.node.keyspaces();
  const durable = keyspaces[context.keyspaceIndex]?.durability === 'sync';
  return [
    ['appendonly', 'yes'],
    ['appendfsync', durable ? 'always' : 'no'],
    ['save', ''],
    ['databases', String(keyspaces.length)],
    ['maxmemory', '0'],
    ['maxmemory-policy', 'noeviction'],
    ['port', String(context.server.port())],
  ];
}

const CONFIG_HELP = [
  'CONFIG <subcommand> [<arg> ...]. Subcommands are:',
  'GET <pattern> [<pattern> ...]',
  '    Return the parameters whose names match a glob-style pattern, with their values.',
  '    ringkv is configured when it starts: SET, REWRITE and RESETSTAT are not supported.',
  'HELP',
  '    Print this help.',
];

function config(context: CommandContext, args: Buffer[]): void {
  const sub = word(args[1]);
  if (sub === 'get' && args.length >= 3) {
    // Names are matched without regard to case, as Redis does, each answered once.
    const patterns = args
      .slice(2)
      .map((pattern) => Buffer.from(pattern.toString('latin1').toLowerCase(), 'latin1'));
    const matched = configParameters(context).filter(([name]) =>
      patterns.some((pattern) => globMatches(pattern, Buffer.from(name))),
    );
    return context.reply((w) => {
      w.mapHeader(matched.length);
      for (const [name, value] of matched) {
        w.bulkText(name);
        w.bulkText(value);
      }
    });
  }
  if (sub === 'get') {
    return context.reply((w) => w.error("ERR wrong number of arguments for 'config|get' command"));
  }
  if (sub === 'help' && args.length === 2) {
    return context.reply((w) => {
      w.arrayHeader(CONFIG_HELP.length);
      for (const line of CONFIG_HELP) w.simple(line);
    });
  }
  if (sub === 'set' || sub === 'rewrite' || sub === 'resetstat') {
    return context.reply((w) =>
      w.error(
        `ERR CONFIG ${sub.toUpperCase()} is not supported: ringkv is configured when it starts (its config file, environment or flags)`,
      ),
    );
  }
  context.reply((w) =>
    w.error(`ERR unknown subcommand '${args[1]?.toString() ?? ''}'. Try CONFIG HELP.`),
  );
}

function writeCommandInfo(w: ReplyWriter, spec: CommandSpec): void {
  const [first, last, step] = spec.keys ?? [0, 0, 0];
  w.arrayHeader(6);
  w.bulkText(spec.name);
  w.integer(spec.arity);
  w.setHeader(spec.flags.length);
  for (const flag of spec.flags) w.simple(flag);
  w.integer(first);
  w.integer(last);
  w.integer(step);
}

export function connectionCommands(allCommands: () => readonly CommandSpec[]): CommandSpec[] {
  const command = (context: CommandContext, args: Buffer[]): void => {
    const sub = word(args[1]);
    const specs = allCommands();
    if (args.length === 1) {
      return context.reply((w) => {
        w.arrayHeader(specs.length);
        for (const spec of specs) writeCommandInfo(w, spec);
      });
    }
    if (sub === 'count') return context.reply((w) => w.integer(specs.length));
    if (sub === 'docs') return context.reply((w) => w.mapHeader(0));
    if (sub === 'info') {
      return context.reply((w) => {
        w.arrayHeader(args.length - 2);
        for (const name of args.slice(2)) {
          const spec = specs.find((candidate) => candidate.name === word(name));
          if (spec === undefined) w.nullArray();
          else writeCommandInfo(w, spec);
        }
      });
    }
    context.reply((w) =>
      w.error(`ERR unknown subcommand '${args[1]!.toString()}'. Try COMMAND HELP.`),
    );
  };
  return [
    { name: 'ping', arity: -1, flags: ['fast'], handler: ping },
    { name: 'echo', arity: 2, flags: ['fast'], handler: (c, a) => c.reply((w) => w.bulk(a[1]!)) },
    { name: 'select', arity: 2, flags: ['loading', 'fast'], handler: select },
    {
      name: 'auth',
      arity: -2,
      flags: ['noscript', 'loading', 'fast', 'no_auth'],
      noAuth: true,
      handler: auth,
    },
    {
      name: 'hello',
      arity: -1,
      flags: ['noscript', 'loading', 'fast', 'no_auth'],
      noAuth: true,
      handler: hello,
    },
    { name: 'client', arity: -2, flags: ['admin'], handler: client },
    { name: 'info', arity: -1, flags: ['loading'], handler: info },
    { name: 'quit', arity: -1, flags: ['fast', 'no_auth'], noAuth: true, handler: quit },
    { name: 'config', arity: -2, flags: ['admin', 'noscript', 'loading'], handler: config },
    { name: 'command', arity: -1, flags: ['loading'], handler: command },
  ];
}
