// DESIGN section 1, strong keyspaces: "available whenever a majority of the key's N replicas
// can be reached; no leader election, so no pause when one replica dies". Three real node
// processes on LMDB, a strong keyspace with n 3, and concurrent clients (the TypeScript client
// with every endpoint, ioredis on the nodes that stay up) running get, put, compare-and-set on
// the version and increment on a few keys. After a warm-up one node is killed with SIGKILL;
// the load goes on, the node is started again on its data, and the load goes on once more.
//
// What is proved, on the history recorded with real times (performance.now):
// - every key's history is linearizable (checkLinearizable must decide it: a run out of
//   budget fails the test rather than pass it);
// - after the kill no interval without a successful completion is as long as the nodes'
//   request timeout;
// - every client completed operations while the node was down and after it came back;
// - once the load stops, every node, the restarted one included, reads the same value and
//   version of every key.
//
// How operations become history entries (src/check/history.ts): a write whose answer never
// came, or came as UNAVAILABLE, may have taken effect: outcome unknown. A write refused
// before it reached a node (connection refused, OVERLOADED) is failed, as is any read that
// got no answer. The checker's register knows values, not versions, so a compare-and-set on
// a version is recorded as one on the value read with that version. That is exact only while
// no value repeats in a key's life, which the workload ensures: nothing is deleted, every put
// and compare-and-set writes a number never written before (a multiple of VALUE_STRIDE), and
// increments add a positive delta, far less than VALUE_STRIDE in all.
//
// Randomness (operation mix, keys, deltas, pauses, which node is killed) comes from one seed,
// printed; replay with RINGKV_TEST_SEED=<seed>. Real processes keep their own timing, so a
// replay draws the same choices, not the same interleaving.

import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RingkvClient } from '../../src/client/index.ts';
import { Prng } from '../../src/core/prng.ts';
import type { History, Operation } from '../../src/check/history.ts';
import { checkLinearizable, describeOperation } from '../../src/check/linearizability.ts';
import { FAST_TIMINGS, http, TestCluster, waitFor } from './cluster-harness.ts';
import {
  clientPrng as seededClientPrng,
  freshValue,
  newLoadState,
  nowMs,
  pause,
  recordOperation,
  runTypescriptClient,
  sleep,
  type LoadState,
} from './recorded-load.ts';

const SEED = Number(process.env.RINGKV_TEST_SEED ?? Date.now() % 1_000_000);
const KEYSPACE = 'ledger';
/** SELECT index of the keyspace: default is 0 and this is the first one created. */
const KEYSPACE_INDEX = 1;
const KEY_COUNT = 4;
/** Candidate key names tried when looking for keys whose first replica covers every node. */
const KEY_CANDIDATES_MAX = 200;
const HTTP_CLIENTS = 6;
const WARM_UP_MS = 2_000;
const DOWN_MS = 5_000;
const AFTER_RESTART_MS = 3_000;
/** The client gives up on a request after this; longer than the node's own timeout. */
const CLIENT_TIMEOUT_MS = FAST_TIMINGS.requestTimeoutMs * 2;
const CHECK_BUDGET_MS = 20_000;
const EXCERPT_OPERATIONS = 30;

let cluster: TestCluster | null = null;
const redisConnections: Redis[] = [];
const ringkvClients: RingkvClient[] = [];
after(async () => {
  for (const connection of redisConnections) connection.disconnect();
  for (const client of ringkvClients) client.close();
  await cluster?.close();
});

function clientPrng(clientId: number): Prng {
  return seededClientPrng(SEED, clientId);
}

/** A TypeScript client's loop on the keyspace (recorded-load.ts). */
async function runHttpClient(
  load: LoadState,
  clientId: number,
  client: RingkvClient,
  keys: readonly string[],
): Promise<void> {
  await runTypescriptClient(load, clientId, client, KEYSPACE, keys, clientPrng(clientId));
}

/** An ioredis connection's loop on one node: GET, SET, SET NX, INCRBY. */
async function runRedisClient(
  load: LoadState,
  clientId: number,
  redis: Redis,
  keys: readonly string[],
): Promise<void> {
  const prng = clientPrng(clientId);
  while (!load.stopping) {
    const key = prng.pick(keys);
    const draw = prng.below(100);
    if (draw < 40) {
      await recordOperation(
        load,
        { client: clientId, key, op: 'get', input: null },
        () => redis.get(key),
        (result) => result,
      );
    } else if (draw < 60) {
      const value = freshValue(load);
      await recordOperation(
        load,
        { client: clientId, key, op: 'put', input: { value } },
        () => redis.set(key, value),
        () => null,
      );
    } else if (draw < 65) {
      const value = freshValue(load);
      await recordOperation(
        load,
        { client: clientId, key, op: 'cas', input: { expected: null, value } },
        () => redis.set(key, value, 'NX'),
        (result) => result === 'OK',
      );
    } else {
      const delta = prng.between(1, 9);
      await recordOperation(
        load,
        { client: clientId, key, op: 'incr', input: { delta } },
        () => redis.incrby(key, delta),
        (result) => String(result),
      );
    }
    await pause(prng);
  }
}

async function connectRedis(port: number): Promise<Redis> {
  const redis = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    commandTimeout: CLIENT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
  });
  redisConnections.push(redis);
  await redis.connect();
  await redis.select(KEYSPACE_INDEX);
  return redis;
}

/**
 * KEY_COUNT keys whose first replicas, by the client's ring, include every node: then the
 * killed node is the coordinator the clients pick for some of the keys.
 */
async function pickKeys(client: RingkvClient, nodeIds: readonly string[]): Promise<string[]> {
  const keys: string[] = [];
  const firstReplicas = new Set<string>();
  for (let candidate = 0; candidate < KEY_CANDIDATES_MAX; candidate++) {
    const key = `account-${candidate}`;
    const first = (await client.replicasOf(KEYSPACE, key))[0];
    assert.ok(first !== undefined, 'a key has replicas');
    const missing = nodeIds.length - firstReplicas.size;
    const slotsLeft = KEY_COUNT - keys.length;
    // Take a key whose first replica is new, or any key once every node is covered.
    if (!firstReplicas.has(first) || slotsLeft > missing) {
      keys.push(key);
      firstReplicas.add(first);
    }
    if (keys.length === KEY_COUNT) return keys;
  }
  throw new Error(`no ${KEY_COUNT} keys among ${KEY_CANDIDATES_MAX} cover every node`);
}

/** The longest stretch of [fromMs, toMs] with no successful completion, and where it ends. */
function longestGap(
  history: History,
  fromMs: number,
  toMs: number,
): { gapMs: number; endsAtMs: number } {
  const completions = history
    .filter((operation) => operation.outcome === 'ok' && operation.completedAt !== null)
    .map((operation) => operation.completedAt!)
    .filter((completedAt) => completedAt >= fromMs && completedAt <= toMs)
    .sort((a, b) => a - b);
  let previous = fromMs;
  let longest = { gapMs: 0, endsAtMs: fromMs };
  for (const completedAt of [...completions, toMs]) {
    if (completedAt - previous > longest.gapMs) {
      longest = { gapMs: completedAt - previous, endsAtMs: completedAt };
    }
    previous = completedAt;
  }
  return longest;
}

/** Per client, the longest stretch of [fromMs, toMs] in which it completed nothing. */
function longestClientWaits(
  history: History,
  clientNames: ReadonlyMap<number, string>,
  fromMs: number,
  toMs: number,
): string {
  return [...clientNames.keys()]
    .map((clientId) => {
      const own = history.filter((operation) => operation.client === clientId);
      const firstMs = Math.max(fromMs, own[0]?.invokedAt ?? fromMs);
      return `${clientId}: ${longestGap(own, firstMs, toMs).gapMs.toFixed(0)} ms`;
    })
    .join(', ');
}

/** The operations of `key` around history index `center`, for a failure message. */
function excerpt(history: History, key: string, center: number): string {
  const indices = history.flatMap((operation, index) => (operation.key === key ? [index] : []));
  const position = Math.max(0, indices.indexOf(center));
  const start = Math.max(0, position - EXCERPT_OPERATIONS);
  return indices
    .slice(start, position + 5)
    .map((index) => describeOperation(history[index]!, index))
    .join('\n');
}

/**
 * `history` with one read of the warm-up answering a value its key had already lost: reads
 * G1 and G2 of the key saw different values, G1 ended before G2 began (so G1's value is the
 * older one), and G3 began after G2 ended. No value repeats in a key's life, so G3 answering
 * G1's value cannot be explained by any order. The warm-up has no unknown outcomes, so the
 * search that proves it is short.
 */
function staleReadInWarmUp(history: History, beforeMs: number): History {
  const reads = history.flatMap((operation, index) =>
    operation.op === 'get' && operation.outcome === 'ok' && operation.completedAt! < beforeMs
      ? [{ operation, index }]
      : [],
  );
  for (const first of reads) {
    for (const second of reads) {
      const [g1, g2] = [first.operation, second.operation];
      if (g2.key !== g1.key || g2.output === g1.output || g2.invokedAt <= g1.completedAt!) {
        continue;
      }
      const third = reads.find(
        ({ operation }) => operation.key === g1.key && operation.invokedAt > g2.completedAt!,
      );
      if (third === undefined) continue;
      const changed = { ...third.operation, output: g1.output } as Operation;
      return history.map((operation, index) => (index === third.index ? changed : operation));
    }
  }
  throw new Error('the warm-up has no three reads that make a stale read');
}

function summarize(history: History): string {
  const counts = { ok: 0, failed: 0, unknown: 0 };
  for (const operation of history) counts[operation.outcome]++;
  return `${history.length} operations: ${counts.ok} ok, ${counts.failed} failed, ${counts.unknown} unknown`;
}

/** Unknown outcomes by the phase their operation was invoked in. */
function unknownsByPhase(
  history: History,
  phases: readonly { readonly name: string; readonly fromMs: number }[],
): string {
  return phases
    .map((phase, index) => {
      const toMs = phases[index + 1]?.fromMs ?? Infinity;
      const count = history.filter(
        (operation) =>
          operation.outcome === 'unknown' &&
          operation.invokedAt >= phase.fromMs &&
          operation.invokedAt < toMs,
      ).length;
      return `${count} ${phase.name}`;
    })
    .join(', ');
}

test('a strong keyspace stays linearizable and answers without a gap when one of three nodes is killed with SIGKILL', async (context: TestContext) => {
  context.diagnostic(`seed ${SEED}; replay with RINGKV_TEST_SEED=${SEED}`);
  const prng = new Prng(SEED);
  const running = await TestCluster.start({ nodeCount: 3, storage: 'lmdb' });
  cluster = running;
  const created = await http(`${running.node('node1').httpUrl}/v1/keyspaces`, {
    method: 'POST',
    body: JSON.stringify({ name: KEYSPACE, consistency: 'strong', n: 3 }),
  });
  assert.equal(created.status, 201, created.text);
  for (const node of running.nodes) {
    await waitFor(
      async () => (await http(`${node.httpUrl}/v1/kv/${KEYSPACE}/probe`)).status === 404,
      10_000,
      `${node.id} to know keyspace ${KEYSPACE}`,
    );
  }

  const endpoints = running.nodes.map((node) => `127.0.0.1:${node.httpPort}`);
  for (let index = 0; index < HTTP_CLIENTS; index++) {
    ringkvClients.push(
      await RingkvClient.connect({ endpoints, timeoutMs: CLIENT_TIMEOUT_MS, retries: 2 }),
    );
  }
  const nodeIds = running.nodes.map((node) => node.id);
  const keys = await pickKeys(ringkvClients[0]!, nodeIds);
  const victim = prng.pick(nodeIds);
  const survivors = running.nodes.filter((node) => node.id !== victim);
  context.diagnostic(`keys ${keys.join(', ')}; ${victim} is killed`);

  const load: LoadState = newLoadState();
  const loops: Promise<void>[] = [];
  const clientNames = new Map<number, string>();
  ringkvClients.forEach((client, index) => {
    clientNames.set(index, `client ${index} (HTTP, every node)`);
    loops.push(runHttpClient(load, index, client, keys));
  });
  for (const [index, node] of survivors.entries()) {
    const clientId = HTTP_CLIENTS + index;
    clientNames.set(clientId, `client ${clientId} (Redis on ${node.id})`);
    loops.push(runRedisClient(load, clientId, await connectRedis(node.respPort), keys));
  }

  const lateClientId = HTTP_CLIENTS + survivors.length;
  let killedAtMs: number, restartingAtMs: number, restartedAtMs: number, stoppedAtMs: number;
  try {
    await sleep(WARM_UP_MS);
    killedAtMs = nowMs(load);
    await running.signal(victim, 'SIGKILL');
    await sleep(DOWN_MS);
    restartingAtMs = nowMs(load);
    await running.restart(victim);
    restartedAtMs = nowMs(load);
    // A Redis connection to the restarted node joins the load: it must be served there too.
    clientNames.set(lateClientId, `client ${lateClientId} (Redis on ${victim}, after restart)`);
    const late = await connectRedis(running.node(victim).respPort);
    loops.push(runRedisClient(load, lateClientId, late, keys));
    await sleep(AFTER_RESTART_MS);
    stoppedAtMs = nowMs(load);
  } finally {
    // Also when a step above failed: the loops end, each within one client timeout.
    load.stopping = true;
    await Promise.all(loops);
  }

  // Final reads of every key on every node, recorded too: the restarted node must agree.
  const finalReadClientId = lateClientId + 1;
  const finalReads: string[] = [];
  const disagreements: string[] = [];
  for (const key of keys) {
    const seen: string[] = [];
    for (const node of running.nodes) {
      const read = await recordOperation(
        load,
        { client: finalReadClientId, key, op: 'get', input: null },
        async () => {
          const answer = await fetch(`${node.httpUrl}/v1/kv/${KEYSPACE}/${key}`, {
            signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
          });
          if (answer.status !== 200) throw new Error(`${node.id} answered ${answer.status}`);
          return { value: await answer.text(), etag: answer.headers.get('etag') };
        },
        (result) => result.value,
      );
      seen.push(read === undefined ? 'no answer' : `${read.value} at version ${read.etag}`);
    }
    finalReads.push(`${key}: ${seen.join(' | ')}`);
    if (new Set(seen).size !== 1 || seen[0] === 'no answer') disagreements.push(key);
  }

  const history: History = load.history;
  const afterKill = longestGap(history, killedAtMs, stoppedAtMs);
  const beforeKill = longestGap(history, WARM_UP_MS / 2, killedAtMs);
  context.diagnostic(summarize(history));
  context.diagnostic(
    `killed at ${killedAtMs.toFixed(0)} ms, restart began ${restartingAtMs.toFixed(0)} ms, ` +
      `ready ${restartedAtMs.toFixed(0)} ms, load stopped ${stoppedAtMs.toFixed(0)} ms`,
  );
  context.diagnostic(
    `longest gap without a completion: ${afterKill.gapMs.toFixed(1)} ms after the kill ` +
      `(ending at ${afterKill.endsAtMs.toFixed(0)} ms), ${beforeKill.gapMs.toFixed(1)} ms before it; ` +
      `request timeout ${FAST_TIMINGS.requestTimeoutMs} ms`,
  );
  context.diagnostic(
    `errors: ${[...load.errorsByCode].map(([code, count]) => `${code} ${count}`).join(', ') || 'none'}`,
  );
  context.diagnostic(
    `unknown outcomes: ${unknownsByPhase(history, [
      { name: 'in the warm-up', fromMs: 0 },
      { name: 'while the node was down', fromMs: killedAtMs },
      { name: 'while it restarted', fromMs: restartingAtMs },
      { name: 'after the restart', fromMs: restartedAtMs },
    ])}`,
  );
  context.diagnostic(`final reads: ${finalReads.join('; ')}`);
  context.diagnostic(
    `longest wait of one client, kill to stop: ${longestClientWaits(history, clientNames, killedAtMs, stoppedAtMs)}`,
  );

  const checked = checkLinearizable(history, { budgetMs: CHECK_BUDGET_MS });
  context.diagnostic(
    `linearizability: ${checked.result}, ${checked.keysLinearizable} of ${checked.keysTotal} keys, ` +
      `${checked.elapsedMs.toFixed(0)} ms`,
  );
  if (checked.result === 'not-linearizable') {
    const center = checked.unplacedOperation ?? history.length - 1;
    assert.fail(
      `seed ${SEED}: ${checked.explanation}\nhistory of ${checked.key} around #${center}:\n` +
        excerpt(history, checked.key!, center),
    );
  }
  assert.equal(
    checked.result,
    'linearizable',
    `seed ${SEED}: undecided, which is no pass: ${checked.explanation}`,
  );
  assert.deepEqual(disagreements, [], `seed ${SEED}: every node reads the same value and version`);

  // Progress: every client completed operations while the node was down and after restart.
  const windows = [
    { name: 'while the node was down', fromMs: killedAtMs, toMs: restartingAtMs },
    { name: 'after the restart', fromMs: restartedAtMs, toMs: stoppedAtMs },
  ];
  for (const [clientId, name] of clientNames) {
    for (const window of windows) {
      if (clientId === lateClientId && window.fromMs < restartedAtMs) continue;
      const done = history.filter(
        (operation) =>
          operation.client === clientId &&
          operation.outcome === 'ok' &&
          operation.completedAt! >= window.fromMs &&
          operation.completedAt! <= window.toMs,
      ).length;
      assert.ok(done > 0, `seed ${SEED}: ${name} completed nothing ${window.name}`);
    }
  }

  // Negative control: the same history with one stale read must be rejected, or the check
  // above proved nothing.
  const stale = staleReadInWarmUp(history, killedAtMs);
  const control = checkLinearizable(stale, { budgetMs: CHECK_BUDGET_MS });
  assert.equal(control.result, 'not-linearizable', 'a stale read is caught');

  assert.ok(
    afterKill.gapMs < FAST_TIMINGS.requestTimeoutMs,
    `seed ${SEED}: ${afterKill.gapMs.toFixed(1)} ms without a completion after the kill, ` +
      `ending at ${afterKill.endsAtMs.toFixed(0)} ms`,
  );
});
