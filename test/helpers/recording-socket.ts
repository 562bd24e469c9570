// The side of a socket that a RESP Connection uses, recording each write: for tests that
// drive a connection without a network.

import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import pino from 'pino';
import { detachedConnection } from '../../src/api/resp/server.ts';
import { DEFAULT_NODE_CONFIG } from '../../src/runtime/config.ts';
import { Metrics } from '../../src/runtime/metrics.ts';
import { NodeRuntime } from '../../src/runtime/node-runtime.ts';

export class RecordingSocket extends EventEmitter {
  readonly writes: Buffer[] = [];
  writableLength = 0;
  remoteAddress = '127.0.0.1';
  remotePort = 1;
  setNoDelay(): void {}
  pause(): void {}
  resume(): void {}
  end(): void {}
  write(bytes: Buffer): boolean {
    this.writes.push(Buffer.from(bytes));
    return true;
  }

  /** Everything written so far, as one string. */
  get output(): string {
    return Buffer.concat(this.writes).toString('latin1');
  }
}

/**
 * A node on the memory engine with one RESP connection over a RecordingSocket; the caller
 * closes `runtime`.
 */
export async function recordedConnection(durability: 'sync' | 'relaxed'): Promise<{
  readonly runtime: NodeRuntime;
  readonly socket: RecordingSocket;
  readonly metrics: Metrics;
}> {
  const metrics = new Metrics();
  const logger = pino({ level: 'silent' });
  const config = { ...DEFAULT_NODE_CONFIG, storage: 'memory' as const, durability };
  const runtime = await NodeRuntime.open(config, { metrics, logger });
  const socket = new RecordingSocket();
  detachedConnection(socket as unknown as Socket, runtime, {
    metrics,
    logger,
    inputBytesMax: config.respInputBytesMax,
  });
  return { runtime, socket, metrics };
}
