// The `cas` workload against in-memory stores with versions: every completed loop is one
// increment of the worker's own counter, refused compare-and-sets are retried and counted,
// increments of unknown outcome are allowed for, and the read-back at the end catches a
// store that acknowledges writes it loses (the negative control) or applies one twice.
// Each store's misbehaviour is drawn from a seeded Prng; a failure names the seed
// (replay: CAS_TEST_SEED=<seed> npx node --test test/loadgen/cas-workload.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/core/prng.ts';
import { runLoad } from '../../src/loadgen/run-load.ts';
import type { LoadTarget, VersionedValue } from '../../src/loadgen/targets/target.ts';
import { CAS_ATTEMPTS_MAX, parseCounter, type WorkloadSpec } from '../../src/loadgen/workload.ts';

const SEED = Number(process.env.CAS_TEST_SEED ?? 41);
const replay = `seed ${SEED} (replay: CAS_TEST_SEED=${SEED} npx node --test test/loadgen/cas-workload.test.ts)`;

const CAS: WorkloadSpec = {
  name: 'cas',
  keyCount: 1,
  distribution: 'uniform',
  valueBytes: 0,
  seed: SEED,
};

/** How a store misbehaves, each with the probability given (0: never). */
interface Faults {
  /** Another writer rewrites the same value, moving the version under the loop. */
  readonly bumpVersion?: number;
  /** The compare-and-set applies, but its answer is lost: the caller sees an error. */
  readonly loseAnswer?: number;
  /** Acknowledges the compare-and-set as applied and stores nothing (a broken store). */
  readonly dropWrite?: number;
  /** Applies the write twice (a broken store). */
  readonly applyTwice?: number;
}

class VersionedMemoryTarget implements LoadTarget {
  readonly name = 'versioned-memory';
  readonly data = new Map<string, VersionedValue>();
  readonly prng = new Prng(SEED);
  readonly faults: Faults;
  compareAndSets = 0;
  reads = 0;

  constructor(faults: Faults = {}) {
    this.faults = faults;
  }

  private happens(probability: number | undefined): boolean {
    return probability !== undefined && this.prng.next() < probability;
  }

  async get(key: string): Promise<Uint8Array | null> {
    return (await this.getVersioned(key)).value;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    const version = (this.data.get(key)?.version ?? 0) + 1;
    this.data.set(key, { value, version });
  }

  async getVersioned(key: string): Promise<VersionedValue> {
    await new Promise((resolve) => setImmediate(resolve));
    this.reads++;
    const stored = this.data.get(key) ?? { value: null, version: 0 };
    if (this.happens(this.faults.bumpVersion)) {
      this.data.set(key, { value: stored.value, version: stored.version + 1 });
    }
    return stored;
  }

  async compareAndSet(key: string, expectedVersion: number, value: Uint8Array): Promise<boolean> {
    await new Promise((resolve) => setImmediate(resolve));
    this.compareAndSets++;
    const version = this.data.get(key)?.version ?? 0;
    if (version !== expectedVersion) return false;
    if (this.happens(this.faults.dropWrite)) return true;
    const twice = this.happens(this.faults.applyTwice);
    const next = twice ? parseCounter(value) + 1n : parseCounter(value);
    this.data.set(key, { value: new TextEncoder().encode(String(next)), version: version + 1 });
    if (this.happens(this.faults.loseAnswer)) {
      throw Object.assign(new Error('answer lost'), { code: 'UNKNOWN_OUTCOME' });
    }
    return true;
  }

  async close(): Promise<void> {}

  /** The sum of every counter. */
  total(): bigint {
    let sum = 0n;
    for (const stored of this.data.values()) sum += parseCounter(stored.value);
    return sum;
  }
}

test('every completed cas loop is one increment of its own counter, with no retry on a quiet store', async () => {
  const target = new VersionedMemoryTarget();
  const result = await runLoad(target, { workload: CAS, concurrency: 8, requests: 400 });
  assert.equal(result.load, null, 'counters start absent: no load phase');
  assert.equal(result.operations, 400);
  assert.equal(result.succeeded, 400);
  assert.equal(result.retries, 0);
  assert.deepEqual(result.errors, {});
  assert.equal(target.data.size, 8, 'one counter per worker');
  assert.equal(target.total(), 400n);
  assert.deepEqual(
    result.byKind.map((stats) => [stats.kind, stats.count]),
    [['cas', 400]],
  );
  assert.deepEqual(result.casCheck, { counters: 8, unreadable: 0, mismatches: 0, example: null });
  // A loop is one read and one compare-and-set; the check reads each counter once more.
  assert.equal(target.compareAndSets, 400);
  assert.equal(target.reads, 400 + 8);
});

test('a compare-and-set refused because the version moved is retried after a fresh read and counted', async () => {
  const target = new VersionedMemoryTarget({ bumpVersion: 0.3 });
  const result = await runLoad(target, { workload: CAS, concurrency: 4, requests: 300 });
  assert.equal(result.succeeded, 300, replay);
  assert.ok(result.retries > 30, `${replay}: ${result.retries} retries`);
  assert.equal(target.compareAndSets, 300 + result.retries, replay);
  assert.equal(target.total(), 300n, replay);
  assert.equal(result.casCheck?.mismatches, 0, replay);
});

test('a counter that starts from an earlier run is checked from its first read', async () => {
  const target = new VersionedMemoryTarget();
  await runLoad(target, { workload: CAS, concurrency: 3, requests: 30 });
  const again = await runLoad(target, { workload: CAS, concurrency: 3, requests: 30 });
  assert.equal(target.total(), 60n);
  assert.deepEqual(again.casCheck, { counters: 3, unreadable: 0, mismatches: 0, example: null });
});

test('increments whose answer was lost fail the loop but are allowed for by the check', async () => {
  const target = new VersionedMemoryTarget({ loseAnswer: 0.1 });
  const result = await runLoad(target, { workload: CAS, concurrency: 4, requests: 300 });
  const lost = result.errors.UNKNOWN_OUTCOME ?? 0;
  assert.ok(lost > 5, `${replay}: ${lost} lost answers`);
  assert.equal(result.succeeded + lost, 300, replay);
  assert.equal(target.total(), 300n, `${replay}: a lost answer still applied`);
  assert.equal(result.casCheck?.mismatches, 0, replay);
});

test('the check catches a store that acknowledges increments it drops, or applies one twice', async () => {
  for (const faults of [{ dropWrite: 0.05 }, { applyTwice: 0.05 }]) {
    const target = new VersionedMemoryTarget(faults);
    const result = await runLoad(target, { workload: CAS, concurrency: 4, requests: 300 });
    const check = result.casCheck;
    assert.ok(check !== null && check.mismatches > 0, `${replay}: ${JSON.stringify(faults)}`);
    assert.match(check.example ?? '', /^counter\d{5} ends at \d+, started at 0, \d+ increments/);
  }
});

test('a loop gives up after CAS_ATTEMPTS_MAX refusals, and a store without compare-and-set is refused', async () => {
  const target = new VersionedMemoryTarget({ bumpVersion: 1 });
  const result = await runLoad(target, { workload: CAS, concurrency: 1, requests: 2 });
  assert.deepEqual(result.errors, { CasGaveUp: 2 });
  assert.equal(result.retries, 2 * CAS_ATTEMPTS_MAX);
  const plain: LoadTarget = {
    name: 'plain',
    get: async () => null,
    put: async () => {},
    close: async () => {},
  };
  await assert.rejects(
    runLoad(plain, { workload: CAS, concurrency: 1, requests: 1 }),
    /cannot compare-and-set/,
  );
});
