// The core Node driven by hand: inputs in, effects out, persistence applied by the test.
// These tests pin the contract between the core and any shell.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromUtf8, utf8 } from '../../src/core/bytes.ts';
import { DEFAULT_KEYSPACE, type Keyspace } from '../../src/core/keyspace.ts';
import { DEFAULT_LIMITS } from '../../src/core/limits.ts';
import { Node, type Effect, type Input } from '../../src/core/node.ts';
import type { ClientReply, ClientRequest, Mutation } from '../../src/core/requests.ts';
import type { Storage } from '../../src/storage/contract.ts';
import { openStorage } from '../../src/storage/open-storage.ts';

const RELAXED: Keyspace = { ...DEFAULT_KEYSPACE, id: 1, name: 'relaxed', durability: 'relaxed' };

class Harness {
  readonly node: Node;
  readonly storage: Storage;
  readonly replies = new Map<number, ClientReply>();
  readonly unpersisted: Extract<Effect, { type: 'persist' }>[] = [];
  nowMs = 1_700_000_000_000;
  private nextRequestId = 1;

  constructor(storage: Storage, keyspaces: readonly Keyspace[] = [DEFAULT_KEYSPACE, RELAXED]) {
    this.storage = storage;
    this.node = new Node(
      {
        nodeId: 'n1',
        keyspaces,
        limits: { ...DEFAULT_LIMITS, valueBytesMax: 1024 },
        partitionCount: 256,
      },
      storage,
    );
  }

  step(input: Input): void {
    for (const effect of this.node.step(input)) {
      if (effect.type === 'reply') this.replies.set(effect.requestId, effect.reply);
      else if (effect.type === 'persist') {
        // As a shell does: readable at once, durable once committed.
        this.storage.stage(effect.writes);
        this.unpersisted.push(effect);
      }
    }
  }

  request(request: ClientRequest): number {
    const requestId = this.nextRequestId++;
    this.step({ type: 'request', nowMs: this.nowMs, requestId, request });
    return requestId;
  }

  /** Persists every emitted batch, in order, and tells the node. */
  async persistAll(): Promise<void> {
    while (this.unpersisted.length > 0) {
      const batch = this.unpersisted.shift()!;
      await this.storage.commit([], { durable: batch.durable });
      this.step({ type: 'persisted', nowMs: this.nowMs, batchId: batch.batchId });
    }
  }

  async call(request: ClientRequest): Promise<ClientReply> {
    const requestId = this.request(request);
    await this.persistAll();
    const reply = this.replies.get(requestId);
    assert.ok(reply !== undefined, 'no reply after persisting');
    return reply;
  }

  async write(key: string, mutation: Mutation, keyspace = 'default'): Promise<ClientReply> {
    return this.call({ op: 'write', keyspace, items: [{ key: utf8(key), mutation }] });
  }

  async get(key: string, keyspace = 'default'): Promise<string | null> {
    const reply = await this.call({ op: 'get', keyspace, keys: [utf8(key)] });
    assert.ok(reply.ok && reply.op === 'get');
    const value = reply.results[0]!.value;
    return value === null ? null : fromUtf8(value);
  }
}

const set = (value: string, extra: Partial<Extract<Mutation, { kind: 'set' }>> = {}): Mutation => ({
  kind: 'set',
  value: utf8(value),
  condition: 'always',
  expiry: { kind: 'none' },
  ...extra,
});

async function harness(): Promise<Harness> {
  return new Harness(await openStorage('memory', ''));
}

test('a sync write is acknowledged only after its batch is persisted', async () => {
  const h = await harness();
  const requestId = h.request({
    op: 'write',
    keyspace: 'default',
    items: [{ key: utf8('k'), mutation: set('v') }],
  });
  assert.equal(h.replies.has(requestId), false, 'acknowledged before durable');
  assert.equal(h.unpersisted.length, 1);
  assert.equal(h.unpersisted[0]!.durable, true);
  await h.persistAll();
  assert.equal(h.replies.get(requestId)?.ok, true);
  assert.equal(await h.get('k'), 'v');
});

test('a read of a write not yet durable waits for it, and sees it', async () => {
  const h = await harness();
  h.request({
    op: 'write',
    keyspace: 'default',
    items: [{ key: utf8('k'), mutation: set('new') }],
  });
  const readId = h.request({ op: 'get', keyspace: 'default', keys: [utf8('k')] });
  assert.equal(h.replies.has(readId), false, 'a read exposed a value a crash could take back');
  await h.persistAll();
  const reply = h.replies.get(readId)!;
  assert.ok(reply.ok && reply.op === 'get');
  assert.equal(fromUtf8(reply.results[0]!.value!), 'new');
});

test('a read of a key that no unpersisted write touched does not wait for the sync', async () => {
  const h = await harness();
  for (let i = 0; i < 20; i++) {
    h.request({
      op: 'write',
      keyspace: 'default',
      items: [{ key: utf8(`w${i}`), mutation: set('x') }],
    });
  }
  // Reads wait per hash cell of the key: of 20 other keys against 20 written, a cell shared
  // now and then would make its read wait, never most of them.
  let answered = 0;
  for (let i = 0; i < 20; i++) {
    const readId = h.request({ op: 'get', keyspace: 'default', keys: [utf8(`r${i}`)] });
    const reply = h.replies.get(readId);
    if (reply === undefined) continue;
    assert.ok(reply.ok && reply.op === 'get' && reply.results[0]!.value === null);
    answered++;
  }
  assert.ok(answered >= 18, `${answered} of 20 reads answered before the sync`);
  const written = h.request({ op: 'get', keyspace: 'default', keys: [utf8('w3')] });
  assert.equal(h.replies.has(written), false, 'a written key was read before its sync');
  await h.persistAll();
  assert.equal(h.replies.has(written), true);
});

test('a relaxed keyspace acknowledges at once, and reads see the write', async () => {
  const h = await harness();
  const requestId = h.request({
    op: 'write',
    keyspace: 'relaxed',
    items: [{ key: utf8('k'), mutation: set('v') }],
  });
  assert.equal(h.replies.get(requestId)?.ok, true);
  assert.equal(h.unpersisted[0]!.durable, false);
  const readId = h.request({ op: 'get', keyspace: 'relaxed', keys: [utf8('k')] });
  const reply = h.replies.get(readId)!;
  assert.ok(reply.ok && reply.op === 'get' && fromUtf8(reply.results[0]!.value!) === 'v');
  await h.persistAll();
});

test('a write request is atomic: a failing item leaves nothing written', async () => {
  const h = await harness();
  await h.write('counter', set('not a number'));
  const reply = await h.call({
    op: 'write',
    keyspace: 'default',
    items: [
      { key: utf8('a'), mutation: set('1') },
      { key: utf8('counter'), mutation: { kind: 'incrBy', delta: 1n } },
    ],
  });
  assert.equal(reply.ok, false);
  assert.ok(!reply.ok && reply.error.code === 'RINGKV_NOT_AN_INTEGER');
  assert.equal(await h.get('a'), null);
  assert.equal(h.unpersisted.length, 0);
});

test('items on one key in one request see each other', async () => {
  const h = await harness();
  const reply = await h.call({
    op: 'write',
    keyspace: 'default',
    items: [
      { key: utf8('k'), mutation: set('1') },
      { key: utf8('k'), mutation: { kind: 'incrBy', delta: 41n } },
    ],
  });
  assert.ok(reply.ok && reply.op === 'write');
  assert.equal(reply.results[1]!.integer, 42n);
  assert.equal(await h.get('k'), '42');
});

test('limits: oversized keys and values and unknown keyspaces are refused and change nothing', async () => {
  const h = await harness();
  const big = await h.call({
    op: 'write',
    keyspace: 'default',
    items: [{ key: new Uint8Array(8193), mutation: set('v') }],
  });
  assert.ok(!big.ok && big.error.code === 'RINGKV_KEY_TOO_LARGE');
  const value = await h.write('k', set('x'.repeat(1025)));
  assert.ok(!value.ok && value.error.code === 'RINGKV_VALUE_TOO_LARGE');
  const appended = await h.write('k', set('x'.repeat(1000)));
  assert.ok(appended.ok);
  const overflow = await h.write('k', { kind: 'append', suffix: utf8('y'.repeat(100)) });
  assert.ok(!overflow.ok && overflow.error.code === 'RINGKV_VALUE_TOO_LARGE');
  assert.equal((await h.get('k'))?.length, 1000);
  const unknown = await h.call({ op: 'get', keyspace: 'nope', keys: [utf8('k')] });
  assert.ok(!unknown.ok && unknown.error.code === 'RINGKV_UNKNOWN_KEYSPACE');
});

test('keys expire on time whether read or not, and the tick purges them to tombstones', async () => {
  const h = await harness();
  await h.write('short', set('v', { expiry: { kind: 'after', ms: 100 } }));
  await h.write('long', set('v', { expiry: { kind: 'after', ms: 10_000 } }));
  const countLive = async (): Promise<number> => {
    const reply = await h.call({ op: 'count', keyspace: 'default' });
    assert.ok(reply.ok && reply.op === 'count');
    return reply.count;
  };
  assert.equal(await countLive(), 2);
  h.nowMs += 100;
  assert.equal(await countLive(), 1, 'an expired key still counted');
  h.step({ type: 'tick', nowMs: h.nowMs });
  assert.equal(h.unpersisted.length, 1, 'the tick did not purge');
  await h.persistAll();
  // The purge turned the record into a tombstone and removed its expiry index entry.
  h.step({ type: 'tick', nowMs: h.nowMs });
  assert.equal(h.unpersisted.length, 0, 'the expiry index entry was not removed');
  assert.equal(await h.get('short'), null);
  assert.equal(await h.get('long'), 'v');
});

test('a causally later write wins over an earlier one whatever the clock says', async () => {
  const h = await harness();
  await h.write('k', set('first'));
  h.nowMs -= 60_000; // the wall clock jumps back a minute
  await h.write('k', set('second'));
  assert.equal(await h.get('k'), 'second');
});

test('scan pages through every live key exactly once', async () => {
  const h = await harness();
  const expected = new Set<string>();
  for (let i = 0; i < 57; i++) {
    await h.write(`key${i}`, set('v'));
    expected.add(`key${i}`);
  }
  await h.write('key3', { kind: 'delete' });
  expected.delete('key3');
  const seen: string[] = [];
  let cursor: Uint8Array | null = null;
  for (let page = 0; page < 100; page++) {
    const reply = await h.call({
      op: 'scan',
      keyspace: 'default',
      cursor,
      count: 10,
      match: null,
      prefix: null,
    });
    assert.ok(reply.ok && reply.op === 'scan');
    seen.push(...reply.keys.map(fromUtf8));
    cursor = reply.cursor;
    if (cursor === null) break;
  }
  assert.equal(cursor, null);
  assert.deepEqual(new Set(seen), expected);
  assert.equal(seen.length, expected.size);
});

test('flush removes every live key of the keyspace only', async () => {
  const h = await harness();
  await h.write('a', set('1'));
  await h.write('b', set('2'));
  await h.write('r', set('3'), 'relaxed');
  const reply = await h.call({ op: 'flush', keyspace: 'default' });
  assert.ok(reply.ok && reply.op === 'flush' && reply.removed === 2);
  assert.equal(await h.get('a'), null);
  assert.equal(await h.get('r', 'relaxed'), '3');
});

test('the HLC survives a restart: timestamps never go back', async () => {
  const h = await harness();
  await h.write('k', set('v'));
  const first = await h.call({ op: 'get', keyspace: 'default', keys: [utf8('k')] });
  assert.ok(first.ok && first.op === 'get');
  const before = first.results[0]!.siblings[0]!.timestamp;
  const restarted = new Harness(h.storage);
  restarted.nowMs = h.nowMs - 3_600_000; // restarted with a clock an hour slow
  await restarted.write('k', set('w'));
  const second = await restarted.call({ op: 'get', keyspace: 'default', keys: [utf8('k')] });
  assert.ok(second.ok && second.op === 'get');
  const after = second.results[0]!.siblings[0]!.timestamp;
  assert.ok(after[0] > before[0] || (after[0] === before[0] && after[1] > before[1]));
});

test('the siblings policy keeps concurrent writes made from the same context', async () => {
  const siblingsKeyspace: Keyspace = {
    ...DEFAULT_KEYSPACE,
    id: 2,
    name: 'sib',
    conflicts: 'siblings',
  };
  const h = new Harness(await openStorage('memory', ''), [siblingsKeyspace]);
  await h.write('k', set('base'), 'sib');
  const read = await h.call({ op: 'get', keyspace: 'sib', keys: [utf8('k')] });
  assert.ok(read.ok && read.op === 'get');
  const context = read.results[0]!.context;
  for (const value of ['left', 'right']) {
    await h.call({
      op: 'write',
      keyspace: 'sib',
      items: [{ key: utf8('k'), mutation: set(value), context }],
    });
  }
  const both = await h.call({ op: 'get', keyspace: 'sib', keys: [utf8('k')] });
  assert.ok(both.ok && both.op === 'get');
  assert.deepEqual(both.results[0]!.siblings.map((s) => fromUtf8(s.value)).sort(), [
    'left',
    'right',
  ]);
  // A write with the merged context supersedes both.
  await h.call({
    op: 'write',
    keyspace: 'sib',
    items: [{ key: utf8('k'), mutation: set('merged'), context: both.results[0]!.context }],
  });
  const merged = await h.call({ op: 'get', keyspace: 'sib', keys: [utf8('k')] });
  assert.ok(merged.ok && merged.op === 'get');
  assert.deepEqual(
    merged.results[0]!.siblings.map((s) => fromUtf8(s.value)),
    ['merged'],
  );
});

test('the HLC ceiling is stored ahead of the clock, not with every batch', async () => {
  const h = await harness();
  const metaWrites = (): number =>
    h.unpersisted.flatMap((batch) => batch.writes).filter((write) => write.key[0] === 0x00).length;
  h.request({ op: 'write', keyspace: 'default', items: [{ key: utf8('a'), mutation: set('1') }] });
  h.request({ op: 'write', keyspace: 'default', items: [{ key: utf8('b'), mutation: set('2') }] });
  assert.equal(metaWrites(), 1, 'the first batch stores the ceiling, the second does not');
  await h.persistAll();
  h.nowMs += 5_000; // the clock passes the ceiling
  h.request({ op: 'write', keyspace: 'default', items: [{ key: utf8('c'), mutation: set('3') }] });
  assert.equal(metaWrites(), 1, 'a clock past the ceiling raises it');
  await h.persistAll();
});

test('a single node serves strong and chain keyspaces, and acknowledges only what is durable', async () => {
  const strong: Keyspace = { ...DEFAULT_KEYSPACE, id: 2, name: 'strong', consistency: 'strong' };
  const chain: Keyspace = { ...DEFAULT_KEYSPACE, id: 3, name: 'chain', consistency: 'chain' };
  const storage = await openStorage('memory', '');
  const h = new Harness(storage, [DEFAULT_KEYSPACE, strong]);
  // A chain keyspace is created by a map change, which builds the chains.
  const created = await h.call({
    op: 'createKeyspace',
    keyspace: 'chain',
    spec: { n: 3, r: 2, w: 2, consistency: 'chain', conflicts: 'lww', durability: 'sync' },
  });
  assert.ok(created.ok, JSON.stringify(created));
  assert.equal(created.op === 'createKeyspace' && created.keyspace.id, chain.id);
  for (const keyspace of ['strong', 'chain']) {
    const requestId = h.request({
      op: 'write',
      keyspace,
      items: [{ key: utf8('n'), mutation: set('41') }],
    });
    assert.equal(h.replies.has(requestId), false, `${keyspace}: acknowledged before durable`);
    await h.persistAll();
    // A chain's tail answers once it holds a lease; a tick or two gives it one.
    for (let i = 0; i < 30 && !h.replies.has(requestId); i++) {
      h.nowMs += 100;
      h.step({ type: 'tick', nowMs: h.nowMs });
      await h.persistAll();
    }
    assert.equal(h.replies.get(requestId)?.ok, true, keyspace);
    const incremented = await h.write('n', { kind: 'incrBy', delta: 1n }, keyspace);
    assert.ok(
      incremented.ok && incremented.op === 'write',
      incremented.ok ? '' : incremented.error.message,
    );
    assert.equal(incremented.results[0]!.integer, 42n);
    assert.equal(incremented.results[0]!.version, 2);
    const stale = await h.write(
      'n',
      { kind: 'compareAndSet', expected: { version: 1 }, value: utf8('x') },
      keyspace,
    );
    assert.ok(stale.ok && stale.op === 'write' && !stale.results[0]!.applied, keyspace);
    assert.equal(await h.get('n', keyspace), '42');
    const ttl = await h.write('n', set('y', { expiry: { kind: 'after', ms: 1000 } }), keyspace);
    assert.ok(!ttl.ok && ttl.error.code === 'RINGKV_INVALID_ARGUMENT', keyspace);
  }
  const compare = await h.write('k', {
    kind: 'compareAndSet',
    expected: { version: 0 },
    value: utf8('v'),
  });
  assert.ok(!compare.ok && compare.error.code === 'RINGKV_INVALID_ARGUMENT', 'eventual refuses it');
});
