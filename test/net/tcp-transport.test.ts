import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { encodeFrame, FrameType } from '../../src/net/frames.ts';
import { TcpTransport } from '../../src/net/tcp-transport.ts';
import type { PeerTransport } from '../../src/net/contract.ts';
import { CLUSTER, runTransportCompliance, TEST_LIMITS } from './compliance.ts';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

runTransportCompliance('tcp', () => {
  const started: TcpTransport[] = [];
  const open = async (nodeId: string, port: number, cluster = CLUSTER) => {
    const transport = await TcpTransport.listen({
      nodeId,
      ...cluster,
      host: '127.0.0.1',
      port,
      limits: TEST_LIMITS,
      redialMinMs: 10,
      redialMaxMs: 50,
    });
    started.push(transport);
    return transport;
  };
  return {
    create: (nodeId, cluster) => open(nodeId, 0, cluster),
    addressOf: (transport: PeerTransport) => ({
      host: '127.0.0.1',
      port: (transport as TcpTransport).port,
    }),
    reserve: async () => ({ host: '127.0.0.1', port: await freePort() }),
    createAt: (nodeId, address) => open(nodeId, address.port),
    advance: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    dispose: async () => {
      for (const transport of started) await transport.close();
    },
  };
});

test('tcp: a stranger without the handshake is cut off, and so is an oversized frame', async () => {
  const transport = await TcpTransport.listen({
    nodeId: 'a',
    ...CLUSTER,
    host: '127.0.0.1',
    port: 0,
    limits: TEST_LIMITS,
    handshakeTimeoutMs: 200,
  });
  const received: unknown[] = [];
  transport.onMessage((incoming) => received.push(incoming.message));
  try {
    const closedAfter = async (bytes: Buffer | null): Promise<number> => {
      const started = Date.now();
      const socket = connect(transport.port, '127.0.0.1');
      await once(socket, 'connect');
      if (bytes !== null) socket.write(bytes);
      socket.resume();
      await once(socket, 'close');
      return Date.now() - started;
    };
    // A message frame with no handshake first.
    await closedAfter(encodeFrame([FrameType.message, 'injected']));
    // A frame claiming 2^31 bytes.
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(2 ** 31, 0);
    await closedAfter(huge);
    // Silence: closed when the handshake times out.
    assert.ok((await closedAfter(null)) >= 150);
    assert.deepEqual(received, []);
  } finally {
    await transport.close();
  }
});

test('tcp: a peer that restarts on the same port is redialed and reached again', async () => {
  const port = await freePort();
  const options = {
    ...CLUSTER,
    host: '127.0.0.1',
    limits: TEST_LIMITS,
    redialMinMs: 10,
    redialMaxMs: 40,
  };
  const a = await TcpTransport.listen({ nodeId: 'a', port: 0, ...options });
  let b = await TcpTransport.listen({ nodeId: 'b', port, ...options });
  const peers = new Map([
    ['a', { host: '127.0.0.1', port: a.port }],
    ['b', { host: '127.0.0.1', port }],
  ]);
  a.setPeers(peers);
  try {
    let received: unknown[] = [];
    b.onMessage((incoming) => received.push(incoming.message));
    a.send('b', 'before');
    await waitFor(() => received.length === 1);
    await b.close();
    b = await TcpTransport.listen({ nodeId: 'b', port, ...options });
    received = [];
    b.onMessage((incoming) => received.push(incoming.message));
    // Messages sent while the link is down or redialing arrive, or are lost; never twice.
    for (let i = 0; i < 20; i++) {
      a.send('b', i);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await waitFor(() => received.includes(19));
    const numbers = received as number[];
    assert.deepEqual(
      numbers,
      [...new Set(numbers)].sort((x, y) => x - y),
    );
  } finally {
    await a.close();
    await b.close();
  }
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(condition(), 'timed out');
}

test('tcp: a peer whose connection closes on its own is reported lost, once per connection', async () => {
  const options = {
    ...CLUSTER,
    host: '127.0.0.1',
    limits: TEST_LIMITS,
    redialMinMs: 10,
    redialMaxMs: 40,
  };
  const a = await TcpTransport.listen({ nodeId: 'a', port: 0, ...options });
  const b = await TcpTransport.listen({ nodeId: 'b', port: 0, ...options });
  a.setPeers(
    new Map([
      ['a', { host: '127.0.0.1', port: a.port }],
      ['b', { host: '127.0.0.1', port: b.port }],
    ]),
  );
  const lost: string[] = [];
  a.onPeerLost((peer) => lost.push(peer));
  try {
    const received: unknown[] = [];
    b.onMessage((incoming) => received.push(incoming.message));
    a.send('b', 'hello');
    await waitFor(() => received.length === 1);
    assert.deepEqual(lost, [], 'nothing is lost while the peer answers');
    await b.close();
    await waitFor(() => lost.length === 1);
    // Redials that fail were never established: they report nothing more.
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.deepEqual(lost, ['b']);
  } finally {
    await a.close();
    await b.close();
  }
});
