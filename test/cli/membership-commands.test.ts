// `ringkv cluster status|join|abort|handoff` for membership changes. The formatters are pure
// functions of the nodes' answers and are held to exact text on fixtures (a change with a
// receiver that made every copy, one unreachable, one part way through; one that has not
// seen the change). Usage mistakes exit 2 before any request: they name an address where
// nothing listens, so a request would exit 1 instead. Then the commands run against two
// nodes in this process, a founder and a standby: roles, handoff settings on one node and
// on all, a dry run, a join whose progress the status asks of the joiner, and its abort.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  clusterCommand,
  formatCluster,
  formatDuration,
  formatHandoff,
  formatRate,
  parseRate,
  progressBar,
  receiverTotals,
  type ClusterAnswer,
  type CopyAnswer,
  type HandoffAnswer,
} from '../../src/cli/commands/cluster-commands.ts';
import { UsageError } from '../../src/cli/options.ts';
import { waitFor } from '../helpers/test-node.ts';
import {
  ADMIN_TOKEN,
  startStandbyCluster,
  type StandbyCluster,
} from '../api/http/standby-cluster.ts';

const KIB = 1024;
const MIB = 1024 * 1024;

// ---- fixtures ----

function member(id: string, index: number, partitionsOwned: number, role = 'member') {
  return {
    id,
    role,
    peer: `127.0.0.1:658${index}`,
    http: `127.0.0.1:648${index}`,
    resp: `127.0.0.1:638${index}`,
    liveness: 'alive',
    partitionsOwned,
    chainsJoined: 0,
  };
}

const IDLE: HandoffAnswer = {
  changeEpoch: null,
  transfers: [],
  copiesWaiting: 0,
  copiesDone: 0,
  bytesPerSecondLimit: 0,
  paused: false,
};

const STEADY: ClusterAnswer = {
  node: 'node1',
  clusterId: 'ringkv',
  state: 'ready',
  epoch: 6,
  partitionCount: 64,
  members: [
    member('node1', 0, 22),
    member('node2', 1, 21),
    member('node3', 2, 21),
    member('node4', 3, 0, 'standby'),
  ],
  hintsPending: { node3: 2 },
  hintsTotal: 2,
  problem: null,
  chainsShort: 0,
  left: false,
  change: null,
  handoff: IDLE,
};

const JOINING: ClusterAnswer = {
  ...STEADY,
  epoch: 7,
  members: [...STEADY.members.slice(0, 3), member('node4', 3, 0)],
  change: {
    kind: 'join',
    subject: 'node4',
    by: null,
    epoch: 7,
    receivers: ['node2', 'node3', 'node4'],
    copied: ['node2'],
  },
};

function copy(partition: number, fields: Partial<CopyAnswer>): CopyAnswer {
  return {
    keyspaceId: 0,
    partition,
    state: 'running',
    stalled: false,
    source: 'node1',
    keysReceived: 0,
    bytesReceived: 0,
    bytesPerSecond: 0,
    bytesTotalEstimate: null,
    etaMs: null,
    ...fields,
  };
}

/** node4 part way: one copy done, one running, one stalled, two not started. */
const NODE4_HANDOFF: HandoffAnswer = {
  changeEpoch: 7,
  copiesWaiting: 2,
  copiesDone: 1,
  bytesPerSecondLimit: 512 * KIB,
  paused: false,
  transfers: [
    copy(3, {
      state: 'done',
      keysReceived: 1000,
      bytesReceived: MIB,
      bytesTotalEstimate: MIB,
      etaMs: 0,
    }),
    copy(9, {
      keysReceived: 300,
      bytesReceived: 256 * KIB,
      bytesPerSecond: 128 * KIB,
      bytesTotalEstimate: MIB,
      etaMs: 6000,
    }),
    copy(9, { keyspaceId: 1, source: 'node2', stalled: true }),
  ],
};

const KEYSPACE_NAMES = new Map([
  [0, 'default'],
  [1, 'orders'],
]);

// ---- pure formatting ----

test('the status table shows each member with its role; no change, no change section', () => {
  assert.equal(
    formatCluster(STEADY),
    [
      'cluster ringkv  state ready  epoch 6  partitions 64  seen from node1  hints held 2',
      'MEMBER  ROLE     LIVENESS  PARTITIONS  HINTS PENDING  PEER            HTTP            RESP',
      'node1   member   alive     22          0              127.0.0.1:6580  127.0.0.1:6480  127.0.0.1:6380',
      'node2   member   alive     21          0              127.0.0.1:6581  127.0.0.1:6481  127.0.0.1:6381',
      'node3   member   alive     21          2              127.0.0.1:6582  127.0.0.1:6482  127.0.0.1:6382',
      'node4   standby  alive     0           0              127.0.0.1:6583  127.0.0.1:6483  127.0.0.1:6383',
      '',
    ].join('\n'),
  );
  // An answer from a node that predates roles and changes formats as before, role 'member'.
  const { change: _change, handoff: _handoff, left: _left, ...older } = STEADY;
  const members = older.members.map(({ role: _role, ...rest }) => rest);
  assert.match(formatCluster({ ...older, members }), /^node4 +member +alive +0 /m);
});

test('a change in progress shows each receiver: made, unreachable, or its copies with bar, bytes, rate and ETA', () => {
  const text = formatCluster(JOINING, {
    receivers: new Map([
      ['node3', { answered: false, reason: 'no answer from http://127.0.0.1:6482 within 3 s' }],
      ['node4', { answered: true, status: { ...JOINING, node: 'node4', handoff: NODE4_HANDOFF } }],
    ]),
    keyspaceNames: KEYSPACE_NAMES,
  });
  const section = text.slice(text.indexOf('\n\n') + 2);
  assert.match(text, /^node4 +member \(joining\) +alive +0 /m);
  assert.equal(
    section,
    [
      'change in progress: join node4 (since map epoch 7); 1 of 3 receivers have made every copy',
      'node2  every copy made (reported in the map)',
      'node3  unreachable: no answer from http://127.0.0.1:6482 within 3 s',
      'node4  copies [####----------------] 1 of 5 made, 2 waiting to start  limit 512 KiB/s',
      '       bytes  [#####---------------] 1.25 MiB of ~5 MiB (2 of 5 sizes known)  keys 1300  rate 128 KiB/s  ETA 30 s',
      '       KEYSPACE  PARTITION  SOURCE  STATE    KEYS  BYTES              RATE       ETA',
      '       default   9          node1   running  300   256 KiB of ~1 MiB  128 KiB/s  6 s',
      '       orders    9          node2   stalled  0     0 B                0 B/s      ?',
      '',
    ].join('\n'),
  );
});

test('bytes left and the ETA come from the copies measured, the others counted at their mean; paused, no ETA', () => {
  const handoff: HandoffAnswer = {
    changeEpoch: 7,
    copiesWaiting: 0,
    copiesDone: 1,
    bytesPerSecondLimit: 0,
    paused: false,
    transfers: [
      // Done: what it received is its size, whatever the count estimated.
      copy(1, { state: 'done', bytesReceived: 2 * MIB, bytesTotalEstimate: MIB, etaMs: 0 }),
      copy(2, { bytesReceived: MIB, bytesTotalEstimate: 3 * MIB, bytesPerSecond: MIB }),
    ],
  };
  const totals = receiverTotals(handoff);
  assert.deepEqual(totals, {
    copies: 2,
    copiesDone: 1,
    keys: 0,
    bytes: 3 * MIB,
    bytesTotal: 5 * MIB,
    sizesKnown: 2,
    bytesPerSecond: MIB,
    etaMs: 2000,
  });
  const status = { ...JOINING, node: 'node3', handoff };
  const lines = formatCluster(JOINING, {
    receivers: new Map([['node3', { answered: true, status }]]),
    keyspaceNames: new Map(),
  }).split('\n');
  const node3 = lines.findIndex((line) => line.startsWith('node3  copies'));
  assert.equal(lines[node3], 'node3  copies [##########----------] 1 of 2 made');
  assert.equal(
    lines[node3 + 1],
    '       bytes  [############--------] 3 MiB of ~5 MiB  keys 0  rate 1 MiB/s  ETA 2 s',
  );
  // Keyspaces whose names did not come show their ids.
  assert.match(lines[node3 + 3]!, /^ {7}#0 +2 +node1 +running /);
  const paused = receiverTotals({ ...handoff, paused: true });
  assert.equal(paused.etaMs, null, 'a paused receiver has no time left to show');
  // Copies not started yet count at the mean size of those measured (2.5 MiB here).
  const extrapolated = receiverTotals({ ...handoff, copiesWaiting: 2 });
  assert.equal(extrapolated.bytesTotal, 10 * MIB);
  assert.equal(extrapolated.sizesKnown, 2);
  assert.equal(extrapolated.etaMs, 7000);
  const unmeasured = handoff.transfers.map((one) => ({
    ...one,
    state: 'running',
    bytesTotalEstimate: null,
  }));
  assert.equal(
    receiverTotals({ ...handoff, copiesDone: 0, transfers: unmeasured }).bytesTotal,
    null,
  );
  assert.equal(receiverTotals({ ...handoff, copiesDone: 0, transfers: unmeasured }).etaMs, null);
  assert.equal(receiverTotals({ ...IDLE }).etaMs, 0, 'nothing to copy is done');
  // A node that gives its own rate over all copies is taken at its word: the running
  // copies' averages read low, and copies already done add nothing to their sum.
  const ownRate = receiverTotals({ ...handoff, bytesPerSecond: 4 * MIB });
  assert.equal(ownRate.bytesPerSecond, 4 * MIB);
  assert.equal(ownRate.etaMs, 500);
});

test('a receiver not yet on the change, one not asked, an older node and a replace are said as such', () => {
  const older = { ...JOINING, node: 'node4', epoch: 6, handoff: IDLE };
  const { handoff: _handoff, ...withoutHandoff } = JOINING;
  const text = formatCluster(JOINING, {
    receivers: new Map([
      ['node3', { answered: true, status: withoutHandoff }],
      ['node4', { answered: true, status: older }],
    ]),
    keyspaceNames: KEYSPACE_NAMES,
  });
  assert.match(text, /^node3 {2}answers without handoff progress \(an older node\)$/m);
  assert.match(
    text,
    /^node4 {2}has not started this change's copies yet \(its map is at epoch 6, the change at 7\)$/m,
  );
  assert.match(formatCluster(JOINING), /^node3 {2}not asked$/m);
  const replacing: ClusterAnswer = {
    ...JOINING,
    change: {
      ...JOINING.change!,
      kind: 'replace',
      subject: 'node3',
      by: 'node4',
      receivers: [],
      copied: [],
    },
  };
  const replaced = formatCluster(replacing);
  assert.match(replaced, /^node3 +member \(being replaced\) /m);
  assert.match(replaced, /^node4 +member \(replacing node3\) /m);
  assert.match(
    replaced,
    /^change in progress: replace node3 by node4 \(since map epoch 7\); 0 of 0 /m,
  );
  assert.match(replaced, /^no member receives copies in this change$/m);
  assert.match(formatCluster({ ...STEADY, left: true }), /^node1 has left the cluster: /m);
});

test('units: bars fill with the fraction and only when done, durations and rates read as a person would', () => {
  assert.equal(progressBar(0, 10), '[--------------------]');
  assert.equal(progressBar(5, 10), '[##########----------]');
  assert.equal(progressBar(999, 1000), '[###################-]');
  assert.equal(progressBar(10, 10), '[####################]');
  assert.equal(progressBar(0, 0), '[####################]');
  assert.equal(formatDuration(0), '0 s');
  assert.equal(formatDuration(1), '1 s');
  assert.equal(formatDuration(59_000), '59 s');
  assert.equal(formatDuration(200_000), '3 min 20 s');
  assert.equal(formatDuration(7_500_000), '2 h 5 min');
  assert.equal(formatDuration(Number.NaN), '?');
  assert.equal(formatRate(0), '0 B/s');
  assert.equal(formatRate(1536.4), '1.5 KiB/s');
  assert.equal(formatRate(10 * MIB), '10 MiB/s');
  assert.equal(
    formatHandoff({ ...NODE4_HANDOFF, paused: true }),
    'rate limit 512 KiB/s  paused yes  copies done 1 of 5',
  );
  assert.equal(formatHandoff(IDLE), 'rate limit none  paused no  copies done 0 of 0');
});

test('--rate takes bytes per second with an optional binary unit, and nothing else', () => {
  const cases: [string, number][] = [
    ['0', 0],
    ['1048576', MIB],
    ['512KiB', 512 * KIB],
    ['10MiB', 10 * MIB],
    ['1.5 mib', 1.5 * MIB],
    ['2GiB', 2 * 1024 * MIB],
    ['100B', 100],
  ];
  for (const [raw, bytes] of cases) assert.equal(parseRate(raw), bytes, raw);
  for (const raw of ['', 'fast', '-5', '10MB', '10 Mbit', '1e3', 'MiB', '9'.repeat(20)]) {
    assert.throws(() => parseRate(raw), UsageError, raw);
  }
});

// ---- the command ----

/** A cluster command run in this process, with main.ts's exit codes (2: a usage mistake). */
async function command(
  ...args: string[]
): Promise<{ stdout: string; stderr: string; code: number }> {
  let stdout = '';
  try {
    const code = await clusterCommand('cluster', args, (text) => (stdout += text));
    return { stdout, stderr: '', code };
  } catch (error) {
    const usage =
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true;
    return { stdout, stderr: (error as Error).message, code: usage ? 2 : 1 };
  }
}

test('wrong arity and misplaced flags are usage mistakes (exit 2) that send nothing', async () => {
  const cases: [args: string[], message: RegExp][] = [
    [['join'], /^ringkv cluster join takes ID/],
    [['leave', 'node2', 'node3'], /^ringkv cluster leave takes ID/],
    [['remove'], /^ringkv cluster remove takes ID/],
    [['replace', 'node2'], /^ringkv cluster replace takes ID and BY/],
    [['replace', 'node2', 'node3', 'node4'], /^ringkv cluster replace takes ID and BY/],
    [['abort', 'node2'], /^ringkv cluster abort takes no arguments/],
    [['status', 'node2'], /^ringkv cluster status takes no arguments/],
    [['handoff', 'node2'], /^ringkv cluster handoff takes no arguments/],
    [['bogus'], /^ringkv cluster: unknown action 'bogus'/],
    [['handoff', '--pause', '--resume'], /--pause and --resume exclude each other/],
    [['handoff', '--rate', 'fast'], /^--rate: expected bytes per second/],
    [['handoff', '--rate'], /Option '--rate' argument is ambiguous/],
    [['handoff', '--dry-run'], /^ringkv cluster handoff takes no --dry-run/],
    [['status', '--all'], /^ringkv cluster status takes no --all/],
    [['--pause'], /^ringkv cluster status takes no --pause/],
    [['status', '--dry-run'], /^ringkv cluster status takes no --dry-run/],
    [['join', 'node2', '--rate', '5'], /^ringkv cluster join takes no --rate/],
    [['abort', '--all'], /^ringkv cluster abort takes no --all/],
    [['join', 'node2', '--force'], /Unknown option '--force'/],
  ];
  for (const [args, message] of cases) {
    const result = await command(...args, '--node', '127.0.0.1:1');
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message, args.join(' '));
  }
  // The same address, asked for real, is a failure to reach it: exit 1, not 2.
  const reached = await command('handoff', '--pause', '--node', '127.0.0.1:1');
  assert.equal(reached.code, 1);
  assert.match(reached.stderr, /cannot reach/);
});

let cluster: StandbyCluster;
let founder = '';
let standby = '';

before(async () => {
  for (const name of ['RINGKV_URL', 'RINGKV_ADMIN_TOKEN', 'RINGKV_PASSWORD']) {
    delete process.env[name];
  }
  cluster = await startStandbyCluster();
  founder = new URL(cluster.founder.httpUrl).host;
  standby = new URL(cluster.standby.httpUrl).host;
});

after(async () => {
  await cluster.close();
});

function admin(...args: string[]) {
  return command(...args, '--admin-token', ADMIN_TOKEN);
}

test('against a founder and its standby: handoff settings, a dry run, a join with its progress, an abort', async () => {
  const steady = await command('--node', founder);
  assert.equal(steady.code, 0, steady.stderr);
  assert.match(steady.stdout, /^node1 +member, voter +alive +256 /m);
  // Liveness as SWIM sees it: on a loaded machine a probe may time out and make it suspect.
  assert.match(
    steady.stdout,
    /^node2 +standby +(alive|suspect) +0 /m,
    'a standby is never a voter and owns nothing',
  );
  assert.doesNotMatch(steady.stdout, /change in progress/);

  // Settings: one node, then every member; without the token nothing is set.
  const paused = await admin('handoff', '--pause', '--node', standby);
  assert.equal(paused.code, 0, paused.stderr);
  assert.equal(paused.stdout, 'rate limit none  paused yes  copies done 0 of 0\n');
  const limited = await admin('handoff', '--rate', '1MiB', '--all', '--node', founder);
  assert.equal(limited.code, 0, limited.stderr);
  assert.equal(
    limited.stdout,
    'node1: rate limit 1 MiB/s  paused no  copies done 0 of 0\n' +
      'node2: rate limit 1 MiB/s  paused yes  copies done 0 of 0\n',
  );
  const refused = await command('handoff', '--resume', '--all', '--node', founder);
  assert.equal(refused.code, 1);
  assert.match(refused.stdout, /^node1: not set: RINGKV_UNAUTHORIZED/m);
  assert.match(refused.stdout, /^node2: not set: RINGKV_UNAUTHORIZED/m);
  assert.equal(cluster.standby.node.runtime.clusterStatus().handoff.paused, true);

  const epochBefore = cluster.founder.node.runtime.clusterStatus().epoch;
  const dry = await admin('join', 'node2', '--dry-run', '--node', founder);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, new RegExp(`^join node2 \\(map epoch ${epochBefore + 1}\\)$`, 'm'));
  assert.match(dry.stdout, /^dry run: nothing changed$/m);
  assert.equal(cluster.founder.node.runtime.clusterStatus().epoch, epochBefore);

  // The joiner's copies stay paused, so the change stays in progress while it is looked at.
  const joined = await admin('join', 'node2', '--node', founder);
  assert.equal(joined.code, 0, joined.stderr);
  assert.match(joined.stdout, /^made: the map is at epoch \d+; data moves now/m);
  const changeEpoch = cluster.founder.node.runtime.clusterStatus().change?.epoch;
  assert.equal(changeEpoch, epochBefore + 1);
  await waitFor(
    () => cluster.standby.node.runtime.clusterStatus().handoff.changeEpoch === changeEpoch,
    5000,
    'node2 to take up the change',
  );
  const during = await command('status', '--node', founder);
  assert.equal(during.code, 0, during.stderr);
  assert.match(during.stdout, /^node2 +member \(joining\) +(alive|suspect) +0 /m);
  assert.match(
    during.stdout,
    new RegExp(
      `^change in progress: join node2 \\(since map epoch ${changeEpoch}\\); 0 of 1 receivers have made every copy$`,
      'm',
    ),
  );
  // Asked of node2 itself: 256 copies of `default`, none started (paused, and copies start
  // a few seconds after a change is seen), with the settings set above.
  assert.match(
    during.stdout,
    /^node2 {2}copies \[-{20}\] 0 of 256 made, \d+ waiting to start {2}paused {2}limit 1 MiB\/s$/m,
  );
  assert.match(
    during.stdout,
    /^ {7}bytes {2}0 B of a total not known yet {2}keys 0 {2}rate 0 B\/s {2}ETA \?$/m,
  );

  const aborted = await admin('abort', '--node', standby);
  assert.equal(aborted.code, 0, aborted.stderr);
  assert.match(aborted.stdout, /^aborted: the map is at epoch \d+$/m);
  await waitFor(
    () => cluster.standby.node.runtime.clusterStatus().change === null,
    5000,
    'node2 to see the abort',
  );
  const afterAbort = await command('--node', standby);
  assert.match(afterAbort.stdout, /^node2 +standby +alive +0 /m);
  assert.doesNotMatch(afterAbort.stdout, /change in progress/);

  const reset = await admin('handoff', '--resume', '--rate', '0', '--all', '--node', standby);
  assert.equal(reset.code, 0, reset.stderr);
  assert.match(reset.stdout, /^node2: rate limit none {2}paused no /m);
});

test("the status shows the node's load and, with a policy, what the elastic policy last asked for", () => {
  const text = formatCluster({
    ...STEADY,
    load: { keys: 1200, bytes: 3 * 1024 * 1024, requestsPerSecond: 41.6 },
    elastic: {
      deciding: true,
      decisions: 2,
      lastDecision: {
        kind: 'join',
        member: { id: 'node4' },
        reason: 'keys per member 1200 is above 1000',
      },
    },
  });
  assert.match(text, /^load of node1: 1200 keys, 3 MiB, 42 requests\/s$/m);
  assert.match(
    text,
    /^elastic policy: decided by node1; last asked: join node4 \(keys per member 1200 is above 1000\), 2 in all$/m,
  );
  assert.doesNotMatch(formatCluster({ ...STEADY, elastic: null }), /elastic policy/);
});
