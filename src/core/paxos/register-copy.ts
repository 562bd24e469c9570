// One copy of a strong keyspace's partition to a node that becomes one of its acceptors
// (docs/PAXOS.md, "Acceptor changes"), as a state machine: it lists the partition's register
// keys from a majority of the current acceptors, each fenced at the change's epoch, and has
// every listed key rewritten through joint quorums (an identity read, which writes back only
// when the joint quorum does not already agree), in key order, a range at a time.
//
// Rules kept:
// - A list answer counts only if its acceptor's fence is at the change's epoch or later:
//   then no proposer on an older map can gather a majority of the current acceptors any
//   more, and every value such proposers ever got chosen is in the rows it lists.
// - A range ends at the smallest last key among the answers that have more to list; each
//   key up to it was listed by every counted acceptor that holds it, so the union of a
//   majority's answers holds every chosen key of the range.
// - The cursor moves over a range only once every key in it has been rewritten; a copy that
//   starts again (a restart) lists again from its cursor, and keys found behind it were
//   written through joint quorums already. Redoing a rewrite is harmless.
// - The node's rate limit and pause hold (docs/HANDOFF.md, "Rate and pause"): a paused copy
//   starts no list round and no rewrite (those in flight finish); a limited one starts a
//   round or a rewrite only when its ByteRateLimit allows. A list answer is charged when it
//   arrives, against its round's start; a rewrite is charged an estimate when it starts
//   (its key and the mean value so far) and corrected to its key and value when it ends.
// - No clock: `nowMs` comes in; request ids come from the host.

import { assert, bytesToKeyString, compareBytes } from '../bytes.ts';
import { ByteRateLimit } from '../handoff/rate-limit.ts';
import { RateMeter } from '../handoff/rate-meter.ts';
import type { TransferProgress } from '../handoff/transfer.ts';
import { compareBallots, ZERO_BALLOT, type Ballot } from './ballot.ts';
import { majority } from './config.ts';
import type { ListMessage, ListReplyMessage } from './messages.ts';
import { PaxosMessageType } from './messages.ts';
import type { RegisterCopyPlan } from './acceptor-change.ts';

export interface RegisterCopyConfig {
  /** A list round without a majority of counted answers after this long is sent again. */
  readonly listTimeoutMs: number;
  /** Rewrites of one copy in flight at once. */
  readonly rewritesInFlightMax: number;
  /** A rewrite that failed is tried again this long after. */
  readonly retryDelayMs: number;
  /**
   * Negative controls only, never set by a node: count list answers whatever their fence,
   * or skip the rewrites (the copy is done once listed).
   */
  readonly unsafe?: { readonly ignoreFence?: boolean; readonly skipRewrite?: boolean };
}

export const DEFAULT_REGISTER_COPY_CONFIG: RegisterCopyConfig = {
  listTimeoutMs: 1_000,
  rewritesInFlightMax: 16,
  retryDelayMs: 100,
};

export interface ListSend {
  readonly to: string;
  readonly message: ListMessage;
}

interface Answer {
  readonly keys: readonly Uint8Array[];
  readonly done: boolean;
}

interface Round {
  readonly requestId: number;
  readonly sentMs: number;
  readonly answers: Map<string, Answer>;
}

interface Pending {
  readonly key: Uint8Array;
  /** Not before this time (a retry after a failure). */
  dueMs: number;
  running: boolean;
  done: boolean;
  /** What its running rewrite was charged against the rate limit when it started. */
  charged: number;
}

export type RegisterCopyState = 'listing' | 'rewriting' | 'done';

export class RegisterCopy {
  readonly plan: RegisterCopyPlan;
  private readonly config: RegisterCopyConfig;
  private stateNow: RegisterCopyState = 'listing';
  /** Every key up to it (inclusive) is rewritten; null: none yet. */
  private cursorKey: Uint8Array | null;
  private round: Round | null = null;
  /** The range being rewritten, in key order, and where it ends (null: the last range). */
  private pending: Pending[] = [];
  private rangeEnd: Uint8Array | null = null;
  private highestFloor: { promised: Ballot; version: number } = {
    promised: ZERO_BALLOT,
    version: 0,
  };
  private readonly meter: RateMeter;
  private readonly limit = new ByteRateLimit(0);
  private pausedNow = false;
  /** Values read by the rewrites so far, for the estimate a rewrite is charged at start. */
  private valueBytesRead = 0;
  keysRewritten = 0;
  bytesRewritten = 0;
  /** Bytes of keys in the list answers counted. */
  bytesListed = 0;
  keysListed = 0;
  listRounds = 0;
  /** List answers not counted: their acceptor's fence was older than the change. */
  answersUnfenced = 0;
  rewriteFailures = 0;

  constructor(
    plan: RegisterCopyPlan,
    config: RegisterCopyConfig,
    nowMs: number,
    resume: { cursor: Uint8Array | null; done: boolean } = { cursor: null, done: false },
  ) {
    assert(plan.currentAcceptors.length > 0, 'a partition has acceptors to copy from');
    assert(config.rewritesInFlightMax >= 1 && config.listTimeoutMs > 0, 'copy settings');
    this.plan = plan;
    this.config = config;
    this.cursorKey = resume.cursor;
    if (resume.done) this.stateNow = 'done';
    this.meter = new RateMeter(10_000, nowMs);
  }

  get state(): RegisterCopyState {
    return this.stateNow;
  }

  /** The cursor to save: every key up to it is rewritten. */
  get cursor(): Uint8Array | null {
    return this.cursorKey;
  }

  /** The highest floors among the counted answers: the new acceptor raises its own to them. */
  get floors(): { promised: Ballot; version: number } {
    return this.highestFloor;
  }

  /** Bytes this copy moved: its list answers' keys and its rewrites' keys and values. */
  get bytesMoved(): number {
    return this.bytesListed + this.bytesRewritten;
  }

  /** Bytes per second; 0 or Infinity: unlimited. */
  setRate(bytesPerSecond: number): void {
    this.limit.setRate(bytesPerSecond);
  }

  get rate(): number {
    return this.limit.rate;
  }

  /** A paused copy starts no list round and no rewrite; those in flight still finish. */
  setPaused(paused: boolean): void {
    this.pausedNow = paused;
  }

  get paused(): boolean {
    return this.pausedNow;
  }

  /** A list round to send, when one is due (none yet, or the last timed out). */
  tick(nowMs: number, newRequestId: () => number): ListSend[] {
    if (this.stateNow !== 'listing') return [];
    if (this.round !== null && nowMs - this.round.sentMs < this.config.listTimeoutMs) return [];
    if (this.pausedNow || !this.limit.allows(nowMs)) return [];
    const requestId = newRequestId();
    this.round = { requestId, sentMs: nowMs, answers: new Map() };
    this.listRounds++;
    const { keyspaceId, partition } = this.plan;
    const message: ListMessage = [
      PaxosMessageType.list,
      requestId,
      keyspaceId,
      partition,
      this.cursorKey,
    ];
    return this.plan.currentAcceptors.map((to) => ({ to, message }));
  }

  /** A list answer; answers whether it was this copy's. */
  receiveList(from: string, reply: ListReplyMessage, nowMs: number): boolean {
    const round = this.round;
    if (round === null || reply[1] !== round.requestId || this.stateNow !== 'listing') {
      return round?.requestId === reply[1];
    }
    if (!this.plan.currentAcceptors.includes(from) || round.answers.has(from)) return true;
    const [, , fenceEpoch, keys, done, floorCounter, floorProposerId, floorVersion] = reply;
    if (fenceEpoch < this.plan.changeEpoch && this.config.unsafe?.ignoreFence !== true) {
      // Its acceptor has not fenced older maps yet (it fetches the map our request named).
      this.answersUnfenced++;
      return true;
    }
    if (!done && keys.length === 0) return true; // more to list, yet nothing: not an answer
    let previous = this.cursorKey;
    for (const key of keys) {
      // Not in order after the cursor: not an answer.
      if (previous !== null && compareBytes(key, previous) <= 0) return true;
      previous = key;
    }
    round.answers.set(from, { keys, done });
    let bytes = 0;
    for (const key of keys) bytes += key.length;
    this.bytesListed += bytes;
    this.meter.add(nowMs, bytes);
    this.limit.charge(round.sentMs, bytes);
    const floor: Ballot = { counter: floorCounter, proposerId: floorProposerId };
    this.highestFloor = {
      promised:
        compareBallots(floor, this.highestFloor.promised) > 0 ? floor : this.highestFloor.promised,
      version: Math.max(floorVersion, this.highestFloor.version),
    };
    if (round.answers.size >= majority(this.plan.currentAcceptors.length)) this.startRange(round);
    return true;
  }

  /** Keys whose rewrite should start now; the caller reports each with `rewritten`. */
  rewritesDue(nowMs: number): Uint8Array[] {
    if (this.stateNow !== 'rewriting' || this.pausedNow) return [];
    let running = 0;
    for (const entry of this.pending) if (entry.running) running++;
    const due: Uint8Array[] = [];
    for (const entry of this.pending) {
      if (running >= this.config.rewritesInFlightMax) break;
      if (entry.done || entry.running || entry.dueMs > nowMs) continue;
      if (!this.limit.allows(nowMs)) break;
      entry.running = true;
      entry.charged = entry.key.length + this.valueBytesEstimate();
      this.limit.charge(nowMs, entry.charged);
      running++;
      due.push(entry.key);
    }
    return due;
  }

  /** The bytes of value a rewrite is expected to read: the mean so far. */
  private valueBytesEstimate(): number {
    return this.keysRewritten === 0 ? 0 : Math.round(this.valueBytesRead / this.keysRewritten);
  }

  /** A rewrite ended: ok, with the bytes of the value it read, or failed (tried again later). */
  rewritten(key: Uint8Array, ok: boolean, bytes: number, nowMs: number): void {
    const keyString = bytesToKeyString(key);
    const entry = this.pending.find(
      (candidate) => candidate.running && bytesToKeyString(candidate.key) === keyString,
    );
    if (entry === undefined) return;
    entry.running = false;
    if (!ok) {
      this.rewriteFailures++;
      entry.dueMs = nowMs + this.config.retryDelayMs;
      return;
    }
    entry.done = true;
    this.limit.correct(bytes + key.length - entry.charged);
    this.keysRewritten++;
    this.valueBytesRead += bytes;
    this.bytesRewritten += bytes + key.length;
    this.meter.add(nowMs, bytes + key.length);
    if (this.pending.every((candidate) => candidate.done)) this.endRange();
  }

  progress(nowMs: number): TransferProgress {
    const done = this.stateNow === 'done';
    const bytesPerSecond = this.meter.bytesPerSecond(nowMs);
    return {
      state: done ? 'done' : this.pausedNow ? 'paused' : 'running',
      stalled: false,
      source: `a majority of ${this.plan.currentAcceptors.join(', ')}`,
      keysReceived: this.keysRewritten,
      bytesReceived: this.bytesRewritten,
      keysDurable: this.keysRewritten,
      bytesDurable: this.bytesRewritten,
      bytesPerSecond,
      keysTotalEstimate: done ? this.keysRewritten : null,
      bytesTotalEstimate: done ? this.bytesRewritten : null,
      keysCounted: this.keysListed,
      etaMs: done ? 0 : null,
      pagesUnpersisted: 0,
      counters: {
        requestsSent: this.listRounds,
        pagesAccepted: this.listRounds,
        staleReplies: this.answersUnfenced,
        invalidReplies: 0,
        timeouts: 0,
        refusals: this.rewriteFailures,
      },
    };
  }

  /** A majority has answered: the keys of the range, up to the smallest last key of those
   * with more to list, are rewritten next. */
  private startRange(round: Round): void {
    let end: Uint8Array | null = null;
    for (const answer of round.answers.values()) {
      if (answer.done) continue;
      const last = answer.keys[answer.keys.length - 1]!;
      if (end === null || compareBytes(last, end) < 0) end = last;
    }
    const union = new Map<string, Uint8Array>();
    for (const answer of round.answers.values()) {
      for (const key of answer.keys) {
        if (end !== null && compareBytes(key, end) > 0) break;
        union.set(bytesToKeyString(key), key);
      }
    }
    const keys = [...union.values()].sort(compareBytes);
    this.keysListed += keys.length;
    this.round = null;
    this.rangeEnd = end;
    this.pending = keys.map((key) => ({ key, dueMs: 0, running: false, done: false, charged: 0 }));
    this.stateNow = 'rewriting';
    if (keys.length === 0 || this.config.unsafe?.skipRewrite === true) this.endRange();
    assert(this.stateNow !== 'rewriting' || this.pending.length > 0, 'a range has keys');
  }

  private endRange(): void {
    const end = this.rangeEnd;
    const last = this.pending[this.pending.length - 1]?.key ?? null;
    this.pending = [];
    if (end === null) {
      if (last !== null) this.cursorKey = last;
      this.stateNow = 'done';
      return;
    }
    assert(this.cursorKey === null || compareBytes(end, this.cursorKey) > 0, 'the cursor moves on');
    this.cursorKey = end;
    this.stateNow = 'listing';
  }
}
