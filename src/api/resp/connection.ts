// One client connection: parses its bytes into commands, runs them, and writes the replies
// back in request order, even though some finish at once (reads) and some later (writes wait
// for group commit). Each command takes a slot in a FIFO; a reply that completes at the head
// is written straight to the output, others wait in their slot until the head reaches them.
// Replies finished in one pass of the event loop go out in one socket write, at its end.
//
// Backpressure: reading stops while more than IN_FLIGHT_MAX commands await replies or the
// socket's unsent output passes OUTPUT_BYTES_HIGH, and resumes as they drain.

import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ClientReply, ClientRequest } from '../../core/requests.ts';
import type { Metrics, RequestSeries } from '../../runtime/metrics.ts';
import {
  arityAccepts,
  type CommandContext,
  type CommandSpec,
  type CommandTable,
  type OkReply,
  type RespServerState,
} from './command-table.ts';
import type { FlushQueue } from './flush-queue.ts';
import { ReplyWriter } from './reply-writer.ts';
import { ProtocolError, RequestParser } from './request-parser.ts';

const IN_FLIGHT_MAX = 1024;

/** A core error in Redis's form; Redis's own wording where Redis has the same error. */
function redisErrorText(code: string, message: string): string {
  if (code === 'RINGKV_NOT_AN_INTEGER') return 'ERR value is not an integer or out of range';
  if (code === 'RINGKV_INTEGER_OVERFLOW') return 'ERR increment or decrement would overflow';
  return `ERR ${code} ${message}`;
}
const OUTPUT_BYTES_HIGH = 8 * 1024 * 1024;
/** Answered slots at the front of the queue that are cut off while others are pending. */
const SLOTS_COMPACT_MIN = 1024;

interface Slot {
  bytes: Buffer | null;
  done: boolean;
  /** The command was answered with an error (for metrics). */
  failed: boolean;
  /** A command still running when its handler returned: its metrics, and when it started. */
  series: RequestSeries | null;
  startedAt: number;
}

export interface ConnectionOptions {
  readonly id: number;
  readonly socket: Socket;
  readonly server: RespServerState;
  readonly commands: CommandTable;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly inputBytesMax: number;
  /** Where the connection queues itself to write its replies at the end of a pass. */
  readonly flushQueue: FlushQueue;
  readonly onCommand: () => void;
  readonly onClose: () => void;
}

export class Connection implements CommandContext {
  readonly id: number;
  readonly server: RespServerState;
  keyspace = 'default';
  keyspaceIndex = 0;
  authenticated: boolean;
  clientName = '';
  private readonly socket: Socket;
  private readonly options: ConnectionOptions;
  private readonly parser: RequestParser;
  private readonly writer = new ReplyWriter();
  private readonly scratch = new ReplyWriter();
  private readonly slots: Slot[] = [];
  private slotsHead = 0;
  /** The slot of the command being dispatched right now. */
  private currentSlot: Slot | null = null;
  private flushScheduled = false;
  private chunkArrivedAt = 0;
  /**
   * The metrics series of the command dispatched last: a pipeline mostly repeats one
   * command, which then finds its series without a lookup.
   */
  private seriesSpec: CommandSpec | null = null;
  private seriesOfSpec: RequestSeries | null = null;
  private paused = false;
  private closing = false;
  private closed = false;
  private readonly remoteAddress: string;
  private readonly connectedAtMs = Date.now();

  constructor(options: ConnectionOptions) {
    this.options = options;
    this.id = options.id;
    this.server = options.server;
    this.socket = options.socket;
    this.authenticated = options.server.password === null;
    this.parser = new RequestParser(options.inputBytesMax);
    this.remoteAddress = `${this.socket.remoteAddress}:${this.socket.remotePort}`;
    this.keyspace = options.server.node.keyspaces()[0]?.name ?? 'default';
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('drain', () => this.maybeResume());
    this.socket.on('error', (error) =>
      this.options.logger.debug({ err: error, client: this.id }, 'client socket error'),
    );
    this.socket.on('close', () => {
      this.closed = true;
      this.options.onClose();
    });
  }

  get protocol(): 2 | 3 {
    return this.writer.protocol;
  }

  set protocol(version: 2 | 3) {
    this.writer.protocol = version;
    this.scratch.protocol = version;
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    this.chunkArrivedAt = performance.now();
    try {
      this.parser.feed(chunk, (args) => this.dispatch(args));
      if (this.parser.bufferedBytes > this.options.inputBytesMax) {
        throw new ProtocolError('request larger than the input limit');
      }
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.protocolError(error.message);
    }
    this.scheduleFlush();
  }

  private protocolError(message: string): void {
    this.options.logger.debug({ client: this.id, message }, 'protocol error, closing connection');
    const slot = this.openSlot();
    this.finishSlot(slot, (w) => w.error(`ERR Protocol error: ${message}`));
    this.closeAfterReply();
  }

  private dispatch(args: Buffer[]): void {
    if (this.closing) return;
    this.options.onCommand();
    const spec = this.options.commands.find(args[0]!);
    const slot = this.openSlot();
    this.currentSlot = slot;
    try {
      if (spec === undefined) {
        const shown = args
          .slice(1, 20)
          .map((arg) => `'${arg.toString('latin1').slice(0, 128)}'`)
          .join(' ');
        this.reply((w) =>
          w.error(
            `ERR unknown command '${args[0]!.toString('latin1').slice(0, 128)}', with args beginning with: ${shown}`,
          ),
        );
      } else if (!this.authenticated && spec.noAuth !== true) {
        this.reply((w) => w.error('NOAUTH Authentication required.'));
      } else if (!arityAccepts(spec.arity, args.length)) {
        this.reply((w) => w.error(`ERR wrong number of arguments for '${spec.name}' command`));
      } else {
        // Commands of one read share the time it arrived: latency counts from there.
        const startedAt = this.chunkArrivedAt;
        if (spec !== this.seriesSpec) {
          this.seriesSpec = spec;
          this.seriesOfSpec = this.options.metrics.requestSeries('resp', spec.name);
        }
        const series = this.seriesOfSpec!;
        const original = slot;
        spec.handler(this, args);
        if (original.done) {
          series.record(!original.failed, (performance.now() - startedAt) / 1000);
        } else {
          original.series = series;
          original.startedAt = startedAt;
        }
      }
    } finally {
      this.currentSlot = null;
    }
    if (this.pendingSlots() > IN_FLIGHT_MAX) this.pause();
  }

  // ---- CommandContext ----

  reply(write: (writer: ReplyWriter) => void): void {
    const slot = this.currentSlot;
    if (slot === null) throw new Error('reply outside of a command');
    this.currentSlot = null;
    this.finishSlot(slot, write);
  }

  replyLater(): (write: (writer: ReplyWriter) => void) => void {
    const slot = this.currentSlot;
    if (slot === null) throw new Error('reply outside of a command');
    this.currentSlot = null;
    let answered = false;
    return (write) => {
      if (answered) return;
      answered = true;
      this.finishSlot(slot, write);
    };
  }

  call(request: ClientRequest, onOk: (reply: OkReply, writer: ReplyWriter) => void): void {
    const slot = this.currentSlot;
    if (slot === null) throw new Error('call outside of a command');
    this.currentSlot = null;
    // One closure per request, and the reply is written straight into the right buffer:
    // this is the hot path of every key command.
    this.server.node.submit(request, (reply) => {
      const writer = this.writerFor(slot);
      if (reply.ok) {
        onOk(reply, writer);
      } else {
        slot.failed = true;
        writer.error(redisErrorText(reply.error.code, reply.error.message));
      }
      this.completeSlot(slot, writer);
    });
  }

  callRaw(request: ClientRequest, onReply: (reply: ClientReply) => void): void {
    const slot = this.currentSlot;
    if (slot === null) throw new Error('call outside of a command');
    this.server.node.submit(request, (reply) => {
      const outer = this.currentSlot;
      this.currentSlot = slot;
      try {
        onReply(reply);
      } finally {
        this.currentSlot = outer;
      }
    });
  }

  closeAfterReply(): void {
    this.closing = true;
    this.socket.pause();
    this.scheduleFlush();
  }

  describe(): string {
    return [
      `id=${this.id}`,
      `addr=${this.remoteAddress}`,
      `name=${this.clientName}`,
      `age=${Math.floor((Date.now() - this.connectedAtMs) / 1000)}`,
      `db=${this.keyspaceIndex}`,
      `resp=${this.protocol}`,
      `cmd-pending=${this.pendingSlots()}`,
    ].join(' ');
  }

  // ---- ordered replies ----

  private openSlot(): Slot {
    const slot: Slot = { bytes: null, done: false, failed: false, series: null, startedAt: 0 };
    this.slots.push(slot);
    return slot;
  }

  /** Slots the queue holds, answered ones not yet cut off included (for tests). */
  get slotsHeld(): number {
    return this.slots.length;
  }

  /** Commands read and not yet answered (for benchmarks and tests). */
  get repliesPending(): number {
    return this.pendingSlots();
  }

  private pendingSlots(): number {
    return this.slots.length - this.slotsHead;
  }

  private finishSlot(slot: Slot, write: (writer: ReplyWriter) => void): void {
    const writer = this.writerFor(slot);
    write(writer);
    this.completeSlot(slot, writer);
  }

  /** Where the reply of `slot` goes: the output if it is next in line, else a side buffer. */
  private writerFor(slot: Slot): ReplyWriter {
    if (slot.done) throw new Error('a command replied twice');
    return this.slots[this.slotsHead] === slot ? this.writer : this.scratch;
  }

  private completeSlot(slot: Slot, writer: ReplyWriter): void {
    slot.done = true;
    if (slot.series !== null) {
      slot.series.record(!slot.failed, (performance.now() - slot.startedAt) / 1000);
    }
    if (writer === this.scratch) {
      slot.bytes = this.scratch.take();
      return;
    }
    this.slotsHead++;
    // Later replies that finished early follow in order.
    while (this.slotsHead < this.slots.length && this.slots[this.slotsHead]!.done) {
      const ready = this.slots[this.slotsHead]!;
      if (ready.bytes !== null) this.writer.raw(ready.bytes);
      ready.bytes = null;
      this.slotsHead++;
    }
    if (this.slotsHead === this.slots.length) {
      this.slots.length = 0;
      this.slotsHead = 0;
    } else if (this.slotsHead >= SLOTS_COMPACT_MIN && 2 * this.slotsHead >= this.slots.length) {
      // A client that keeps commands in flight without pause never lets every reply be
      // done at once: without this, the answered slots piled up for the connection's life.
      this.slots.splice(0, this.slotsHead);
      this.slotsHead = 0;
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // One write for all the replies of this connection finished in this pass, at its end
    // (flush-queue.ts says why).
    this.options.flushQueue.add(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.closed) return;
    const bytes = this.writer.take();
    if (bytes !== null) this.socket.write(bytes);
    if (this.closing && this.pendingSlots() === 0) {
      this.socket.end();
      return;
    }
    if (this.socket.writableLength > OUTPUT_BYTES_HIGH) this.pause();
    else this.maybeResume();
  };

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  private maybeResume(): void {
    if (!this.paused || this.closing) return;
    if (
      this.pendingSlots() > IN_FLIGHT_MAX / 2 ||
      this.socket.writableLength > OUTPUT_BYTES_HIGH / 2
    )
      return;
    this.paused = false;
    this.socket.resume();
  }
}
