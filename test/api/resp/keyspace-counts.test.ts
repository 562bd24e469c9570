// INFO's key counts are shared: one count at a time, its result given to every INFO that
// waited for it and reused while fresh, so clients that send INFO on every connect (ioredis)
// do not make the node count its keys once per connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_KEYSPACE } from '../../../src/core/keyspace.ts';
import type { ClientReply, ClientRequest } from '../../../src/core/requests.ts';
import { KeyspaceCounts } from '../../../src/api/resp/keyspace-counts.ts';
import type { NodeApi } from '../../../src/runtime/node-api.ts';

test('concurrent INFO calls share one count, and a fresh result is reused', () => {
  const node = {
    keyspaces: () => [DEFAULT_KEYSPACE, { ...DEFAULT_KEYSPACE, id: 1, name: 'empty' }],
  } as unknown as NodeApi;
  const pending: ((reply: ClientReply) => void)[] = [];
  const asked: string[] = [];
  const call = (request: ClientRequest, onReply: (reply: ClientReply) => void): void => {
    asked.push(request.keyspace);
    pending.push(onReply);
  };
  const counts = new KeyspaceCounts();
  const delivered: (readonly string[])[] = [];
  for (let i = 0; i < 50; i++) counts.get(node, call, (lines) => delivered.push(lines));
  assert.deepEqual(asked, ['default'], 'one count started for fifty calls');
  pending.shift()!({ ok: true, op: 'count', count: 7 });
  pending.shift()!({ ok: true, op: 'count', count: 0 });
  assert.deepEqual(asked, ['default', 'empty']);
  assert.equal(delivered.length, 50);
  for (const lines of delivered) assert.deepEqual(lines, ['db0:keys=7,expires=0,avg_ttl=0']);
  counts.get(node, call, (lines) => delivered.push(lines));
  assert.equal(asked.length, 2, 'a fresh result is reused without counting');
  assert.equal(delivered.length, 51);
});
