// DESIGN section 1, chain keyspaces: "a failed replica stalls its chains only until the
// failure detector marks it down and the map removes it from them". Three real node processes
// on LMDB, a chain keyspace with n 3, and concurrent clients running get, put, compare-and-set
// on the version and increment on six keys: two whose chain has the victim as its head, two
// as its middle, two as its tail. Each key has its own TypeScript client (every endpoint), so
// that its stall is timed by a client that waits on nothing else; an ioredis connection on
// each node that stays up spreads over every key. After a warm-up the victim is killed with
// SIGKILL; the load goes on, the node is started again on its data, it copies and rejoins
// every chain as the tail, and the load goes on once more.
//
// What is proved, on the history recorded with real times (performance.now):
// - every key's history is linearizable (checkLinearizable must decide it: a run out of
//   budget fails the test rather than pass it), and every value is read with one version
//   only, versions never going back between reads in real-time order;
// - after the kill, no key goes longer without a successful completion than the bound the
//   failure detector and the chain's repair give (worked out below, 2540 ms on a quiet
//   machine);
// - every client completed operations in every phase: before the kill, once the chains were
//   repaired, and once the restarted node was back in every chain;
// - the restarted node is back in every chain (GET /v1/cluster: chainsJoined and
//   chainsShort), and once the load stops every node reads the same value and version of
//   every key.
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
import { DEFAULT_CHAIN_TIMINGS } from '../../src/core/chain/settings.ts';
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
  type VersionedRead,
} from './recorded-load.ts';

const SEED = Number(process.env.RINGKV_TEST_SEED ?? Date.now() % 1_000_000);
const KEYSPACE = 'ledger';
/** SELECT index of the keyspace: default is 0 and this is the first one created. */
const KEYSPACE_INDEX = 1;
const REPLICAS = 3;
/** Keys per position of the victim in the key's chain (head, middle, tail). */
const KEYS_PER_POSITION = 2;
const POSITIONS = ['head', 'middle', 'tail'] as const;
/** Candidate key names tried when looking for keys with the victim at each position. */
const KEY_CANDIDATES_MAX = 400;
/** One per key. */
const HTTP_CLIENTS = KEYS_PER_POSITION * POSITIONS.length;
const WARM_UP_MS = 2_000;
const DOWN_MS = 4_000;
/** The restarted node must be back in every chain within this, under load. */
const REJOIN_TIMEOUT_MS = 10_000;
const AFTER_REJOIN_MS = 2_000;
/** The client gives up on a request after this; longer than the node's own timeout. */
const CLIENT_TIMEOUT_MS = FAST_TIMINGS.requestTimeoutMs * 2;
const CHECK_BUDGET_MS = 20_000;
const EXCERPT_OPERATIONS = 30;
const MONITOR_PAUSE_MS = 25;
/** Unknown outcomes listed in the diagnostics. */
const UNKNOWNS_LISTED = 10;
/** Stalls of one key longer than this are listed in the diagnostics. */
const REPORTED_STALL_MS = 500;

// The stall bound. A chain with the victim in it stops taking writes (and, when the victim is
// its middle or tail, answering reads) at the kill, and resumes once the map has removed the
// victim and the node coordinating a request knows the new chain:
// - SWIM marks the victim down within detectionBoundMs (docs/SWIM.md): 2·(M − 1) probe
//   periods until a probe of it has failed, plus the suspicion timeout, plus two tick gaps;
// - the first member alive looks for down members every CHAIN_CHECK_INTERVAL_MS (200 ms,
//   src/core/node.ts) and makes one map change (two CASPaxos phases among the voters, an
//   fsync at each acceptor, then the map sent to every member): MAP_CHANGE_MS allows for it;
// - a request waiting at a requester is sent to the new head or tail at once or after one
//   resend interval (100 ms), and then crosses the shortened chain: REQUEST_MS, or, when
//   longer, the longest a key went without a completion in the warm-up, before any fault
//   (on a busy machine, such as two cores running two cluster tests, that is what one
//   request may take);
// - reads at a tail whose predecessor was the victim need a lease from the new
//   predecessor, which grants none until leaseMs + clockDriftMarginMs after its last grant
//   to the victim (so at most that long after the kill), asked for within ackIntervalMs.
// Both paths start at the kill, so the bound takes the longer of the two (with these timings
// the detection path, 2240 ms against 2200 ms). The probe timeout does not enter: a probe of
// a dead node fails at the end of its period either way.
const CHAIN_CHECK_INTERVAL_MS = 200;
const MAP_CHANGE_MS = 200;
const RESEND_INTERVAL_MS = 100;
const REQUEST_MS = 200;
const DETECTION_BOUND_MS =
  2 * (REPLICAS - 1) * FAST_TIMINGS.probeIntervalMs +
  FAST_TIMINGS.suspicionTimeoutMs +
  2 * FAST_TIMINGS.tickMs;
const LEASE_WAIT_MS =
  DEFAULT_CHAIN_TIMINGS.leaseMs +
  DEFAULT_CHAIN_TIMINGS.clockDriftMarginMs +
  DEFAULT_CHAIN_TIMINGS.ackIntervalMs;
/** The bound without the request's own time, which the run's warm-up may raise. */
const REPAIR_BOUND_MS =
  Math.max(DETECTION_BOUND_MS + CHAIN_CHECK_INTERVAL_MS + MAP_CHANGE_MS, LEASE_WAIT_MS) +
  RESEND_INTERVAL_MS;
/** The warm-up's first part is left out of its noise: connections are still being made. */
const WARM_UP_SETTLE_MS = 500;

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
 * KEYS_PER_POSITION keys for each position the victim can hold in a chain. A partition's
 * chain starts as its preference list in order (head first), so the client's view of a key's
 * replicas says where the victim sits until the first change.
 */
async function pickKeys(
  client: RingkvClient,
  victim: string,
): Promise<Map<string, (typeof POSITIONS)[number]>> {
  const picked = new Map<string, (typeof POSITIONS)[number]>();
  const counts = [0, 0, 0];
  for (let candidate = 0; candidate < KEY_CANDIDATES_MAX; candidate++) {
    const key = `account-${candidate}`;
    const replicas = await client.replicasOf(KEYSPACE, key);
    assert.equal(replicas.length, REPLICAS, 'a key has n replicas');
    const position = replicas.indexOf(victim);
    assert.ok(position >= 0, 'with n = 3 on three nodes every chain holds every node');
    if (counts[position]! < KEYS_PER_POSITION) {
      counts[position]!++;
      picked.set(key, POSITIONS[position]!);
    }
    if (picked.size === KEYS_PER_POSITION * POSITIONS.length) return picked;
  }
  throw new Error(`no keys among ${KEY_CANDIDATES_MAX} put ${victim} at every position`);
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

/** Every stretch of [fromMs, toMs] longer than `thresholdMs` with no successful completion. */
function stallsOver(
  history: History,
  fromMs: number,
  toMs: number,
  thresholdMs: number,
): { fromMs: number; toMs: number }[] {
  const completions = history
    .filter((operation) => operation.outcome === 'ok' && operation.completedAt !== null)
    .map((operation) => operation.completedAt!)
    .filter((completedAt) => completedAt >= fromMs && completedAt <= toMs)
    .sort((a, b) => a - b);
  const stalls: { fromMs: number; toMs: number }[] = [];
  let previous = fromMs;
  for (const completedAt of [...completions, toMs]) {
    if (completedAt - previous > thresholdMs) stalls.push({ fromMs: previous, toMs: completedAt });
    previous = completedAt;
  }
  return stalls;
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
 * What the versions of the reads contradict, or null: a value read with two versions, or a
 * read answering an older version than one that had completed before it was invoked.
 */
function versionProblem(reads: readonly VersionedRead[]): string | null {
  const versionOfValue = new Map<string, number>();
  for (const read of reads) {
    const id = `${read.key}\u0000${String(read.value)}`;
    const known = versionOfValue.get(id);
    if (known !== undefined && known !== read.version) {
      return `${read.key}: value ${String(read.value)} read at versions ${known} and ${read.version}`;
    }
    versionOfValue.set(id, read.version);
  }
  for (const key of new Set(reads.map((read) => read.key))) {
    const own = reads.filter((read) => read.key === key);
    const byCompletion = [...own].sort((a, b) => a.completedAt - b.completedAt);
    for (const read of own) {
      // Every read that completed before this one was invoked must not be newer.
      for (const earlier of byCompletion) {
        if (earlier.completedAt >= read.invokedAt) break;
        if (earlier.version > read.version) {
          return (
            `${key}: a read invoked at ${read.invokedAt.toFixed(1)} ms answered version ` +
            `${read.version}, after a read completed at ${earlier.completedAt.toFixed(1)} ms ` +
            `had answered version ${earlier.version}`
          );
        }
      }
    }
  }
  return null;
}

/**
 * `history` with one read before `beforeMs` answering a value its key had already lost: reads
 * G1 and G2 of the key saw different values, G1 ended before G2 began (so G1's value is the
 * older one), and G3 began after G2 ended. No value repeats in a key's life, so G3 answering
 * G1's value cannot be explained by any order.
 */
function staleReadBefore(history: History, beforeMs: number): History {
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

/** `reads` with the last one answering the version of the first read of its key. */
function olderVersionRead(reads: readonly VersionedRead[]): VersionedRead[] {
  const last = reads.at(-1);
  assert.ok(last !== undefined, 'the load made versioned reads');
  const first = reads.find((read) => read.key === last.key)!;
  assert.ok(first.version < last.version, 'the key changed between its first and last read');
  return [...reads.slice(0, -1), { ...last, version: first.version }];
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

/** What GET /v1/cluster says about the chains (docs/HTTP.md). */
interface ChainsView {
  readonly partitionCount: number;
  /** Partition chains with fewer members than n. */
  readonly chainsShort: number;
  readonly members: readonly {
    readonly id: string;
    readonly liveness: 'alive' | 'suspect' | 'down';
    /** Partition chains this member belongs to. */
    readonly chainsJoined: number;
  }[];
}

async function chainsView(running: TestCluster, id: string): Promise<ChainsView> {
  const answer = await http(`${running.node(id).httpUrl}/v1/cluster`);
  if (answer.status !== 200) throw new Error(`${id}: /v1/cluster answered ${answer.status}`);
  return answer.json as ChainsView;
}

/** Whether `view` shows every chain whole, `member` in all of them. */
function inEveryChain(view: ChainsView, member: string): boolean {
  const joined = view.members.find((candidate) => candidate.id === member)?.chainsJoined;
  return view.chainsShort === 0 && joined === view.partitionCount;
}

/**
 * Watches the cluster from one survivor until stopped: when it first saw the victim down,
 * when its map first showed a chain short of a member (the victim removed) and then every
 * chain, and after the restart when the victim was alive again and back in every chain.
 */
interface ClusterWatch {
  downAtMs: number | null;
  removedAtMs: number | null;
  /** When no chain held the victim any more (removals may take several map changes). */
  allRemovedAtMs: number | null;
  aliveAgainAtMs: number | null;
  rejoinedAtMs: number | null;
  restartedAtMs: number | null;
  stopped: boolean;
}

async function watchCluster(
  running: TestCluster,
  load: LoadState,
  observer: string,
  victim: string,
  watch: ClusterWatch,
): Promise<void> {
  while (!watch.stopped) {
    const view = await chainsView(running, observer).catch(() => null);
    const atMs = nowMs(load);
    if (view !== null) {
      const liveness = view.members.find((member) => member.id === victim)?.liveness;
      if (watch.restartedAtMs === null) {
        if (watch.downAtMs === null && liveness === 'down') watch.downAtMs = atMs;
        if (watch.removedAtMs === null && view.chainsShort > 0) watch.removedAtMs = atMs;
        if (watch.allRemovedAtMs === null && view.chainsShort === view.partitionCount) {
          watch.allRemovedAtMs = atMs;
        }
      } else {
        if (watch.aliveAgainAtMs === null && liveness === 'alive') watch.aliveAgainAtMs = atMs;
        if (watch.rejoinedAtMs === null && inEveryChain(view, victim)) watch.rejoinedAtMs = atMs;
      }
    }
    await sleep(MONITOR_PAUSE_MS);
  }
}

function at(ms: number | null): string {
  return ms === null ? 'never' : `${ms.toFixed(0)} ms`;
}

test('a chain keyspace stays linearizable and resumes within the failure detector bound when one of three nodes is killed with SIGKILL', async (context: TestContext) => {
  context.diagnostic(`seed ${SEED}; replay with RINGKV_TEST_SEED=${SEED}`);
  const prng = new Prng(SEED);
  const running = await TestCluster.start({ nodeCount: REPLICAS, storage: 'lmdb' });
  cluster = running;
  const created = await http(`${running.node('node1').httpUrl}/v1/keyspaces`, {
    method: 'POST',
    body: JSON.stringify({ name: KEYSPACE, consistency: 'chain', n: REPLICAS }),
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
  const victim = prng.pick(nodeIds);
  const survivors = running.nodes.filter((node) => node.id !== victim);
  const positions = await pickKeys(ringkvClients[0]!, victim);
  const keys = [...positions.keys()];
  context.diagnostic(
    `${victim} is killed; keys ${keys.map((key) => `${key} (${victim} ${positions.get(key)!})`).join(', ')}`,
  );

  const load: LoadState = newLoadState();
  const loops: Promise<void>[] = [];
  const clientNames = new Map<number, string>();
  // One TypeScript client per key, so that a key's stall is measured by a client that waits
  // on nothing else; the Redis connections spread over every key.
  ringkvClients.forEach((client, index) => {
    const key = keys[index % keys.length]!;
    clientNames.set(index, `client ${index} (HTTP, every node, ${key})`);
    loops.push(runHttpClient(load, index, client, [key]));
  });
  for (const [index, node] of survivors.entries()) {
    const clientId = HTTP_CLIENTS + index;
    clientNames.set(clientId, `client ${clientId} (Redis on ${node.id})`);
    loops.push(runRedisClient(load, clientId, await connectRedis(node.respPort), keys));
  }
  const watch: ClusterWatch = {
    downAtMs: null,
    removedAtMs: null,
    allRemovedAtMs: null,
    aliveAgainAtMs: null,
    rejoinedAtMs: null,
    restartedAtMs: null,
    stopped: false,
  };
  const watching = watchCluster(running, load, survivors[0]!.id, victim, watch);

  const lateClientId = HTTP_CLIENTS + survivors.length;
  let killedAtMs: number, restartingAtMs: number, restartedAtMs: number;
  let rejoinedAtMs: number, stoppedAtMs: number;
  try {
    await sleep(WARM_UP_MS);
    killedAtMs = nowMs(load);
    await running.signal(victim, 'SIGKILL');
    await sleep(DOWN_MS);
    restartingAtMs = nowMs(load);
    await running.restart(victim);
    restartedAtMs = nowMs(load);
    watch.restartedAtMs = restartedAtMs;
    // A Redis connection to the restarted node joins the load: it must be served there too.
    clientNames.set(lateClientId, `client ${lateClientId} (Redis on ${victim}, after restart)`);
    const late = await connectRedis(running.node(victim).respPort);
    loops.push(runRedisClient(load, lateClientId, late, keys));
    // The restarted node copies every partition, then joins each chain as its tail.
    await waitFor(
      async () => {
        for (const node of running.nodes) {
          if (!inEveryChain(await chainsView(running, node.id), victim)) return false;
        }
        return true;
      },
      REJOIN_TIMEOUT_MS,
      `${victim} to be back in every chain, as every node sees the map`,
    );
    rejoinedAtMs = nowMs(load);
    await sleep(AFTER_REJOIN_MS);
    stoppedAtMs = nowMs(load);
  } finally {
    // Also when a step above failed: the loops end, each within one client timeout.
    load.stopping = true;
    watch.stopped = true;
    await Promise.all([...loops, watching]);
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
  // The request's own time: REQUEST_MS, or what the warm-up showed when it was longer.
  const warmUpNoiseMs = Math.max(
    ...keys.map(
      (key) =>
        longestGap(
          history.filter((operation) => operation.key === key),
          WARM_UP_SETTLE_MS,
          killedAtMs,
        ).gapMs,
    ),
  );
  const stallBoundMs = REPAIR_BOUND_MS + Math.max(REQUEST_MS, warmUpNoiseMs);
  context.diagnostic(
    `stall bound ${stallBoundMs.toFixed(0)} ms: detection ${DETECTION_BOUND_MS} + chain check ` +
      `${CHAIN_CHECK_INTERVAL_MS} + map change ${MAP_CHANGE_MS} (the lease wait, ${LEASE_WAIT_MS}, ` +
      `runs alongside) + resend ${RESEND_INTERVAL_MS} + request ${REQUEST_MS} or the warm-up's ` +
      `longest stall of a key, ${warmUpNoiseMs.toFixed(0)}`,
  );
  const stalls = keys.map((key) => {
    const own = history.filter((operation) => operation.key === key);
    return { key, position: positions.get(key)!, ...longestGap(own, killedAtMs, stoppedAtMs) };
  });
  const overall = longestGap(history, killedAtMs, stoppedAtMs);
  const longStalls = keys.flatMap((key) =>
    stallsOver(
      history.filter((operation) => operation.key === key),
      killedAtMs,
      stoppedAtMs,
      REPORTED_STALL_MS,
    ).map((stall) => `${key} ${stall.fromMs.toFixed(0)}..${stall.toMs.toFixed(0)} ms`),
  );
  const beforeKill = longestGap(history, WARM_UP_MS / 2, killedAtMs);
  context.diagnostic(summarize(history));
  context.diagnostic(
    `killed at ${killedAtMs.toFixed(0)} ms; seen down at ${at(watch.downAtMs)}, removed from ` +
      `the first chain at ${at(watch.removedAtMs)}, from all at ${at(watch.allRemovedAtMs)}; ` +
      `restart began ${restartingAtMs.toFixed(0)} ms, ` +
      `ready ${restartedAtMs.toFixed(0)} ms, alive again at ${at(watch.aliveAgainAtMs)}, back ` +
      `in every chain at ${at(watch.rejoinedAtMs)} (every node: ${rejoinedAtMs.toFixed(0)} ms); ` +
      `load stopped ${stoppedAtMs.toFixed(0)} ms`,
  );
  context.diagnostic(
    `longest stall of one key after the kill (bound ${stallBoundMs.toFixed(0)} ms): ` +
      stalls
        .map(
          (stall) =>
            `${stall.key} (${victim} ${stall.position}) ${stall.gapMs.toFixed(0)} ms ending at ` +
            `${stall.endsAtMs.toFixed(0)} ms`,
        )
        .join(', '),
  );
  context.diagnostic(
    `stalls of a key longer than ${REPORTED_STALL_MS} ms: ${longStalls.join(', ') || 'none'}`,
  );
  context.diagnostic(
    `longest gap without any completion: ${overall.gapMs.toFixed(1)} ms after the kill, ` +
      `${beforeKill.gapMs.toFixed(1)} ms before it`,
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
  context.diagnostic(
    `first unknown outcomes: ${history
      .filter((operation) => operation.outcome === 'unknown')
      .slice(0, UNKNOWNS_LISTED)
      .map(
        (operation) => `${operation.op} ${operation.key} at ${operation.invokedAt.toFixed(0)} ms`,
      )
      .join(', ')}`,
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
  assert.equal(versionProblem(load.versionedReads), null, `seed ${SEED}: versions`);
  assert.deepEqual(disagreements, [], `seed ${SEED}: every node reads the same value and version`);

  // Progress: every client completed operations in every phase. "Repaired" starts once the
  // stall bound has passed since the kill; the connection to the restarted node is asked for
  // progress once the node is back in every chain.
  const windows = [
    { name: 'before the kill', fromMs: 0, toMs: killedAtMs },
    {
      name: 'once the chains were repaired',
      fromMs: killedAtMs + stallBoundMs,
      toMs: restartingAtMs,
    },
    { name: 'after the rejoin', fromMs: rejoinedAtMs, toMs: stoppedAtMs },
  ];
  for (const [clientId, name] of clientNames) {
    for (const window of windows) {
      if (clientId === lateClientId && window.fromMs < rejoinedAtMs) continue;
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

  // Negative controls: the same history with one stale read, and the reads with one older
  // version, must be rejected, or the checks above proved nothing.
  const control = checkLinearizable(staleReadBefore(history, killedAtMs), {
    budgetMs: CHECK_BUDGET_MS,
  });
  assert.equal(control.result, 'not-linearizable', 'a stale read is caught');
  assert.notEqual(
    versionProblem(olderVersionRead(load.versionedReads)),
    null,
    'an older version is caught',
  );

  for (const stall of stalls) {
    assert.ok(
      stall.gapMs <= stallBoundMs,
      `seed ${SEED}: ${stall.key} (${victim} its ${stall.position}) went ${stall.gapMs.toFixed(0)} ms ` +
        `without a completion after the kill, ending at ${stall.endsAtMs.toFixed(0)} ms; ` +
        `the bound is ${stallBoundMs.toFixed(0)} ms`,
    );
  }
});
