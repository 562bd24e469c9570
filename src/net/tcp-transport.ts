// The peer transport over TCP. Each node keeps one connection to each peer that it writes
// to, and reads what peers send over the connections they opened to it: one connection
// each way, so neither side ever waits for the other to decide who dials.
//
// Sending: a message is encoded at once and queued toward its peer; the queue is written in
// one socket write per event-loop turn (frames of one turn go together). While the peer is
// unreachable the queue holds what it can, within its bounds, and the link redials with
// exponential backoff and jitter. While the socket's own buffer is above a high-water mark,
// the queue waits for 'drain'.
//
// Every connection starts with the handshake of handshake.ts; until it completes, any other
// frame closes the connection.

import { createServer, connect, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
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
import {
  encodeFrame,
  FrameDecoder,
  frameBodyBytes,
  FrameType,
  PEER_PROTOCOL_VERSION,
} from './frames.ts';
import { newNonce, proofMatches, proofOf } from './handshake.ts';

export interface TcpTransportOptions {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly secret: string;
  /** Where to listen for peers; port 0 picks a free one. */
  readonly host: string;
  readonly port: number;
  readonly limits?: TransportLimits;
  readonly logger?: Logger;
  readonly redialMinMs?: number;
  readonly redialMaxMs?: number;
  readonly handshakeTimeoutMs?: number;
}

/** Bytes in a socket's own buffer above which the queue stops writing until 'drain'. */
const SOCKET_BYTES_HIGH = 4 * 1024 * 1024;

export class TcpTransport implements PeerTransport {
  readonly nodeId: string;
  private readonly options: TcpTransportOptions;
  private readonly limits: TransportLimits;
  private readonly server: Server;
  private readonly outbound = new Map<string, OutboundLink>();
  private readonly inbound = new Set<Socket>();
  private readonly pending = new Map<number, PendingRequest>();
  private handler: (incoming: IncomingMessage) => void = () => {};
  private lostHandler: (peerId: string) => void = () => {};
  private nextRequestId = 1;
  private closed = false;

  private constructor(options: TcpTransportOptions, server: Server) {
    this.nodeId = options.nodeId;
    this.options = options;
    this.limits = options.limits ?? DEFAULT_TRANSPORT_LIMITS;
    this.server = server;
    server.on('connection', (socket) => this.accept(socket));
  }

  static async listen(options: TcpTransportOptions): Promise<TcpTransport> {
    const server = createServer({ noDelay: true });
    const transport = new TcpTransport(options, server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return transport;
  }

  /** The port peers reach this node on. */
  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('not listening');
    return address.port;
  }

  setPeers(peers: ReadonlyMap<string, PeerAddress>): void {
    for (const [peerId, link] of this.outbound) {
      if (!peers.has(peerId)) {
        link.retire();
        this.outbound.delete(peerId);
      }
    }
    for (const [peerId, address] of peers) {
      if (peerId === this.nodeId) continue;
      const link = this.outbound.get(peerId);
      if (link === undefined) this.outbound.set(peerId, new OutboundLink(this, peerId, address));
      else link.moveTo(address);
    }
  }

  send(to: string, message: PeerMessage): SendResult {
    return this.enqueue(to, [FrameType.message, message]);
  }

  request(to: string, message: PeerMessage, timeoutMs: number): Promise<PeerMessage> {
    const requestId = this.nextRequestId++;
    const result = this.enqueue(to, [FrameType.request, requestId, message]);
    if (result !== 'queued')
      return Promise.reject(new PeerError(result, `request to ${to}: ${result}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new PeerError('timeout', `no answer from ${to} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(requestId, { peerId: to, resolve, reject, timer });
    });
  }

  /**
   * Learns the id of the node listening at `address` by running the handshake with it (so
   * only a member of this cluster, holding its secret, can answer), then hangs up. Rejects
   * if no such node answers within `timeoutMs`.
   */
  identify(address: PeerAddress, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: address.host, port: address.port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new PeerError(
            'timeout',
            `no ringkv node of this cluster answered at ${address.host}:${address.port}`,
          ),
        );
      }, timeoutMs);
      socket.once('close', () => {
        clearTimeout(timer);
        reject(new PeerError('closed', `${address.host}:${address.port} closed the connection`));
      });
      new Handshake(
        this,
        socket,
        null,
        () => {},
        (peerId) => {
          clearTimeout(timer);
          resolve(peerId);
          socket.destroy();
        },
      );
    });
  }

  onMessage(handler: (incoming: IncomingMessage) => void): void {
    this.handler = handler;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const link of this.outbound.values()) link.stop();
    this.outbound.clear();
    for (const socket of this.inbound) socket.destroy();
    for (const [requestId, request] of this.pending) {
      clearTimeout(request.timer);
      request.reject(new PeerError('closed', 'the transport is closed'));
      this.pending.delete(requestId);
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- used by the links ----

  get config(): TcpTransportOptions {
    return this.options;
  }

  get frameBytesMax(): number {
    return this.limits.frameBytesMax;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onPeerLost(handler: (peerId: string) => void): void {
    this.lostHandler = handler;
  }

  /** An established outbound connection closed on its own. */
  peerLost(peerId: string): void {
    if (!this.closed) this.lostHandler(peerId);
  }

  log(details: object, text: string): void {
    this.options.logger?.debug(details, text);
  }

  private enqueue(to: string, body: unknown[]): SendResult {
    if (this.closed) return 'closed';
    const link = this.outbound.get(to);
    if (link === undefined) return 'unknown-peer';
    const frame = encodeFrame(body);
    if (frameBodyBytes(frame) > this.limits.frameBytesMax) return 'too-large';
    if (
      link.queuedMessages >= this.limits.queueMessagesMax ||
      link.queuedBytes + frame.length > this.limits.queueBytesMax
    ) {
      return 'queue-full';
    }
    link.push(frame);
    return 'queued';
  }

  private accept(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.inbound.add(socket);
    socket.once('close', () => this.inbound.delete(socket));
    // Frames on an accepted connection go one way: from the peer to us.
    new Handshake(this, socket, null, (peerId, body) => this.receive(peerId, body));
  }

  private receive(peerId: string, body: unknown[]): void {
    switch (body[0]) {
      case FrameType.message:
        this.handler({ from: peerId, message: body[1], respond: null });
        return;
      case FrameType.request: {
        const requestId = body[1];
        let answered = false;
        this.handler({
          from: peerId,
          message: body[2],
          respond: (answer) => {
            if (answered) return;
            answered = true;
            this.enqueue(peerId, [FrameType.response, requestId, answer]);
          },
        });
        return;
      }
      case FrameType.response: {
        const request = this.pending.get(body[1] as number);
        // A late answer, after its timeout, is dropped; so is one from the wrong peer.
        if (request === undefined || request.peerId !== peerId) return;
        this.pending.delete(body[1] as number);
        clearTimeout(request.timer);
        request.resolve(body[2]);
        return;
      }
      default:
        throw new Error(`unexpected frame type ${String(body[0])}`);
    }
  }
}

interface PendingRequest {
  readonly peerId: string;
  readonly resolve: (answer: PeerMessage) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** Our connection to one peer, with its queue and its redialing. */
class OutboundLink {
  queuedMessages = 0;
  queuedBytes = 0;
  private readonly transport: TcpTransport;
  private readonly peerId: string;
  private address: PeerAddress;
  private queue: Buffer[] = [];
  private socket: Socket | null = null;
  private ready = false;
  private flushScheduled = false;
  private redialMs: number;
  private redialTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(transport: TcpTransport, peerId: string, address: PeerAddress) {
    this.transport = transport;
    this.peerId = peerId;
    this.address = address;
    this.redialMs = transport.config.redialMinMs ?? 50;
    this.dial();
  }

  moveTo(address: PeerAddress): void {
    if (address.host === this.address.host && address.port === this.address.port) return;
    this.address = address;
    this.socket?.destroy();
  }

  push(frame: Buffer): void {
    this.queue.push(frame);
    this.queuedMessages++;
    this.queuedBytes += frame.length;
    if (this.ready && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.redialTimer !== null) clearTimeout(this.redialTimer);
    this.socket?.destroy();
  }

  /**
   * Stops once what is queued is written: a peer that is no longer one (it left the cluster)
   * still gets the messages sent to it before, the map that says it left among them.
   */
  retire(): void {
    if (!this.ready || this.socket === null) return this.stop();
    this.stopped = true;
    if (this.redialTimer !== null) clearTimeout(this.redialTimer);
    this.flush();
    this.socket.end();
  }

  private flush(): void {
    this.flushScheduled = false;
    const socket = this.socket;
    if (!this.ready || socket === null || this.queue.length === 0) return;
    if (socket.writableLength > SOCKET_BYTES_HIGH) return; // 'drain' flushes again
    const bytes = this.queue.length === 1 ? this.queue[0]! : Buffer.concat(this.queue);
    this.queue = [];
    this.queuedMessages = 0;
    this.queuedBytes = 0;
    socket.write(bytes);
  }

  private dial(): void {
    if (this.stopped || this.transport.isClosed) return;
    const socket = connect({ host: this.address.host, port: this.address.port, noDelay: true });
    this.socket = socket;
    socket.on('drain', () => this.flush());
    socket.once('close', () => {
      const wasReady = this.ready && this.socket === socket;
      this.ready = false;
      if (this.socket === socket) this.socket = null;
      if (wasReady && !this.stopped) this.transport.peerLost(this.peerId);
      this.scheduleRedial();
    });
    new Handshake(
      this.transport,
      socket,
      this.peerId,
      () => {
        // Nothing is read on our own connection once it is open.
      },
      () => {
        this.ready = true;
        this.redialMs = this.transport.config.redialMinMs ?? 50;
        this.flush();
      },
    );
  }

  private scheduleRedial(): void {
    if (this.stopped || this.transport.isClosed || this.redialTimer !== null) return;
    const maxMs = this.transport.config.redialMaxMs ?? 2000;
    // Jitter keeps a cluster's nodes from redialing a restarted peer all at once.
    const delay = this.redialMs * (0.8 + 0.4 * Math.random());
    this.redialMs = Math.min(maxMs, this.redialMs * 2);
    this.redialTimer = setTimeout(() => {
      this.redialTimer = null;
      this.dial();
    }, delay);
  }
}

/** Runs the handshake on a socket, then hands its frames on. */
class Handshake {
  private readonly transport: TcpTransport;
  private readonly socket: Socket;
  /** For a connection we dialed: who must answer. */
  private readonly expectedPeer: string | null;
  private readonly onFrame: (peerId: string, body: unknown[]) => void;
  private readonly onReady: ((peerId: string) => void) | null;
  private readonly decoder: FrameDecoder;
  private readonly nonce = newNonce();
  private peerId: string | null = null;
  private peerNonce: Uint8Array | null = null;
  private authenticated = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    transport: TcpTransport,
    socket: Socket,
    expectedPeer: string | null,
    onFrame: (peerId: string, body: unknown[]) => void,
    onReady: ((peerId: string) => void) | null = null,
  ) {
    this.transport = transport;
    this.socket = socket;
    this.expectedPeer = expectedPeer;
    this.onFrame = onFrame;
    this.onReady = onReady;
    this.decoder = new FrameDecoder(transport.frameBytesMax);
    const config = transport.config;
    this.timer = setTimeout(
      () => this.refuse('handshake timed out'),
      config.handshakeTimeoutMs ?? 5000,
    );
    socket.once('close', () => clearTimeout(this.timer));
    socket.on('error', (error) => transport.log({ err: error }, 'peer socket error'));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    const hello = [
      FrameType.hello,
      PEER_PROTOCOL_VERSION,
      config.clusterId,
      config.nodeId,
      this.nonce,
    ];
    if (socket.connecting) socket.once('connect', () => socket.write(encodeFrame(hello)));
    else socket.write(encodeFrame(hello));
  }

  private onData(chunk: Buffer): void {
    let bodies: unknown[][];
    try {
      bodies = this.decoder.push(chunk);
    } catch (error) {
      this.refuse((error as Error).message);
      return;
    }
    for (const body of bodies) {
      if (this.socket.destroyed) return;
      if (this.authenticated) {
        try {
          this.onFrame(this.peerId!, body);
        } catch (error) {
          this.refuse((error as Error).message);
        }
        continue;
      }
      this.handshakeFrame(body);
    }
  }

  private handshakeFrame(body: unknown[]): void {
    const config = this.transport.config;
    if (this.peerNonce === null) {
      const [type, version, clusterId, nodeId, nonce] = body;
      if (type !== FrameType.hello) return this.refuse('expected a hello');
      if (version !== PEER_PROTOCOL_VERSION)
        return this.refuse(`protocol version ${String(version)}`);
      if (clusterId !== config.clusterId) return this.refuse(`cluster ${String(clusterId)}`);
      if (typeof nodeId !== 'string' || nodeId.length === 0 || nodeId === config.nodeId) {
        return this.refuse('bad node id');
      }
      if (this.expectedPeer !== null && nodeId !== this.expectedPeer) {
        return this.refuse(`dialed ${this.expectedPeer}, reached ${nodeId}`);
      }
      if (!(nonce instanceof Uint8Array) || nonce.length !== this.nonce.length) {
        return this.refuse('bad nonce');
      }
      this.peerId = nodeId;
      this.peerNonce = nonce;
      const proof = proofOf(config.secret, config.clusterId, config.nodeId, nonce, this.nonce);
      this.socket.write(encodeFrame([FrameType.proof, proof]));
      return;
    }
    if (body[0] !== FrameType.proof) return this.refuse('expected a proof');
    const expected = proofOf(
      config.secret,
      config.clusterId,
      this.peerId!,
      this.nonce,
      this.peerNonce,
    );
    if (!proofMatches(expected, body[1]))
      return this.refuse('wrong proof: not the same cluster secret');
    this.authenticated = true;
    clearTimeout(this.timer);
    this.onReady?.(this.peerId!);
  }

  private refuse(reason: string): void {
    this.transport.log({ peer: this.peerId, reason }, 'peer connection refused');
    this.socket.destroy();
  }
}
