// A simulated shell around one core Node: virtual time, seeded clients, the in-memory
// storage engine with a simulated commit latency, and the same group commit as the real
// runtime. Everything that varies comes from one seed, so a run is replayable exactly: the
// trace of every input and effect is byte-identical for the same seed.
//
// The multi-node world (network, crashes, partitions) grows from this in src/sim/.

import { utf8 } from '../core/bytes.ts';
import { DEFAULT_KEYSPACE } from '../core/keyspace.ts';
import { DEFAULT_LIMITS } from '../core/limits.ts';
import { Node, type Effect, type Input } from '../core/node.ts';
import { Prng } from '../core/prng.ts';
import type { ClientRequest } from '../core/requests.ts';
import type { Storage } from '../storage/contract.ts';
import { EventQueue } from './event-queue.ts';
import { effectText, inputText } from './trace.ts';

export interface SingleNodeSimulationOptions {
  readonly seed: number;
  /** Fresh storage for the run (the in-memory engine). */
  readonly storage: Storage;
  readonly clients: number;
  readonly operations: number;
  readonly keyCount: number;
  readonly tickMs: number;
  /** Virtual time at the start (unix ms). */
  readonly startMs: number;
}

export interface SingleNodeSimulationResult {
  readonly trace: string[];
  readonly completed: number;
  readonly failed: number;
  readonly endMs: number;
}

type SimEvent =
  | { readonly kind: 'client'; readonly client: number }
  | { readonly kind: 'tick' }
  | { readonly kind: 'commit-start' }
  | { readonly kind: 'commit-done' };

type PersistEffect = Extract<Effect, { type: 'persist' }>;

export async function runSingleNodeSimulation(
  options: SingleNodeSimulationOptions,
): Promise<SingleNodeSimulationResult> {
  const prng = new Prng(options.seed);
  const storage = options.storage;
  const node = new Node(
    { nodeId: 'n1', keyspaces: [DEFAULT_KEYSPACE], limits: DEFAULT_LIMITS, partitionCount: 256 },
    storage,
  );
  const events = new EventQueue<SimEvent>();
  const trace: string[] = [];
  const waiting = new Map<number, number>(); // request id → client
  let nowMs = options.startMs;
  let nextRequestId = 1;
  let issued = 0;
  let completed = 0;
  let failed = 0;
  let queue: PersistEffect[] = [];
  let inFlight: PersistEffect[] | null = null;
  let commitStartScheduled = false;

  const step = (input: Input): void => {
    trace.push(inputText(input));
    const effects = node.step(input);
    for (const effect of effects) {
      trace.push(effectText(nowMs, effect));
      if (effect.type === 'reply') {
        const client = waiting.get(effect.requestId);
        if (client === undefined) throw new Error(`reply to unknown request ${effect.requestId}`);
        waiting.delete(effect.requestId);
        completed += 1;
        if (!effect.reply.ok) failed += 1;
        events.push(nowMs + prng.between(0, 3), { kind: 'client', client });
      } else if (effect.type === 'persist') {
        // As the real shell does: readable at once, durable with its group's commit.
        storage.stage(effect.writes);
        queue.push(effect);
        if (inFlight === null && !commitStartScheduled) {
          commitStartScheduled = true;
          events.push(nowMs, { kind: 'commit-start' });
        }
      }
    }
  };

  for (let client = 0; client < options.clients; client++) {
    events.push(nowMs + prng.between(0, 5), { kind: 'client', client });
  }
  events.push(nowMs + options.tickMs, { kind: 'tick' });

  while (events.size > 0) {
    const event = events.pop()!;
    nowMs = event.atMs;
    switch (event.payload.kind) {
      case 'client': {
        if (issued >= options.operations) break;
        issued += 1;
        const requestId = nextRequestId++;
        waiting.set(requestId, event.payload.client);
        step({ type: 'request', nowMs, requestId, request: randomRequest(prng, options.keyCount) });
        break;
      }
      case 'tick': {
        step({ type: 'tick', nowMs });
        // Keep ticking while work remains; stop once every client is done and idle.
        if (
          issued < options.operations ||
          waiting.size > 0 ||
          queue.length > 0 ||
          inFlight !== null
        ) {
          events.push(nowMs + options.tickMs, { kind: 'tick' });
        }
        break;
      }
      case 'commit-start': {
        commitStartScheduled = false;
        if (inFlight !== null || queue.length === 0) break;
        inFlight = queue;
        queue = [];
        // Disk latency: usually a few ms, sometimes far more (a long tail).
        const latencyMs = prng.chance(0.05) ? prng.between(20, 80) : prng.between(1, 4);
        events.push(nowMs + latencyMs, { kind: 'commit-done' });
        break;
      }
      case 'commit-done': {
        const group = inFlight!;
        await storage.commit([], { durable: group.some((batch) => batch.durable) });
        inFlight = null;
        for (const batch of group) step({ type: 'persisted', nowMs, batchId: batch.batchId });
        if (queue.length > 0 && !commitStartScheduled) {
          commitStartScheduled = true;
          events.push(nowMs, { kind: 'commit-start' });
        }
        break;
      }
    }
  }
  if (waiting.size > 0) throw new Error(`${waiting.size} requests never answered`);
  return { trace, completed, failed, endMs: nowMs };
}

const SET_CONDITIONS = ['always', 'always', 'always', 'ifAbsent', 'ifPresent'] as const;

function randomRequest(prng: Prng, keyCount: number): ClientRequest {
  const key = (): Uint8Array => utf8(`k${prng.below(keyCount)}`);
  const keyspace = 'default';
  const roll = prng.below(100);
  if (roll < 35) return { op: 'get', keyspace, keys: [key()] };
  if (roll < 40) return { op: 'get', keyspace, keys: [key(), key(), key()] };
  if (roll < 60) {
    const ttl = prng.chance(0.2);
    return {
      op: 'write',
      keyspace,
      items: [
        {
          key: key(),
          mutation: {
            kind: 'set',
            value: utf8(`v${prng.below(1000)}`),
            condition: prng.pick(SET_CONDITIONS),
            expiry: ttl ? { kind: 'after', ms: prng.between(50, 500) } : { kind: 'none' },
          },
        },
      ],
    };
  }
  if (roll < 68)
    return { op: 'write', keyspace, items: [{ key: key(), mutation: { kind: 'delete' } }] };
  if (roll < 78) {
    return {
      op: 'write',
      keyspace,
      items: [{ key: key(), mutation: { kind: 'incrBy', delta: BigInt(prng.between(-5, 5)) } }],
    };
  }
  if (roll < 84) {
    return {
      op: 'write',
      keyspace,
      items: [{ key: key(), mutation: { kind: 'append', suffix: utf8('+') } }],
    };
  }
  if (roll < 88) {
    return {
      op: 'write',
      keyspace,
      items: [
        {
          key: key(),
          mutation: {
            kind: 'expire',
            expiry: { kind: 'after', ms: prng.between(10, 300) },
            condition: 'always',
          },
        },
      ],
    };
  }
  if (roll < 94)
    return { op: 'scan', keyspace, cursor: null, count: 10, match: null, prefix: null };
  return { op: 'count', keyspace };
}
