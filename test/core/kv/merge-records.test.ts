// The record merge is the join of dotted version vector sets. Records come from a small
// simulation of replicas that write (with fresh, stale or no causal context, under either
// conflict policy, with clocks that disagree), expire versions into tombstones and exchange
// records; the merge is then held to the lattice laws, to the contract's causality rules and
// to a naive reference written with maps of dots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromUtf8, utf8 } from '../../../src/core/bytes.ts';
import type { ConflictPolicy } from '../../../src/core/keyspace.ts';
import { writeVersion } from '../../../src/core/kv/apply-mutation.ts';
import { mergeRecords, recordDescends, recordsEqual } from '../../../src/core/kv/merge-records.ts';
import { liveSiblings, winningSibling } from '../../../src/core/kv/siblings.ts';
import { DEFAULT_LIMITS } from '../../../src/core/limits.ts';
import {
  encodeRecord,
  readWinner,
  type Sibling,
  type StoredRecord,
} from '../../../src/core/store/record.ts';
import { HybridLogicalClock } from '../../../src/core/versions/hlc.ts';
import type { VersionVector } from '../../../src/core/versions/version-vector.ts';

const NODES = ['n1', 'n2', 'n3'] as const;

/**
 * Seeded fast-check settings; a failure prints the seed and path, replayed with
 * MERGE_PROPERTY_SEED=<seed>.
 */
function seeded(numRuns: number): fc.Parameters<unknown> {
  return { seed: Number(process.env['MERGE_PROPERTY_SEED'] ?? 20240502), numRuns };
}

// ---- the naive reference: records as maps of dots ----

const dotKey = (sibling: Sibling): string => `${sibling.dot.node}#${sibling.dot.counter}`;

function contextMap(record: StoredRecord): Map<string, number> {
  return new Map(record.context.map(([node, counter]) => [node, counter] as const));
}

function naiveMerge(
  a: StoredRecord | undefined,
  b: StoredRecord | undefined,
): StoredRecord | undefined {
  if (a === undefined && b === undefined) return undefined;
  const records = [a, b].filter((record): record is StoredRecord => record !== undefined);
  const context = new Map<string, number>();
  for (const record of records) {
    for (const [node, counter] of record.context) {
      context.set(node, Math.max(context.get(node) ?? 0, counter));
    }
  }
  const held = new Map<string, Sibling>();
  for (const record of records) {
    for (const sibling of record.siblings) {
      // A dot is dropped when some record has seen it but does not hold it.
      const supersededSomewhere = records.some(
        (other) =>
          (contextMap(other).get(sibling.dot.node) ?? 0) >= sibling.dot.counter &&
          !other.siblings.some((mine) => dotKey(mine) === dotKey(sibling)),
      );
      if (supersededSomewhere) continue;
      const existing = held.get(dotKey(sibling));
      if (existing === undefined || (existing.value !== null && sibling.value === null)) {
        held.set(dotKey(sibling), sibling);
      }
    }
  }
  const vector: [string, number][] = [...context].sort(([x], [y]) => (x < y ? -1 : 1));
  const siblings = [...held.values()].sort((x, y) =>
    x.dot.node !== y.dot.node ? (x.dot.node < y.dot.node ? -1 : 1) : x.dot.counter - y.dot.counter,
  );
  return { context: vector, siblings };
}

const bytesOf = (record: StoredRecord | undefined): string =>
  record === undefined ? 'absent' : Buffer.from(encodeRecord(record)).toString('hex');

// ---- the simulation that makes realistic records ----

type Step =
  | {
      readonly kind: 'write';
      readonly node: number;
      /** Whose record the client read its context from; -1 for a blind write. */
      readonly contextFrom: number;
      readonly policy: ConflictPolicy;
      readonly clockMs: number;
      readonly deleteIt: boolean;
      readonly expiresAfterMs: number;
    }
  | { readonly kind: 'sync'; readonly from: number; readonly to: number }
  | { readonly kind: 'expire'; readonly node: number; readonly nowMs: number };

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: writeStep(), weight: 3 },
  {
    arbitrary: fc.record({
      kind: fc.constant('sync' as const),
      from: fc.integer({ min: 0, max: 2 }),
      to: fc.integer({ min: 0, max: 2 }),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('expire' as const),
      node: fc.integer({ min: 0, max: 2 }),
      nowMs: fc.integer({ min: 1, max: 1500 }),
    }),
    weight: 2,
  },
);

function writeStep(): fc.Arbitrary<Step> {
  return fc.record({
    kind: fc.constant('write' as const),
    node: fc.integer({ min: 0, max: 2 }),
    contextFrom: fc.integer({ min: -1, max: 2 }),
    policy: fc.constantFrom<ConflictPolicy>('lww', 'siblings'),
    clockMs: fc.integer({ min: 1, max: 1000 }),
    deleteIt: fc.boolean(),
    expiresAfterMs: fc.constantFrom(0, 50, 400),
  });
}

/** Runs the steps on three replicas and returns every record any of them held. */
function simulate(steps: readonly Step[]): StoredRecord[] {
  const records: (StoredRecord | undefined)[] = [undefined, undefined, undefined];
  // Clocks read whatever each step says: they disagree and go back, as skewed clocks do.
  const clocks = NODES.map(() => new HybridLogicalClock());
  const seen: StoredRecord[] = [];
  let value = 0;
  for (const step of steps) {
    if (step.kind === 'write') {
      const context: VersionVector | null =
        step.contextFrom === -1 ? null : (records[step.contextFrom]?.context ?? []);
      const clock = clocks[step.node]!;
      // A fresh clock each time lets a causally later write carry an older timestamp.
      const skewed = new HybridLogicalClock([Math.min(clock.last()[0], step.clockMs), 0]);
      records[step.node] = writeVersion(
        {
          record: records[step.node],
          mutation: { kind: 'delete' },
          context,
          nodeId: NODES[step.node]!,
          nowMs: step.clockMs,
          clock: skewed,
          policy: step.policy,
          limits: DEFAULT_LIMITS,
        },
        step.deleteIt ? null : utf8(`value-${value++}`),
        step.deleteIt || step.expiresAfterMs === 0 ? 0 : step.clockMs + step.expiresAfterMs,
      );
    } else if (step.kind === 'sync') {
      records[step.to] = naiveMerge(records[step.to], records[step.from]);
    } else {
      const record = records[step.node];
      if (record !== undefined) records[step.node] = expiredAt(record, step.nowMs);
    }
    for (const record of records) {
      if (record === undefined) continue;
      seen.push(record);
      // Any replica may expire its versions at any time: the fully expired form of each
      // record is one some replica could hold, and it shares dots with the live form.
      const expired = expiredAt(record, Number.MAX_SAFE_INTEGER);
      if (expired !== record) seen.push(expired);
    }
  }
  return seen;
}

/** What a replica's expiry tick at `nowMs` makes of the record: expired versions become tombstones with the same dots. */
function expiredAt(record: StoredRecord, nowMs: number): StoredRecord {
  const expires = (sibling: Sibling): boolean =>
    sibling.value !== null && sibling.expiresAtMs !== 0 && sibling.expiresAtMs <= nowMs;
  if (!record.siblings.some(expires)) return record;
  return {
    context: record.context,
    siblings: record.siblings.map((sibling) =>
      expires(sibling) ? { ...sibling, value: null, expiresAtMs: 0 } : sibling,
    ),
  };
}

/** Three records (or absences) drawn from one simulated history, so they share dots. */
const recordTriple = fc
  .record({
    steps: fc.array(stepArbitrary, { minLength: 1, maxLength: 40 }),
    picks: fc.array(fc.nat(), { minLength: 3, maxLength: 3 }),
  })
  .map(({ steps, picks }) => {
    const pool = simulate(steps);
    const pick = (index: number): StoredRecord | undefined => {
      const choice = picks[index]! % (pool.length + 1);
      return choice === pool.length ? undefined : pool[choice];
    };
    return [pick(0), pick(1), pick(2)] as const;
  });

// ---- properties ----

test('merge is commutative, associative and idempotent, byte for byte', () => {
  fc.assert(
    fc.property(recordTriple, ([a, b, c]) => {
      assert.equal(bytesOf(mergeRecords(a, b)), bytesOf(mergeRecords(b, a)));
      assert.equal(
        bytesOf(mergeRecords(mergeRecords(a, b), c)),
        bytesOf(mergeRecords(a, mergeRecords(b, c))),
      );
      assert.equal(bytesOf(mergeRecords(a, a)), bytesOf(mergeRecords(a, undefined)));
      const ab = mergeRecords(a, b);
      assert.equal(bytesOf(mergeRecords(ab, b)), bytesOf(ab));
      assert.equal(bytesOf(mergeRecords(ab, ab)), bytesOf(ab));
    }),
    seeded(400),
  );
});

test('merge agrees with the naive reference over maps of dots', () => {
  fc.assert(
    fc.property(recordTriple, ([a, b]) => {
      assert.equal(bytesOf(mergeRecords(a, b)), bytesOf(naiveMerge(a, b)));
    }),
    seeded(400),
  );
});

test('the merge descends both inputs, and descends means merging changes nothing', () => {
  fc.assert(
    fc.property(recordTriple, ([a, b]) => {
      const merged = mergeRecords(a, b);
      assert.ok(recordDescends(merged, a));
      assert.ok(recordDescends(merged, b));
      assert.equal(recordDescends(a, b), recordsEqual(mergeRecords(a, b), a));
      assert.equal(recordDescends(b, a), recordsEqual(mergeRecords(a, b), b));
    }),
    seeded(400),
  );
});

function writeAt(
  record: StoredRecord | undefined,
  node: string,
  value: string,
  timestampMs: number,
  context: VersionVector | null,
  policy: ConflictPolicy,
): StoredRecord {
  return writeVersion(
    {
      record,
      mutation: { kind: 'delete' },
      context,
      nodeId: node,
      nowMs: timestampMs,
      clock: new HybridLogicalClock(),
      policy,
      limits: DEFAULT_LIMITS,
    },
    utf8(value),
    0,
  );
}

test('a causally later version beats an earlier one whatever the timestamps', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 1_000_000 }),
      fc.integer({ min: 1, max: 1_000_000 }),
      fc.constantFrom<ConflictPolicy>('lww', 'siblings'),
      fc.boolean(),
      (earlierMs, laterMs, policy, blind) => {
        const earlier = writeAt(undefined, 'n1', 'earlier', earlierMs, null, policy);
        // n2 has received the earlier write, then overwrites it (blind, or having read it).
        const atSecond = mergeRecords(undefined, earlier);
        const later = writeAt(
          atSecond,
          'n2',
          'later',
          laterMs,
          blind ? null : earlier.context,
          policy,
        );
        for (const merged of [mergeRecords(earlier, later), mergeRecords(later, earlier)]) {
          assert.equal(merged!.siblings.length, 1);
          assert.equal(Buffer.from(winningSibling(merged, 0, policy)!.value!).toString(), 'later');
          assert.ok(recordDescends(later, earlier));
          assert.ok(!recordDescends(earlier, later));
        }
      },
    ),
    seeded(200),
  );
});

test('concurrent versions are all kept by the merge, under either policy', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 3, maxLength: 3 }),
      fc.constantFrom<ConflictPolicy>('lww', 'siblings'),
      (timestamps, policy) => {
        // Each node writes having seen none of the others: three concurrent versions.
        const records = NODES.map((node, index) =>
          writeAt(undefined, node, `from-${node}`, timestamps[index]!, null, policy),
        );
        const merged = mergeRecords(mergeRecords(records[0], records[1]), records[2])!;
        assert.deepEqual(
          merged.siblings.map((sibling) => Buffer.from(sibling.value!).toString()),
          ['from-n1', 'from-n2', 'from-n3'],
        );
        assert.deepEqual(merged.context, [
          ['n1', 1],
          ['n2', 1],
          ['n3', 1],
        ]);
        for (const record of records) assert.ok(!recordDescends(record, merged));
      },
    ),
    seeded(100),
  );
});

test('a delete and a write concurrent with it: under lww the later decides, under siblings the write is kept', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 1_000_000 }),
      fc.integer({ min: 1, max: 1_000_000 }),
      fc.constantFrom<ConflictPolicy>('lww', 'siblings'),
      (writeMs, deleteMs, policy) => {
        fc.pre(writeMs !== deleteMs);
        const written = writeAt(undefined, 'n1', 'value', writeMs, null, policy);
        // n2 deletes without having seen the write: a tombstone concurrent with it.
        const deleted = writeVersion(
          {
            record: undefined,
            mutation: { kind: 'delete' },
            context: null,
            nodeId: 'n2',
            nowMs: deleteMs,
            clock: new HybridLogicalClock(),
            policy,
            limits: DEFAULT_LIMITS,
          },
          null,
          0,
        );
        for (const merged of [mergeRecords(written, deleted), mergeRecords(deleted, written)]) {
          // Both are kept (neither has seen the other); the policy decides what reads see.
          assert.equal(merged!.siblings.length, 2);
          const visible = liveSiblings(merged, 0, policy).map((sibling) =>
            fromUtf8(sibling.value!),
          );
          const winner = winningSibling(merged, 0, policy);
          const fast = readWinner(encodeRecord(merged!), 0, policy);
          if (policy === 'lww' && deleteMs > writeMs) {
            assert.deepEqual(visible, [], 'the later delete hides the earlier write');
            assert.equal(winner, null);
            assert.equal(fast, null);
          } else {
            // A later write survives an earlier delete; under siblings a concurrent write is
            // never dropped, whatever the clocks say.
            assert.deepEqual(visible, ['value']);
            assert.equal(fromUtf8(winner!.value!), 'value');
            assert.equal(fromUtf8(fast!.value), 'value');
          }
        }
      },
    ),
    seeded(200),
  );
});

test('a version turned into a tombstone by expiry wins over its live form, in either order', () => {
  const live = writeVersion(
    {
      record: undefined,
      mutation: { kind: 'delete' },
      context: null,
      nodeId: 'n1',
      nowMs: 100,
      clock: new HybridLogicalClock(),
      policy: 'lww',
      limits: DEFAULT_LIMITS,
    },
    utf8('short-lived'),
    200,
  );
  const expired: StoredRecord = {
    context: live.context,
    siblings: live.siblings.map((sibling) => ({ ...sibling, value: null, expiresAtMs: 0 })),
  };
  for (const merged of [mergeRecords(live, expired), mergeRecords(expired, live)]) {
    assert.equal(bytesOf(merged), bytesOf(expired));
  }
  assert.ok(recordDescends(expired, live));
  assert.ok(!recordDescends(live, expired));
});

test('merging with an absent record gives the other, siblings in dot order', () => {
  assert.equal(mergeRecords(undefined, undefined), undefined);
  const a = writeAt(undefined, 'n2', 'x', 5, null, 'siblings');
  const b = writeAt(undefined, 'n1', 'y', 9, null, 'siblings');
  const both = { context: mergeRecords(a, b)!.context, siblings: [...a.siblings, ...b.siblings] };
  const canonical = mergeRecords(both, undefined)!;
  assert.deepEqual(
    canonical.siblings.map((sibling) => sibling.dot.node),
    ['n1', 'n2'],
  );
  assert.ok(recordsEqual(canonical, both));
  assert.ok(recordDescends(both, undefined));
  assert.ok(!recordDescends(undefined, both));
});
