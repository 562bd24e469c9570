// One command to one node over the Redis protocol port, and what became of it: the same
// four outcomes as an HTTP exchange (http-call.ts), so the client's retry policy is the
// same on both transports.
//
// Rules it keeps:
// - A small pool of connections per node (at most `connectionsPerNode`, opened on demand);
//   commands are pipelined on them, written as they come and answered in order, so each
//   connection keeps a queue of the commands it has sent and matches each reply to the
//   oldest one.
// - A command queued on a connection that never got established was never sent: `not-sent`,
//   whatever the error. Once established, a connection that fails leaves every command on it
//   `lost` (the node may have acted on them).
// - Each command has its own deadline. A command past it is `timeout`; its connection takes
//   no new commands (a node that stalls one command may stall the rest) and is closed once
//   every command on it has been answered or timed out. A late reply to a command that timed
//   out is read and dropped, so the order of replies stays right.
// - Bounded: at most PIPELINE_DEPTH_MAX commands wait on one connection; beyond, a command
//   is refused before it is sent.

import net from 'node:net';
import { parseAddress } from './http-call.ts';
import {
  encodeCommand,
  RespReplyParser,
  RespProtocolError,
  type RespReply,
} from './resp-protocol.ts';

/**
 * Connections kept to one node when the client is not told otherwise. Two, not more: the
 * fewer the connections, the more commands share each write and each read on both sides
 * (under the cluster benchmark's puts, 4 connections per node cost the nodes 3% to 17% more
 * CPU per put than 1 or 2); two, not one, so that one slow command holds up the replies
 * behind it on half the commands to its node, not all of them.
 */
export const RESP_CONNECTIONS_PER_NODE_DEFAULT = 2;
/** Commands that may wait for their replies on one connection. */
export const PIPELINE_DEPTH_MAX = 1000;
/** Deadline of the AUTH that opens a connection to a node with a password. */
const AUTH_TIMEOUT_MS = 5_000;

export type RespOutcome =
  | { readonly kind: 'answered'; readonly reply: RespReply }
  /** The command surely did not reach the node. */
  | { readonly kind: 'not-sent'; readonly cause: unknown }
  /** No reply within the deadline: the node may have acted on it. */
  | { readonly kind: 'timeout'; readonly cause: unknown }
  /** The connection failed after the command may have been sent. */
  | { readonly kind: 'lost'; readonly cause: unknown };

interface PendingCommand {
  readonly resolve: (outcome: RespOutcome) => void;
  readonly connection: RespConnection;
  timer: ReturnType<typeof setTimeout> | null;
  settled: boolean;
}

function settle(command: PendingCommand, outcome: RespOutcome): void {
  if (command.settled) return;
  command.settled = true;
  if (command.timer !== null) clearTimeout(command.timer);
  command.timer = null;
  command.connection.commandSettled();
  command.resolve(outcome);
}

function onDeadline(command: PendingCommand, timeoutMs: number): void {
  command.timer = null;
  if (command.settled) return;
  settle(command, { kind: 'timeout', cause: new Error(`no reply within ${timeoutMs} ms`) });
  command.connection.retire();
}

/** One socket to one node, with the commands sent on it in order. */
class RespConnection {
  private readonly socket: net.Socket;
  private readonly parser = new RespReplyParser();
  private readonly pool: RespConnections;
  private readonly address: string;
  /** Commands sent and not yet replied to, oldest first, from `head` on (before: replied). */
  private queue: (PendingCommand | undefined)[] = [];
  private head = 0;
  /** Commands on this connection not yet settled (answered, timed out or failed). */
  private unsettled = 0;
  private connected = false;
  private retired = false;
  private corked = false;
  private failure: unknown = null;

  constructor(pool: RespConnections, address: string, password: string | null) {
    this.pool = pool;
    this.address = address;
    const { host, port } = parseAddress(address);
    this.socket = net.connect({ host, port, noDelay: true });
    this.socket.on('connect', () => {
      this.connected = true;
    });
    this.socket.on('data', (data: Buffer) => this.onData(data));
    this.socket.on('error', (error) => {
      this.failure ??= error;
    });
    this.socket.on('close', () => this.onClose());
    // The first command of a connection to a node with a password. A refusal needs no
    // handling here: every later command on the connection is answered NOAUTH.
    if (password !== null) void this.send(encodeCommand(['AUTH', password]), AUTH_TIMEOUT_MS);
  }

  /** Commands waiting for replies on this connection. */
  get depth(): number {
    return this.queue.length - this.head;
  }

  get usable(): boolean {
    return !this.retired && this.depth < PIPELINE_DEPTH_MAX;
  }

  send(bytes: Buffer, timeoutMs: number): Promise<RespOutcome> {
    if (this.retired) throw new Error('a command sent on a retired connection');
    if (!(timeoutMs > 0)) throw new Error(`a command deadline of ${timeoutMs} ms`);
    const { promise, resolve } = Promise.withResolvers<RespOutcome>();
    const command: PendingCommand = { resolve, connection: this, timer: null, settled: false };
    this.queue.push(command);
    this.unsettled++;
    command.timer = setTimeout(onDeadline, timeoutMs, command, timeoutMs);
    // Commands issued in one pass of the event loop leave in one write: the replies that
    // arrive together on several connections resume callers that send their next commands
    // to other connections, so corking until the end of the current tick is not enough.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(bytes);
    return promise;
  }

  /** Takes no new commands; closes once every command on it has settled. */
  retire(): void {
    if (this.retired) return;
    this.retired = true;
    this.pool.forget(this.address, this);
    // A connection never established carries nothing the node could have seen.
    if (!this.connected || this.unsettled === 0) this.socket.destroy();
  }

  commandSettled(): void {
    this.unsettled--;
    if (this.unsettled < 0) throw new Error('more commands settled than sent');
    if (this.retired && this.unsettled === 0) this.socket.destroy();
  }

  private onData(data: Buffer): void {
    let replies: RespReply[];
    try {
      replies = this.parser.feed(data);
    } catch (error) {
      this.failure ??= error;
      this.socket.destroy();
      return;
    }
    for (const reply of replies) {
      const command = this.queue[this.head];
      if (command === undefined) {
        this.failure ??= new RespProtocolError('a reply to no command');
        this.socket.destroy();
        return;
      }
      this.queue[this.head] = undefined;
      this.head++;
      settle(command, { kind: 'answered', reply });
    }
    // Drop the answered prefix now and then, so the queue does not grow without end.
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private onClose(): void {
    this.retired = true;
    this.pool.forget(this.address, this);
    const cause = this.failure ?? new Error(`the connection to ${this.address} closed`);
    const kind = this.connected ? 'lost' : 'not-sent';
    const waiting = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    for (const command of waiting) if (command !== undefined) settle(command, { kind, cause });
    if (this.unsettled !== 0) throw new Error('a closed connection left commands unsettled');
  }
}

/** The RESP connections of one client to every node it talks to. */
export class RespConnections {
  private readonly connectionsPerNode: number;
  private readonly password: string | null;
  private readonly byAddress = new Map<string, RespConnection[]>();
  /** Round-robin position per address. */
  private readonly turns = new Map<string, number>();
  private closed = false;

  constructor(connectionsPerNode: number, password: string | null) {
    if (!(Number.isSafeInteger(connectionsPerNode) && connectionsPerNode >= 1)) {
      throw new Error(`connectionsPerNode ${connectionsPerNode} is not a positive integer`);
    }
    this.connectionsPerNode = connectionsPerNode;
    this.password = password;
  }

  /** Sends the command and waits for its reply; never throws, never rejects. */
  call(
    address: string,
    args: readonly (string | Uint8Array)[],
    timeoutMs: number,
  ): Promise<RespOutcome> {
    if (this.closed) {
      return Promise.resolve({ kind: 'not-sent', cause: new Error('the client was closed') });
    }
    let connection: RespConnection | null;
    try {
      connection = this.connectionFor(address);
    } catch (error) {
      return Promise.resolve({ kind: 'not-sent', cause: error });
    }
    if (connection === null) {
      const cause = new Error(
        `${PIPELINE_DEPTH_MAX * this.connectionsPerNode} commands already wait on ${address}`,
      );
      return Promise.resolve({ kind: 'not-sent', cause });
    }
    return connection.send(encodeCommand(args), timeoutMs);
  }

  /** Closes idle connections now and the others once their commands settle. */
  close(): void {
    this.closed = true;
    for (const connections of [...this.byAddress.values()]) {
      for (const connection of [...connections]) connection.retire();
    }
  }

  forget(address: string, connection: RespConnection): void {
    const connections = this.byAddress.get(address);
    if (connections === undefined) return;
    const index = connections.indexOf(connection);
    if (index !== -1) connections.splice(index, 1);
    if (connections.length === 0) this.byAddress.delete(address);
  }

  private connectionFor(address: string): RespConnection | null {
    let connections = this.byAddress.get(address);
    if (connections === undefined) {
      connections = [];
      this.byAddress.set(address, connections);
    }
    if (connections.length < this.connectionsPerNode) {
      const connection = new RespConnection(this, address, this.password);
      connections.push(connection);
      return connection;
    }
    const turn = (this.turns.get(address) ?? 0) % connections.length;
    this.turns.set(address, turn + 1);
    for (let step = 0; step < connections.length; step++) {
      const connection = connections[(turn + step) % connections.length]!;
      if (connection.usable) return connection;
    }
    return null;
  }
}
