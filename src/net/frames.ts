// Peer frames on the wire: a 4-byte big-endian length, then a msgpack body. The body is an
// array whose first element says what it is:
//
//   [HELLO, protocol version, cluster id, node id, nonce]    handshake, first frame each way
//   [PROOF, hmac]                                            handshake, second frame each way
//   [MESSAGE, payload]                                       one-way message
//   [REQUEST, request id, payload]                           to be answered
//   [RESPONSE, request id, payload]                          the answer

import { Packr } from 'msgpackr';

export const FrameType = { hello: 0, proof: 1, message: 2, request: 3, response: 4 } as const;
export const PEER_PROTOCOL_VERSION = 1;
const LENGTH_BYTES = 4;

// Plain msgpack (no record extension), so the frames stay readable by any msgpack library.
const packr = new Packr({ useRecords: false, moreTypes: false });

export class FrameError extends Error {
  override readonly name = 'FrameError';
}

/** One frame, length prefix included. */
export function encodeFrame(body: readonly unknown[]): Buffer {
  const encoded = packr.pack(body);
  const frame = Buffer.allocUnsafe(LENGTH_BYTES + encoded.length);
  frame.writeUInt32BE(encoded.length, 0);
  encoded.copy(frame, LENGTH_BYTES);
  return frame;
}

/** Bytes of a frame's body, from its encoding. */
export function frameBodyBytes(frame: Buffer): number {
  return frame.length - LENGTH_BYTES;
}

/**
 * Cuts a byte stream into frame bodies. A length over `frameBytesMax` is an error before
 * any of the frame is buffered, so a peer cannot make the node hold a huge frame.
 */
export class FrameDecoder {
  private readonly frameBytesMax: number;
  private buffered: Buffer = Buffer.alloc(0);

  constructor(frameBytesMax: number) {
    this.frameBytesMax = frameBytesMax;
  }

  /** Feeds bytes and returns the decoded bodies of every frame now complete. */
  push(chunk: Buffer): unknown[][] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const bodies: unknown[][] = [];
    let offset = 0;
    while (this.buffered.length - offset >= LENGTH_BYTES) {
      const length = this.buffered.readUInt32BE(offset);
      if (length > this.frameBytesMax) {
        throw new FrameError(`frame of ${length} bytes, the limit is ${this.frameBytesMax}`);
      }
      if (this.buffered.length - offset - LENGTH_BYTES < length) break;
      const start = offset + LENGTH_BYTES;
      let body: unknown;
      try {
        body = packr.unpack(this.buffered.subarray(start, start + length));
      } catch (error) {
        throw new FrameError(`undecodable frame: ${(error as Error).message}`);
      }
      if (!Array.isArray(body) || typeof body[0] !== 'number') {
        throw new FrameError('a frame must be an array that starts with its type');
      }
      bodies.push(body as unknown[]);
      offset = start + length;
    }
    // Keep only the unfinished frame; copy it so the socket's chunk is not pinned.
    this.buffered = offset === 0 ? this.buffered : Buffer.from(this.buffered.subarray(offset));
    return bodies;
  }
}
