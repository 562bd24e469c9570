// A hand-driven network for chain replica tests: every send lands in a list the test can
// deliver, drop, repeat or reorder one by one; batches are made durable at once (into a store
// per replica, so that restore can be tested); time moves only when the test says so.

import assert from 'node:assert/strict';
import { utf8 } from '../../../src/core/bytes.ts';
import { foundingChainConfig, type ChainConfig } from '../../../src/core/chain/chain-config.ts';
import type { ChainMessage, ChainReply } from '../../../src/core/chain/messages.ts';
import type { ChainOperation } from '../../../src/core/chain/operations.ts';
import {
  ChainReplica,
  type ChainOutput,
  type ChainReplicaOptions,
} from '../../../src/core/chain/replica.ts';
import {
  DEFAULT_CHAIN_LIMITS,
  DEFAULT_CHAIN_TIMINGS,
  type ChainLimits,
  type ChainTimings,
} from '../../../src/core/chain/settings.ts';
import { applyBatch, type DurableStore } from '../../../src/sim/chain-world.ts';

export const PARTITION = 3;

export const TEST_TIMINGS: ChainTimings = {
  ...DEFAULT_CHAIN_TIMINGS,
  retransmitAfterMs: 50,
  leaseMs: 1000,
  clockDriftMarginMs: 10,
  ackIntervalMs: 100,
  copyRetryAfterMs: 200,
};

export interface InFlight {
  readonly from: string;
  readonly to: string;
  readonly message: ChainMessage;
}

export class Harness {
  readonly replicas = new Map<string, ChainReplica>();
  readonly stores = new Map<string, DurableStore>();
  /** Messages sent and not yet delivered, in send order. */
  inFlight: InFlight[] = [];
  /** Replies that reached requesters (anything addressed to a non-replica). */
  readonly replies: InFlight[] = [];
  readonly configWanted: { id: string; epoch: number }[] = [];
  nowMs = 0;
  private readonly limits: ChainLimits;
  private readonly timings: ChainTimings;
  private nextRequestId = 1;

  constructor(
    ids: readonly string[],
    chain: readonly string[],
    overrides: { limits?: Partial<ChainLimits>; timings?: Partial<ChainTimings> } = {},
  ) {
    this.limits = { ...DEFAULT_CHAIN_LIMITS, ...overrides.limits };
    this.timings = { ...TEST_TIMINGS, ...overrides.timings };
    const config = foundingChainConfig(PARTITION, chain);
    for (const id of ids) {
      this.replicas.set(id, new ChainReplica(this.options(id)));
      this.stores.set(id, {
        meta: null,
        records: new Map(),
        requesters: new Map(),
        entries: new Map(),
      });
      this.collect(id, this.replica(id).configure(config, this.nowMs));
    }
  }

  options(id: string): ChainReplicaOptions {
    return { selfId: id, partition: PARTITION, limits: this.limits, timings: this.timings };
  }

  replica(id: string): ChainReplica {
    const replica = this.replicas.get(id);
    assert.ok(replica !== undefined, `${id} is a replica`);
    return replica;
  }

  collect(id: string, output: ChainOutput): ChainOutput {
    if (output.batch !== null) applyBatch(this.stores.get(id)!, output.batch);
    if (output.configWanted !== null) this.configWanted.push({ id, epoch: output.configWanted });
    for (const send of output.sends) {
      const flight = { from: id, to: send.to, message: send.message };
      if (this.replicas.has(send.to)) this.inFlight.push(flight);
      else this.replies.push(flight);
    }
    return output;
  }

  /** Sends a write from `requester` to `to` (the head by default), under `epoch`. */
  write(requester: string, operation: ChainOperation, to = 'n0', epoch?: number): number {
    const requestId = this.nextRequestId++;
    this.receive(to, requester, {
      type: 'write',
      partition: PARTITION,
      epoch: epoch ?? this.replica(to).epoch,
      requestId,
      operation,
    });
    return requestId;
  }

  read(requester: string, key: string, to: string, epoch?: number): number {
    const requestId = this.nextRequestId++;
    this.receive(to, requester, {
      type: 'read',
      partition: PARTITION,
      epoch: epoch ?? this.replica(to).epoch,
      requestId,
      key: utf8(key),
    });
    return requestId;
  }

  receive(to: string, from: string, message: unknown): ChainOutput {
    return this.collect(to, this.replica(to).receive(from, message, this.nowMs));
  }

  configureAll(config: ChainConfig, ids: readonly string[] = [...this.replicas.keys()]): void {
    for (const id of ids) this.collect(id, this.replica(id).configure(config, this.nowMs));
  }

  /** Takes the in-flight messages that match, in order, out of the network. */
  take(match: (flight: InFlight) => boolean): InFlight[] {
    const taken = this.inFlight.filter(match);
    this.inFlight = this.inFlight.filter((flight) => !match(flight));
    return taken;
  }

  deliver(flight: InFlight): void {
    this.receive(flight.to, flight.from, flight.message);
  }

  /** Delivers until nothing is in flight (or the bound), dropping what `drop` matches. */
  settle(drop: (flight: InFlight) => boolean = () => false, roundsMax = 1000): void {
    for (let round = 0; round < roundsMax && this.inFlight.length > 0; round++) {
      const flight = this.inFlight.shift()!;
      if (!drop(flight)) this.deliver(flight);
    }
    assert.equal(this.inFlight.length, 0, 'the network settles');
  }

  /** Moves time forward by `ms` in ticks of `stepMs`, settling the network after each. */
  advance(ms: number, drop: (flight: InFlight) => boolean = () => false, stepMs = 10): void {
    const untilMs = this.nowMs + ms;
    while (this.nowMs < untilMs) {
      this.nowMs = Math.min(untilMs, this.nowMs + stepMs);
      for (const id of this.replicas.keys()) this.collect(id, this.replica(id).tick(this.nowMs));
      this.settle(drop);
    }
  }

  /** The replies that reached `requester` for `requestId`. */
  repliesTo(requester: string, requestId: number): ChainReply[] {
    return this.replies
      .filter(
        (flight) =>
          flight.to === requester &&
          flight.message.type === 'reply' &&
          flight.message.requestId === requestId,
      )
      .map((flight) => (flight.message.type === 'reply' ? flight.message.reply : assert.fail()));
  }
}

export function put(key: string, value: string): ChainOperation {
  return { kind: 'put', key: utf8(key), value: utf8(value) };
}

export function isType(type: ChainMessage['type'], from?: string, to?: string) {
  return (flight: InFlight): boolean =>
    flight.message.type === type &&
    (from === undefined || flight.from === from) &&
    (to === undefined || flight.to === to);
}
