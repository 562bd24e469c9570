// What a key's first read after a checkpoint costs in the LMDB engine: 100,000 keys are
// written, a checkpoint writes most of them into LMDB, and each key is then read once, in
// a scattered order. Under a write load this is the read of the old record that every
// key's first write after a checkpoint makes. Not a test.
//
// Usage: node bench/first-read.ts [--rounds N]

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_LMDB_STORAGE_OPTIONS, LmdbStorage } from '../src/storage/lmdb/lmdb-storage.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' } } });
const KEYS = 100_000;
const BATCH = 100;

const key = (i: number): Buffer =>
  Buffer.from(`\x10\x00\x00\x00\x01\x00\x07key:${String(i).padStart(12, '0')}`, 'latin1');
const value = Buffer.alloc(200, 0x78);

for (let round = 1; round <= Number(values.rounds); round++) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ringkv-first-read-'));
  // A bound that about nine in ten of the keys pass: the checkpoint holds those.
  const storage = await LmdbStorage.open(dataDir, {
    ...DEFAULT_LMDB_STORAGE_OPTIONS,
    memtableBytesMax: 25 * 1024 * 1024,
  });
  for (let i = 0; i < KEYS; i += BATCH) {
    const writes = [];
    for (let j = i; j < i + BATCH; j++) writes.push({ key: key(j), value });
    await storage.commit(writes, { durable: false });
  }
  const deadline = Date.now() + 60_000;
  while (storage.stats().checkpoints < 1) {
    if (Date.now() > deadline) throw new Error('no checkpoint within 60 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // A stride prime to the key count: every key once, far from the one before.
  const keys = Array.from({ length: KEYS }, (_, i) => key((i * 7919) % KEYS));
  const started = process.cpuUsage();
  let found = 0;
  for (const k of keys) if (storage.get(k) !== undefined) found++;
  const cpu = process.cpuUsage(started);
  if (found !== KEYS) throw new Error(`${found} of ${KEYS} keys found`);
  const ns = ((cpu.user + cpu.system) * 1000) / KEYS;
  process.stdout.write(
    `round ${round}: ${ns.toFixed(0)} ns of CPU per first read after a checkpoint (${storage.stats().lmdbReads} read from LMDB)\n`,
  );
  await storage.close();
  rmSync(dataDir, { recursive: true, force: true });
}
