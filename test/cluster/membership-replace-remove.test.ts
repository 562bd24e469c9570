// Recovery with real processes (DESIGN section 1, membership): a node that lost its disk is
// rebuilt from its replicas by a replace, and a node gone for good is removed, without losing
// any acknowledged write, and both may be voters (acceptors of the cluster map's register).
// Three `ringkv start` processes on LMDB (loopback) found a cluster and are its voters;
// node4 and node5 join. Under W=2 writes the whole time, node1 is killed with SIGKILL and its
// data directory deleted; a fresh node6 starts with --join and `ringkv cluster replace node1
// node6` rebuilds node1's share on it from the other replicas, and makes node6 a voter in
// node1's place. Then node2 is killed and `ringkv cluster remove node2` takes it out: four
// members remain, so W=2 stays reachable, and node4 takes node2's place among the voters.
// After each commit:
// - every member reports the same ring and the voters planned, and a keyspace created through
//   the newest voter is known to every member (the map register works on its new voters);
// - the owners are the members, and each holds floor or ceil of Q/M partitions;
// - every key is stored on exactly its N replicas: each member's local listing (scope=node)
//   holds no key it does not replicate and every acknowledged key it does.
// At the end every key read from every member gives its last acknowledged value, or the value
// of a later write that failed (a failed write may have taken effect).
//
// Writers pick keys from a seeded generator (each key has one writer); the seed is printed
// with how to replay it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Prng } from '../../src/core/prng.ts';
import { http, waitFor } from './cluster-harness.ts';
import type { RingDocument } from './node-processes.ts';
import {
  checkBalance,
  placementProblems,
  clusterWithStandbys,
  waitForCommit as waitForCommitOn,
  waitForStandbys as waitForStandbysOn,
} from './membership-checks.ts';

const SEED = Number(process.env.RINGKV_TEST_SEED ?? Date.now() % 1_000_000);
const REPLAY = `replay with RINGKV_TEST_SEED=${SEED}`;
const FOUNDERS = ['node1', 'node2', 'node3'];
const KEY_COUNT = 400;
const WRITERS = 4;
const REPLICAS = 3;
const COMMIT_TIMEOUT_MS = 30_000;
const PLACEMENT_TIMEOUT_MS = 25_000;
const READS_IN_FLIGHT = 16;
const LAUNCHER = path.join(import.meta.dirname, '..', '..', 'bin', 'ringkv.js');
const runFile = promisify(execFile);

const cluster = clusterWithStandbys(FOUNDERS, [
  { id: 'node4', via: 'node1' },
  { id: 'node5', via: 'node2' },
]);

/** `ringkv cluster ARGS... --node` a member; asserts it succeeds; the epoch it made. */
async function clusterCommand(args: readonly string[], via: string): Promise<number> {
  const node = cluster()
    .node(via)
    .httpUrl.replace(/^http:\/\//, '');
  let stdout = '';
  try {
    ({ stdout } = await runFile(process.execPath, [LAUNCHER, 'cluster', ...args, '--node', node], {
      timeout: 20_000,
    }));
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    assert.fail(`ringkv cluster ${args.join(' ')}: ${failed.stderr ?? ''}${failed.stdout ?? ''}`);
  }
  const made = /^made: the map is at epoch (\d+);/m.exec(stdout);
  assert.ok(made !== null, `ringkv cluster ${args.join(' ')} says it made the change: ${stdout}`);
  return Number(made[1]);
}

// ---- the load ----

interface KeyState {
  /** What a read may return: the last acknowledged value and failed writes after it. */
  possible: Set<string>;
  acknowledged: boolean;
}

interface Load {
  readonly keys: Map<string, KeyState>;
  /** Members the writers send to, in turn; a killed node is taken out at once. */
  targets: string[];
  stopping: boolean;
  sequence: number;
  acknowledged: number;
  failed: number;
  readonly errors: Map<string, number>;
}

/** Keys acknowledged so far: they must be everywhere they belong. */
function acknowledgedKeys(load: Load): string[] {
  return [...load.keys].filter(([, state]) => state.acknowledged).map(([key]) => key);
}

async function waitForStandbys(members: readonly string[], standbys: readonly string[]) {
  await waitForStandbysOn(cluster(), members, standbys);
}

async function waitForCommit(members: readonly string[], epochAfter: number) {
  return waitForCommitOn(cluster(), members, epochAfter, COMMIT_TIMEOUT_MS);
}

/**
 * Every member names `voters` as the voters, and a keyspace created through `via` (one of
 * them, new to the role) reaches every member: the map register takes changes on its voters.
 */
async function checkVoters(
  members: readonly string[],
  voters: readonly string[],
  via: string,
): Promise<void> {
  for (const id of members) {
    const view = await cluster().status(id);
    const named = view.members.filter((member) => member.voter).map((member) => member.id);
    assert.deepEqual(named.sort(), [...voters].sort(), `the voters as ${id} sees them`);
  }
  const keyspace = `after-${via}`;
  const created = await http(`${cluster().node(via).httpUrl}/v1/keyspaces`, {
    method: 'POST',
    body: JSON.stringify({ name: keyspace }),
  });
  assert.equal(created.status, 201, `a keyspace created through ${via}: ${created.text}`);
  for (const id of members) {
    await waitFor(
      async () =>
        (await http(`${cluster().node(id).httpUrl}/v1/kv/${keyspace}/probe`)).status === 404,
      10_000,
      `${id} to know keyspace ${keyspace}`,
    );
  }
}

function keyName(index: number): string {
  return `recovery-${String(index).padStart(4, '0')}`;
}

/** Writes the keys of `writer` (index mod WRITERS) with W=2 over HTTP until the load stops. */
async function runWriter(load: Load, writer: number): Promise<void> {
  const owned = Array.from({ length: KEY_COUNT }, (_, index) => index).filter(
    (index) => index % WRITERS === writer,
  );
  const prng = new Prng((SEED * 1_013 + writer + 1) >>> 0);
  let turn = writer;
  while (!load.stopping) {
    const key = keyName(owned[prng.below(owned.length)]!);
    const value = `${key}=${++load.sequence}`;
    const state = load.keys.get(key) ?? { possible: new Set<string>(), acknowledged: false };
    load.keys.set(key, state);
    const id = load.targets[turn++ % load.targets.length]!;
    let ok = false;
    try {
      const answer = await http(`${cluster().node(id).httpUrl}/v1/kv/default/${key}?w=2`, {
        method: 'PUT',
        body: value,
      });
      ok = answer.status === 200;
      if (!ok) {
        const code = (answer.json as { error?: { code?: string } } | undefined)?.error?.code;
        const name = `${answer.status} ${code ?? ''} via ${id}`;
        load.errors.set(name, (load.errors.get(name) ?? 0) + 1);
      }
    } catch (error) {
      const name = `${(error as { cause?: { code?: string } }).cause?.code ?? 'error'} via ${id}`;
      load.errors.set(name, (load.errors.get(name) ?? 0) + 1);
    }
    if (ok) {
      state.possible = new Set([value]);
      state.acknowledged = true;
      load.acknowledged++;
    } else {
      state.possible.add(value);
      load.failed++;
    }
  }
}

// ---- checks ----

async function checkPlacement(load: Load, members: readonly string[], ring: RingDocument) {
  let problems: string[] = ['not looked yet'];
  await waitFor(
    async () => {
      problems = (
        await placementProblems(cluster(), acknowledgedKeys(load), members, ring, REPLICAS)
      ).problems;
      return problems.length === 0;
    },
    PLACEMENT_TIMEOUT_MS,
    () => `every key on exactly its ${REPLICAS} replicas (seed ${SEED})`,
  ).catch((error: unknown) => {
    assert.deepEqual(problems.slice(0, 8), [], `${problems.length} problems: ${String(error)}`);
  });
}

test('a node that lost its disk is rebuilt on a replacement, and a dead node is removed, under W=2 writes, losing no acknowledged write', async (context) => {
  context.diagnostic(`seed ${SEED}; ${REPLAY}`);
  const startedMs = performance.now();
  const load: Load = {
    keys: new Map(),
    targets: [...FOUNDERS],
    stopping: false,
    sequence: 0,
    acknowledged: 0,
    failed: 0,
    errors: new Map(),
  };
  const writers = Promise.all(Array.from({ length: WRITERS }, (_, i) => runWriter(load, i)));
  let members = [...FOUNDERS];
  const step = (what: string, fromMs: number): void => {
    context.diagnostic(
      `${what} after ${((performance.now() - fromMs) / 1000).toFixed(1)} s; ` +
        `${load.acknowledged} writes acknowledged so far`,
    );
  };
  try {
    await waitFor(() => load.acknowledged >= 100, 20_000, '100 acknowledged writes');
    for (const joiner of ['node4', 'node5']) {
      const epoch = await clusterCommand(['join', joiner], 'node1');
      members = [...members, joiner];
      await waitForCommit(members, epoch);
      load.targets = [...members];
    }

    // node1, a voter, loses its disk: killed, its data directory deleted; node6 starts empty.
    let fromMs = performance.now();
    load.targets = members.filter((id) => id !== 'node1');
    await cluster().stop('node1', 'SIGKILL');
    rmSync(cluster().node('node1').dataDir, { recursive: true, force: true });
    await cluster().startJoiner('node6', 'node2');
    const alive = members.filter((id) => id !== 'node1');
    await waitForStandbys(alive, ['node6']);
    const replaced = await clusterCommand(['replace', 'node1', 'node6'], 'node2');
    members = [...alive, 'node6'];
    let ring = await waitForCommit(members, replaced);
    load.targets = [...members];
    step('node1 replaced by node6: committed', fromMs);
    await checkVoters(members, ['node2', 'node3', 'node6'], 'node6');
    const ownedAfterReplace = checkBalance(ring, members);
    await checkPlacement(load, members, ring);
    step(`every key on exactly its replicas (${JSON.stringify(ownedAfterReplace)})`, fromMs);

    // node2, a voter, dies for good and is removed: four members remain.
    fromMs = performance.now();
    load.targets = members.filter((id) => id !== 'node2');
    await cluster().stop('node2', 'SIGKILL');
    const removed = await clusterCommand(['remove', 'node2'], 'node3');
    members = members.filter((id) => id !== 'node2');
    ring = await waitForCommit(members, removed);
    step('node2 removed: committed', fromMs);
    await checkVoters(members, ['node3', 'node4', 'node6'], 'node4');
    const ownedAfterRemove = checkBalance(ring, members);
    await checkPlacement(load, members, ring);
    step(`every key on exactly its replicas (${JSON.stringify(ownedAfterRemove)})`, fromMs);
  } finally {
    load.stopping = true;
    await writers;
  }
  context.diagnostic(
    `writes: ${load.acknowledged} acknowledged, ${load.failed} failed over ${load.keys.size} ` +
      `keys; errors ${JSON.stringify(Object.fromEntries(load.errors))}`,
  );

  const reads = [...load.keys].flatMap(([key, state]) => members.map((id) => ({ key, state, id })));
  const wrong: string[] = [];
  for (let start = 0; start < reads.length; start += READS_IN_FLIGHT) {
    await Promise.all(
      reads.slice(start, start + READS_IN_FLIGHT).map(async ({ key, state, id }) => {
        const answer = await http(`${cluster().node(id).httpUrl}/v1/kv/default/${key}?r=2`);
        const found =
          answer.status === 200 ? answer.text : answer.status === 404 ? null : undefined;
        const fine =
          found === undefined
            ? false
            : found === null
              ? !state.acknowledged
              : state.possible.has(found);
        if (!fine) {
          wrong.push(`${key} on ${id}: ${answer.status} '${answer.text.slice(0, 80)}'`);
        }
      }),
    );
  }
  assert.deepEqual(
    wrong.slice(0, 10),
    [],
    `seed ${SEED}: ${wrong.length} of ${reads.length} reads wrong`,
  );
  assert.ok(load.acknowledged >= 500, `enough writes were acknowledged: ${load.acknowledged}`);
  context.diagnostic(
    `${reads.length} reads from ${members.join(', ')} all right; the whole run took ` +
      `${((performance.now() - startedMs) / 1000).toFixed(1)} s`,
  );
});
