// DESIGN section 1, membership: "join, leave and remove move data without losing any
// acknowledged write, and the cluster keeps serving reads and writes for every key while
// data moves". Three real `ringkv start` processes on LMDB (loopback) found a cluster; two
// more start with --join as standbys. While writers make W=2 writes the whole time (two
// through the TypeScript client, routed by the ring; two over plain HTTP to the members in
// turn, so coordinators forward), node4 joins (through the CLI), then node5 (through the
// HTTP route); then node5 leaves, then node4. After each change commits:
// - every member reports the change gone and the same ring, and the partitions are shared
//   out evenly (each owning member has floor or ceil of Q/M);
// - once the nodes that gave partitions away have dropped them, every key is stored on
//   exactly its N owners: each node's local listing (scope=node) holds no key it does not
//   replicate and every acknowledged key it does;
// - a node that left answers requests with an error saying it left.
// At the end every key read from every remaining node gives its last acknowledged value, or
// the value of a write after it that failed (a failed write may have taken effect).
//
// The writers choose keys from a seeded generator; the seed is printed with how to replay it.
// Each key belongs to one writer, so its writes are sequential and "the last acknowledged
// value" is well defined.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Agent, request as httpRequest } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { RingkvClient, isRingkvError } from '../../src/client/index.ts';
import { Prng } from '../../src/core/prng.ts';
import { http, waitFor } from './cluster-harness.ts';
import { LOOPBACK } from './node-processes.ts';
import {
  checkBalance,
  placementProblems,
  clusterWithStandbys,
  waitForCommit as waitForCommitOn,
  type Placement,
} from './membership-checks.ts';

const SEED = Number(process.env.RINGKV_TEST_SEED ?? Date.now() % 1_000_000);
const REPLAY = `replay with RINGKV_TEST_SEED=${SEED}`;
const FOUNDERS = ['node1', 'node2', 'node3'];
const KEY_COUNT = 600;
const CLIENT_WRITERS = 2;
const HTTP_WRITERS = 2;
const REPLICAS = 3;
/** A change waits 5 s before its copies start; a few seconds more for the copies. */
const COMMIT_TIMEOUT_MS = 30_000;
/** Given-away partitions are dropped 5 s after the commit is seen, a bounded rate per tick. */
const PLACEMENT_TIMEOUT_MS = 25_000;
const DEPARTED_STOP_TIMEOUT_MS = 5_000;
const READS_IN_FLIGHT = 16;
const LAUNCHER = path.join(import.meta.dirname, '..', '..', 'bin', 'ringkv.js');
const runFile = promisify(execFile);

const cluster = clusterWithStandbys(FOUNDERS, [
  { id: 'node4', via: 'node1' },
  { id: 'node5', via: 'node2' },
]);

/** `ringkv ARGS...` against a node; its exit code and what it printed. */
async function ringkvCli(args: readonly string[]) {
  try {
    const { stdout, stderr } = await runFile(process.execPath, [LAUNCHER, ...args], {
      timeout: 20_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

function hostPort(url: string): string {
  return url.replace(/^http:\/\//, '');
}

test('ringkv cluster join --dry-run prints the plan and changes nothing', async () => {
  const epochBefore = (await cluster().status('node1')).epoch;
  const answer = await ringkvCli([
    'cluster',
    'join',
    'node4',
    '--dry-run',
    '--node',
    hostPort(cluster().node('node1').httpUrl),
  ]);
  assert.equal(answer.code, 0, `the dry run succeeds: ${answer.stderr}`);
  assert.match(answer.stdout, /^join node4 \(map epoch \d+\)$/m);
  assert.match(answer.stdout, /^ownership: \d+ of 256 partitions change owner$/m);
  assert.match(answer.stdout, /^ {2}node4: 0 -> \d+$/m);
  assert.match(answer.stdout, /^dry run: nothing changed$/m);
  for (const id of [...FOUNDERS, 'node4']) {
    const view = await cluster().status(id);
    assert.equal(view.epoch, epochBefore, `${id}'s map stays at epoch ${epochBefore}`);
    assert.equal(view.change, null, `${id} sees no change in progress`);
    const node4 = view.members.find((member) => member.id === 'node4');
    assert.equal(node4?.role, 'standby', `${id} still sees node4 as a standby`);
    assert.equal(node4?.partitionsOwned, 0);
  }
});

test('the handoff route refuses bad settings with a 400 that says why, and changes nothing', async () => {
  const url = `${cluster().node('node1').httpUrl}/v1/admin/handoff`;
  const refusals: readonly [string, RegExp][] = [
    [JSON.stringify({ bytesPerSecond: -1 }), /bytesPerSecond must be a number of bytes/],
    [JSON.stringify({ bytesPerSecond: 'fast' }), /bytesPerSecond must be a number of bytes/],
    [JSON.stringify({ paused: 'yes' }), /paused must be true or false/],
    [JSON.stringify({ rate: 5 }), /unknown field 'rate'/],
    ['not json', /must be a JSON object/],
  ];
  for (const [body, message] of refusals) {
    const answer = await http(url, { method: 'POST', body });
    assert.equal(answer.status, 400, `${body} is refused with a 400: ${answer.text}`);
    const error = (answer.json as { error?: { message?: string } }).error;
    assert.match(error?.message ?? '', message, `${body}: ${answer.text}`);
  }
  const handoff = (await cluster().status('node1')).handoff;
  assert.equal(handoff.bytesPerSecondLimit, 0, 'the refused settings left no rate limit');
  assert.equal(handoff.paused, false, 'the refused settings left the handoff running');

  // A valid setting is taken and shown, then cleared again.
  const set = await http(url, { method: 'POST', body: JSON.stringify({ bytesPerSecond: 1e6 }) });
  assert.equal(set.status, 200, set.text);
  assert.equal(
    (set.json as { handoff: { bytesPerSecondLimit: number } }).handoff.bytesPerSecondLimit,
    1e6,
  );
  const cleared = await http(url, { method: 'POST', body: JSON.stringify({ bytesPerSecond: 0 }) });
  assert.equal(cleared.status, 200, cleared.text);
  assert.equal((await cluster().status('node1')).handoff.bytesPerSecondLimit, 0);
});

// ---- the load ----

interface KeyState {
  /** What a read may return: the last acknowledged value and failed writes after it. */
  possible: Set<string>;
  acknowledged: boolean;
}

interface Load {
  readonly keys: Map<string, KeyState>;
  /** Nodes the plain HTTP writers send to, in turn; changed as members come and go. */
  httpTargets: string[];
  stopping: boolean;
  sequence: number;
  acknowledged: number;
  failed: number;
  unknown: number;
  readonly errors: Map<string, number>;
}

/** Keys acknowledged so far: they must be everywhere they belong. */
function acknowledgedKeys(load: Load): string[] {
  return [...load.keys].filter(([, state]) => state.acknowledged).map(([key]) => key);
}

function keyName(index: number): string {
  return `grow-shrink-${String(index).padStart(4, '0')}`;
}

function countError(load: Load, name: string): void {
  load.errors.set(name, (load.errors.get(name) ?? 0) + 1);
}

/** Writes keys owned by `writer` (index mod writers) until the load stops. */
async function runWriter(
  load: Load,
  writer: number,
  write: (key: string, value: string) => Promise<'ok' | 'failed' | 'unknown'>,
): Promise<void> {
  const writers = CLIENT_WRITERS + HTTP_WRITERS;
  const owned = Array.from({ length: KEY_COUNT }, (_, index) => index).filter(
    (index) => index % writers === writer,
  );
  const prng = new Prng((SEED * 1_009 + writer + 1) >>> 0);
  while (!load.stopping) {
    const key = keyName(owned[prng.below(owned.length)]!);
    const value = `${key}=${++load.sequence}`;
    const state = load.keys.get(key) ?? { possible: new Set<string>(), acknowledged: false };
    load.keys.set(key, state);
    const outcome = await write(key, value);
    if (outcome === 'ok') {
      state.possible = new Set([value]);
      state.acknowledged = true;
      load.acknowledged++;
    } else {
      state.possible.add(value);
      if (outcome === 'failed') load.failed++;
      else load.unknown++;
    }
  }
}

function clientWriter(load: Load, client: RingkvClient) {
  return async (key: string, value: string): Promise<'ok' | 'failed' | 'unknown'> => {
    try {
      await client.put('default', key, value, { w: 2 });
      return 'ok';
    } catch (error) {
      const code = isRingkvError(error) ? error.code : 'other';
      countError(load, `client ${code}`);
      return code === 'UNREACHABLE' ? 'failed' : 'unknown';
    }
  };
}

function httpWriter(load: Load, first: number) {
  let turn = first;
  return async (key: string, value: string): Promise<'ok' | 'failed' | 'unknown'> => {
    const targets = load.httpTargets;
    const id = targets[turn++ % targets.length]!;
    try {
      const answer = await http(`${cluster().node(id).httpUrl}/v1/kv/default/${key}?w=2`, {
        method: 'PUT',
        body: value,
      });
      if (answer.status === 200) return 'ok';
      const code = (answer.json as { error?: { code?: string } } | undefined)?.error?.code;
      countError(load, `http ${answer.status} ${code ?? ''} via ${id}`);
      return 'failed';
    } catch (error) {
      const code = (error as { cause?: { code?: string } }).cause?.code ?? 'error';
      countError(load, `http ${code} via ${id}`);
      return code === 'ECONNREFUSED' ? 'failed' : 'unknown';
    }
  };
}

// ---- checks ----

test('the cluster grows from 3 nodes to 5 and shrinks back to 3 under W=2 writes, losing no acknowledged write', async (context) => {
  context.diagnostic(`seed ${SEED}; ${REPLAY}`);
  const startedMs = performance.now();
  const load: Load = {
    keys: new Map(),
    httpTargets: [...FOUNDERS],
    stopping: false,
    sequence: 0,
    acknowledged: 0,
    failed: 0,
    unknown: 0,
    errors: new Map(),
  };
  const clients = await Promise.all(
    Array.from({ length: CLIENT_WRITERS }, (_, index) =>
      RingkvClient.connect({
        endpoints: FOUNDERS.map((id) => hostPort(cluster().node(id).httpUrl)),
        refreshRingMs: 1_000,
      }).then((client) => ({ client, index })),
    ),
  );
  const writers = Promise.all([
    ...clients.map(({ client, index }) => runWriter(load, index, clientWriter(load, client))),
    ...Array.from({ length: HTTP_WRITERS }, (_, index) =>
      runWriter(load, CLIENT_WRITERS + index, httpWriter(load, index)),
    ),
  ]);
  let members = [...FOUNDERS];
  try {
    await waitFor(
      () => load.acknowledged >= 200,
      20_000,
      '200 acknowledged writes before any change',
    );

    const change = async (
      kind: 'join' | 'leave',
      subject: string,
      how: 'cli' | 'route',
    ): Promise<void> => {
      const via = FOUNDERS[members.length % FOUNDERS.length]!;
      const changeStartMs = performance.now();
      const counts = {
        acknowledged: load.acknowledged,
        failed: load.failed,
        unknown: load.unknown,
      };
      let madeEpoch: number;
      if (how === 'cli') {
        const answer = await ringkvCli([
          'cluster',
          kind,
          subject,
          '--node',
          hostPort(cluster().node(via).httpUrl),
        ]);
        assert.equal(answer.code, 0, `ringkv cluster ${kind} ${subject}: ${answer.stderr}`);
        assert.match(answer.stdout, new RegExp(`^${kind} ${subject} \\(map epoch \\d+\\)$`, 'm'));
        const made = /^made: the map is at epoch (\d+);/m.exec(answer.stdout);
        assert.ok(made !== null, `the CLI says the change was made: ${answer.stdout}`);
        madeEpoch = Number(made[1]);
      } else {
        const answer = await http(`${cluster().node(via).httpUrl}/v1/cluster/membership`, {
          method: 'POST',
          body: JSON.stringify({ kind, id: subject }),
        });
        assert.equal(answer.status, 200, `${kind} ${subject}: ${answer.text}`);
        const made = answer.json as { made: boolean; epoch: number; planText: string[] };
        assert.equal(made.made, true);
        assert.equal(made.planText[0], `${kind} ${subject} (map epoch ${made.epoch})`);
        madeEpoch = made.epoch;
      }
      const next = kind === 'join' ? [...members, subject] : members.filter((id) => id !== subject);
      const ring = await waitForCommitOn(cluster(), next, madeEpoch, COMMIT_TIMEOUT_MS);
      const commitMs = performance.now() - changeStartMs;
      members = next;
      if (kind === 'join') load.httpTargets = [...members];
      else load.httpTargets = load.httpTargets.filter((id) => id !== subject);

      if (kind === 'leave') {
        // The node that left knows it, and says so to anyone who asks.
        await waitFor(
          async () => (await cluster().status(subject)).left,
          10_000,
          `${subject} to know it left`,
        );
        const refused = await http(
          `${cluster().node(subject).httpUrl}/v1/kv/default/${keyName(0)}`,
        );
        assert.equal(refused.status, 503, `${subject} refuses a read: ${refused.text}`);
        assert.match(refused.text, /this node left the cluster/);
      }
      const owned = checkBalance(ring, members);

      let placement: Placement = { problems: ['not looked yet'], keysByNode: {} };
      await waitFor(
        async () => {
          placement = await placementProblems(
            cluster(),
            acknowledgedKeys(load),
            members,
            ring,
            REPLICAS,
          );
          return placement.problems.length === 0;
        },
        PLACEMENT_TIMEOUT_MS,
        () =>
          `every key on exactly its ${REPLICAS} replicas after the ${kind} of ${subject} ` +
          `(seed ${SEED}): ${placement.problems.length} problems, e.g.\n  ` +
          placement.problems.slice(0, 8).join('\n  '),
      ).catch((error: unknown) => {
        // Shown as a failed assertion with the problems, not as a timeout alone.
        assert.deepEqual(placement.problems.slice(0, 8), [], String(error));
        throw error;
      });
      const placedMs = performance.now() - changeStartMs;
      context.diagnostic(
        `${kind} ${subject} (${how}, via ${via}): committed at epoch ${ring.epoch} after ` +
          `${(commitMs / 1000).toFixed(1)} s, keys on exactly their replicas after ` +
          `${(placedMs / 1000).toFixed(1)} s; partitions ${JSON.stringify(owned)}; keys stored ` +
          `${JSON.stringify(placement.keysByNode)}; writes meanwhile: ` +
          `${load.acknowledged - counts.acknowledged} acknowledged, ${load.failed - counts.failed} failed, ` +
          `${load.unknown - counts.unknown} unknown`,
      );
    };

    // A node that left is stopped, as its refusals ask. Its prompt exit is not this test's
    // claim (see the SIGTERM test below, which a known bug fails): a slow one is noted.
    const stopDeparted = async (id: string): Promise<void> => {
      await cluster()
        .stop(id, 'SIGTERM', DEPARTED_STOP_TIMEOUT_MS)
        .catch(() => context.diagnostic(`${id} did not exit within 5 s of SIGTERM: killed`));
    };
    await change('join', 'node4', 'cli');
    await change('join', 'node5', 'route');
    await change('leave', 'node5', 'route');
    await stopDeparted('node5');
    await change('leave', 'node4', 'route');
    await stopDeparted('node4');
  } finally {
    load.stopping = true;
    await writers;
    await Promise.all(clients.map(({ client }) => client.close()));
  }
  context.diagnostic(
    `writes: ${load.acknowledged} acknowledged, ${load.failed} failed, ${load.unknown} unknown ` +
      `over ${load.keys.size} keys; errors ${JSON.stringify(Object.fromEntries(load.errors))}`,
  );

  // Every key, read with R=2 from every remaining node.
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
          const want = [...state.possible].join(' or ');
          wrong.push(
            `${key} on ${id}: ${answer.status} '${answer.text.slice(0, 80)}', want ${want}`,
          );
        }
      }),
    );
  }
  assert.deepEqual(
    wrong.slice(0, 10),
    [],
    `seed ${SEED}: ${wrong.length} of ${reads.length} reads wrong`,
  );
  context.diagnostic(
    `${reads.length} reads of ${load.keys.size} keys from ${members.join(', ')} all right; ` +
      `the whole run took ${((performance.now() - startedMs) / 1000).toFixed(1)} s`,
  );
  assert.ok(load.acknowledged >= 1_000, `enough writes were acknowledged: ${load.acknowledged}`);
});

// Found by this file: `ringkv start` stopped by SIGTERM while it still owed an HTTP answer on
// a keep-alive connection sent that answer with `connection: keep-alive`, and then did not
// exit until the client closed the socket: the HTTP server's close waited for a connection
// its shutdown left open. An answer sent during shutdown now says `connection: close`. Here
// node3 delays its peer messages so that a W=3 write is still waiting when the signal comes.
test('a node stopped by SIGTERM while a keep-alive HTTP request is in flight exits promptly', async () => {
  const node = cluster().node('node3');
  const faults = await http(`${node.httpUrl}/v1/admin/faults`, {
    method: 'POST',
    body: JSON.stringify({ delayMs: 2_000 }),
  });
  assert.equal(faults.status, 200, faults.text);
  const agent = new Agent({ keepAlive: true });
  try {
    const answered = new Promise<{ status: number; connection: string }>((resolve, reject) => {
      const request = httpRequest(
        {
          host: LOOPBACK,
          port: node.httpPort,
          path: `/v1/kv/default/${keyName(1)}?w=3`,
          method: 'PUT',
          agent,
        },
        (response) => {
          response.resume();
          response.on('end', () =>
            resolve({
              status: response.statusCode ?? 0,
              connection: String(response.headers.connection),
            }),
          );
        },
      );
      request.on('error', reject);
      request.end('in flight at the signal');
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const signalledMs = performance.now();
    const stopped = cluster()
      .stop('node3', 'SIGTERM', DEPARTED_STOP_TIMEOUT_MS)
      .then(
        () => null,
        (error: unknown) => error,
      );
    const answer = await answered;
    const failure = await stopped;
    const exitMs = Math.round(performance.now() - signalledMs);
    assert.equal(
      failure,
      null,
      `node3 exits within ${DEPARTED_STOP_TIMEOUT_MS} ms of SIGTERM; it answered the write in ` +
        `flight with ${answer.status} and connection: ${answer.connection}, and was killed ` +
        `after ${exitMs} ms`,
    );
  } finally {
    agent.destroy();
  }
});
