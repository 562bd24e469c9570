// The Redis protocol against a real node, through ioredis: command semantics as Redis has
// them, pipelining, binary safety, expiry, auth and errors in Redis's own form.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startTestNode, waitFor, type TestNode } from '../../helpers/test-node.ts';

let node: TestNode;
let redis: Redis;

before(async () => {
  node = await startTestNode({ valueBytesMax: 1024 * 1024 });
  redis = new Redis({
    port: node.respPort,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
  });
  await redis.connect();
});

after(async () => {
  redis.disconnect();
  await node.stop();
});

test('GET, SET and its options behave as in Redis', async () => {
  assert.equal(await redis.set('s:a', '1'), 'OK');
  assert.equal(await redis.get('s:a'), '1');
  assert.equal(await redis.get('s:missing'), null);
  assert.equal(await redis.set('s:a', '2', 'NX'), null);
  assert.equal(await redis.set('s:b', '2', 'XX'), null);
  assert.equal(await redis.set('s:b', '2', 'NX'), 'OK');
  assert.equal(await redis.set('s:b', '3', 'XX', 'GET'), '2');
  assert.equal(await redis.set('s:new', 'x', 'GET'), null);
  assert.equal(await redis.get('s:b'), '3');
  await assert.rejects(redis.set('s:a', 'v', 'EX', 0), /invalid expire time in 'set' command/);
  await assert.rejects(redis.set('s:a', 'v', 'EX', 'abc'), /value is not an integer/);
  await assert.rejects(redis.call('SET', 's:a', 'v', 'NX', 'XX'), /syntax error/);
  assert.equal(await redis.set('s:ttl', 'v', 'EX', 100), 'OK');
  assert.equal(await redis.set('s:ttl', 'w', 'KEEPTTL'), 'OK');
  const ttl = await redis.ttl('s:ttl');
  assert.ok(ttl > 95 && ttl <= 100, `ttl ${ttl}`);
  assert.equal(await redis.set('s:ttl', 'w'), 'OK');
  assert.equal(await redis.ttl('s:ttl'), -1);
  assert.equal(await redis.set('s:pxat', 'v', 'PXAT', Date.now() + 60_000), 'OK');
  assert.ok((await redis.pttl('s:pxat')) > 50_000);
  assert.equal(await redis.set('s:exat', 'v', 'EXAT', Math.floor(Date.now() / 1000) + 60), 'OK');
  assert.ok((await redis.ttl('s:exat')) > 50);
});

test('DEL, EXISTS, MGET, MSET, GETDEL, APPEND, STRLEN, TYPE', async () => {
  assert.equal(await redis.mset('m:a', '1', 'm:b', '2', 'm:c', '3'), 'OK');
  assert.deepEqual(await redis.mget('m:a', 'm:b', 'm:none', 'm:c'), ['1', '2', null, '3']);
  assert.equal(await redis.exists('m:a', 'm:a', 'm:none'), 2);
  assert.equal(await redis.del('m:a', 'm:b', 'm:none', 'm:a'), 2);
  assert.equal(await redis.exists('m:a'), 0);
  assert.equal(await redis.getdel('m:c'), '3');
  assert.equal(await redis.getdel('m:c'), null);
  assert.equal(await redis.append('m:s', 'hello'), 5);
  assert.equal(await redis.append('m:s', ' world'), 11);
  assert.equal(await redis.strlen('m:s'), 11);
  assert.equal(await redis.strlen('m:none'), 0);
  assert.equal(await redis.type('m:s'), 'string');
  assert.equal(await redis.type('m:none'), 'none');
  await assert.rejects(redis.call('MSET', 'a'), /wrong number of arguments for 'mset'/);
});

test('INCR family: integers, overflow and non-integers', async () => {
  assert.equal(await redis.incr('i:n'), 1);
  assert.equal(await redis.incrby('i:n', 10), 11);
  assert.equal(await redis.decr('i:n'), 10);
  assert.equal(await redis.decrby('i:n', 20), -10);
  await redis.set('i:text', 'abc');
  await assert.rejects(
    redis.incr('i:text'),
    /^ReplyError: ERR value is not an integer or out of range/,
  );
  await assert.rejects(redis.incrby('i:n', 'x' as unknown as number), /value is not an integer/);
  await redis.set('i:max', '9223372036854775807');
  await assert.rejects(redis.incr('i:max'), /increment or decrement would overflow/);
  await assert.rejects(
    redis.decrby('i:n', '-9223372036854775808' as unknown as number),
    /decrement would overflow/,
  );
  assert.equal(await redis.get('i:max'), '9223372036854775807');
  assert.equal(await redis.get('i:text'), 'abc');
});

test('EXPIRE family, TTL, PTTL, PERSIST; keys expire on time whether read or not', async () => {
  await redis.set('e:a', 'v');
  assert.equal(await redis.ttl('e:a'), -1);
  assert.equal(await redis.ttl('e:none'), -2);
  assert.equal(await redis.expire('e:none', 10), 0);
  assert.equal(await redis.expire('e:a', 100), 1);
  assert.equal(await redis.expire('e:a', 50, 'GT'), 0);
  assert.equal(await redis.expire('e:a', 200, 'GT'), 1);
  assert.equal(await redis.expire('e:a', 10, 'NX'), 0);
  assert.equal(await redis.persist('e:a'), 1);
  assert.equal(await redis.persist('e:a'), 0);
  assert.equal(await redis.pexpire('e:a', 150), 1);
  const pttl = await redis.pttl('e:a');
  assert.ok(pttl > 0 && pttl <= 150, `pttl ${pttl}`);
  assert.equal(await redis.expire('e:gone', -1), 0);
  await redis.set('e:gone', 'v');
  assert.equal(await redis.expire('e:gone', -1), 1);
  assert.equal(await redis.exists('e:gone'), 0);
  // Never read again: the count must drop on its own.
  await redis.set('e:unread', 'v', 'PX', 100);
  await redis.select(0);
  const before = await redis.dbsize();
  await waitFor(
    async () => (await redis.dbsize()) === before - 2,
    5000,
    'expired keys to leave DBSIZE',
  );
  assert.equal(await redis.get('e:a'), null);
});

test('pipelined commands answer in order, reads seeing earlier writes', async () => {
  const pipeline = redis.pipeline();
  for (let i = 0; i < 200; i++) {
    pipeline.set(`p:${i % 10}`, String(i));
    pipeline.get(`p:${i % 10}`);
    pipeline.incr('p:counter');
  }
  const results = await pipeline.exec();
  assert.ok(results !== null);
  for (let i = 0; i < 200; i++) {
    assert.deepEqual(results[i * 3], [null, 'OK']);
    assert.deepEqual(results[i * 3 + 1], [null, String(i)]);
    assert.deepEqual(results[i * 3 + 2], [null, i + 1]);
  }
});

test('keys and values are binary-safe', async () => {
  const key = Buffer.from([0, 255, 13, 10, 42, 36]);
  const value = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 256));
  await redis.set(key, value);
  assert.deepEqual(await redis.getBuffer(key), value);
});

test('SCAN with MATCH and COUNT visits every key once; KEYS and DBSIZE agree', async () => {
  await redis.select(0);
  await redis.flushdb();
  const expected = new Set<string>();
  for (let i = 0; i < 300; i++) {
    await redis.set(`scan:${i}`, 'v');
    expected.add(`scan:${i}`);
  }
  await redis.set('other', 'v');
  const seen: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', 'scan:*', 'COUNT', 37);
    seen.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  assert.equal(seen.length, 300);
  assert.deepEqual(new Set(seen), expected);
  assert.equal((await redis.keys('scan:1*')).length, 111);
  assert.equal(await redis.dbsize(), 301);
  await assert.rejects(redis.scan('12345678901'), /invalid cursor/);
  assert.equal(await redis.flushdb(), 'OK');
  assert.equal(await redis.dbsize(), 0);
});

test('connection commands: PING, ECHO, SELECT, CLIENT, INFO, COMMAND, HELLO', async () => {
  assert.equal(await redis.ping(), 'PONG');
  assert.equal(await redis.echo('hi'), 'hi');
  await assert.rejects(redis.select(1), /DB index is out of range/);
  assert.equal(await redis.client('SETNAME', 'tester'), 'OK');
  assert.equal(await redis.client('GETNAME'), 'tester');
  assert.equal(typeof (await redis.client('ID')), 'number');
  assert.match(String(await redis.info('server')), /redis_version:7\.2\.0/);
  assert.ok(((await redis.command('COUNT')) as unknown as number) > 30);
  const hello = (await redis.call('HELLO', '2')) as unknown[];
  assert.deepEqual(hello.slice(0, 4), ['server', 'redis', 'version', '7.2.0']);
});

test('CONFIG GET answers by glob, without regard to case, in pairs; CONFIG SET is refused', async () => {
  assert.deepEqual(await redis.config('GET', 'save'), ['save', '']);
  assert.deepEqual(await redis.config('GET', 'APPEND*'), [
    'appendonly',
    'yes',
    'appendfsync',
    'always',
  ]);
  assert.deepEqual(await redis.call('CONFIG', 'GET', 'maxmemory*', 'maxmemory', 'port'), [
    'maxmemory',
    '0',
    'maxmemory-policy',
    'noeviction',
    'port',
    String(node.respPort),
  ]);
  assert.deepEqual(await redis.config('GET', 'no-such-parameter'), []);
  await assert.rejects(redis.call('CONFIG', 'GET'), /wrong number of arguments for 'config\|get'/);
  await assert.rejects(redis.config('SET', 'save', '60 1'), /CONFIG SET is not supported/);
  await assert.rejects(redis.call('CONFIG', 'FROB'), /unknown subcommand 'FROB'. Try CONFIG HELP/);
  const help = (await redis.call('CONFIG', 'HELP')) as string[];
  assert.match(help[1]!, /^GET <pattern>/);
  assert.equal(await redis.ping(), 'PONG');
});

test('CONFIG GET appendfsync follows the durability of the selected keyspace', async () => {
  const relaxed = await startTestNode({ durability: 'relaxed' });
  const client = new Redis({ port: relaxed.respPort, host: '127.0.0.1', lazyConnect: true });
  try {
    await client.connect();
    assert.deepEqual(await client.config('GET', 'appendfsync'), ['appendfsync', 'no']);
  } finally {
    client.disconnect();
    await relaxed.stop();
  }
});

test('errors in Redis form: unknown command and wrong arity keep the connection', async () => {
  await assert.rejects(
    redis.call('LPUSH', 'l', 'x'),
    /^ReplyError: ERR unknown command 'LPUSH', with args beginning with: 'l' 'x'/,
  );
  await assert.rejects(redis.call('GET'), /ERR wrong number of arguments for 'get' command/);
  await assert.rejects(redis.call('SET', Buffer.alloc(8193), 'v'), /RINGKV_KEY_TOO_LARGE/);
  await assert.rejects(
    redis.call('SET', 'big', Buffer.alloc(1024 * 1024 + 1)),
    /RINGKV_VALUE_TOO_LARGE/,
  );
  assert.equal(await redis.exists('big'), 0);
  assert.equal(await redis.ping(), 'PONG');
});

test('RESP3 through HELLO 3: nulls and maps in RESP3 form', async () => {
  const client = new Redis({ port: node.respPort, host: '127.0.0.1', lazyConnect: true });
  await client.connect();
  try {
    const hello = await client.call('HELLO', '3');
    assert.ok(hello !== null);
    assert.equal(await client.get('r3:none'), null);
    assert.equal(await client.set('r3:k', 'v'), 'OK');
    assert.equal(await client.get('r3:k'), 'v');
  } finally {
    client.disconnect();
  }
});

test('INFO keyspaces lists every keyspace by its SELECT index; INFO cluster the members', async () => {
  const keyspaces = await redis.info('keyspaces');
  assert.match(
    keyspaces,
    /^db0:name=default,n=3,r=2,w=2,consistency=eventual,conflicts=lww,durability=sync$/m,
  );
  const cluster = await redis.info('cluster');
  assert.match(cluster, /^cluster_state:ready$/m);
  assert.match(cluster, /^cluster_members:1$/m);
  assert.match(
    cluster,
    new RegExp(`^member_${node.config.nodeId}:liveness=alive,partitions=256,`, 'm'),
  );
});

test('many clients that send INFO as they connect all get their answer (shared key counts)', async () => {
  // A node of its own: no count cached yet, so the first INFO counts and the rest wait.
  const fresh = await startTestNode();
  const clients = Array.from(
    { length: 20 },
    () =>
      new Redis({
        port: fresh.respPort,
        host: '127.0.0.1',
        lazyConnect: true,
        maxRetriesPerRequest: 0,
      }),
  );
  try {
    // ioredis sends INFO as its ready check: twenty at once share one count.
    await Promise.all(clients.map((client) => client.connect()));
    for (const client of clients) assert.equal(client.status, 'ready');
    const infos = await Promise.all(clients.map((client) => client.info('keyspace')));
    // One count, shared: every answer is the same (and may be a few seconds old).
    assert.equal(new Set(infos).size, 1);
  } finally {
    for (const client of clients) client.disconnect();
    await fresh.stop();
  }
});
