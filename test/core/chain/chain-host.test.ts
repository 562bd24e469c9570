// The chain host on one node: a single-member chain serves writes and reads through the
// host's own requester, its rows go to storage in batches (entry rows removed once
// committed), and a host built again from those rows (a restart) holds the same records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToKeyString, fromUtf8, keyStringToBytes, utf8 } from '../../../src/core/bytes.ts';
import { foundingChainConfig } from '../../../src/core/chain/chain-config.ts';
import {
  ChainHost,
  chainKeyOf,
  type ChainHostOutput,
  type ChainRowStore,
} from '../../../src/core/chain/chain-host.ts';
import {
  CHAIN_TABLE_END,
  CHAIN_TABLE_START,
  ChainRowKind,
} from '../../../src/core/store/layout.ts';
import type { StorageWrite } from '../../../src/storage/contract.ts';

/** Rows in a sorted map; every batch is durable at once. */
class MemoryRows implements ChainRowStore {
  readonly rows = new Map<string, Uint8Array>();
  lastBatchId = 0;
  lastPersistedBatchId = 0;
  persistRows(writes: StorageWrite[]): number {
    for (const write of writes) {
      const key = bytesToKeyString(write.key);
      if (write.value === null) this.rows.delete(key);
      else this.rows.set(key, write.value);
    }
    this.lastBatchId += 1;
    this.lastPersistedBatchId = this.lastBatchId;
    return this.lastBatchId;
  }
  scanRows(start: Uint8Array, end: Uint8Array): StorageWrite[] {
    const from = bytesToKeyString(start);
    const to = bytesToKeyString(end);
    return [...this.rows.keys()]
      .filter((key) => key >= from && key < to)
      .sort()
      .map((key) => ({ key: keyStringToBytes(key), value: this.rows.get(key)! }));
  }
  kindsStored(): number[] {
    return this.scanRows(CHAIN_TABLE_START, CHAIN_TABLE_END).map((row) => row.key[3]!);
  }
}

const NODE = 'n1';
const CONFIG = foundingChainConfig(7, [NODE]);

/** Delivers the host's messages to itself until none are left; answers the completions. */
function settle(host: ChainHost, first: ChainHostOutput | null, nowMs: number) {
  const completions = [...(first?.completions ?? [])];
  let sends = [...(first?.sends ?? [])];
  while (sends.length > 0) {
    const next = [];
    for (const send of sends) {
      assert.equal(send.to, NODE, 'a chain of one talks only to itself');
      const output = host.receive(NODE, send.message, nowMs);
      next.push(...output.sends);
      completions.push(...output.completions);
    }
    sends = next;
  }
  return completions;
}

test('a chain of one serves a write and a read, keeps its rows, and a restart restores them', () => {
  const rows = new MemoryRows();
  let nowMs = 1_000;
  const host = new ChainHost(NODE, 1, rows);
  settle(host, host.configure(CONFIG, nowMs), nowMs);
  // A replica that restarts grants no lease for a while; a fresh one may need ticks too.
  nowMs += 5_000;
  settle(host, host.tick(nowMs), nowMs);
  const key = chainKeyOf(3, utf8('k'));
  const written = settle(
    host,
    host.submit(
      1,
      7,
      { kind: 'write', operation: { kind: 'put', key, value: utf8('v') } },
      nowMs,
      1_000,
    ),
    nowMs,
  );
  assert.equal(written.length, 1);
  assert.equal(written[0]!.operationId, 1);
  assert.equal(written[0]!.completion.reply?.status, 'written');
  for (let i = 0; i < 5; i++) settle(host, host.tick((nowMs += 100)), nowMs);
  assert.ok(!rows.kindsStored().includes(ChainRowKind.entry), 'committed entries are removed');
  assert.ok(rows.kindsStored().includes(ChainRowKind.record));
  const read = settle(host, host.submit(2, 7, { kind: 'read', key }, nowMs, 1_000), nowMs);
  const reply = read[0]!.completion.reply;
  assert.ok(reply?.status === 'read' && reply.value !== null && fromUtf8(reply.value) === 'v');

  const restarted = new ChainHost(NODE, 2, rows);
  nowMs += 10_000;
  settle(restarted, restarted.tick(nowMs), nowMs);
  assert.deepEqual(restarted.partitions(), [7]);
  const record = restarted.replica(7)!.localRecord(key);
  assert.equal(record.version, 1);
  assert.equal(fromUtf8(record.value!), 'v');
  settle(restarted, restarted.configure(CONFIG, nowMs), nowMs);
  // A restarted replica answers reads only after a full lease: it cannot know what it granted.
  const again = settle(
    restarted,
    restarted.submit(3, 7, { kind: 'read', key }, nowMs, 5_000),
    nowMs,
  );
  for (let i = 0; i < 40 && again.length === 0; i++) {
    again.push(...settle(restarted, restarted.tick((nowMs += 100)), nowMs));
  }
  const answer = again[0]!.completion.reply;
  assert.ok(answer?.status === 'read' && answer.version === 1, JSON.stringify(answer));
});
