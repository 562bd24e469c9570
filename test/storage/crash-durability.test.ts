// A batch acknowledged as durable survives `kill -9` of the process right after the
// acknowledgement; no batch is ever found half-applied, and the batches found are a prefix
// of those committed (a crash of the process loses no relaxed batch that reached the log).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_LMDB_STORAGE_OPTIONS, LmdbStorage } from '../../src/storage/lmdb/lmdb-storage.ts';
import { SMALL_LMDB_OPTIONS } from './fixtures/small-options.ts';

const WRITES_PER_BATCH = 20;
const fixture = path.join(import.meta.dirname, 'fixtures', 'durable-writer.ts');

async function runAndKill(
  directory: string,
  small: boolean,
  killAfterAcks: number,
): Promise<number> {
  const child = spawn(process.execPath, [fixture, directory, ...(small ? ['small'] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let lastAck = -1;
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const match = /^ack (\d+)$/.exec(line);
        if (match === null) continue;
        lastAck = Number(match[1]);
        if (lastAck / 2 + 1 >= killAfterAcks && child.exitCode === null) {
          // Kill at once, while later commits are in flight.
          process.kill(child.pid!, 'SIGKILL');
        }
      }
    });
    child.once('exit', (_code, signal) => {
      if (signal === 'SIGKILL') resolve();
      else reject(new Error(`writer exited on its own: ${stderr}`));
    });
  });
  return lastAck;
}

for (const small of [false, true]) {
  const name = small ? 'with checkpoints all along' : 'with the default bounds';
  test(`every durable batch survives kill -9, none is torn, the rest is a prefix (${name})`, async () => {
    const options = small ? SMALL_LMDB_OPTIONS : DEFAULT_LMDB_STORAGE_OPTIONS;
    for (const killAfterAcks of small ? [150, 400] : [1, 7, 40]) {
      const directory = mkdtempSync(path.join(os.tmpdir(), 'ringkv-crash-'));
      try {
        const lastAck = await runAndKill(directory, small, killAfterAcks);
        assert.ok(lastAck / 2 + 1 >= killAfterAcks, `only ${lastAck / 2 + 1} acks seen`);
        const storage = await LmdbStorage.open(directory, options);
        let firstMissing = -1;
        for (let batch = 0; batch <= lastAck + 100; batch++) {
          let present = 0;
          for (let i = 0; i < WRITES_PER_BATCH; i++) {
            const value = storage.get(Buffer.from(`b${batch}:${i}`));
            if (value !== undefined) {
              assert.equal(Buffer.from(value).toString(), `value-${batch}-${i}`);
              present++;
            }
          }
          if (batch <= lastAck) {
            assert.equal(present, WRITES_PER_BATCH, `batch ${batch} (up to ${lastAck} acked) lost`);
          }
          assert.ok(present === 0 || present === WRITES_PER_BATCH, `batch ${batch} is torn`);
          if (present === 0 && firstMissing === -1) firstMissing = batch;
          if (present > 0) assert.equal(firstMissing, -1, `batch ${batch} found after a gap`);
        }
        await storage.close();
      } finally {
        rmSync(directory, { recursive: true, force: true });
      }
    }
  });
}
