// The client's RESP transport: the reply parser against replies cut into arbitrary pieces
// (a fast-check property; replay a failure with RESP_TEST_SEED=<seed>), the command encoder
// against the node's own request parser, and the client with `transport: 'resp'` against a
// real node, stand-in nodes that fail on cue, and a real three-node cluster.

import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { RequestParser } from '../../src/api/resp/request-parser.ts';
import { RingkvClient, RingkvError, type RingDocument } from '../../src/client/index.ts';
import {
  encodeCommand,
  RespErrorReply,
  RespProtocolError,
  RespReplyParser,
  type RespReply,
} from '../../src/client/resp-protocol.ts';
import { http as httpCall, TestCluster, waitFor } from '../cluster/cluster-harness.ts';
import { startTestNode, type TestNode } from '../helpers/test-node.ts';

const SEED = Number(process.env.RESP_TEST_SEED ?? 20261123);
const decoder = new TextDecoder();

/** A reference encoder of replies, written plainly, for the parser to be checked against. */
function encodeReply(reply: RespReply): string {
  if (reply === null) return '$-1\r\n';
  if (reply instanceof RespErrorReply) return `-${reply.message}\r\n`;
  if (typeof reply === 'string') return `+${reply}\r\n`;
  if (typeof reply === 'number') return `:${reply}\r\n`;
  if (Buffer.isBuffer(reply)) return `$${reply.length}\r\n${reply.toString('latin1')}\r\n`;
  return `*${reply.length}\r\n${reply.map(encodeReply).join('')}`;
}

/** Line text as the node writes it: printable ASCII (the reference encodes latin1). */
const lineText = fc.string({ maxLength: 20 }).map((text) => text.replace(/[^\x20-\x7e]/g, '?'));
const replyArbitrary: fc.Arbitrary<RespReply> = fc.letrec<{ reply: RespReply }>((tie) => ({
  reply: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    lineText,
    lineText.map((text) => new RespErrorReply(`ERR ${text}`)),
    fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
    fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
    fc.constant(null),
    fc.array(tie('reply'), { maxLength: 4 }),
  ),
})).reply;

test('replies cut into any pieces parse to the same values as when whole, in order', () => {
  fc.assert(
    fc.property(
      fc.array(replyArbitrary, { minLength: 1, maxLength: 6 }),
      fc.array(fc.nat(24), { maxLength: 40 }),
      (replies, cuts) => {
        const stream = Buffer.from(replies.map(encodeReply).join(''), 'latin1');
        const parser = new RespReplyParser();
        const parsed: RespReply[] = [];
        let offset = 0;
        for (const cut of cuts) {
          parsed.push(...parser.feed(stream.subarray(offset, offset + cut)));
          offset = Math.min(stream.length, offset + cut);
        }
        parsed.push(...parser.feed(stream.subarray(offset)));
        assert.deepEqual(parsed, replies);
        assert.equal(parser.pendingBytes, 0);
      },
    ),
    { seed: SEED, numRuns: 300 },
  );
});

test('the parser refuses malformed replies instead of guessing', () => {
  const malformed = [
    '?what\r\n',
    ':12a\r\n',
    '$3\r\nabcd\r\n',
    '$-5\r\n',
    '+ok\rx',
    `$${2 ** 40}\r\n`,
    '*1\r\n'.repeat(20) + ':1\r\n',
  ];
  for (const text of malformed) {
    assert.throws(() => new RespReplyParser().feed(Buffer.from(text)), RespProtocolError, text);
  }
});

test('encoded commands parse on the node back into the same arguments, binary ones included', () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.string({ maxLength: 30 }), fc.uint8Array({ maxLength: 30 })), {
        minLength: 1,
        maxLength: 8,
      }),
      (args) => {
        // Twice in a row: a command that ends early or late would spoil the next one.
        const parsed: Buffer[][] = [];
        const stream = Buffer.concat([encodeCommand(args), encodeCommand(args)]);
        new RequestParser(1 << 20).feed(stream, (command) => parsed.push(command));
        const expected = args.map((arg) => Buffer.from(arg));
        assert.deepEqual(
          parsed.map((command) => command.map((arg) => Buffer.from(arg))),
          [expected, expected],
        );
      },
    ),
    { seed: SEED, numRuns: 200 },
  );
});

/**
 * Serves a ring document on loopback, for nodes that do not know their addresses. The ring
 * names this server as every node's HTTP address, so that a refresh finds the same ring.
 */
async function serveRing(
  build: (endpoint: string) => Promise<RingDocument>,
): Promise<{ endpoint: string; close(): Promise<void> }> {
  let ring: RingDocument | null = null;
  const server = http.createServer((request, response) => {
    if (request.url !== '/v1/cluster/ring' || ring === null) {
      return void response.writeHead(404).end();
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(ring));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  ring = await build(endpoint);
  return {
    endpoint,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A RESP port that reads each command and then does `onCommand` with the socket. */
async function serveFakeResp(
  onCommand: (socket: net.Socket) => void,
): Promise<{ address: string; commands: () => number; close(): Promise<void> }> {
  let commands = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.on('data', () => {
      commands++;
      onCommand(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    commands: () => commands,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

let node: TestNode;

before(async () => {
  node = await startTestNode();
  const created = await httpCall(`${node.httpUrl}/v1/keyspaces`, {
    method: 'POST',
    body: JSON.stringify({ name: 'carts', n: 1, r: 1, w: 1, conflicts: 'siblings' }),
  });
  assert.equal(created.status, 201, created.text);
});

after(async () => {
  await node?.stop();
});

/** A ring naming `first` as the owner of every partition and `others` after it. */
function ringOf(
  first: { id: string; resp: string },
  others: { id: string; resp: string }[] = [],
  httpOfEveryNode?: string,
): (ringServer: string) => Promise<RingDocument> {
  return async (ringServer) => ({
    clusterId: 'test',
    epoch: 1,
    partitionCount: 16,
    owners: Array<string>(16).fill(first.id),
    nodes: [first, ...others].map((entry) => ({
      ...entry,
      http: httpOfEveryNode ?? ringServer,
      liveness: 'alive' as const,
    })),
    keyspaces: (
      (await httpCall(`${node.httpUrl}/v1/keyspaces`)).json as {
        keyspaces: RingDocument['keyspaces'];
      }
    ).keyspaces,
  });
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RingkvError, String(error));
    return error.code;
  }
  return 'no error';
}

test('over RESP the client puts, gets, deletes, merges siblings and expires values on a real node', async () => {
  const ring = await serveRing(ringOf({ id: 'node1', resp: `127.0.0.1:${node.respPort}` }));
  const client = await RingkvClient.connect({
    endpoints: [ring.endpoint],
    transport: 'resp',
    refreshRingMs: 0,
    timeoutMs: 2_000,
  });
  try {
    const binaryKey = Uint8Array.from([0, 255, 13, 10, 36]);
    await client.put('default', binaryKey, Uint8Array.from([1, 2, 3]));
    const binary = await client.get('default', binaryKey, { r: 'one' });
    assert.deepEqual(binary.value, Uint8Array.from([1, 2, 3]));
    assert.equal(binary.expiresAtMs, null);
    assert.equal(binary.siblings.length, 1);

    assert.deepEqual(await client.get('default', 'absent'), {
      value: null,
      context: '',
      siblings: [],
      expiresAtMs: null,
    });

    // Concurrent writes with one context stay siblings; the read's context merges them.
    await client.put('carts', 'cart', 'start');
    const first = await client.get('carts', 'cart');
    await client.put('carts', 'cart', 'apple', { context: first.context });
    await client.put('carts', 'cart', 'pear', { context: first.context, w: 1 });
    const both = await client.get('carts', 'cart');
    assert.deepEqual(both.siblings.map((sibling) => decoder.decode(sibling.value)).sort(), [
      'apple',
      'pear',
    ]);
    await client.put('carts', 'cart', 'apple+pear', { context: both.context });
    const merged = await client.get('carts', 'cart');
    assert.equal(decoder.decode(merged.value!), 'apple+pear');
    assert.equal(merged.siblings.length, 1);

    assert.deepEqual(await client.delete('carts', 'cart', { context: merged.context }), {
      deleted: true,
    });
    assert.deepEqual(await client.delete('carts', 'cart'), { deleted: false });
    assert.equal((await client.get('carts', 'cart')).value, null);

    const startedMs = Date.now();
    await client.put('default', 'brief', 'v', { ttlMs: 200 });
    const brief = await client.get('default', 'brief');
    assert.ok(brief.expiresAtMs !== null && brief.expiresAtMs >= startedMs + 200);
    await waitFor(async () => (await client.get('default', 'brief')).value === null, 3_000, 'ttl');

    // The node's own codes, as over HTTP; an unknown keyspace is refused before sending.
    assert.equal(
      await codeOf(client.put('default', 'k', 'v', { w: 9 })),
      'RINGKV_INVALID_ARGUMENT',
    );
    assert.equal(
      await codeOf(client.put('default', 'k', 'v', { context: 'no!' })),
      'RINGKV_INVALID_CONTEXT',
    );
    assert.equal(await codeOf(client.get('nosuch', 'k')), 'RINGKV_UNKNOWN_KEYSPACE');

    // Many requests at once share the few connections, pipelined, each with its own reply.
    const keys = Array.from({ length: 300 }, (_, index) => `pipelined:${index}`);
    await Promise.all(keys.map((key) => client.put('default', key, key)));
    const values = await Promise.all(keys.map((key) => client.get('default', key)));
    assert.deepEqual(
      values.map((read) => decoder.decode(read.value!)),
      keys,
    );
  } finally {
    client.close();
    await ring.close();
  }
});

test('a context read over HTTP can be written back over RESP, and the other way', async () => {
  const ring = await serveRing(
    ringOf({ id: 'node1', resp: `127.0.0.1:${node.respPort}` }, [], new URL(node.httpUrl).host),
  );
  const options = { endpoints: [ring.endpoint], refreshRingMs: 0 };
  const overHttp = await RingkvClient.connect(options);
  const overResp = await RingkvClient.connect({ ...options, transport: 'resp' });
  try {
    await overHttp.put('carts', 'shared', 'one');
    const viaHttp = await overHttp.get('carts', 'shared');
    const viaResp = await overResp.get('carts', 'shared');
    assert.equal(viaResp.context, viaHttp.context);
    assert.deepEqual(viaResp.siblings, viaHttp.siblings);
    await overResp.put('carts', 'shared', 'two', { context: viaHttp.context });
    const after = await overHttp.get('carts', 'shared');
    assert.equal(after.siblings.length, 1, 'the context from HTTP superseded the old value');
    await overHttp.put('carts', 'shared', 'three', {
      context: (await overResp.get('carts', 'shared')).context,
    });
    assert.equal((await overResp.get('carts', 'shared')).siblings.length, 1);
  } finally {
    overHttp.close();
    overResp.close();
    await ring.close();
  }
});

test('over RESP a read that times out, or whose connection breaks, goes to the next replica', async () => {
  for (const behaviour of ['silent', 'breaks'] as const) {
    const fake = await serveFakeResp((socket) => {
      if (behaviour === 'breaks') socket.destroy();
    });
    await httpCall(`${node.httpUrl}/v1/kv/default/failover`, { method: 'PUT', body: 'real' });
    const ring = await serveRing(
      ringOf({ id: 'fake', resp: fake.address }, [
        { id: 'real', resp: `127.0.0.1:${node.respPort}` },
      ]),
    );
    const client = await RingkvClient.connect({
      endpoints: [ring.endpoint],
      transport: 'resp',
      refreshRingMs: 0,
      timeoutMs: 300,
      backoffMs: 1,
    });
    try {
      const read = await client.get('default', 'failover');
      assert.equal(decoder.decode(read.value!), 'real', behaviour);
      assert.equal(fake.commands(), 1, `${behaviour}: the stand-in saw the first attempt`);
    } finally {
      client.close();
      await ring.close();
      await fake.close();
    }
  }
});

test('over RESP a write whose connection breaks or times out after sending is UNKNOWN_OUTCOME and is not resent', async () => {
  for (const behaviour of ['silent', 'breaks'] as const) {
    const fake = await serveFakeResp((socket) => {
      if (behaviour === 'breaks') socket.destroy();
    });
    const ring = await serveRing(
      ringOf({ id: 'fake', resp: fake.address }, [
        { id: 'real', resp: `127.0.0.1:${node.respPort}` },
      ]),
    );
    const client = await RingkvClient.connect({
      endpoints: [ring.endpoint],
      transport: 'resp',
      refreshRingMs: 0,
      timeoutMs: 300,
      backoffMs: 1,
    });
    try {
      const failure = await client.put('default', 'in-doubt', behaviour).then(
        () => null,
        (error: unknown) => error,
      );
      assert.ok(failure instanceof RingkvError, `${behaviour}: ${String(failure)}`);
      assert.equal(failure.code, 'UNKNOWN_OUTCOME', behaviour);
      assert.equal(failure.nodeId, 'fake');
      assert.equal(failure.attempts, 1);
      assert.equal(fake.commands(), 1);
      const read = await httpCall(`${node.httpUrl}/v1/kv/default/in-doubt`);
      assert.equal(read.status, 404, `${behaviour}: the write was not resent to the real node`);
    } finally {
      client.close();
      await ring.close();
      await fake.close();
    }
  }
});

test('over RESP a write to a node that refuses connections goes to the next replica', async () => {
  const closed = await serveFakeResp(() => {});
  const refusing = closed.address;
  await closed.close();
  const ring = await serveRing(
    ringOf({ id: 'gone', resp: refusing }, [{ id: 'real', resp: `127.0.0.1:${node.respPort}` }]),
  );
  const client = await RingkvClient.connect({
    endpoints: [ring.endpoint],
    transport: 'resp',
    refreshRingMs: 0,
    backoffMs: 1,
  });
  try {
    await client.put('default', 'rerouted', 'yes');
    assert.equal(decoder.decode((await client.get('default', 'rerouted')).value!), 'yes');
  } finally {
    client.close();
    await ring.close();
  }
});

test('over RESP on a three-node cluster: reads, writes, siblings and expiry; a killed replica is passed over', async () => {
  const cluster = await TestCluster.start({ nodeCount: 3, storage: 'memory' });
  try {
    const created = await httpCall(`${cluster.node('node1').httpUrl}/v1/keyspaces`, {
      method: 'POST',
      body: JSON.stringify({ name: 'carts', n: 3, r: 2, w: 2, conflicts: 'siblings' }),
    });
    assert.equal(created.status, 201, created.text);
    const endpoints = cluster.nodes.map((entry) => new URL(entry.httpUrl).host);
    const client = await RingkvClient.connect({
      endpoints,
      transport: 'resp',
      timeoutMs: 2_000,
      backoffMs: 1,
    });
    try {
      await waitFor(
        async () => (await codeOf(client.get('carts', 'probe'))) === 'no error',
        10_000,
        'keyspace carts on the client and every node',
      );
      for (let index = 0; index < 20; index++) {
        await client.put('default', `key:${index}`, `value ${index}`, { w: 'all' });
      }
      for (let index = 0; index < 20; index++) {
        const read = await client.get('default', `key:${index}`, { r: 'all' });
        assert.equal(decoder.decode(read.value!), `value ${index}`);
      }
      await client.put('carts', 'cart', 'start', { w: 'all' });
      const first = await client.get('carts', 'cart', { r: 'all' });
      await client.put('carts', 'cart', 'apple', { context: first.context, w: 'all' });
      await client.put('carts', 'cart', 'pear', { context: first.context, w: 'all' });
      const both = await client.get('carts', 'cart', { r: 'all' });
      assert.equal(both.siblings.length, 2);
      await client.put('carts', 'cart', 'both', { context: both.context, w: 'all' });
      assert.equal((await client.get('carts', 'cart', { r: 'all' })).siblings.length, 1);
      assert.deepEqual(await client.delete('carts', 'cart', { w: 'all' }), { deleted: true });
      await client.put('default', 'brief', 'v', { ttlMs: 300 });
      assert.ok((await client.get('default', 'brief')).expiresAtMs !== null);

      // Kill the first replica of a key: reads of it go to the next replica. (A write right
      // after may still fail: the node it reaches forwards it to the key's first replica
      // until the failure detector marks that one down.)
      const [firstReplica] = await client.replicasOf('default', 'key:0');
      assert.ok(firstReplica !== undefined);
      await cluster.signal(firstReplica, 'SIGKILL');
      for (let index = 0; index < 20; index++) {
        const read = await client.get('default', `key:${index}`, { r: 'one' });
        assert.equal(decoder.decode(read.value!), `value ${index}`);
      }

      // A write that waits on its coordinator (w: all, one replica dead) when the coordinator
      // is killed: its connection breaks after it was sent, so the client cannot know whether
      // it was applied, and does not send it again.
      let inDoubtKey = '';
      let coordinator = '';
      for (let index = 0; coordinator === ''; index++) {
        const [replica] = await client.replicasOf('default', `in-doubt:${index}`);
        if (replica !== firstReplica) {
          inDoubtKey = `in-doubt:${index}`;
          coordinator = replica!;
        }
      }
      const startedMs = Date.now();
      const pending = client.put('default', inDoubtKey, 'maybe', { w: 'all' }).then(
        () => null,
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      await cluster.signal(coordinator, 'SIGKILL');
      const failure = await pending;
      assert.ok(failure instanceof RingkvError, String(failure));
      assert.equal(
        failure.code,
        'UNKNOWN_OUTCOME',
        `${failure.message} after ${Date.now() - startedMs} ms`,
      );
      assert.equal(failure.nodeId, coordinator);
      assert.equal(failure.attempts, 1);
    } finally {
      client.close();
    }
  } finally {
    await cluster.close();
  }
});

test('over RESP the token opens each connection with AUTH; a wrong one is RINGKV_UNAUTHORIZED', async () => {
  const guarded = await startTestNode({ password: 'sesame' });
  const ring = await serveRing(async (ringServer) => ({
    clusterId: 'guarded',
    epoch: 1,
    partitionCount: 16,
    owners: Array<string>(16).fill('node1'),
    nodes: [
      { id: 'node1', http: ringServer, resp: `127.0.0.1:${guarded.respPort}`, liveness: 'alive' },
    ],
    keyspaces: [
      {
        id: 0,
        name: 'default',
        n: 3,
        r: 2,
        w: 2,
        consistency: 'eventual',
        conflicts: 'lww',
        durability: 'sync',
      },
    ],
  }));
  const options = { endpoints: [ring.endpoint], transport: 'resp' as const, refreshRingMs: 0 };
  const right = await RingkvClient.connect({ ...options, token: 'sesame' });
  const wrong = await RingkvClient.connect({ ...options, token: 'guess' });
  try {
    await right.put('default', 'guarded', 'yes');
    assert.equal(decoder.decode((await right.get('default', 'guarded')).value!), 'yes');
    assert.equal(await codeOf(wrong.get('default', 'guarded')), 'RINGKV_UNAUTHORIZED');
  } finally {
    right.close();
    wrong.close();
    await ring.close();
    await guarded.stop();
  }
});
