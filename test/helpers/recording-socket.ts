// The side of a socket that a RESP Connection uses, recording each write: for tests that
// drive a connection without a network.

import { EventEmitter } from 'node:events';

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
