// Strong keys go to their first replica that is alive. A replica that forwarded a key there
// and hears nothing back from it for a phase timeout, a backoff and a margin fails the
// forward at once (its outcome unknown) instead of waiting out the request timeout, and
// proposes the coordinator's keys itself until the coordinator speaks again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../../src/core/bytes.ts';
import { DEFAULT_KEYSPACE, type Keyspace } from '../../src/core/keyspace.ts';
import type { ClientReply, ClientRequest } from '../../src/core/requests.ts';
import { ClusterWorld } from '../../src/sim/cluster-world.ts';
import { seedsFor } from './sim-helpers.ts';

const STRONG: Keyspace = { ...DEFAULT_KEYSPACE, id: 1, name: 'strong', consistency: 'strong' };
const REQUEST_TIMEOUT_MS = 2000;
/** A phase (a quarter of the request timeout), the proposer's longest backoff, a margin. */
const SILENCE_PATIENCE_MS = REQUEST_TIMEOUT_MS / 4 + 200 + 100;

function put(key: Uint8Array, value: string): ClientRequest {
  return {
    op: 'write',
    keyspace: 'strong',
    items: [
      {
        key,
        mutation: {
          kind: 'set',
          value: utf8(value),
          condition: 'always',
          expiry: { kind: 'none' },
        },
      },
    ],
  };
}

test('a forward to a coordinator that fell silent fails early, and the key is served by another replica', () => {
  for (const seed of seedsFor(5, 40)) {
    const world = new ClusterWorld({
      seed,
      nodeCount: 3,
      keyspaces: [DEFAULT_KEYSPACE, STRONG],
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    });
    assert.ok(world.waitFormed(), `seed ${seed}: formed`);
    let index = 0;
    let key = utf8('k0');
    while (world.replicasOf(STRONG.id, key, 3)[0] !== 'n1') key = utf8(`k${++index}`);
    assert.ok(world.call('n2', put(key, 'before')).ok, `seed ${seed}: a first write`);
    // n1 stops answering anyone, for longer than a request timeout.
    world.pause('n1', 3 * REQUEST_TIMEOUT_MS);
    let reply: ClientReply | null = null;
    const sentMs = world.nowMs;
    world.submit('n2', put(key, 'during'), (answer) => (reply = answer));
    world.runUntil(() => reply !== null, REQUEST_TIMEOUT_MS * 2);
    const answer = reply as ClientReply | null;
    assert.ok(answer !== null && !answer.ok, `seed ${seed}: the forward did not fail`);
    assert.match(answer.error.message, /fell silent; a write may or may not have happened/);
    const waitedMs = world.nowMs - sentMs;
    assert.ok(
      waitedMs >= SILENCE_PATIENCE_MS && waitedMs < REQUEST_TIMEOUT_MS,
      `seed ${seed}: failed after ${waitedMs} ms`,
    );
    // n1 is still paused: n2 now proposes the key itself, with n3 as the other acceptor.
    const next = world.call('n2', put(key, 'after'), REQUEST_TIMEOUT_MS);
    assert.ok(next.ok, `seed ${seed}: ${next.ok ? '' : next.error.message}`);
    const read = world.call(
      'n3',
      { op: 'get', keyspace: 'strong', keys: [key] },
      REQUEST_TIMEOUT_MS,
    );
    assert.ok(read.ok && read.op === 'get', `seed ${seed}: read`);
    assert.equal(new TextDecoder().decode(read.results[0]!.value!), 'after', `seed ${seed}`);
  }
});
