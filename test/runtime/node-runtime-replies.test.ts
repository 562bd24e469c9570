// The shell's delivery of replies: a request answered within its own step (a read, a relaxed
// write) is answered before `submit` returns and leaves nothing in flight; one that waits for
// a commit stays in flight until the commit; a reply callback may submit further requests,
// and every request is answered exactly once, whatever the nesting. Batches waiting for a
// commit are bounded: past the limit, requests are refused as overloaded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { ClientReply } from '../../src/core/requests.ts';
import { DEFAULT_NODE_CONFIG, type NodeConfig } from '../../src/runtime/config.ts';
import { Metrics } from '../../src/runtime/metrics.ts';
import { NodeRuntime } from '../../src/runtime/node-runtime.ts';
import type { CommitOptions, StorageWrite } from '../../src/storage/contract.ts';
import { MemoryStorage } from '../../src/storage/memory/memory-storage.ts';
import { get, put } from '../sim/sim-helpers.ts';

async function openRuntime(durability: NodeConfig['durability']): Promise<NodeRuntime> {
  return NodeRuntime.open(
    { ...DEFAULT_NODE_CONFIG, storage: 'memory', durability },
    { metrics: new Metrics(), logger: pino({ level: 'silent' }) },
  );
}

function valueOf(reply: ClientReply): string | null {
  assert.ok(reply.ok && reply.op === 'get', 'a get reply');
  const value = reply.results[0]!.value;
  return value === null ? null : Buffer.from(value).toString();
}

test(
  'a read and a relaxed write are answered before submit returns and leave nothing in flight',
  { timeout: 10_000 },
  async () => {
    const runtime = await openRuntime('relaxed');
    try {
      const replies: ClientReply[] = [];
      runtime.submit(put('k', 'v'), (reply) => replies.push(reply));
      assert.equal(replies.length, 1, 'the relaxed write is answered at once');
      runtime.submit(get('k'), (reply) => replies.push(reply));
      assert.equal(replies.length, 2, 'the read is answered at once');
      assert.equal(valueOf(replies[1]!), 'v');
      assert.equal(runtime.status().requestsInFlight, 0);
    } finally {
      await runtime.close();
    }
  },
);

test(
  'a durable write stays in flight until its commit, then is answered once',
  { timeout: 10_000 },
  async () => {
    const runtime = await openRuntime('sync');
    try {
      const replies: ClientReply[] = [];
      const answered = new Promise<void>((resolve) =>
        runtime.submit(put('k', 'v'), (reply) => {
          replies.push(reply);
          resolve();
        }),
      );
      assert.equal(replies.length, 0, 'not answered before the commit');
      assert.equal(runtime.status().requestsInFlight, 1);
      await answered;
      assert.equal(replies.length, 1);
      assert.equal(replies[0]!.ok, true);
      assert.equal(runtime.status().requestsInFlight, 0);
    } finally {
      await runtime.close();
    }
  },
);

test(
  'requests submitted from inside reply callbacks are each answered exactly once',
  { timeout: 10_000 },
  async () => {
    const runtime = await openRuntime('sync');
    try {
      const answers: string[] = [];
      let durableAnswered: () => void = () => {};
      const durableDone = new Promise<void>((resolve) => (durableAnswered = resolve));
      runtime.submit(get('a'), () => {
        answers.push('outer get');
        // A nested read answered inside this callback, and a durable write that waits.
        runtime.submit(get('b'), () => {
          answers.push('nested get');
          runtime.submit(get('c'), () => answers.push('doubly nested get'));
        });
        runtime.submit(put('a', 'x'), () => {
          answers.push('nested durable write');
          durableAnswered();
        });
        runtime.submit(get('a'), (reply) => answers.push(`read after write: ${valueOf(reply)}`));
      });
      await durableDone;
      assert.deepEqual(answers, [
        'outer get',
        'nested get',
        'doubly nested get',
        'nested durable write',
        'read after write: x',
      ]);
      assert.equal(runtime.status().requestsInFlight, 0);
    } finally {
      await runtime.close();
    }
  },
);

/** Storage whose commits finish only when the test says so. */
class HeldStorage extends MemoryStorage {
  private readonly held: (() => void)[] = [];

  override commit(writes: readonly StorageWrite[], options: CommitOptions): Promise<void> {
    const applied = super.commit(writes, options);
    return new Promise<void>((resolve) => this.held.push(resolve)).then(() => applied);
  }

  get commitsHeld(): number {
    return this.held.length;
  }

  releaseAll(): void {
    for (const release of this.held.splice(0)) release();
  }
}

test(
  'relaxed writes that outrun a commit are refused as overloaded past the limit, not queued without bound',
  { timeout: 10_000 },
  async () => {
    const storage = new HeldStorage();
    const runtime = await NodeRuntime.open(
      { ...DEFAULT_NODE_CONFIG, storage: 'memory', durability: 'relaxed', requestsInFlightMax: 5 },
      { storage, metrics: new Metrics(), logger: pino({ level: 'silent' }) },
    );
    const codes = (count: number, from: number): string[] => {
      const seen: string[] = [];
      for (let i = from; i < from + count; i++) {
        runtime.submit(put(`k${i}`, 'v'), (reply) => seen.push(reply.ok ? 'ok' : reply.error.code));
      }
      return seen;
    };
    try {
      assert.deepEqual(codes(6, 0), ['ok', 'ok', 'ok', 'ok', 'ok', 'RINGKV_OVERLOADED']);
      // The five go out as one commit, which storage holds: five more may queue behind it.
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(storage.commitsHeld, 1);
      assert.deepEqual(codes(6, 10), ['ok', 'ok', 'ok', 'ok', 'ok', 'RINGKV_OVERLOADED']);
      storage.releaseAll();
      await new Promise((resolve) => setImmediate(resolve));
      // The first commit done, the queued five are committing: room again.
      assert.deepEqual(codes(1, 20), ['ok']);
      const read: ClientReply[] = [];
      runtime.submit(get('k14'), (reply) => read.push(reply));
      assert.equal(valueOf(read[0]!), 'v');
      runtime.submit(get('k5'), (reply) => read.push(reply));
      assert.equal(valueOf(read[1]!), null, 'the refused write did nothing');
    } finally {
      const closed = runtime.close();
      // Let every commit close waits for finish.
      const releasing = setInterval(() => storage.releaseAll(), 1);
      await closed;
      clearInterval(releasing);
    }
  },
);

/** Storage that records each commit's options and finishes it after `delayMs`. */
class RecordingStorage extends MemoryStorage {
  readonly commits: CommitOptions[] = [];
  delayMs = 0;

  override commit(writes: readonly StorageWrite[], options: CommitOptions): Promise<void> {
    this.commits.push(options);
    const applied = super.commit(writes, options);
    if (this.delayMs === 0) return applied;
    return new Promise((resolve) => setTimeout(resolve, this.delayMs)).then(() => applied);
  }
}

test(
  'a durable group up to 16 KiB syncs inline, a larger one or one after a slow commit does not, and a relaxed one never asks',
  { timeout: 10_000 },
  async () => {
    let storage = new RecordingStorage();
    const open = (durability: 'sync' | 'relaxed') =>
      NodeRuntime.open(
        { ...DEFAULT_NODE_CONFIG, storage: 'memory', durability },
        { storage, metrics: new Metrics(), logger: pino({ level: 'silent' }) },
      );
    const writeAll = (
      runtime: NodeRuntime,
      count: number,
      from: number,
      value = 'v',
    ): Promise<void> => {
      const replies: Promise<ClientReply>[] = [];
      for (let i = from; i < from + count; i++) {
        replies.push(new Promise((resolve) => runtime.submit(put(`k${i}`, value), resolve)));
      }
      return Promise.all(replies).then((answers) => {
        for (const answer of answers) assert.ok(answer.ok, answer.ok ? '' : answer.error.code);
      });
    };
    const durable = await open('sync');
    try {
      await writeAll(durable, 1, 0);
      // Values of 1,000 bytes (records and keys add a few dozen each): 15 of them are
      // under 16 KiB, 16 over it.
      const kilobyte = 'x'.repeat(1000);
      await writeAll(durable, 15, 10_000, kilobyte);
      await writeAll(durable, 16, 20_000, kilobyte);
      assert.deepEqual(
        storage.commits.map((options) => options.syncInline),
        [true, true, false],
      );
      // A commit that took longer than the bound: the next small group goes to the pool.
      storage.delayMs = 5;
      await writeAll(durable, 1, 300);
      storage.delayMs = 0;
      await writeAll(durable, 1, 400);
      await writeAll(durable, 1, 500);
      assert.deepEqual(
        storage.commits.slice(3).map((options) => options.syncInline),
        [true, false, true],
      );
    } finally {
      await durable.close();
    }
    storage = new RecordingStorage();
    const relaxed = await open('relaxed');
    try {
      await writeAll(relaxed, 1, 600);
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(
        storage.commits.map((options) => [options.durable, options.syncInline]),
        [[false, false]],
      );
    } finally {
      await relaxed.close();
    }
  },
);
