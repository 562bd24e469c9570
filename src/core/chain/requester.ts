// The requester's side of chain replication as a pure state machine: what a node coordinating
// a client's request (or a simulated client) runs to reach a partition's chain. Writes go to
// the head, reads to the tail, of the newest configuration it knows; the same request, under
// the same id, is sent again until an answer comes or the deadline passes.
//
// Rules it keeps:
// - A request keeps its id for its whole life, through every resend and every retarget after
//   a refusal, so the chain's memory of requests (per requester, by id) applies it at most
//   once, whichever head receives which copy.
// - Only an answer ends a request: written or read is ok, an error outcome or an invalid
//   request is failed (nothing was changed), and a deadline without an answer is unknown (a
//   write may still have taken effect, or may yet). A refusal carries a newer configuration:
//   the request goes at once to the new head or tail. "retry" waits one resend interval.
// - A request that hears nothing for a while, or whose partition has no configuration, asks
//   for the map (`configWanted`).
// - At most `writesPerPartitionMax` writes per partition are outstanding, no more than the
//   chain remembers per requester, so a late copy of a request the chain has forgotten is
//   recognised as stale rather than applied again.
// A requester's id must not be reused by a later life that starts its request ids again.

import { assert } from '../bytes.ts';
import { headOf, isValidNodeId, tailOf, type ChainConfig } from './chain-config.ts';
import { isValidChainMessage, type ChainReply, type ReplyMessage } from './messages.ts';
import type { ChainOperation } from './operations.ts';
import type { ChainSend } from './replica.ts';
import { DEFAULT_CHAIN_LIMITS } from './settings.ts';

export interface ChainRequesterOptions {
  readonly selfId: string;
  /** An unanswered request is sent again after this time. */
  readonly resendIntervalMs: number;
  /** A request that has heard nothing for this long asks for the map. */
  readonly configRefreshAfterMs: number;
  /** Requests outstanding at once, all partitions together. */
  readonly outstandingMax: number;
  /** Writes outstanding per partition: at most what a chain remembers per requester. */
  readonly writesPerPartitionMax: number;
  /**
   * Request ids start above this. Chains remember requests by requester and id, so a node
   * that restarts must not reuse the ids of an earlier life: it starts from a base of its
   * own per life. Default 0.
   */
  readonly requestIdBase?: number;
}

export const DEFAULT_REQUESTER_OPTIONS: Omit<ChainRequesterOptions, 'selfId'> = {
  resendIntervalMs: 100,
  configRefreshAfterMs: 500,
  outstandingMax: 10_000,
  writesPerPartitionMax: DEFAULT_CHAIN_LIMITS.requestsPerRequesterMax,
};

export type ChainRequest =
  | { readonly kind: 'write'; readonly operation: ChainOperation }
  | { readonly kind: 'read'; readonly key: Uint8Array };

export interface ChainCompletion {
  readonly requestId: number;
  readonly partition: number;
  readonly outcome: 'ok' | 'failed' | 'unknown';
  /** The answer that ended the request; null when it timed out. */
  readonly reply: ChainReply | null;
  /** The replica that answered; null when it timed out. */
  readonly answeredBy: string | null;
}

export interface RequesterOutput {
  readonly sends: readonly ChainSend[];
  readonly completions: readonly ChainCompletion[];
  /** Partitions whose configuration this requester needs from the map. */
  readonly configWanted: readonly number[];
}

interface PendingRequest {
  readonly requestId: number;
  readonly partition: number;
  readonly request: ChainRequest;
  readonly deadlineAtMs: number;
  nextSendAtMs: number;
  lastHeardAtMs: number;
}

export class ChainRequester {
  readonly selfId: string;
  private readonly options: ChainRequesterOptions;
  private readonly configs = new Map<number, ChainConfig>();
  private readonly pending = new Map<number, PendingRequest>();
  private readonly writesByPartition = new Map<number, number>();
  private nextRequestId = 1;
  private lastNowMs = -Infinity;
  private sends: ChainSend[] = [];
  private completions: ChainCompletion[] = [];
  private readonly configWanted = new Set<number>();
  malformedDropped = 0;
  unmatchedReplies = 0;

  constructor(options: ChainRequesterOptions) {
    assert(isValidNodeId(options.selfId), 'selfId is a valid node id');
    assert(options.resendIntervalMs > 0, 'resendIntervalMs is positive');
    assert(options.configRefreshAfterMs > 0, 'configRefreshAfterMs is positive');
    assert(options.outstandingMax > 0 && options.writesPerPartitionMax > 0, 'positive bounds');
    this.selfId = options.selfId;
    this.options = options;
    const base = options.requestIdBase ?? 0;
    assert(Number.isSafeInteger(base) && base >= 0, 'requestIdBase is a count');
    this.nextRequestId = base + 1;
  }

  /** A configuration from the map; kept when newer than the one held. */
  learnConfig(config: ChainConfig): void {
    const held = this.configs.get(config.partition);
    if (held === undefined || config.epoch > held.epoch) this.configs.set(config.partition, config);
  }

  configOf(partition: number): ChainConfig | undefined {
    return this.configs.get(partition);
  }

  get outstanding(): number {
    return this.pending.size;
  }

  /**
   * Starts a request and sends it at once when the partition's chain is known. Returns its id,
   * or null when the bounds are reached (the caller waits for a completion).
   */
  submit(
    partition: number,
    request: ChainRequest,
    nowMs: number,
    timeoutMs: number,
  ): number | null {
    this.advanceClock(nowMs);
    assert(timeoutMs > 0, 'a request has time to run');
    if (this.pending.size >= this.options.outstandingMax) return null;
    const writes = this.writesByPartition.get(partition) ?? 0;
    if (request.kind === 'write') {
      if (writes >= this.options.writesPerPartitionMax) return null;
      this.writesByPartition.set(partition, writes + 1);
    }
    const requestId = this.nextRequestId++;
    const pending: PendingRequest = {
      requestId,
      partition,
      request,
      deadlineAtMs: nowMs + timeoutMs,
      nextSendAtMs: nowMs,
      lastHeardAtMs: nowMs,
    };
    this.pending.set(requestId, pending);
    this.send(pending, nowMs);
    return requestId;
  }

  /** Handles one message off the network; anything but a valid reply is dropped. */
  receive(from: string, message: unknown, nowMs: number): RequesterOutput {
    this.advanceClock(nowMs);
    if (!isValidNodeId(from) || !isValidChainMessage(message) || message.type !== 'reply') {
      this.malformedDropped += 1;
      return this.flush();
    }
    this.handleReply(from, message, nowMs);
    return this.flush();
  }

  /** Resends what is due, times out what is past its deadline. */
  tick(nowMs: number): RequesterOutput {
    this.advanceClock(nowMs);
    for (const pending of [...this.pending.values()]) {
      if (nowMs >= pending.deadlineAtMs) {
        this.complete(pending, 'unknown', null, null);
        continue;
      }
      if (nowMs - pending.lastHeardAtMs >= this.options.configRefreshAfterMs) {
        this.configWanted.add(pending.partition);
        pending.lastHeardAtMs = nowMs;
      }
      if (nowMs >= pending.nextSendAtMs) this.send(pending, nowMs);
    }
    return this.flush();
  }

  /** The sends that submit produced (submit returns only the id). */
  takeOutput(): RequesterOutput {
    return this.flush();
  }

  private handleReply(from: string, message: ReplyMessage, nowMs: number): void {
    const pending = this.pending.get(message.requestId);
    if (pending === undefined || pending.partition !== message.partition) {
      // An answer to a request already finished: a resent copy answered twice.
      this.unmatchedReplies += 1;
      return;
    }
    pending.lastHeardAtMs = nowMs;
    const reply = message.reply;
    switch (reply.status) {
      case 'written':
        if (pending.request.kind !== 'write') {
          this.unmatchedReplies += 1;
          return;
        }
        this.complete(pending, reply.outcome.kind === 'done' ? 'ok' : 'failed', reply, from);
        return;
      case 'read':
        if (pending.request.kind !== 'read') {
          this.unmatchedReplies += 1;
          return;
        }
        this.complete(pending, 'ok', reply, from);
        return;
      case 'invalid':
        this.complete(pending, 'failed', reply, from);
        return;
      case 'refused': {
        const held = this.configs.get(pending.partition);
        if (held === undefined || reply.config.epoch > held.epoch) {
          this.learnConfig(reply.config);
          this.send(pending, nowMs);
        } else {
          // Refused under the configuration we hold: someone is behind, maybe us.
          this.configWanted.add(pending.partition);
          pending.nextSendAtMs = nowMs + this.options.resendIntervalMs;
        }
        return;
      }
      case 'retry':
        pending.nextSendAtMs = nowMs + this.options.resendIntervalMs;
        return;
    }
  }

  private send(pending: PendingRequest, nowMs: number): void {
    pending.nextSendAtMs = nowMs + this.options.resendIntervalMs;
    const config = this.configs.get(pending.partition);
    if (config === undefined) {
      this.configWanted.add(pending.partition);
      return;
    }
    const base = {
      partition: pending.partition,
      epoch: config.epoch,
      requestId: pending.requestId,
    };
    if (pending.request.kind === 'write') {
      this.sends.push({
        to: headOf(config),
        message: { type: 'write', ...base, operation: pending.request.operation },
      });
    } else {
      this.sends.push({
        to: tailOf(config),
        message: { type: 'read', ...base, key: pending.request.key },
      });
    }
  }

  private complete(
    pending: PendingRequest,
    outcome: ChainCompletion['outcome'],
    reply: ChainReply | null,
    answeredBy: string | null,
  ): void {
    assert(this.pending.delete(pending.requestId), 'a pending request completes once');
    if (pending.request.kind === 'write') {
      const writes = this.writesByPartition.get(pending.partition) ?? 0;
      assert(writes > 0, 'a pending write was counted');
      if (writes === 1) this.writesByPartition.delete(pending.partition);
      else this.writesByPartition.set(pending.partition, writes - 1);
    }
    this.completions.push({
      requestId: pending.requestId,
      partition: pending.partition,
      outcome,
      reply,
      answeredBy,
    });
  }

  private flush(): RequesterOutput {
    const output: RequesterOutput = {
      sends: this.sends,
      completions: this.completions,
      configWanted: [...this.configWanted],
    };
    this.sends = [];
    this.completions = [];
    this.configWanted.clear();
    return output;
  }

  private advanceClock(nowMs: number): void {
    assert(Number.isFinite(nowMs), 'nowMs is a finite number');
    assert(nowMs >= this.lastNowMs, 'time does not go back');
    this.lastNowMs = nowMs;
  }
}
