// The peer transport of the simulator: every node's transport attached to one SimNetwork
// with a virtual clock. Messages go through msgpack both ways, as on TCP, so a message that
// TCP could not carry fails here too, and no object is shared between nodes. Delivery takes
// `delayMs` of virtual time per link, in order per link.
//
// A link toward a node that is not attached (never started, or closed) holds its messages,
// within the transport's bounds, until the node attaches: the simulated counterpart of a
// TCP link redialing. Faults (loss, partitions, delays with tails) are the simulator's
// business and plug in at `deliver`.

import { Packr } from 'msgpackr';
import { EventQueue } from '../sim/event-queue.ts';
import {
  DEFAULT_TRANSPORT_LIMITS,
  PeerError,
  type IncomingMessage,
  type PeerAddress,
  type PeerMessage,
  type PeerTransport,
  type SendResult,
  type TransportLimits,
} from './contract.ts';

const packr = new Packr({ useRecords: false, moreTypes: false });

export interface SimNetworkOptions {
  readonly delayMs: number;
}

type Frame =
  | { readonly kind: 'message'; readonly bytes: Buffer }
  | { readonly kind: 'request'; readonly requestId: number; readonly bytes: Buffer }
  | { readonly kind: 'response'; readonly requestId: number; readonly bytes: Buffer };

interface Link {
  readonly from: SimTransport;
  readonly to: string;
  /** Frames sent and not yet delivered. */
  readonly queue: Frame[];
  queuedBytes: number;
  deliveryScheduled: boolean;
}

export class SimNetwork {
  private readonly options: SimNetworkOptions;
  private readonly events = new EventQueue<() => void>();
  private readonly nodes = new Map<string, SimTransport>();
  private nowMs = 0;

  constructor(options: SimNetworkOptions) {
    this.options = options;
  }

  get now(): number {
    return this.nowMs;
  }

  transport(
    nodeId: string,
    cluster: { clusterId: string; secret: string },
    limits: TransportLimits = DEFAULT_TRANSPORT_LIMITS,
  ): SimTransport {
    const existing = this.nodes.get(nodeId);
    if (existing !== undefined && !existing.isClosed) throw new Error(`${nodeId} is attached`);
    const transport = new SimTransport(this, nodeId, cluster, limits);
    this.nodes.set(nodeId, transport);
    // Links waiting for this node deliver now.
    for (const node of this.nodes.values()) node.peerAttached(nodeId);
    return transport;
  }

  /** Runs every event due in the next `ms` of virtual time. */
  async advance(ms: number): Promise<void> {
    const until = this.nowMs + ms;
    for (;;) {
      const next = this.events.peekTime();
      if (next === undefined || next > until) break;
      const event = this.events.pop()!;
      this.nowMs = event.atMs;
      event.payload();
      // Let promise callbacks of this event run before the next event.
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.nowMs = until;
  }

  schedule(afterMs: number, action: () => void): void {
    this.events.push(this.nowMs + afterMs, action);
  }

  attached(nodeId: string): SimTransport | undefined {
    const node = this.nodes.get(nodeId);
    return node === undefined || node.isClosed ? undefined : node;
  }

  scheduleDelivery(link: Link): void {
    if (link.deliveryScheduled) return;
    link.deliveryScheduled = true;
    this.schedule(this.options.delayMs, () => {
      link.deliveryScheduled = false;
      const target = this.attached(link.to);
      if (target === undefined || link.from.isClosed) return; // waits for the node
      const frames = link.queue.splice(0);
      link.queuedBytes = 0;
      if (!target.accepts(link.from)) return; // another cluster: the handshake would fail
      for (const frame of frames) target.receive(link.from.nodeId, frame);
    });
  }
}

export class SimTransport implements PeerTransport {
  readonly nodeId: string;
  private readonly network: SimNetwork;
  private readonly cluster: { clusterId: string; secret: string };
  private readonly limits: TransportLimits;
  private readonly links = new Map<string, Link>();
  private readonly pending = new Map<
    number,
    { peerId: string; settle: (error: Error | null, answer?: PeerMessage) => void }
  >();
  private handler: (incoming: IncomingMessage) => void = () => {};
  private nextRequestId = 1;
  private closed = false;

  constructor(
    network: SimNetwork,
    nodeId: string,
    cluster: { clusterId: string; secret: string },
    limits: TransportLimits,
  ) {
    this.network = network;
    this.nodeId = nodeId;
    this.cluster = cluster;
    this.limits = limits;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  setPeers(peers: ReadonlyMap<string, PeerAddress>): void {
    for (const peerId of this.links.keys()) if (!peers.has(peerId)) this.links.delete(peerId);
    for (const peerId of peers.keys()) {
      if (peerId !== this.nodeId && !this.links.has(peerId)) {
        this.links.set(peerId, {
          from: this,
          to: peerId,
          queue: [],
          queuedBytes: 0,
          deliveryScheduled: false,
        });
      }
    }
  }

  send(to: string, message: PeerMessage): SendResult {
    return this.enqueue(to, (bytes) => ({ kind: 'message', bytes }), message);
  }

  request(to: string, message: PeerMessage, timeoutMs: number): Promise<PeerMessage> {
    const requestId = this.nextRequestId++;
    const result = this.enqueue(to, (bytes) => ({ kind: 'request', requestId, bytes }), message);
    if (result !== 'queued') {
      return Promise.reject(new PeerError(result, `request to ${to}: ${result}`));
    }
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (error: Error | null, answer?: PeerMessage): void => {
        if (settled) return;
        settled = true;
        this.pending.delete(requestId);
        if (error === null) resolve(answer);
        else reject(error);
      };
      this.pending.set(requestId, { peerId: to, settle });
      this.network.schedule(timeoutMs, () =>
        settle(new PeerError('timeout', `no answer from ${to} within ${timeoutMs} ms`)),
      );
    });
  }

  onMessage(handler: (incoming: IncomingMessage) => void): void {
    this.handler = handler;
  }

  close(): Promise<void> {
    this.closed = true;
    for (const { settle } of [...this.pending.values()]) {
      settle(new PeerError('closed', 'the transport is closed'));
    }
    return Promise.resolve();
  }

  // ---- used by the network ----

  accepts(from: SimTransport): boolean {
    return (
      from.cluster.clusterId === this.cluster.clusterId &&
      from.cluster.secret === this.cluster.secret
    );
  }

  peerAttached(peerId: string): void {
    const link = this.links.get(peerId);
    if (link !== undefined && link.queue.length > 0) this.network.scheduleDelivery(link);
  }

  receive(from: string, frame: Frame): void {
    if (this.closed) return;
    const message = packr.unpack(frame.bytes);
    if (frame.kind === 'message') {
      this.handler({ from, message, respond: null });
    } else if (frame.kind === 'request') {
      let answered = false;
      this.handler({
        from,
        message,
        respond: (answer) => {
          if (answered) return;
          answered = true;
          this.enqueue(
            from,
            (bytes) => ({ kind: 'response', requestId: frame.requestId, bytes }),
            answer,
          );
        },
      });
    } else {
      const pending = this.pending.get(frame.requestId);
      if (pending !== undefined && pending.peerId === from) pending.settle(null, message);
    }
  }

  private enqueue(to: string, frameOf: (bytes: Buffer) => Frame, message: PeerMessage): SendResult {
    if (this.closed) return 'closed';
    const link = this.links.get(to);
    if (link === undefined) return 'unknown-peer';
    const bytes = packr.pack(message);
    if (bytes.length > this.limits.frameBytesMax) return 'too-large';
    if (
      link.queue.length >= this.limits.queueMessagesMax ||
      link.queuedBytes + bytes.length > this.limits.queueBytesMax
    ) {
      return 'queue-full';
    }
    link.queue.push(frameOf(bytes));
    link.queuedBytes += bytes.length;
    if (this.network.attached(to) !== undefined) this.network.scheduleDelivery(link);
    return 'queued';
  }
}
