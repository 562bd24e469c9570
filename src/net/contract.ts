// The peer transport contract: how one node's shell talks to the others. Two
// implementations keep it: TCP between processes (tcp-transport.ts) and the simulator's
// network (sim-transport.ts); test/net/compliance.ts holds both to this text.
//
// Rules:
// - Messages are any value msgpack can encode (objects, arrays, numbers, strings,
//   Uint8Array; byte strings arrive as Uint8Array, in Node a Buffer). Messages from one node to another arrive in the order sent, or not at all:
//   a message can be lost when a connection breaks, never duplicated by the transport.
// - `send` never blocks: it queues the message, or says why it did not. The queue toward
//   each peer is bounded (messages and bytes); a full queue drops new messages, so a slow
//   or dead peer cannot take the node's memory.
// - `request` sends a message that the receiver answers with `respond`; the answer comes
//   back to the caller matched by a request id, or the call fails with a PeerError.
// - Only nodes of the same cluster, holding the same cluster secret, can exchange messages.

export type PeerMessage = unknown;

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

export interface IncomingMessage {
  readonly from: string;
  readonly message: PeerMessage;
  /** On a request: sends the answer back (once; later calls are ignored). */
  readonly respond: ((answer: PeerMessage) => void) | null;
}

export type SendResult = 'queued' | 'queue-full' | 'unknown-peer' | 'too-large' | 'closed';

export type PeerErrorCode = 'timeout' | 'queue-full' | 'unknown-peer' | 'too-large' | 'closed';

export class PeerError extends Error {
  override readonly name = 'PeerError';
  readonly code: PeerErrorCode;

  constructor(code: PeerErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export interface PeerTransport {
  readonly nodeId: string;
  /** The peers this node may talk to, and where they listen. */
  setPeers(peers: ReadonlyMap<string, PeerAddress>): void;
  send(to: string, message: PeerMessage): SendResult;
  request(to: string, message: PeerMessage, timeoutMs: number): Promise<PeerMessage>;
  onMessage(handler: (incoming: IncomingMessage) => void): void;
  /**
   * Called when an established connection to a peer closes without this node asking: the
   * peer may have died (a process killed closes its sockets at once). A hint, not a
   * verdict: the failure detector decides liveness. Optional: the simulator has no sockets.
   */
  onPeerLost?(handler: (peerId: string) => void): void;
  close(): Promise<void>;
}

export interface TransportLimits {
  /** Largest encoded message, in bytes. Larger ones are refused at send and at receipt. */
  readonly frameBytesMax: number;
  /** Messages queued toward one peer before `send` answers 'queue-full'. */
  readonly queueMessagesMax: number;
  /** Bytes queued toward one peer before `send` answers 'queue-full'. */
  readonly queueBytesMax: number;
}

export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = {
  frameBytesMax: 64 * 1024 * 1024,
  queueMessagesMax: 65_536,
  queueBytesMax: 128 * 1024 * 1024,
};
