// DESIGN section 1: "an acknowledged write is never silently lost". Five real node processes
// on LMDB with durable writes; writers send W=2 writes of distinct keys to every node while
// one node is killed with SIGKILL. Every write the cluster acknowledged must then be readable
// from every surviving node, and once the killed node is back and hinted handoff has drained,
// its own storage (read directly from its LMDB directory after it stopped) must hold every
// acknowledged key it is a replica of, with the acknowledged value winning.
//
// Writes that fail or whose outcome is unknown (the connection broke) are recorded but never
// counted as acknowledged: they may or may not have happened.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/core/prng.ts';
import { partitionOf } from '../../src/core/ring/partition.ts';
import { preferenceList } from '../../src/core/ring/preference-list.ts';
import { dataKey } from '../../src/core/store/layout.ts';
import { decodeRecord } from '../../src/core/store/record.ts';
import { winningSibling } from '../../src/core/kv/siblings.ts';
import { LmdbStorage } from '../../src/storage/lmdb/lmdb-storage.ts';
import { http, TestCluster, waitFor } from './cluster-harness.ts';

const SEED = Number(process.env.RINGKV_TEST_SEED ?? Date.now() % 1_000_000);
const ACKNOWLEDGED_TARGET = 300;
const KILL_AFTER_ACKS = 100;
/** Acknowledged writes made after the victim is seen down, so that hints exist. */
const ACKS_WHILE_DOWN = 60;
const WRITERS = 4;
const VICTIM = 'node3';
const REPLICAS = 3;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

let cluster: TestCluster | null = null;
after(async () => {
  await cluster?.close();
});

interface Outcomes {
  readonly acknowledged: Map<string, string>;
  failed: number;
  unknown: number;
}

test('every acknowledged write survives the kill -9 of a replica', async (context) => {
  context.diagnostic(`seed ${SEED}; replay with RINGKV_TEST_SEED=${SEED}`);
  const prng = new Prng(SEED);
  const running = await TestCluster.start({ nodeCount: 5, storage: 'lmdb' });
  cluster = running;
  const others = running.nodes.filter((node) => node.id !== VICTIM);
  const outcomes: Outcomes = { acknowledged: new Map(), failed: 0, unknown: 0 };
  let nextIndex = 0;
  let stopAt = Number.MAX_SAFE_INTEGER;

  // Each writer takes the next key and sends it to the next node in turn, the victim
  // included (once it is dead, those writes fail and are not counted).
  const writer = async (): Promise<void> => {
    while (outcomes.acknowledged.size < stopAt) {
      const index = nextIndex++;
      const key = `ack-${index}`;
      const value = `value-${index}-${prng.nextUint32().toString(36)}`;
      const node = running.nodes[index % running.nodes.length]!;
      try {
        const answer = await http(`${node.httpUrl}/v1/kv/default/${key}?w=2`, {
          method: 'PUT',
          body: value,
        });
        if (answer.status === 200) outcomes.acknowledged.set(key, value);
        else outcomes.failed++;
      } catch (error) {
        // Refused connections never carried the write; anything else may have.
        const code = (error as { cause?: { code?: string } }).cause?.code;
        if (code === 'ECONNREFUSED') outcomes.failed++;
        else outcomes.unknown++;
      }
    }
  };
  const writers = Promise.all(Array.from({ length: WRITERS }, writer));

  await waitFor(() => outcomes.acknowledged.size >= KILL_AFTER_ACKS, 30_000, 'early acks');
  await running.signal(VICTIM, 'SIGKILL');
  const acknowledgedAtKill = outcomes.acknowledged.size;
  await waitFor(
    async () => {
      const seen = await Promise.all(
        others.map((node) => running.livenessSeenBy(node.id, VICTIM).catch(() => null)),
      );
      return seen.every((liveness) => liveness === 'down');
    },
    15_000,
    `every survivor to see ${VICTIM} down`,
  );
  stopAt = Math.max(ACKNOWLEDGED_TARGET, outcomes.acknowledged.size + ACKS_WHILE_DOWN);
  await writers;
  context.diagnostic(
    `acknowledged ${outcomes.acknowledged.size} (${acknowledgedAtKill} before the kill), ` +
      `failed ${outcomes.failed}, unknown ${outcomes.unknown}`,
  );
  assert.ok(outcomes.acknowledged.size >= ACKNOWLEDGED_TARGET);

  // With N=3 on 5 nodes a fallback stands in for the dead replica and keeps a hint.
  const hintsBeforeRestart = await Promise.all(
    others.map(async (node) => (await running.clusterView(node.id)).hintsTotal),
  );
  assert.ok(
    hintsBeforeRestart.some((hints) => hints > 0),
    `some survivor holds hints while ${VICTIM} is down: ${hintsBeforeRestart.join(', ')}`,
  );

  // Every acknowledged write, read with R=2 from every surviving node.
  const reads = [...outcomes.acknowledged].flatMap(([key, value]) =>
    others.map((node) => ({ key, value, node })),
  );
  const mismatches: string[] = [];
  for (let start = 0; start < reads.length; start += 16) {
    await Promise.all(
      reads.slice(start, start + 16).map(async ({ key, value, node }) => {
        const answer = await http(`${node.httpUrl}/v1/kv/default/${key}?r=2`);
        if (answer.status !== 200 || answer.text !== value) {
          mismatches.push(
            `${key} on ${node.id}: ${answer.status} '${answer.text}', want '${value}'`,
          );
        }
      }),
    );
  }
  assert.deepEqual(mismatches.slice(0, 10), [], `seed ${SEED}: ${mismatches.length} bad reads`);

  // The victim comes back on its data; hinted handoff drains what others kept for it.
  await running.restart(VICTIM);
  await waitFor(
    async () => {
      const views = await Promise.all(running.nodes.map((node) => running.clusterView(node.id)));
      return views.every((view) => (view.hintsPending[VICTIM] ?? 0) === 0);
    },
    20_000,
    `every node to hand its hints back to ${VICTIM}`,
  );
  const ring = await running.ring(others[0]!.id);
  await running.signal(VICTIM, 'SIGTERM');

  const storage = await LmdbStorage.open(running.node(VICTIM).dataDir);
  try {
    const missing: string[] = [];
    let checked = 0;
    const nowMs = Date.now();
    for (const [key, value] of outcomes.acknowledged) {
      const keyBytes = encoder.encode(key);
      const partition = partitionOf(0, keyBytes, ring.partitionCount);
      if (!preferenceList(ring.owners, partition, REPLICAS).includes(VICTIM)) continue;
      checked++;
      const stored = storage.get(dataKey(0, partition, keyBytes));
      const winner =
        stored === undefined ? null : winningSibling(decodeRecord(stored), nowMs, 'lww')?.value;
      const found = winner === null || winner === undefined ? null : decoder.decode(winner);
      if (found !== value) missing.push(`${key}: ${found ?? 'absent'}, want ${value}`);
    }
    context.diagnostic(`${checked} acknowledged keys have ${VICTIM} as a replica`);
    assert.ok(checked > 0, 'some acknowledged key has the victim as a replica');
    assert.deepEqual(
      missing.slice(0, 10),
      [],
      `seed ${SEED}: ${missing.length} of ${checked} replica keys wrong in ${VICTIM}'s storage`,
    );
  } finally {
    await storage.close();
  }
});
