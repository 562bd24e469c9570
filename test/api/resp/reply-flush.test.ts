// When replies leave: a RESP connection holds the replies finished in one pass of the event
// loop and writes them together at its end, and the client's RESP transport sends the
// commands issued in one pass together, whichever tick issued them. A socket stand-in
// counts the server's writes; the client's socket's writes are counted at its Writable hooks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, Socket } from 'node:net';
import { RespConnections } from '../../../src/client/resp-call.ts';
import { recordedConnection } from '../../helpers/recording-socket.ts';

const nextPass = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('a RESP connection writes the replies of every read of one pass once, at its end, in order', async () => {
  const { runtime, socket } = await recordedConnection('relaxed');
  try {
    // Three reads in one pass: nothing is written until the pass ends, then all at once.
    socket.emit('data', Buffer.from('*1\r\n$4\r\nPING\r\n'));
    socket.emit('data', Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n'));
    socket.emit('data', Buffer.from('*2\r\n$3\r\nGET\r\n$1\r\nk\r\n'));
    assert.equal(socket.writes.length, 0, 'no write before the end of the pass');
    await nextPass();
    assert.deepEqual(
      socket.writes.map((bytes) => bytes.toString('latin1')),
      ['+PONG\r\n+OK\r\n$1\r\nv\r\n'],
    );
    // A read in a later pass gets a write of its own.
    socket.emit('data', Buffer.from('*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n'));
    await nextPass();
    assert.deepEqual(
      socket.writes.map((bytes) => bytes.toString('latin1')),
      ['+PONG\r\n+OK\r\n$1\r\nv\r\n', '$2\r\nhi\r\n'],
    );
  } finally {
    await runtime.close();
  }
});

test('the client sends the commands of one pass in one write, from whichever tick they came', async () => {
  const server = createServer((socket) => {
    socket.on('data', (chunk: Buffer) => {
      // One +OK per command received.
      const commands = chunk.toString('latin1').split('*1\r\n').length - 1;
      socket.write('+OK\r\n'.repeat(commands));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(typeof address === 'object' && address !== null);
  const target = `127.0.0.1:${address.port}`;
  // One connection, so that every command takes the same socket.
  const connections = new RespConnections(1, null);
  // What the client's socket hands to the system, one entry per write: a socket writes
  // through `_write` (one buffer) or `_writev` (several), the hooks of a Writable.
  const writes: string[][] = [];
  const prototype = Socket.prototype as unknown as {
    _write: (chunk: Buffer, encoding: string, done: () => void) => void;
    _writev: (chunks: { chunk: Buffer }[], done: () => void) => void;
  };
  const { _write: write, _writev: writev } = prototype;
  prototype._write = function (this: Socket, chunk, encoding, done) {
    if (this.remotePort === address.port) writes.push([chunk.toString('latin1')]);
    write.call(this, chunk, encoding, done);
  };
  prototype._writev = function (this: Socket, chunks, done) {
    if (this.remotePort === address.port) {
      writes.push(chunks.map(({ chunk }) => chunk.toString('latin1')));
    }
    writev.call(this, chunks, done);
  };
  try {
    // The connection is established (and its first write made) before the measured pass.
    const first = await connections.call(target, ['A'], 5_000);
    assert.equal(first.kind, 'answered');
    writes.length = 0;
    const outcomes: Promise<unknown>[] = [];
    outcomes.push(connections.call(target, ['B'], 5_000));
    process.nextTick(() => outcomes.push(connections.call(target, ['C'], 5_000)));
    await Promise.resolve();
    outcomes.push(connections.call(target, ['D'], 5_000));
    await new Promise((resolve) => process.nextTick(resolve));
    await Promise.all(outcomes);
    assert.deepEqual(writes, [['*1\r\n$1\r\nB\r\n', '*1\r\n$1\r\nD\r\n', '*1\r\n$1\r\nC\r\n']]);
  } finally {
    prototype._write = write;
    prototype._writev = writev;
    connections.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
