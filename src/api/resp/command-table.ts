// The shape of a RESP command and the table they are registered in. A command is its name,
// its arity in Redis's convention (n: exactly n arguments counting the name; -n: at least n),
// its flags, and a handler that completes the command through the context exactly once.

import type { ClientReply, ClientRequest } from '../../core/requests.ts';
import type { KeyspaceCounts } from './keyspace-counts.ts';
import type { ReplyWriter } from './reply-writer.ts';

export type OkReply = Extract<ClientReply, { ok: true }>;

export interface CommandContext {
  readonly id: number;
  /** Name of the selected keyspace. */
  keyspace: string;
  keyspaceIndex: number;
  authenticated: boolean;
  clientName: string;
  protocol: 2 | 3;
  readonly server: RespServerState;
  /** Completes the command with a reply written now. */
  reply(write: (writer: ReplyWriter) => void): void;
  /**
   * Leaves the command to be completed later, from any context: the function returned
   * writes its reply (once) into this command's place in the connection's reply order.
   */
  replyLater(): (write: (writer: ReplyWriter) => void) => void;
  /** Submits a request to the node; errors are answered for the handler. */
  call(request: ClientRequest, onOk: (reply: OkReply, writer: ReplyWriter) => void): void;
  /** Submits a request and hands the raw reply (errors included) to the handler. */
  callRaw(request: ClientRequest, onReply: (reply: ClientReply) => void): void;
  /** Closes the connection once every reply before this one is written. */
  closeAfterReply(): void;
  describe(): string;
}

/** Server-wide state the commands read. */
export interface RespServerState {
  readonly node: import('../../runtime/node-api.ts').NodeApi;
  readonly password: string | null;
  readonly port: () => number;
  readonly startedAtMs: number;
  connectionCount(): number;
  commandsProcessed(): number;
  connectionsReceived(): number;
  listClients(): string[];
  readonly scanCursors: ScanCursors;
  readonly keyspaceCounts: KeyspaceCounts;
}

export interface CommandSpec {
  readonly name: string;
  readonly arity: number;
  /** Allowed before AUTH when a password is set. */
  readonly noAuth?: boolean;
  /** Reads or writes keys: the key positions for COMMAND's reply (first, last, step). */
  readonly keys?: readonly [number, number, number];
  readonly flags: readonly string[];
  readonly handler: (context: CommandContext, args: Buffer[]) => void;
}

/**
 * The command table: finds a command from its name's bytes as the client sent them, in any
 * case, without making a string of them (that string and its map lookup were a few percent
 * of a pipelined GET).
 */
export class CommandTable {
  /** By name length: each name's lower-case ASCII bytes with its spec. */
  private readonly byLength: { readonly name: Uint8Array; readonly spec: CommandSpec }[][] = [];
  private readonly specs: CommandSpec[] = [];

  add(spec: CommandSpec): void {
    if (this.specs.some((known) => known.name === spec.name)) {
      throw new Error(`command ${spec.name} registered twice`);
    }
    const name = Uint8Array.from(spec.name, (char) => char.charCodeAt(0));
    if (name.some((byte) => byte >= 0x80 || (byte >= 0x41 && byte <= 0x5a))) {
      throw new Error(`command name ${spec.name} is not lower-case ASCII`);
    }
    this.specs.push(spec);
    while (this.byLength.length <= name.length) this.byLength.push([]);
    this.byLength[name.length]!.push({ name, spec });
  }

  /** Every command, in the order added. */
  all(): readonly CommandSpec[] {
    return this.specs;
  }

  /** The command named `sent` in any mix of cases, or undefined. */
  find(sent: Uint8Array): CommandSpec | undefined {
    const candidates = this.byLength[sent.length];
    if (candidates === undefined) return undefined;
    next: for (const candidate of candidates) {
      for (let i = 0; i < sent.length; i++) {
        const byte = sent[i]!;
        // Only A-Z fold: toLowerCase of a Latin-1 string would fold more, none of it a name.
        const lower = byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte;
        if (lower !== candidate.name[i]) continue next;
      }
      return candidate.spec;
    }
    return undefined;
  }
}

export function arityAccepts(arity: number, argumentCount: number): boolean {
  return arity >= 0 ? argumentCount === arity : argumentCount >= -arity;
}

/**
 * SCAN cursors: the core's cursor is bytes (a position in the key order), but Redis clients
 * expect an unsigned 64-bit decimal. The server keeps a bounded table from small numbers to
 * positions; a cursor evicted from it (after CURSORS_MAX newer ones) is refused with an
 * error, and the client starts again from 0.
 */
export class ScanCursors {
  private readonly positions = new Map<string, Uint8Array>();
  private nextId = 1;
  private readonly limit: number;

  constructor(limit = 100_000) {
    this.limit = limit;
  }

  remember(position: Uint8Array): string {
    const id = String(this.nextId++);
    this.positions.set(id, position);
    if (this.positions.size > this.limit) {
      const oldest = this.positions.keys().next().value;
      if (oldest !== undefined) this.positions.delete(oldest);
    }
    return id;
  }

  /** The position for a cursor, null for "0", undefined when unknown. */
  resolve(cursor: string): Uint8Array | null | undefined {
    if (cursor === '0') return null;
    return this.positions.get(cursor);
  }
}
