// The runner against an in-memory target: it does exactly the requests it was asked for,
// keeps the promised number in flight, loads every key before reads, and counts each
// failure by kind instead of stopping or dropping it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorKind, runLoad } from '../../src/loadgen/run-load.ts';
import type { LoadTarget } from '../../src/loadgen/targets/target.ts';
import type { WorkloadSpec } from '../../src/loadgen/workload.ts';

class MemoryTarget implements LoadTarget {
  readonly name = 'memory';
  readonly data = new Map<string, Uint8Array>();
  inFlight = 0;
  inFlightMax = 0;
  gets = 0;
  puts = 0;
  /** Fails every n-th call (0: never). */
  failEvery = 0;
  private calls = 0;

  private async enter(): Promise<void> {
    const call = ++this.calls;
    this.inFlight++;
    this.inFlightMax = Math.max(this.inFlightMax, this.inFlight);
    await new Promise((resolve) => setImmediate(resolve));
    this.inFlight--;
    if (this.failEvery > 0 && call % this.failEvery === 0) {
      throw Object.assign(new Error('connection reset'), { code: 'ECONNRESET' });
    }
  }

  async get(key: string): Promise<Uint8Array | null> {
    await this.enter();
    this.gets++;
    return this.data.get(key) ?? null;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    await this.enter();
    this.puts++;
    this.data.set(key, value);
  }

  async close(): Promise<void> {}
}

const spec = (name: WorkloadSpec['name']): WorkloadSpec => ({
  name,
  keyCount: 200,
  distribution: 'zipfian',
  valueBytes: 16,
  seed: 5,
});

test('a read workload loads every key first, then every read hits', async () => {
  const target = new MemoryTarget();
  const result = await runLoad(target, { workload: spec('gets'), concurrency: 8, requests: 1000 });
  assert.equal(result.load?.succeeded, 200);
  assert.equal(target.data.size, 200);
  assert.equal(result.operations, 1000);
  assert.equal(result.succeeded, 1000);
  assert.equal(result.notFound, 0);
  assert.equal(target.gets, 1000);
  assert.equal(target.inFlightMax, 8);
  assert.deepEqual(result.errors, {});
  assert.equal(result.latency.count, 1000);
  assert.ok(result.opsPerSecond > 0);
});

test('workload A without a load phase counts the misses it meets', async () => {
  const target = new MemoryTarget();
  const result = await runLoad(target, {
    workload: spec('a'),
    concurrency: 4,
    requests: 2000,
    loadPhase: false,
  });
  assert.equal(result.load, null);
  assert.equal(target.gets + target.puts, 2000);
  assert.ok(result.notFound > 0 && result.notFound < target.gets);
  assert.deepEqual(
    result.byKind.map((stats) => [stats.kind, stats.count]),
    [
      ['get', target.gets],
      ['put', target.puts],
    ],
  );
});

test('failures are counted by kind with an example, and the run goes on to the end', async () => {
  const target = new MemoryTarget();
  target.failEvery = 10;
  const result = await runLoad(target, { workload: spec('puts'), concurrency: 5, requests: 500 });
  assert.equal(result.operations, 500);
  assert.deepEqual(result.errors, { ECONNRESET: 50 });
  assert.equal(result.errorExamples.ECONNRESET, 'connection reset');
  assert.equal(result.succeeded, 450);
});

test('a run for a duration stops near it', async () => {
  const target = new MemoryTarget();
  const result = await runLoad(target, { workload: spec('c'), concurrency: 2, durationMs: 200 });
  assert.ok(result.durationMs >= 200 && result.durationMs < 2000, `${result.durationMs} ms`);
  assert.ok(result.succeeded > 0);
});

test('error kinds: a code when there is one, else the name and a server reply code', () => {
  assert.equal(errorKind(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), 'ECONNREFUSED');
  class ReplyError extends Error {
    override name = 'ReplyError';
  }
  assert.equal(errorKind(new ReplyError('WRONGTYPE bad')), 'ReplyError WRONGTYPE');
  assert.equal(errorKind(new TypeError('oops')), 'TypeError');
  assert.equal(errorKind('text'), 'string');
});
