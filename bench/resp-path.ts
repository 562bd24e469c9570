// Measures the CPU cost of one RESP command through ringkv's own code (parse, dispatch, core
// step, storage read, reply encoding) with no sockets: a fake socket feeds pipelined
// commands into a Connection and swallows the replies. At most 50 pipelines' worth of
// commands are unanswered at once, as under redis-benchmark's 50 clients: durable writes
// are answered only after their group's sync, and must not pile up without bound. Used to
// tune the hot path without the noise of the network and of other processes. Not a test.
//
// Usage: node bench/resp-path.ts [--commands N] [--storage lmdb|memory] [--pipeline P]
//        [--durability relaxed|sync]

import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { detachedConnection } from '../src/api/resp/server.ts';
import { DEFAULT_NODE_CONFIG } from '../src/runtime/config.ts';
import { Metrics } from '../src/runtime/metrics.ts';
import { NodeRuntime } from '../src/runtime/node-runtime.ts';
import { applyGcFlags } from '../src/runtime/gc-flags.ts';

// As a ringkv process runs (bin/ringkv.js).
applyGcFlags();

const { values } = parseArgs({
  options: {
    commands: { type: 'string', default: '2000000' },
    storage: { type: 'string', default: 'lmdb' },
    pipeline: { type: 'string', default: '16' },
    durability: { type: 'string', default: 'relaxed' },
  },
});
const COMMANDS = Number(values.commands);
const PIPELINE = Number(values.pipeline);
const KEYS = 100_000;
/** Commands sent and not yet answered, at most: redis-benchmark's 50 clients' pipelines. */
const IN_FLIGHT_MAX = 50 * PIPELINE;

class FakeSocket extends EventEmitter {
  writableLength = 0;
  remoteAddress = '127.0.0.1';
  remotePort = 1;
  bytesOut = 0;
  /** Called once at the next write. */
  onWrite: (() => void) | null = null;
  setNoDelay(): void {}
  pause(): void {}
  resume(): void {}
  end(): void {}
  write(bytes: Buffer): boolean {
    this.bytesOut += bytes.length;
    const onWrite = this.onWrite;
    this.onWrite = null;
    onWrite?.();
    return true;
  }
}

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ringkv-resp-path-'));
const config = {
  ...DEFAULT_NODE_CONFIG,
  dataDir,
  storage: values.storage as 'lmdb' | 'memory',
  durability: values.durability as 'relaxed' | 'sync',
};
const metrics = new Metrics();
const logger = pino({ level: 'silent' });
const runtime = await NodeRuntime.open(config, { metrics, logger });
const socket = new FakeSocket();
const connection = detachedConnection(socket as never, runtime, {
  metrics,
  logger,
  inputBytesMax: config.respInputBytesMax,
});

function command(...args: (string | Buffer)[]): Buffer {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.from(arg);
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

const value = Buffer.alloc(100, 0x78);
const key = (i: number): string => `key:${String(i).padStart(12, '0')}`;
// Fill the keyspace, then let the commits land.
for (let i = 0; i < KEYS; i += PIPELINE) {
  const chunk = [];
  for (let j = i; j < i + PIPELINE; j++) chunk.push(command('SET', key(j), value));
  socket.emit('data', Buffer.concat(chunk));
  if (i % 10_000 === 0) await new Promise((resolve) => setImmediate(resolve));
}
await new Promise((resolve) => setTimeout(resolve, 500));

for (const name of (process.env.ONLY ?? 'GET,SET').split(',')) {
  const chunks: Buffer[] = [];
  for (let c = 0; c < 1000; c++) {
    const batch = [];
    for (let j = 0; j < PIPELINE; j++) {
      const k = key(Math.floor(Math.random() * KEYS));
      batch.push(name === 'GET' ? command('GET', k) : command('SET', k, value));
    }
    chunks.push(Buffer.concat(batch));
  }
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const mainStarted = process.threadCpuUsage();
  for (let sent = 0; sent < COMMANDS; sent += PIPELINE) {
    socket.emit('data', chunks[(sent / PIPELINE) % chunks.length]!);
    // Let group commits and replies run, as the event loop would between reads; and keep
    // at most as many commands unanswered as redis-benchmark's 50 clients would, so that
    // durable writes, answered only after their group's sync, do not pile up.
    if (sent % (PIPELINE * 64) === 0) await new Promise((resolve) => setImmediate(resolve));
    while (connection.repliesPending > IN_FLIGHT_MAX) {
      await new Promise<void>((resolve) => (socket.onWrite = resolve));
    }
  }
  const elapsedMs = performance.now() - started;
  // CPU time (every thread of the process) is steadier than elapsed time on a shared
  // machine: other processes' load stretches the latter only.
  // The main thread's share apart: a durable node's log writes and syncs run on others.
  const cpu = process.cpuUsage(cpuStarted);
  const main = process.threadCpuUsage(mainStarted);
  const cpuNs = ((cpu.user + cpu.system) * 1000) / COMMANDS;
  const mainNs = ((main.user + main.system) * 1000) / COMMANDS;
  process.stdout.write(
    `${name}: ${((elapsedMs * 1e6) / COMMANDS).toFixed(0)} ns per command elapsed, ${cpuNs.toFixed(0)} ns of CPU, ${mainNs.toFixed(0)} of them on the main thread (${values.storage}, ${values.durability}, pipeline ${PIPELINE})\n`,
  );
}
await runtime.close();
rmSync(dataDir, { recursive: true, force: true });
