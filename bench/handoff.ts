// Handoff benchmark: how fast a joining node takes its share of the data, and what the move
// costs the requests served meanwhile. Three `ringkv start` processes on LMDB (loopback,
// keyspace default: N=3 R=2 W=2, durable) are loaded with --keys keys of --value-bytes
// bytes; two more nodes start with --join as standbys. A steady mixed load (YCSB A: half
// gets, half puts, uniform keys, --concurrency requests in flight over RESP to the three
// founders) runs through the load generator from then on, and the benchmark measures:
// 1. baseline: the load alone for --baseline-seconds, no move;
// 2. move: node4 joins with no rate limit; the handoff rate from the change's start to its
//    commit (the plan's bytes and keys over that time, the node's 5 s start delay included),
//    over the copying alone (first copy seen to last copy done), and as node4's handoff
//    status reports it; the load's latency during the move;
// 3. limited: node5 gets a rate limit of --limit-mb MB/s, then joins; the rate node5
//    receives at over --limited-seconds of copying (and its largest 2 s window), with the
//    load's latency meanwhile; then the limit is lifted and the change commits.
// The tables go to stdout and into BENCHMARKS.md between `<!-- bench:handoff begin -->` and
// `<!-- bench:handoff end -->`. MB is 10^6 bytes; a row's bytes are its key and its encoded
// record, as the handoff counts them. Every process started here is stopped by its PID.
//
// Usage: npm run bench:handoff [-- --keys N --value-bytes B --concurrency C
//          --baseline-seconds S --limit-mb M --limited-seconds S --output FILE]

import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  Histogram,
  openTarget,
  runLoad,
  type LoadTarget,
  type WorkloadSpec,
} from '../src/loadgen/index.ts';
import { http, waitFor } from '../test/cluster/cluster-harness.ts';
import { NodeProcesses, type HandoffView } from '../test/cluster/node-processes.ts';
import { firstLine, machine, writeBenchmarkSection } from './benchmarks-file.ts';

const { values: flags } = parseArgs({
  options: {
    keys: { type: 'string', default: '200000' },
    'value-bytes': { type: 'string', default: '1024' },
    concurrency: { type: 'string', default: '8' },
    'baseline-seconds': { type: 'string', default: '20' },
    'limit-mb': { type: 'string', default: '2' },
    'limited-seconds': { type: 'string', default: '20' },
    output: { type: 'string', default: 'BENCHMARKS.md' },
  },
});

function positive(name: string, text: string): number {
  const value = Number(text);
  if (!(Number.isFinite(value) && value > 0)) throw new Error(`--${name} must be > 0`);
  return value;
}

const KEY_COUNT = positive('keys', flags.keys);
const VALUE_BYTES = positive('value-bytes', flags['value-bytes']);
const CONCURRENCY = positive('concurrency', flags.concurrency);
const BASELINE_MS = positive('baseline-seconds', flags['baseline-seconds']) * 1000;
const LIMIT_BYTES_PER_SECOND = positive('limit-mb', flags['limit-mb']) * 1e6;
const LIMITED_MS = positive('limited-seconds', flags['limited-seconds']) * 1000;
const LOAD_CONCURRENCY = 64;
/** The foreground load runs in slices of this length, so it can stop between two. */
const SLICE_MS = 1000;
const POLL_MS = 250;
const CHANGE_TIMEOUT_MS = 15 * 60_000;
/** The limited window starts this long after node5's first copy, past the first pages. */
const LIMITED_WARMUP_MS = 2000;
const FOUNDERS = ['node1', 'node2', 'node3'];
const projectRoot = path.resolve(import.meta.dirname, '..');
const MB = 1e6;

const log = (text: string): void => {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);
};

// ---- the foreground load, recorded by phase ----

type PhaseName = 'baseline' | 'move' | 'limited';

interface PhaseRecord {
  readonly latency: Histogram;
  errors: number;
  startedMs: number;
  endedMs: number;
}

class Foreground {
  phase: PhaseName | null = null;
  readonly phases = new Map<PhaseName, PhaseRecord>();
  private stopping = false;
  private running: Promise<void> | null = null;

  start(target: LoadTarget, workload: WorkloadSpec): void {
    const recorded = this.recording(target);
    this.running = (async () => {
      while (!this.stopping) {
        await runLoad(recorded, {
          workload,
          concurrency: CONCURRENCY,
          durationMs: SLICE_MS,
          loadPhase: false,
        });
      }
    })();
  }

  begin(name: PhaseName): void {
    this.phases.set(name, {
      latency: new Histogram(),
      errors: 0,
      startedMs: performance.now(),
      endedMs: 0,
    });
    this.phase = name;
  }

  end(): void {
    const record = this.phase === null ? undefined : this.phases.get(this.phase);
    if (record !== undefined) record.endedMs = performance.now();
    this.phase = null;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  /** The target with each operation timed into the phase it started in. */
  private recording(target: LoadTarget): LoadTarget {
    const timed = async <T>(run: () => Promise<T>): Promise<T> => {
      const record = this.phase === null ? undefined : this.phases.get(this.phase);
      const startedMs = performance.now();
      try {
        const result = await run();
        record?.latency.record(Math.round((performance.now() - startedMs) * 1000));
        return result;
      } catch (error) {
        if (record !== undefined) record.errors++;
        throw error;
      }
    };
    return {
      name: target.name,
      get: (key) => timed(() => target.get(key)),
      put: (key, value) => timed(() => target.put(key, value)),
      close: () => target.close(),
    };
  }
}

// ---- one membership change, watched from its receiver ----

interface Sample {
  readonly atMs: number;
  readonly bytes: number;
  readonly keys: number;
  /** The sum of the running copies' own measured rates. */
  readonly reportedBytesPerSecond: number;
  readonly copies: number;
  readonly copiesDone: number;
  readonly copiesWaiting: number;
}

interface ChangeRun {
  readonly planKeys: number;
  readonly planBytes: number;
  /** The plan's estimate with copies of unknown size at their keyspace's mean; null: none. */
  readonly planEstimate: { readonly keys: number; readonly bytes: number } | null;
  readonly planCopies: number;
  readonly startedMs: number;
  readonly committedMs: number;
  readonly samples: readonly Sample[];
}

function sampleOf(handoff: HandoffView, atMs: number): Sample {
  let bytes = 0;
  let keys = 0;
  for (const transfer of handoff.transfers) {
    bytes += transfer.bytesReceived;
    keys += transfer.keysReceived;
  }
  return {
    atMs,
    bytes,
    keys,
    // The node's own rate over all its copies (what the gauge and the ETA use).
    reportedBytesPerSecond: handoff.bytesPerSecond,
    copies: handoff.transfers.length,
    copiesDone: handoff.copiesDone,
    copiesWaiting: handoff.copiesWaiting,
  };
}

/**
 * Makes `join subject` through node1 and samples the subject's handoff status until every
 * founder sees the change committed. `during` runs alongside, given the samples so far.
 */
async function join(
  processes: NodeProcesses,
  subject: string,
  during?: (samples: readonly Sample[]) => Promise<void>,
): Promise<ChangeRun> {
  const startedMs = performance.now();
  const answer = await http(`${processes.node('node1').httpUrl}/v1/cluster/membership`, {
    method: 'POST',
    body: JSON.stringify({ kind: 'join', id: subject }),
    timeoutMs: 30_000,
  });
  if (answer.status !== 200) throw new Error(`join ${subject}: ${answer.status} ${answer.text}`);
  const made = answer.json as {
    epoch: number;
    planText: string[];
    plan: {
      totals: {
        copies: number;
        keys: number;
        bytes: number;
        estimate: { keys: number; bytes: number } | null;
      };
    };
  };
  log(made.planText.join('\n    '));
  const samples: Sample[] = [];
  let committed = false;
  const sampling = (async () => {
    while (!committed) {
      const status = await processes.status(subject).catch(() => null);
      if (status !== null && status.handoff.changeEpoch !== null) {
        samples.push(sampleOf(status.handoff, performance.now()));
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  })();
  let lastLogMs = 0;
  const watching = waitFor(
    async () => {
      const views = await Promise.all(FOUNDERS.map((id) => processes.status(id)));
      const last = samples.at(-1);
      if (last !== undefined && performance.now() - lastLogMs > 5000) {
        lastLogMs = performance.now();
        log(
          `  ${subject}: ${last.copiesDone}/${last.copies + last.copiesWaiting} copies, ` +
            `${(last.bytes / MB).toFixed(1)} MB, ${last.keys} keys, ` +
            `${(last.reportedBytesPerSecond / MB).toFixed(2)} MB/s reported`,
        );
      }
      return views.every((view) => view.change === null && view.epoch > made.epoch);
    },
    CHANGE_TIMEOUT_MS,
    `the join of ${subject} to commit`,
  );
  await Promise.all([watching, during?.(samples)]);
  const committedMs = performance.now();
  committed = true;
  await sampling;
  return {
    planKeys: made.plan.totals.keys,
    planBytes: made.plan.totals.bytes,
    planCopies: made.plan.totals.copies,
    planEstimate: made.plan.totals.estimate,
    startedMs,
    committedMs,
    samples,
  };
}

/**
 * Waits until no founder drops rows of partitions it gave away for a few seconds, read from
 * the handoff gauge in /metrics; a node that does not publish it gets a fixed wait instead.
 */
async function waitForDrops(processes: NodeProcesses): Promise<void> {
  const dropped = async (): Promise<number | null> => {
    let total = 0;
    for (const id of FOUNDERS) {
      const answer = await http(`${processes.node(id).httpUrl}/metrics`);
      const line = answer.text
        .split('\n')
        .find((text) => text.includes('name="handoff_stray_rows_dropped_total"'));
      if (line === undefined) return null;
      total += Number(line.split(' ').at(-1));
    }
    return total;
  };
  if ((await dropped()) === null) {
    log('  /metrics has no handoff gauges: waiting 20 s for the drops instead');
    await new Promise((resolve) => setTimeout(resolve, 20_000));
    return;
  }
  let previous = -1;
  let stableSinceMs = performance.now();
  await waitFor(
    async () => {
      const now = (await dropped()) ?? 0;
      if (now !== previous) {
        previous = now;
        stableSinceMs = performance.now();
      }
      // The drop starts 5 s after the commit is seen: stable for 8 s means it ran and ended.
      return now > 0 && performance.now() - stableSinceMs > 8000;
    },
    5 * 60_000,
    'the founders to drop the partitions they gave away',
  );
  log(`  founders dropped ${previous} rows they no longer replicate`);
}

// ---- figures ----

interface HandoffFigures {
  /** Received, as the receiver counted them (the plan's figures if it was not seen done). */
  readonly keys: number;
  readonly bytes: number;
  readonly changeSeconds: number;
  readonly copySeconds: number;
  readonly reportedMeanBytesPerSecond: number;
  readonly reportedMaxBytesPerSecond: number;
}

function figuresOf(run: ChangeRun): HandoffFigures {
  const copying = run.samples.filter((sample) => sample.copies > 0);
  const first = copying[0];
  const done = copying.find(
    (sample) => sample.copiesWaiting === 0 && sample.copiesDone === sample.copies,
  );
  const copySeconds =
    first === undefined ? NaN : ((done?.atMs ?? run.committedMs) - first.atMs) / 1000;
  const reported = copying
    .filter((sample) => done === undefined || sample.atMs <= done.atMs)
    .map((sample) => sample.reportedBytesPerSecond);
  // The receiver's own count once every copy is done; the plan's sizes are those the
  // planning node holds, and it does not know the partitions it does not replicate.
  const last = done ?? copying.at(-1);
  return {
    keys: Math.max(last?.keys ?? 0, done === undefined ? run.planKeys : 0),
    bytes: Math.max(last?.bytes ?? 0, done === undefined ? run.planBytes : 0),
    changeSeconds: (run.committedMs - run.startedMs) / 1000,
    copySeconds,
    reportedMeanBytesPerSecond:
      reported.length === 0 ? NaN : reported.reduce((sum, rate) => sum + rate, 0) / reported.length,
    reportedMaxBytesPerSecond: reported.length === 0 ? NaN : Math.max(...reported),
  };
}

/** Bytes received over [fromMs, toMs] from the samples, and the largest 2 s window rate. */
function windowRate(samples: readonly Sample[], fromMs: number, toMs: number) {
  const inside = samples.filter((sample) => sample.atMs >= fromMs && sample.atMs <= toMs);
  if (inside.length < 2) throw new Error('too few samples in the limited window');
  const first = inside[0]!;
  const last = inside.at(-1)!;
  let windowMax: number | null = null;
  for (const sample of inside) {
    const later = inside.find((other) => other.atMs >= sample.atMs + 2000);
    if (later === undefined) break;
    windowMax = Math.max(
      windowMax ?? 0,
      ((later.bytes - sample.bytes) * 1000) / (later.atMs - sample.atMs),
    );
  }
  return {
    bytesPerSecond: ((last.bytes - first.bytes) * 1000) / (last.atMs - first.atMs),
    keysPerSecond: ((last.keys - first.keys) * 1000) / (last.atMs - first.atMs),
    windowMaxBytesPerSecond: windowMax,
    seconds: (last.atMs - first.atMs) / 1000,
  };
}

const mbps = (bytesPerSecond: number): string => (bytesPerSecond / MB).toFixed(2);
/** What the plan announced, where it differs from what was received. */
const planned = (run: ChangeRun): string => {
  const figures = figuresOf(run);
  return figures.keys === run.planKeys
    ? ''
    : ` (the plan counted ${run.planKeys} keys, ${(run.planBytes / MB).toFixed(1)} MB` +
        (run.planEstimate === null
          ? ')'
          : `, and estimated about ${run.planEstimate.keys} keys, ${(run.planEstimate.bytes / MB).toFixed(1)} MB)`);
};
const ms = (microseconds: number): string => (microseconds / 1000).toFixed(2);

function foregroundRow(name: string, record: PhaseRecord | undefined): string {
  if (record === undefined) return `| ${name} | n/a | | | | | |\n`;
  const seconds = (record.endedMs - record.startedMs) / 1000;
  const latency = record.latency.summary();
  return (
    `| ${name} | ${seconds.toFixed(1)} | ${Math.round(latency.count / seconds)} | ` +
    `${ms(latency.p50Us)} | ${ms(latency.p99Us)} | ${ms(latency.p999Us)} | ${record.errors} |\n`
  );
}

async function main(): Promise<void> {
  const loadAverageAtStart = os.loadavg();
  const processes = new NodeProcesses({ storage: 'lmdb', logLevel: 'warn' });
  const onSignal = (): void => {
    process.stderr.write('interrupted: stopping every process started here\n');
    void processes.close().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const foreground = new Foreground();
  let target: LoadTarget | null = null;
  let table = '';
  try {
    await processes.startFounders(FOUNDERS);
    await processes.startJoiner('node4', 'node1');
    await processes.startJoiner('node5', 'node2');
    const endpoints = FOUNDERS.map((id) => {
      const node = processes.node(id);
      return { host: '127.0.0.1', port: node.respPort };
    });

    log(`loading ${KEY_COUNT} keys of ${VALUE_BYTES} bytes`);
    const loader = await openTarget({ kind: 'resp', endpoints, connections: LOAD_CONCURRENCY });
    const workload = (seed: number): WorkloadSpec => ({
      name: 'a',
      keyCount: KEY_COUNT,
      distribution: 'uniform',
      valueBytes: VALUE_BYTES,
      seed,
    });
    let loadStartedMs = performance.now();
    const loaded = await runLoad(loader, {
      workload: workload(1),
      concurrency: LOAD_CONCURRENCY,
      requests: 1,
      loadPhase: true,
      onProgress: (progress) => {
        if (progress.phase !== 'load' || performance.now() - loadStartedMs < 10_000) return;
        loadStartedMs = performance.now();
        log(`  loaded ${progress.done} of ${progress.total}`);
      },
    });
    await loader.close();
    const loadPhase = loaded.load!;
    const loadErrors = Object.values(loadPhase.errors).reduce((sum, count) => sum + count, 0);
    if (loadErrors > 0) throw new Error(`the load phase had ${loadErrors} errors`);
    log(`loaded at ${Math.round(loadPhase.opsPerSecond)} puts/s`);

    target = await openTarget({ kind: 'resp', endpoints, connections: CONCURRENCY });
    foreground.start(target, workload(2));

    log(`baseline: the load alone for ${BASELINE_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    foreground.begin('baseline');
    await new Promise((resolve) => setTimeout(resolve, BASELINE_MS));
    foreground.end();

    log('move: node4 joins, no rate limit');
    foreground.begin('move');
    const move = await join(processes, 'node4');
    foreground.end();
    const moveFigures = figuresOf(move);
    await waitForDrops(processes);

    log(`limited: node5 joins at ${mbps(LIMIT_BYTES_PER_SECOND)} MB/s`);
    const setRate = async (bytesPerSecond: number): Promise<void> => {
      const answer = await http(`${processes.node('node5').httpUrl}/v1/admin/handoff`, {
        method: 'POST',
        body: JSON.stringify({ bytesPerSecond }),
      });
      if (answer.status !== 200) throw new Error(`setting the rate: ${answer.text}`);
    };
    await setRate(LIMIT_BYTES_PER_SECOND);
    const limitedWindow = { fromMs: 0, toMs: 0 };
    foreground.begin('limited');
    const limited = await join(processes, 'node5', async (samples) => {
      await waitFor(() => samples.some((sample) => sample.copies > 0), 60_000, 'node5 to copy');
      const fromMs = samples.find((sample) => sample.copies > 0)!.atMs + LIMITED_WARMUP_MS;
      await new Promise((resolve) => setTimeout(resolve, fromMs + LIMITED_MS - performance.now()));
      limitedWindow.fromMs = fromMs;
      limitedWindow.toMs = performance.now();
      foreground.end();
      log('  lifting the limit');
      await setRate(0);
    });
    if (limitedWindow.toMs === 0) throw new Error('the limited window was not measured');
    const window = windowRate(limited.samples, limitedWindow.fromMs, limitedWindow.toMs);
    await foreground.stop();

    const commit = firstLine('git', ['-C', projectRoot, 'rev-parse', '--short', 'HEAD']);
    const loadAverageAtEnd = os.loadavg();
    const average = (values: number[]): string => values.map((value) => value.toFixed(2)).join(' ');
    table += `## Handoff: a node joins a loaded cluster\n\n`;
    table += `Command: \`npm run bench:handoff -- --keys ${KEY_COUNT} --value-bytes ${VALUE_BYTES} --concurrency ${CONCURRENCY} --baseline-seconds ${BASELINE_MS / 1000} --limit-mb ${LIMIT_BYTES_PER_SECOND / MB} --limited-seconds ${LIMITED_MS / 1000}\`  \n`;
    table += `Machine: ${machine()}; load average ${average(loadAverageAtStart)} at the start, ${average(loadAverageAtEnd)} at the end  \n`;
    table += `Date: ${new Date().toISOString().slice(0, 10)}; Node ${process.version}; ringkv (${commit})  \n`;
    table += `Setup: 3 founding nodes (\`ringkv start\`, LMDB, loopback, keyspace default: N=3 R=2 W=2, durable), `;
    table += `loaded with ${KEY_COUNT} keys of ${VALUE_BYTES} bytes (${Math.round(loadPhase.opsPerSecond)} puts/s with ${LOAD_CONCURRENCY} in flight); `;
    table += `node4 and node5 started with \`--join\` as standbys. Foreground load: YCSB A (50% gets, 50% puts, uniform keys) `;
    table += `through the load generator over RESP to the three founders, ${CONCURRENCY} requests in flight, `;
    table += `all on this machine. MB = 10^6 bytes of keys and encoded records, as the handoff counts them.\n\n`;
    table += `| move | data received | start to commit | rate start to commit | copying | rate while copying | receiver's reported rate, mean / max |\n`;
    table += `| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n`;
    const f = moveFigures;
    table +=
      `| node4 joins (3 -> 4), no limit | ${f.keys} keys, ${(f.bytes / MB).toFixed(1)} MB in ${move.planCopies} copies${planned(move)} | ` +
      `${f.changeSeconds.toFixed(1)} s | ${mbps(f.bytes / f.changeSeconds)} MB/s, ${Math.round(f.keys / f.changeSeconds)} keys/s | ` +
      `${f.copySeconds.toFixed(1)} s | ${mbps(f.bytes / f.copySeconds)} MB/s, ${Math.round(f.keys / f.copySeconds)} keys/s | ` +
      `${mbps(f.reportedMeanBytesPerSecond)} / ${mbps(f.reportedMaxBytesPerSecond)} MB/s |\n`;
    const l = figuresOf(limited);
    table +=
      `| node5 joins (4 -> 5), limit ${mbps(LIMIT_BYTES_PER_SECOND)} MB/s for ${window.seconds.toFixed(1)} s, then lifted | ` +
      `${l.keys} keys, ${(l.bytes / MB).toFixed(1)} MB in ${limited.planCopies} copies${planned(limited)} | ${l.changeSeconds.toFixed(1)} s | ` +
      `${mbps(l.bytes / l.changeSeconds)} MB/s, ${Math.round(l.keys / l.changeSeconds)} keys/s | ${l.copySeconds.toFixed(1)} s | ` +
      `under the limit: **${mbps(window.bytesPerSecond)} MB/s** (largest 2 s window ${window.windowMaxBytesPerSecond === null ? 'n/a' : mbps(window.windowMaxBytesPerSecond)}), ` +
      `${Math.round(window.keysPerSecond)} keys/s | ${mbps(l.reportedMeanBytesPerSecond)} / ${mbps(l.reportedMaxBytesPerSecond)} MB/s |\n\n`;
    table += `Foreground requests (latency in ms; errors are failed requests):\n\n`;
    table += `| phase | seconds | ops/s | p50 | p99 | p999 | errors |\n`;
    table += `| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n`;
    table += foregroundRow('no move (before)', foreground.phases.get('baseline'));
    table += foregroundRow(
      'node4 joins, no limit (start to commit)',
      foreground.phases.get('move'),
    );
    table += foregroundRow(
      `node5 joins, limited to ${mbps(LIMIT_BYTES_PER_SECOND)} MB/s (start to the lift)`,
      foreground.phases.get('limited'),
    );
    process.stdout.write(table);
  } finally {
    await foreground.stop();
    await target?.close();
    await processes.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  writeBenchmarkSection(path.resolve(projectRoot, flags.output), 'handoff', table);
}

await main();
