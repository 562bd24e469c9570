// The anti-entropy exchange between two replicas finds exactly the keys that differ (and
// labels each push, pull or both), exchanges only the root when the replicas agree, keeps
// every request and reply within its limits, and ignores or refuses what it must.
// Property runs are seeded; replay a failure with EXCHANGE_PROPERTY_SEED=<seed>.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { bytesToKeyString, utf8 } from '../../../src/core/bytes.ts';
import {
  AntiEntropySession,
  DEFAULT_EXCHANGE_LIMITS,
  entriesOfLeaves,
  exchangeLimits,
  LeafEntryIndex,
  refuse,
  respond,
  type ExchangeLimits,
  type Repair,
  type RepairAction,
} from '../../../src/core/antientropy/exchange.ts';
import {
  AntiEntropyMessageType,
  isAntiEntropyRequest,
  isValidAntiEntropyMessage,
  RefusalReason,
  type AntiEntropyMessage,
  type AntiEntropyReply,
  type AntiEntropyRequest,
} from '../../../src/core/antientropy/messages.ts';
import { PartitionTree, type TreeEntry } from '../../../src/core/antientropy/merkle-tree.ts';
import { RECORD_DIGEST_MAX } from '../../../src/core/antientropy/record-digest.ts';

function seeded(numRuns: number): fc.Parameters<unknown> {
  return { seed: Number(process.env['EXCHANGE_PROPERTY_SEED'] ?? 20240613), numRuns };
}

const KEYSPACE = 7;
const PARTITION = 41;
const packr = new Packr({ useRecords: false, moreTypes: false });

interface Replica {
  readonly tree: PartitionTree;
  readonly entries: readonly TreeEntry[];
}

function replica(entries: readonly TreeEntry[], leafCount: number): Replica {
  return { tree: PartitionTree.build(entries, leafCount), entries };
}

interface RunOptions {
  readonly limits?: Partial<ExchangeLimits>;
  /** Sends every message through msgpack, as the transport does. */
  readonly overTheWire?: boolean;
  /** Delivers every reply twice, and a copy for another session: both must be ignored. */
  readonly duplicateReplies?: boolean;
  /** Lets a test rewrite B's reply to a request. */
  readonly tamper?: (reply: AntiEntropyReply, request: AntiEntropyRequest) => AntiEntropyReply;
}

interface RunResult {
  readonly session: AntiEntropySession;
  readonly repairs: Repair[];
  readonly requests: AntiEntropyRequest[];
  readonly replies: AntiEntropyReply[];
}

function carry<T extends AntiEntropyMessage>(message: T, overTheWire: boolean): T {
  const delivered: unknown = overTheWire ? packr.unpack(packr.pack(message)) : message;
  assert.ok(isValidAntiEntropyMessage(delivered), `invalid on arrival: ${String(message[0])}`);
  return delivered as T;
}

/** Runs one session of A against B to its end, checking every message on the way. */
function runExchange(a: Replica, b: Replica, options: RunOptions = {}): RunResult {
  const limits = exchangeLimits(options.limits);
  const session = new AntiEntropySession({
    id: 12,
    keyspaceId: KEYSPACE,
    partition: PARTITION,
    tree: a.tree,
    entriesOf: () => a.entries,
    limits: options.limits,
  });
  const repairs: Repair[] = [];
  const requests: AntiEntropyRequest[] = [];
  const replies: AntiEntropyReply[] = [];
  let step = session.start();
  for (let round = 0; step.messages.length > 0; round++) {
    assert.ok(round < 100_000, 'the session ends');
    assert.equal(step.messages.length, 1, 'one request in flight');
    repairs.push(...step.repairs);
    const request = carry(step.messages[0]!, options.overTheWire ?? false);
    assert.ok(isAntiEntropyRequest(request));
    assert.equal(request[3], KEYSPACE);
    assert.equal(request[4], PARTITION);
    requests.push(request);
    if (request[0] === AntiEntropyMessageType.children) {
      assert.ok(request[6].length <= limits.nodesPerRequestMax, 'nodes per request');
    }
    if (request[0] === AntiEntropyMessageType.entries) {
      assert.ok(request[5].length <= limits.leavesPerRequestMax, 'leaves per request');
    }
    let reply = respond(request, b.tree, () => b.entries, limits);
    if (options.tamper !== undefined) reply = options.tamper(reply, request);
    reply = carry(reply, options.overTheWire ?? false);
    replies.push(reply);
    if (reply[0] === AntiEntropyMessageType.entriesReply) {
      assert.ok(reply[3].length <= limits.entriesPerReplyMax, 'entries per reply');
      const keyBytes = reply[3].reduce((sum, key) => sum + key.length, 0);
      assert.ok(keyBytes <= limits.entryKeyBytesPerReplyMax, 'key bytes per reply');
    }
    step = session.receive(reply);
    if (options.duplicateReplies === true) {
      const late = session.receive(reply);
      const otherSession = session.receive([
        reply[0],
        13,
        ...reply.slice(2),
      ] as unknown as AntiEntropyReply);
      assert.deepEqual(late, { messages: [], repairs: [] }, 'a duplicated reply is ignored');
      assert.deepEqual(otherSession, { messages: [], repairs: [] }, 'another session is ignored');
    }
  }
  repairs.push(...step.repairs);
  assert.ok(session.finished, 'no request left means the session is over');
  return { session, repairs, requests, replies };
}

/** The naive reference: every key whose digest differs or that one side lacks. */
function expectedRepairs(
  a: readonly TreeEntry[],
  b: readonly TreeEntry[],
): Map<string, RepairAction> {
  const mine = new Map(a.map((entry) => [bytesToKeyString(entry.key), entry.digest]));
  const theirs = new Map(b.map((entry) => [bytesToKeyString(entry.key), entry.digest]));
  const expected = new Map<string, RepairAction>();
  for (const [key, digest] of mine) {
    const other = theirs.get(key);
    if (other === undefined) expected.set(key, 'push');
    else if (other !== digest) expected.set(key, 'both');
  }
  for (const key of theirs.keys()) if (!mine.has(key)) expected.set(key, 'pull');
  return expected;
}

function repairMap(repairs: readonly Repair[]): Map<string, RepairAction> {
  const found = new Map<string, RepairAction>();
  for (const repair of repairs) {
    const key = bytesToKeyString(repair.key);
    assert.ok(!found.has(key), 'each key is repaired once per session');
    found.set(key, repair.action);
  }
  return found;
}

/** How a key of the pool stands on the two replicas. */
const KEY_STATES = ['same', 'onlyA', 'onlyB', 'differ'] as const;

const replicasArbitrary = fc
  .record({
    keys: fc.uniqueArray(fc.uint8Array({ maxLength: 10 }), {
      selector: (key) => bytesToKeyString(key),
      maxLength: 300,
      size: 'max',
    }),
    leafCount: fc.constantFrom(16, 64, 256, 1024),
    seedDigest: fc.integer({ min: 0, max: RECORD_DIGEST_MAX - 1 }),
  })
  .chain(({ keys, leafCount, seedDigest }) =>
    fc.tuple(
      fc.constant(keys),
      fc.array(fc.constantFrom(...KEY_STATES), { minLength: keys.length, maxLength: keys.length }),
      fc.constant(leafCount),
      fc.constant(seedDigest),
    ),
  )
  .map(([keys, states, leafCount, seedDigest]) => {
    const aEntries: TreeEntry[] = [];
    const bEntries: TreeEntry[] = [];
    keys.forEach((key, i) => {
      const digest = (seedDigest + i * 104_729) % RECORD_DIGEST_MAX;
      const state = states[i]!;
      if (state !== 'onlyB') aEntries.push({ key, digest });
      if (state === 'same' || state === 'onlyB') bEntries.push({ key, digest });
      if (state === 'differ') bEntries.push({ key, digest: digest + 1 });
    });
    return { a: replica(aEntries, leafCount), b: replica(bEntries, leafCount) };
  });

const limitsArbitrary = fc.record({
  nodesPerRequestMax: fc.integer({ min: 1, max: 8 }),
  leavesPerRequestMax: fc.integer({ min: 1, max: 8 }),
  entriesPerReplyMax: fc.integer({ min: 1, max: 8 }),
});

test('the exchange finds exactly the keys that differ, each labelled push, pull or both', () => {
  fc.assert(
    fc.property(replicasArbitrary, limitsArbitrary, ({ a, b }, limits) => {
      const { session, repairs, requests } = runExchange(a, b, { limits });
      const expected = expectedRepairs(a.entries, b.entries);
      assert.deepEqual(repairMap(repairs), expected);
      assert.equal(session.stats.repairs, expected.size);
      if (expected.size === 0) {
        assert.equal(session.outcome, 'same');
        assert.equal(requests.length, 1, 'identical replicas exchange only the root');
      } else {
        assert.equal(session.outcome, 'compared');
      }
    }),
    seeded(200),
  );
});

test('with identical data only the root travels, and B answers "same"', () => {
  const entries = Array.from({ length: 5000 }, (_, i) => ({ key: utf8(`k${i}`), digest: i }));
  const { session, requests, replies } = runExchange(
    replica(entries, 1024),
    replica(entries, 1024),
  );
  assert.equal(session.outcome, 'same');
  assert.deepEqual(
    [...requests.map((m) => m[0]), ...replies.map((m) => m[0])],
    [AntiEntropyMessageType.root, AntiEntropyMessageType.same],
  );
});

test('one differing key costs one descent: a few dozen hashes and one leaf of entries', () => {
  const entries = Array.from({ length: 5000 }, (_, i) => ({ key: utf8(`k${i}`), digest: i }));
  const changed = entries.map((entry, i) => (i === 777 ? { ...entry, digest: 1 } : entry));
  const { session, repairs, requests, replies } = runExchange(
    replica(entries, 1024),
    replica(changed, 1024),
  );
  assert.deepEqual(repairs, [{ key: utf8('k777'), action: 'both' }]);
  assert.equal(session.stats.differingLeaves, 1);
  // Root, then the children of one node at each of the two levels above the leaves, then
  // the entries of one leaf.
  assert.deepEqual(
    requests.map((m) => m[0]),
    ['ar', 'ac', 'ac', 'ae'],
  );
  const hashBytes = replies.reduce(
    (sum, reply) => sum + (reply[0] === AntiEntropyMessageType.hashes ? reply[3].length : 0),
    0,
  );
  assert.equal(hashBytes, (4 + 16 + 16) * 8);
});

test('a leaf with more keys than a reply holds is sent over several replies, none lost', () => {
  // 16 leaves and 2000 keys: about 125 keys a leaf, 7 entries a reply.
  const a = Array.from({ length: 2000 }, (_, i) => ({ key: utf8(`key-${i}`), digest: i }));
  const b = a
    .filter((_, i) => i % 3 !== 0)
    .map((entry, i) => (i % 5 === 0 ? { ...entry, digest: entry.digest + 1 } : entry));
  b.push(...Array.from({ length: 300 }, (_, i) => ({ key: utf8(`only-b-${i}`), digest: i })));
  const { repairs, replies, session } = runExchange(replica(a, 16), replica(b, 16), {
    limits: { entriesPerReplyMax: 7, leavesPerRequestMax: 3 },
    duplicateReplies: true,
  });
  assert.deepEqual(repairMap(repairs), expectedRepairs(a, b));
  const entriesReplies = replies.filter((r) => r[0] === AntiEntropyMessageType.entriesReply);
  assert.ok(
    entriesReplies.some((r) => r[5] === false),
    'some replies were cut short',
  );
  assert.ok(entriesReplies.every((r) => r[3].length <= 7));
  assert.equal(session.outcome, 'compared');
});

test('replies are cut by key bytes too, and always carry at least one key', () => {
  const bigKey = (i: number): Uint8Array => utf8(`${i}:`.padEnd(3000, 'x'));
  const a = Array.from({ length: 40 }, (_, i) => ({ key: bigKey(i), digest: i }));
  const b = a.slice(0, 20);
  const { repairs, replies } = runExchange(replica(a, 16), replica(b, 16), {
    limits: { entryKeyBytesPerReplyMax: 8192 },
  });
  assert.deepEqual(repairMap(repairs), expectedRepairs(a, b));
  for (const reply of replies) {
    if (reply[0] === AntiEntropyMessageType.entriesReply && reply[5] === false) {
      assert.ok(reply[3].length >= 1 && reply[3].length <= 2, `${reply[3].length} keys`);
    }
  }
});

test('messages survive msgpack as the transport sends them, and duplicates are ignored', () => {
  fc.assert(
    fc.property(replicasArbitrary, ({ a, b }) => {
      const { repairs } = runExchange(a, b, {
        overTheWire: true,
        duplicateReplies: true,
        limits: { entriesPerReplyMax: 5, nodesPerRequestMax: 3, leavesPerRequestMax: 2 },
      });
      assert.deepEqual(repairMap(repairs), expectedRepairs(a.entries, b.entries));
    }),
    seeded(40),
  );
});

test('a session stops after repairsPerSessionMax repairs, each a true difference', () => {
  const a = Array.from({ length: 300 }, (_, i) => ({ key: utf8(`k${i}`), digest: i }));
  const b = a.map((entry, i) => (i % 6 === 0 ? { ...entry, digest: 0 } : entry));
  const expected = expectedRepairs(a, b);
  const { session, repairs } = runExchange(replica(a, 64), replica(b, 64), {
    limits: { repairsPerSessionMax: 5, entriesPerReplyMax: 2 },
  });
  assert.equal(session.outcome, 'limited');
  assert.equal(repairs.length, 5);
  for (const [key, action] of repairMap(repairs)) assert.equal(expected.get(key), action);
});

test('trees of different shapes are refused, and the session ends refused', () => {
  const entries = [{ key: utf8('a'), digest: 1 }];
  const { session, replies } = runExchange(replica(entries, 1024), replica([], 256));
  assert.equal(session.outcome, 'refused');
  assert.equal(session.refusalReason, RefusalReason.shape);
  assert.deepEqual(replies, [[AntiEntropyMessageType.refused, 12, 1, RefusalReason.shape]]);
});

test('a node without the partition refuses with "unavailable"', () => {
  const session = new AntiEntropySession({
    id: 3,
    keyspaceId: KEYSPACE,
    partition: PARTITION,
    tree: new PartitionTree(16),
    entriesOf: () => [],
  });
  const request = session.start().messages[0]!;
  session.receive(refuse(request, RefusalReason.unavailable));
  assert.equal(session.outcome, 'refused');
  assert.equal(session.refusalReason, RefusalReason.unavailable);
});

test('a well-formed reply that is wrong for its request ends the session as failed', () => {
  const a = Array.from({ length: 200 }, (_, i) => ({ key: utf8(`k${i}`), digest: i }));
  const b = a.map((entry) => ({ ...entry, digest: entry.digest + 1 }));
  const tampers: [string, RunOptions['tamper']][] = [
    [
      'too few hashes',
      (reply) =>
        reply[0] === AntiEntropyMessageType.hashes
          ? [reply[0], reply[1], reply[2], reply[3].subarray(8)]
          : reply,
    ],
    [
      'entries out of order',
      (reply) =>
        reply[0] === AntiEntropyMessageType.entriesReply && reply[3].length > 1
          ? [
              reply[0],
              reply[1],
              reply[2],
              [...reply[3]].reverse(),
              [...reply[4]].reverse(),
              reply[5],
            ]
          : reply,
    ],
    [
      'an entry outside the leaves',
      (reply, request) => {
        if (reply[0] !== AntiEntropyMessageType.entriesReply) return reply;
        const leaves = request[0] === AntiEntropyMessageType.entries ? request[5] : [];
        const tree = new PartitionTree(64);
        let stranger = 0;
        while (leaves.includes(tree.leafOf(utf8(`x${stranger}`)))) stranger++;
        return [reply[0], reply[1], reply[2], [utf8(`x${stranger}`)], [1], true];
      },
    ],
    [
      '"same" to a children request',
      (reply, request) =>
        request[0] === AntiEntropyMessageType.children
          ? [AntiEntropyMessageType.same, reply[1], reply[2]]
          : reply,
    ],
    [
      'hashes to an entries request',
      (reply, request) =>
        request[0] === AntiEntropyMessageType.entries
          ? [AntiEntropyMessageType.hashes, reply[1], reply[2], new Uint8Array(8)]
          : reply,
    ],
  ];
  for (const [what, tamper] of tampers) {
    const { session } = runExchange(replica(a, 64), replica(b, 64), { tamper });
    assert.equal(session.outcome, 'failed', what);
    assert.ok(session.failureReason !== null, what);
  }
});

test('the responder refuses nodes and leaves its tree does not have, and requests over its limits', () => {
  const tree = new PartitionTree(64);
  const none = (): TreeEntry[] => [];
  const reasonOf = (request: AntiEntropyRequest): unknown => {
    assert.ok(isValidAntiEntropyMessage(request));
    const reply = respond(request, tree, none);
    return reply[0] === AntiEntropyMessageType.refused ? reply[3] : reply[0];
  };
  const head = [1, 1, KEYSPACE, PARTITION] as const;
  assert.equal(reasonOf(['ac', ...head, 3, [0]]), RefusalReason.range);
  assert.equal(reasonOf(['ac', ...head, 2, [0]]), AntiEntropyMessageType.hashes);
  assert.equal(reasonOf(['ac', ...head, 1, [4]]), RefusalReason.range);
  assert.equal(reasonOf(['ac', ...head, 1, [3]]), AntiEntropyMessageType.hashes);
  assert.equal(reasonOf(['ae', ...head, [63], 0, null]), AntiEntropyMessageType.entriesReply);
  assert.equal(reasonOf(['ae', ...head, [64], 0, null]), RefusalReason.range);
  const manyLeaves = Array.from(
    { length: DEFAULT_EXCHANGE_LIMITS.leavesPerRequestMax + 1 },
    (_, i) => i,
  );
  assert.equal(reasonOf(['ae', ...head, manyLeaves, 0, null]), RefusalReason.limit);
  const manyNodes = Array.from(
    { length: DEFAULT_EXCHANGE_LIMITS.nodesPerRequestMax + 1 },
    (_, i) => i,
  );
  assert.equal(reasonOf(['ac', ...head, 1, manyNodes]), RefusalReason.limit);
});

test('entriesOfLeaves keeps the entries of the leaves asked for, in (leaf, key) order', () => {
  const tree = new PartitionTree(16);
  const entries = Array.from({ length: 400 }, (_, i) => ({ key: utf8(`k${i}`), digest: i }));
  const leaves = [2, 5, 11];
  const picked = entriesOfLeaves(tree, entries, leaves);
  const expected = entries.filter((entry) => leaves.includes(tree.leafOf(entry.key)));
  assert.equal(picked.length, expected.length);
  for (let i = 1; i < picked.length; i++) {
    const previous = picked[i - 1]!;
    const current = picked[i]!;
    assert.ok(
      previous.leaf < current.leaf ||
        (previous.leaf === current.leaf &&
          bytesToKeyString(previous.key) < bytesToKeyString(current.key)),
    );
  }
});

test('a leaf index from one scan answers every request as the whole scan does', () => {
  const entries = Array.from({ length: 3000 }, (_, i) => ({ key: utf8(`k${i}`), digest: i }));
  const tree = PartitionTree.build(entries, 256);
  const index = new LeafEntryIndex(tree, entries);
  assert.equal(index.entryCount, 3000);
  const limits = exchangeLimits({ entriesPerReplyMax: 50 });
  let afterLeaf = 0;
  let afterKey: Uint8Array | null = null;
  const leaves = [0, 17, 100, 101, 255];
  for (let step = 1; step < 100; step++) {
    const request: AntiEntropyRequest = [
      'ae',
      1,
      step,
      KEYSPACE,
      PARTITION,
      leaves,
      afterLeaf,
      afterKey,
    ];
    const fromIndex = respond(request, tree, index.entriesOf, limits);
    assert.deepEqual(
      fromIndex,
      respond(request, tree, () => entries, limits),
    );
    assert.equal(fromIndex[0], AntiEntropyMessageType.entriesReply);
    if (fromIndex[0] !== AntiEntropyMessageType.entriesReply || fromIndex[5]) return;
    const last = fromIndex[3][fromIndex[3].length - 1]!;
    afterLeaf = tree.leafOf(last);
    afterKey = last;
  }
  assert.fail('the replies never completed');
});

// ---- validation ----

const validMessages: AntiEntropyMessage[] = [
  ['ar', 1, 1, KEYSPACE, PARTITION, 1024, 16, new Uint8Array(8)],
  ['ac', 1, 2, KEYSPACE, PARTITION, 2, [0, 3]],
  ['ae', 1, 3, KEYSPACE, PARTITION, [1, 9], 0, null],
  ['ae', 1, 4, KEYSPACE, PARTITION, [1, 9], 9, utf8('k')],
  ['as', 1, 1],
  ['ah', 1, 2, new Uint8Array(16)],
  ['aa', 1, 3, [utf8('a'), utf8('b')], [0, RECORD_DIGEST_MAX], false],
  ['aa', 1, 3, [], [], true],
  ['ax', 1, 1, RefusalReason.shape],
];

test('well-formed messages of every type are valid', () => {
  for (const message of validMessages) {
    assert.ok(isValidAntiEntropyMessage(message), JSON.stringify(message[0]));
  }
});

test('malformed messages are rejected', () => {
  const tooManyKeys = Array.from({ length: 16_385 }, () => utf8('k'));
  const bad: [string, unknown][] = [
    ['not an array', { 0: 'ar' }],
    ['empty', []],
    ['unknown type', ['zz', 1, 1]],
    ['type not a string', [1, 1, 1]],
    ['negative session', ['as', -1, 1]],
    ['step zero', ['as', 1, 0]],
    ['fractional step', ['as', 1, 1.5]],
    ['extra field', ['as', 1, 1, 0]],
    ['leaf count not a power of two', ['ar', 1, 1, 7, 41, 1000, 16, new Uint8Array(8)]],
    ['root hash of 7 bytes', ['ar', 1, 1, 7, 41, 1024, 16, new Uint8Array(7)]],
    ['partition over u16', ['ar', 1, 1, 7, 65536, 1024, 16, new Uint8Array(8)]],
    ['keyspace negative', ['ar', 1, 1, -7, 41, 1024, 16, new Uint8Array(8)]],
    ['level 0', ['ac', 1, 2, 7, 41, 0, [0]]],
    ['level 5', ['ac', 1, 2, 7, 41, 5, [0]]],
    ['nodes not ascending', ['ac', 1, 2, 7, 41, 1, [3, 3]]],
    ['no nodes', ['ac', 1, 2, 7, 41, 1, []]],
    ['too many nodes', ['ac', 1, 2, 7, 41, 1, Array.from({ length: 1025 }, (_, i) => i)]],
    ['leaf over 65535', ['ae', 1, 3, 7, 41, [65536], 0, null]],
    ['cursor leaf not asked for', ['ae', 1, 3, 7, 41, [1, 9], 4, utf8('k')]],
    ['cursor leaf without key', ['ae', 1, 3, 7, 41, [1, 9], 9, null]],
    ['cursor key too long', ['ae', 1, 3, 7, 41, [1], 1, new Uint8Array(8193)]],
    ['hashes not a multiple of 8', ['ah', 1, 2, new Uint8Array(12)]],
    ['no hashes', ['ah', 1, 2, new Uint8Array(0)]],
    ['hashes as numbers', ['ah', 1, 2, [1, 2]]],
    ['keys and digests of different lengths', ['aa', 1, 3, [utf8('a')], [], true]],
    ['digest over 2^53', ['aa', 1, 3, [utf8('a')], [2 ** 53], true]],
    ['negative digest', ['aa', 1, 3, [utf8('a')], [-1], true]],
    ['key a string', ['aa', 1, 3, ['a'], [1], true]],
    ['incomplete with no keys', ['aa', 1, 3, [], [], false]],
    ['complete not a boolean', ['aa', 1, 3, [], [], 1]],
    ['too many keys', ['aa', 1, 3, tooManyKeys, tooManyKeys.map(() => 1), true]],
    [
      'too many key bytes',
      [
        'aa',
        1,
        3,
        Array.from({ length: 600 }, () => new Uint8Array(8000)),
        Array.from({ length: 600 }, () => 1),
        true,
      ],
    ],
    ['unknown refusal', ['ax', 1, 1, 99]],
  ];
  for (const [what, message] of bad) {
    assert.equal(isValidAntiEntropyMessage(message), false, what);
  }
});

test('the validator never throws, on anything or on valid messages with one field replaced', () => {
  fc.assert(
    fc.property(fc.anything({ withTypedArray: true }), (value) => {
      assert.equal(typeof isValidAntiEntropyMessage(value), 'boolean');
    }),
    seeded(1000),
  );
  fc.assert(
    fc.property(
      fc.constantFrom(...validMessages),
      fc.nat(),
      fc.anything({ withTypedArray: true }),
      (message, index, replacement) => {
        const mutated: unknown[] = [...message];
        mutated[index % (message.length + 1)] = replacement;
        assert.equal(typeof isValidAntiEntropyMessage(mutated), 'boolean');
      },
    ),
    seeded(1000),
  );
});

test('the responder answers every valid request with a valid reply, never throwing', () => {
  const entries = Array.from({ length: 300 }, (_, i) => ({ key: utf8(`k${i}`), digest: i }));
  const tree = PartitionTree.build(entries, 256);
  const indexList = fc
    .uniqueArray(fc.nat({ max: 300 }), { minLength: 1, maxLength: 40 })
    .map((list) => list.sort((x, y) => x - y));
  const requestArbitrary: fc.Arbitrary<unknown> = fc.oneof(
    fc.tuple(
      fc.constant('ar'),
      fc.nat(),
      fc.integer({ min: 1, max: 9 }),
      fc.nat({ max: 9 }),
      fc.nat({ max: 9 }),
      fc.constantFrom(16, 256, 1024),
      fc.constantFrom(16, 32),
      fc.uint8Array({ minLength: 8, maxLength: 8 }),
    ),
    fc.tuple(
      fc.constant('ac'),
      fc.nat(),
      fc.integer({ min: 1, max: 9 }),
      fc.nat({ max: 9 }),
      fc.nat({ max: 9 }),
      fc.integer({ min: 1, max: 4 }),
      indexList,
    ),
    indexList.chain((leaves) =>
      fc
        .tuple(
          fc.constant('ae'),
          fc.nat(),
          fc.integer({ min: 1, max: 9 }),
          fc.nat({ max: 9 }),
          fc.nat({ max: 9 }),
          fc.constant(leaves),
          fc.constantFrom(...leaves),
          fc.option(fc.uint8Array({ maxLength: 6 }), { nil: null }),
        )
        .map((request) => (request[7] === null ? [...request.slice(0, 6), 0, null] : request)),
    ),
  );
  fc.assert(
    fc.property(requestArbitrary, (request) => {
      fc.pre(isValidAntiEntropyMessage(request));
      const reply = respond(request as AntiEntropyRequest, tree, () => entries);
      assert.ok(isValidAntiEntropyMessage(reply));
      assert.equal(reply[1], (request as AntiEntropyRequest)[1]);
      assert.equal(reply[2], (request as AntiEntropyRequest)[2]);
    }),
    seeded(500),
  );
});
