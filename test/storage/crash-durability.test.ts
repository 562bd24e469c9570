// A batch acknowledged as durable survives `kill -9` of the process right after the
// acknowledgement, and no batch is ever found half-applied.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LmdbStorage } from '../../src/storage/lmdb/lmdb-storage.ts';

const WRITES_PER_BATCH = 20;
const fixture = path.join(import.meta.dirname, 'fixtures', 'durable-writer.ts');

async function runAndKill(directory: string, killAfterAcks: number): Promise<number> {
  const child = spawn(process.execPath, [fixture, directory], {
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
        if (lastAck + 1 >= killAfterAcks && child.exitCode === null) {
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

test('every batch acknowledged as durable survives kill -9, and none is torn', async () => {
  for (const killAfterAcks of [1, 7, 40]) {
    const directory = mkdtempSync(path.join(os.tmpdir(), 'ringkv-crash-'));
    try {
      const lastAck = await runAndKill(directory, killAfterAcks);
      assert.ok(lastAck >= killAfterAcks - 1, `only ${lastAck + 1} acks seen`);
      const storage = await LmdbStorage.open(directory);
      for (let batch = 0; batch <= lastAck + 50; batch++) {
        let present = 0;
        for (let i = 0; i < WRITES_PER_BATCH; i++) {
          const value = storage.get(Buffer.from(`b${batch}:${i}`));
          if (value !== undefined) {
            assert.equal(Buffer.from(value).toString(), `value-${batch}-${i}`);
            present++;
          }
        }
        if (batch <= lastAck)
          assert.equal(present, WRITES_PER_BATCH, `acknowledged batch ${batch} lost`);
        else
          assert.ok(
            present === 0 || present === WRITES_PER_BATCH,
            `batch ${batch} is torn: ${present} writes`,
          );
      }
      await storage.close();
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  }
});
