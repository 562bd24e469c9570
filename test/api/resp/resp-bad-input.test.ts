// Bad input on the Redis port: a clear error, the connection kept where Redis keeps it,
// closed where Redis closes it, and the node serving and holding its data throughout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { Prng } from '../../../src/core/prng.ts';
import { startTestNode, type TestNode } from '../../helpers/test-node.ts';

let node: TestNode;
let redis: Redis;

before(async () => {
  node = await startTestNode({ respInputBytesMax: 1024 * 1024, password: null });
  redis = new Redis({ port: node.respPort, host: '127.0.0.1', lazyConnect: true });
  await redis.connect();
  await redis.set('precious', 'kept');
});

after(async () => {
  redis.disconnect();
  await node.stop();
});

/** Sends bytes on a fresh connection; resolves with everything received and whether the server closed. */
function exchange(bytes: Buffer, waitMs = 300): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket: Socket = connect(node.respPort, '127.0.0.1');
    let text = '';
    let closed = false;
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      resolve({ text, closed });
    });
    socket.on('connect', () => socket.write(bytes));
    setTimeout(() => {
      if (!closed) {
        socket.destroy();
        resolve({ text, closed: false });
      }
    }, waitMs);
  });
}

test('a bulk length of 2^40 is a protocol error that closes the connection', async () => {
  const { text, closed } = await exchange(Buffer.from(`*2\r\n$3\r\nGET\r\n$${2 ** 40}\r\n`));
  assert.match(text, /^-ERR Protocol error: invalid bulk length\r\n$/);
  assert.ok(closed);
});

test('unknown commands and wrong arity answer an error and keep the connection', async () => {
  const { text, closed } = await exchange(
    Buffer.from('*1\r\n$4\r\nNOPE\r\n*1\r\n$3\r\nGET\r\n*1\r\n$4\r\nPING\r\n'),
  );
  assert.equal(
    text,
    "-ERR unknown command 'NOPE', with args beginning with: \r\n-ERR wrong number of arguments for 'get' command\r\n+PONG\r\n",
  );
  assert.equal(closed, false);
});

test('a truncated frame is waited for, not misread', async () => {
  const { text, closed } = await exchange(Buffer.from('*2\r\n$3\r\nGET\r\n$8\r\npreci'));
  assert.equal(text, '');
  assert.equal(closed, false);
});

test('an inline command over the input limit is refused', async () => {
  const { text, closed } = await exchange(Buffer.alloc(70 * 1024, 0x61));
  assert.match(text, /^-ERR Protocol error: too big inline request/);
  assert.ok(closed);
});

test('random bytes never crash the node or touch its data', async () => {
  const prng = new Prng(99);
  for (let round = 0; round < 40; round++) {
    const length = prng.between(1, 400);
    const bytes = Buffer.alloc(length);
    for (let i = 0; i < length; i++)
      bytes[i] = prng.chance(0.3)
        ? prng.pick([0x2a, 0x24, 0x0d, 0x0a, 0x31, 0x2d])
        : prng.below(256);
    await exchange(bytes, 30);
  }
  assert.equal(await redis.get('precious'), 'kept');
  assert.equal(await redis.ping(), 'PONG');
});

test('a password gates every command but AUTH, HELLO and QUIT', async () => {
  const guarded = await startTestNode({ password: 's3cret' });
  try {
    const anonymous = await new Promise<string>((resolve) => {
      const socket = connect(guarded.respPort, '127.0.0.1');
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString();
        if (text.split('\r\n').length > 4) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('connect', () => socket.write('GET k\r\nAUTH wrong\r\nAUTH s3cret\r\nPING\r\n'));
    });
    assert.equal(
      anonymous,
      '-NOAUTH Authentication required.\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n+PONG\r\n',
    );
    const client = new Redis({
      port: guarded.respPort,
      host: '127.0.0.1',
      password: 's3cret',
      lazyConnect: true,
    });
    await client.connect();
    assert.equal(await client.set('k', 'v'), 'OK');
    client.disconnect();
  } finally {
    await guarded.stop();
  }
});
