// Issue: "eventual, strong and chain keyspaces all keep their guarantees while data moves".
// Three real `ringkv start` processes on LMDB (loopback) found a cluster with a strong
// keyspace and a chain keyspace (both n 3); a fourth starts with --join as a standby. While
// TypeScript clients run get, put, compare-and-set on the version and increment on a few keys
// of each keyspace, node4 joins (its strong partitions' acceptors change under joint quorums,
// and it joins chains as their tail before the commit), then node4 leaves again.
//
// What is proved, on the history recorded with real times (recorded-load.ts):
// - every key's history, across both changes, is linearizable (the checker must decide it);
// - every client completed operations during each change;
// - each change committed with node4 owning partitions in between;
// - once the load stops, every founder reads the same value and version of every key.
//
// Randomness (operation mix, keys, deltas, pauses) comes from one seed, printed; replay with
// RINGKV_TEST_SEED=<seed>. Real processes keep their own timing, so a replay draws the same
// choices, not the same interleaving.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RingkvClient } from '../../src/client/index.ts';
import type { Operation } from '../../src/check/history.ts';
import { checkLinearizable, describeOperation } from '../../src/check/linearizability.ts';
import { FAST_TIMINGS, http, waitFor } from './cluster-harness.ts';
import { clusterWithStandbys, waitForCommit } from './membership-checks.ts';
import {
  clientPrng,
  newLoadState,
  nowMs,
  runTypescriptClient,
  sleep,
  type LoadState,
} from './recorded-load.ts';

const SEED = Number(process.env.RINGKV_TEST_SEED ?? Date.now() % 1_000_000);
const FOUNDERS = ['node1', 'node2', 'node3'];
const JOINER = 'node4';
const KEYSPACES = [
  { name: 'accounts', consistency: 'strong' },
  { name: 'ledger', consistency: 'chain' },
] as const;
const KEYS_PER_KEYSPACE = 6;
const CLIENTS_PER_KEYSPACE = 3;
/** Load before the first change and after each commit. */
const SETTLE_MS = 1_500;
/** A change waits 5 s before its copies start; a few seconds more for the copies. */
const COMMIT_TIMEOUT_MS = 40_000;
const CHECK_BUDGET_MS = 20_000;

const cluster = clusterWithStandbys(FOUNDERS, [{ id: JOINER, via: 'node1' }], async (processes) => {
  for (const keyspace of KEYSPACES) {
    const created = await http(`${processes.node('node1').httpUrl}/v1/keyspaces`, {
      method: 'POST',
      body: JSON.stringify({ ...keyspace, n: 3 }),
    });
    assert.equal(created.status, 201, created.text);
  }
  // Every node knows both keyspaces before the load starts.
  for (const id of [...FOUNDERS, JOINER]) {
    for (const keyspace of KEYSPACES) {
      await waitFor(
        async () =>
          (await http(`${processes.node(id).httpUrl}/v1/kv/${keyspace.name}/probe`)).status === 404,
        15_000,
        `${id} to know keyspace ${keyspace.name}`,
      );
    }
  }
});

/** Proposes a change through `via`'s HTTP route; the map epoch it was made at. */
async function propose(kind: 'join' | 'leave', via: string): Promise<number> {
  const answer = await http(`${cluster().node(via).httpUrl}/v1/cluster/membership`, {
    method: 'POST',
    body: JSON.stringify({ kind, id: JOINER }),
  });
  assert.equal(answer.status, 200, `${kind} ${JOINER}: ${answer.text}`);
  const made = answer.json as { made: boolean; epoch: number };
  assert.equal(made.made, true);
  return made.epoch;
}

/** Operations each client completed between two times of the load's clock. */
function completedBy(load: LoadState, fromMs: number, toMs: number): Map<number, number> {
  const counts = new Map<number, number>();
  for (const operation of load.history) {
    if (operation.outcome !== 'ok') continue;
    if (operation.completedAt! < fromMs || operation.completedAt! > toMs) continue;
    counts.set(operation.client, (counts.get(operation.client) ?? 0) + 1);
  }
  return counts;
}

test('strong and chain keyspaces stay linearizable while a node joins and leaves under load', async (context) => {
  context.diagnostic(`seed ${SEED}; replay with RINGKV_TEST_SEED=${SEED}`);
  const load = newLoadState();
  const clients: RingkvClient[] = [];
  const loops: Promise<void>[] = [];
  let clientId = 0;
  try {
    for (const keyspace of KEYSPACES) {
      const keys = Array.from(
        { length: KEYS_PER_KEYSPACE },
        (_, index) => `${keyspace.name}-${index}`,
      );
      for (let index = 0; index < CLIENTS_PER_KEYSPACE; index++) {
        const client = await RingkvClient.connect({
          endpoints: FOUNDERS.map((id) =>
            cluster()
              .node(id)
              .httpUrl.replace(/^http:\/\//, ''),
          ),
          refreshRingMs: 1_000,
          timeoutMs: FAST_TIMINGS.requestTimeoutMs * 2,
        });
        clients.push(client);
        const id = clientId++;
        loops.push(
          runTypescriptClient(load, id, client, keyspace.name, keys, clientPrng(SEED, id)),
        );
      }
    }
    await sleep(SETTLE_MS);

    const joinStartMs = nowMs(load);
    await waitForCommit(
      cluster(),
      [...FOUNDERS, JOINER],
      await propose('join', 'node2'),
      COMMIT_TIMEOUT_MS,
    );
    const joinEndMs = nowMs(load);
    const ring = await cluster().ring('node1');
    const owned = ring.owners.filter((owner) => owner === JOINER).length;
    assert.ok(owned > 0, `${JOINER} owns partitions after its join: ${owned}`);
    await sleep(SETTLE_MS);

    const leaveStartMs = nowMs(load);
    await waitForCommit(cluster(), FOUNDERS, await propose('leave', 'node3'), COMMIT_TIMEOUT_MS);
    const leaveEndMs = nowMs(load);
    await sleep(SETTLE_MS);
    context.diagnostic(
      `join committed after ${((joinEndMs - joinStartMs) / 1000).toFixed(1)} s (${JOINER} ` +
        `owning ${owned} of ${ring.owners.length} partitions), leave after ` +
        `${((leaveEndMs - leaveStartMs) / 1000).toFixed(1)} s`,
    );

    for (const [name, fromMs, toMs] of [
      ['join', joinStartMs, joinEndMs],
      ['leave', leaveStartMs, leaveEndMs],
    ] as const) {
      const done = completedBy(load, fromMs, toMs);
      for (let id = 0; id < clientId; id++) {
        assert.ok((done.get(id) ?? 0) > 0, `client ${id} completed operations during the ${name}`);
      }
    }
  } finally {
    load.stopping = true;
    await Promise.all(loops);
    for (const client of clients) client.close();
  }

  const outcomes = { ok: 0, failed: 0, unknown: 0 };
  for (const operation of load.history) outcomes[operation.outcome]++;
  context.diagnostic(
    `${load.history.length} operations: ${JSON.stringify(outcomes)}; errors ` +
      `${[...load.errorsByCode].map(([code, count]) => `${code} ${count}`).join(', ') || 'none'}`,
  );
  assert.ok(outcomes.ok >= 200, `enough operations succeeded: ${outcomes.ok}`);

  const checked = checkLinearizable(load.history, { budgetMs: CHECK_BUDGET_MS });
  context.diagnostic(
    `linearizability: ${checked.result}, ${checked.keysLinearizable} of ${checked.keysTotal} ` +
      `keys, ${checked.elapsedMs.toFixed(0)} ms`,
  );
  if (checked.result === 'not-linearizable') {
    const ofKey = load.history
      .map((operation: Operation, index) => ({ operation, index }))
      .filter(({ operation }) => operation.key === checked.key);
    assert.fail(
      `seed ${SEED}: ${checked.explanation}\nhistory of ${checked.key} (last 40):\n` +
        ofKey
          .slice(-40)
          .map(({ operation, index }) => describeOperation(operation, index))
          .join('\n'),
    );
  }
  assert.equal(checked.result, 'linearizable', `seed ${SEED}: undecided: ${checked.explanation}`);

  // Every founder reads the same value and version of every key.
  const disagreements: string[] = [];
  for (const keyspace of KEYSPACES) {
    for (let index = 0; index < KEYS_PER_KEYSPACE; index++) {
      const key = `${keyspace.name}-${index}`;
      const seen: string[] = [];
      for (const id of FOUNDERS) {
        const answer = await fetch(`${cluster().node(id).httpUrl}/v1/kv/${keyspace.name}/${key}`, {
          signal: AbortSignal.timeout(FAST_TIMINGS.requestTimeoutMs * 2),
        });
        seen.push(`${answer.status} ${await answer.text()} ${answer.headers.get('etag') ?? ''}`);
      }
      if (new Set(seen).size !== 1 || !seen[0]!.startsWith('200')) {
        disagreements.push(`${key}: ${seen.join(' | ')}`);
      }
    }
  }
  assert.deepEqual(disagreements, [], `seed ${SEED}: every founder reads the same`);
});
