// Real Redis tools against ringkv: redis-cli and redis-benchmark (Debian's redis-tools),
// and a seeded random workload through ioredis checked against a simple model.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { Prng } from '../../../src/core/prng.ts';
import { startTestNode, type TestNode } from '../../helpers/test-node.ts';

let node: TestNode;

before(async () => {
  node = await startTestNode({ storage: 'lmdb' });
});

after(async () => {
  await node.stop();
});

// The node runs in this process: tools must run asynchronously, or the node could not answer.
const run = promisify(execFile);

async function redisCli(...args: string[]): Promise<string> {
  const { stdout } = await run(
    'redis-cli',
    ['-h', '127.0.0.1', '-p', String(node.respPort), ...args],
    {
      encoding: 'utf8',
      timeout: 20_000,
    },
  );
  return stdout.trim();
}

test('redis-cli: commands and replies as a person sees them', async () => {
  assert.equal(await redisCli('PING'), 'PONG');
  assert.equal(await redisCli('SET', 'greeting', 'hello'), 'OK');
  assert.equal(await redisCli('GET', 'greeting'), 'hello');
  assert.equal(await redisCli('INCR', 'visits'), '1');
  assert.equal(await redisCli('SET', 'k', 'v', 'EX', '10'), 'OK');
  assert.equal(await redisCli('TTL', 'k'), '10');
  assert.equal(await redisCli('GET', 'nothing'), '');
  assert.match(await redisCli('LPUSH', 'list', 'x'), /ERR unknown command 'LPUSH'/);
  assert.equal(await redisCli('--scan', '--pattern', 'gree*'), 'greeting');
  assert.match(await redisCli('INFO', 'keyspace'), /db0:keys=3/);
  // redis-cli's interactive hints call COMMAND DOCS; -3 talks RESP3 through HELLO.
  assert.equal(await redisCli('-3', 'GET', 'greeting'), 'hello');
});

test('redis-benchmark runs SET and GET to completion against ringkv', async () => {
  const result = await run(
    'redis-benchmark',
    [
      '-h',
      '127.0.0.1',
      '-p',
      String(node.respPort),
      '-t',
      'set,get',
      '-n',
      '3000',
      '-c',
      '20',
      '-d',
      '100',
      '-r',
      '500',
      '-P',
      '4',
      '--csv',
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  const rows = result.stdout
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(',').map((cell) => cell.replace(/"/g, '')));
  assert.deepEqual(
    rows.map((row) => row[0]),
    ['SET', 'GET'],
  );
  for (const row of rows) assert.ok(Number(row[1]) > 0, `no throughput for ${row[0]}`);
  // It reads the server's persistence settings with CONFIG GET first, and warns if it can't.
  assert.doesNotMatch(result.stderr, /CONFIG/);
  // The benchmark's keys are there, with its 100-byte values. Which of the 500 it wrote is
  // random (a given one is missed about once in 400 runs), so the check takes those listed.
  const keys = (await redisCli('KEYS', 'key:*')).split('\n').filter((key) => key !== '');
  assert.ok(keys.length > 400, `${keys.length} of the benchmark's 500 keys`);
  for (const key of keys.slice(0, 5)) assert.equal((await redisCli('GET', key)).length, 100);
});

test('a seeded random workload through ioredis matches a model of Redis strings', async () => {
  const seed = 7;
  const prng = new Prng(seed);
  const redis = new Redis({ port: node.respPort, host: '127.0.0.1', lazyConnect: true });
  await redis.connect();
  const model = new Map<string, string>();
  try {
    await redis.flushdb();
    for (let step = 0; step < 1500; step++) {
      const key = `m${prng.below(25)}`;
      const context = `seed ${seed} step ${step} key ${key}`;
      switch (prng.below(7)) {
        case 0: {
          const value = `v${prng.below(1000)}`;
          assert.equal(await redis.set(key, value), 'OK', context);
          model.set(key, value);
          break;
        }
        case 1:
          assert.equal(await redis.get(key), model.get(key) ?? null, context);
          break;
        case 2:
          assert.equal(await redis.del(key), model.delete(key) ? 1 : 0, context);
          break;
        case 3: {
          const current = model.get(key);
          if (current !== undefined && !/^-?(0|[1-9]\d*)$/.test(current)) {
            await assert.rejects(redis.incr(key), /not an integer/, context);
          } else {
            const next = BigInt(current ?? '0') + 1n;
            assert.equal(String(await redis.incr(key)), next.toString(), context);
            model.set(key, next.toString());
          }
          break;
        }
        case 4: {
          const suffix = `+${prng.below(10)}`;
          const next = (model.get(key) ?? '') + suffix;
          assert.equal(await redis.append(key, suffix), next.length, context);
          model.set(key, next);
          break;
        }
        case 5: {
          const value = `n${prng.below(100)}`;
          const reply = await redis.set(key, value, 'NX');
          assert.equal(reply, model.has(key) ? null : 'OK', context);
          if (!model.has(key)) model.set(key, value);
          break;
        }
        case 6:
          assert.equal(await redis.exists(key), model.has(key) ? 1 : 0, context);
          break;
      }
    }
    assert.equal(await redis.dbsize(), model.size);
  } finally {
    redis.disconnect();
  }
});
