// The node's handoff rate limit and pause hold for strong keyspaces' register copies: a
// copy is driven in virtual time against three simulated acceptors that list the same keys
// and rewrites that end after a round trip, and what it moves is measured.

import assert from 'node:assert/strict';
import test from 'node:test';

import { utf8 } from '../../../src/core/bytes.ts';
import { PaxosMessageType, type ListReplyMessage } from '../../../src/core/paxos/messages.ts';
import {
  DEFAULT_REGISTER_COPY_CONFIG,
  RegisterCopy,
} from '../../../src/core/paxos/register-copy.ts';
import { compareBytes } from '../../../src/core/bytes.ts';

const ROUND_TRIP_MS = 20;
const STEP_MS = 5;
const LIST_PAGE_KEYS = 100;
const PLAN = { keyspaceId: 1, partition: 7, currentAcceptors: ['a', 'b', 'c'], changeEpoch: 4 };

interface Timed {
  readonly atMs: number;
  readonly run: () => void;
}

/** A copy with its acceptors and the rewrites it starts, stepped STEP_MS at a time. */
class CopyWorld {
  readonly copy = new RegisterCopy(PLAN, DEFAULT_REGISTER_COPY_CONFIG, 0);
  nowMs = 0;
  private readonly keys: Uint8Array[];
  private readonly valueBytes: number;
  private events: Timed[] = [];
  private requestId = 0;
  /** (time, bytes moved so far) after every step: for the window checks. */
  readonly timeline: { atMs: number; bytes: number }[] = [];

  constructor(keyCount: number, valueBytes: number) {
    this.keys = [];
    for (let i = 0; i < keyCount; i++) this.keys.push(utf8(`key-${String(i).padStart(6, '0')}`));
    this.keys.sort(compareBytes);
    this.valueBytes = valueBytes;
  }

  get totalBytes(): number {
    let bytes = 0;
    for (const key of this.keys) bytes += 2 * key.length + this.valueBytes;
    return bytes;
  }

  runUntil(endMs: number): void {
    while (this.nowMs < endMs) {
      this.nowMs += STEP_MS;
      const due = this.events.filter((event) => event.atMs <= this.nowMs);
      this.events = this.events.filter((event) => event.atMs > this.nowMs);
      for (const event of due) event.run();
      for (const send of this.copy.tick(this.nowMs, () => ++this.requestId)) {
        const [, requestId, , , after] = send.message;
        const reply = this.listAfter(requestId, after);
        this.later(() => this.copy.receiveList(send.to, reply, this.nowMs));
      }
      for (const key of this.copy.rewritesDue(this.nowMs)) {
        this.later(() => this.copy.rewritten(key, true, this.valueBytes, this.nowMs));
      }
      this.timeline.push({ atMs: this.nowMs, bytes: this.copy.bytesMoved });
    }
  }

  /** The most bytes moved within any window of `windowMs`. */
  maxInWindow(windowMs: number): number {
    let most = 0;
    let start = 0;
    for (const point of this.timeline) {
      while (this.timeline[start]!.atMs < point.atMs - windowMs) start++;
      most = Math.max(most, point.bytes - this.timeline[start]!.bytes);
    }
    return most;
  }

  private later(run: () => void): void {
    this.events.push({ atMs: this.nowMs + ROUND_TRIP_MS, run });
  }

  private listAfter(requestId: number, after: Uint8Array | null): ListReplyMessage {
    const rest = this.keys.filter((key) => after === null || compareBytes(key, after) > 0);
    const page = rest.slice(0, LIST_PAGE_KEYS);
    const done = page.length === rest.length;
    return [PaxosMessageType.listReply, requestId, PLAN.changeEpoch, page, done, 0, '', 0];
  }
}

test('a paused register copy starts no list round and no rewrite, and finishes once resumed', () => {
  const world = new CopyWorld(500, 100);
  world.copy.setPaused(true);
  world.runUntil(5_000);
  assert.equal(world.copy.listRounds, 0, 'no list round while paused from the start');
  assert.equal(world.copy.bytesMoved, 0);
  assert.equal(world.copy.progress(world.nowMs).state, 'paused');

  world.copy.setPaused(false);
  world.runUntil(5_100);
  assert.ok(world.copy.keysRewritten > 0, 'resumed, it moves');
  world.copy.setPaused(true);
  // What was in flight when paused finishes within a round trip; nothing starts after it.
  world.runUntil(5_100 + 2 * ROUND_TRIP_MS);
  const heldKeys = world.copy.keysRewritten;
  const heldRounds = world.copy.listRounds;
  world.runUntil(15_000);
  assert.equal(world.copy.keysRewritten, heldKeys, 'no rewrite starts while paused');
  assert.equal(world.copy.listRounds, heldRounds, 'no list round starts while paused');
  assert.notEqual(world.copy.state, 'done');

  world.copy.setPaused(false);
  world.runUntil(30_000);
  assert.equal(world.copy.state, 'done', 'a resumed copy finishes');
  assert.equal(world.copy.keysRewritten, 500);
});

// The limit is 20,000 B/s over 30 s of virtual time. Upper bound: within any window the
// copy may exceed limit × window by what it starts before it is charged: its first rewrites
// go before any value is known (estimate: the key alone), at most rewritesInFlightMax of
// them, each corrected when it ends, plus one list page (a round is charged on arrival),
// and work ending up to a round trip after it started. Lower bound: 90 %: ticks every 5 ms
// start a rewrite up to 5 ms after it is due, against a slot of about 200 ms (4 KB at
// 20 KB/s), which loses at most 2.5 %; the first list round and round trips lose less.
test('a register copy under a rate limit moves about limit × time bytes, and an unlimited one breaks that bound', () => {
  const limit = 20_000;
  const durationMs = 30_000;
  const valueBytes = 4_000;
  const limited = new CopyWorld(2_000, valueBytes);
  limited.copy.setRate(limit);
  limited.runUntil(durationMs);
  const entryBytes = valueBytes + 16;
  const burst =
    DEFAULT_REGISTER_COPY_CONFIG.rewritesInFlightMax * entryBytes + LIST_PAGE_KEYS * 16 * 3;
  const moved = limited.copy.bytesMoved;
  const expected = (limit * durationMs) / 1000;
  assert.ok(moved <= expected + burst, `moved ${moved} B, at most ${expected + burst}`);
  assert.ok(moved >= 0.9 * expected, `moved ${moved} B, at least ${0.9 * expected}`);
  for (const windowMs of [1_000, 5_000]) {
    const most = limited.maxInWindow(windowMs);
    const bound = (limit * (windowMs + ROUND_TRIP_MS)) / 1000 + burst;
    assert.ok(most <= bound, `${most} B within ${windowMs} ms, at most ${bound}`);
  }
  const measured = limited.copy.progress(limited.nowMs).bytesPerSecond;
  assert.ok(Math.abs(measured - limit) <= 0.15 * limit, `measured ${measured} B/s`);

  // Negative control: without the limit the same window check fails.
  const unlimited = new CopyWorld(2_000, valueBytes);
  unlimited.runUntil(durationMs);
  assert.ok(
    unlimited.maxInWindow(5_000) > (limit * 5_020) / 1000 + burst,
    'an unlimited copy moves more than the bound allows',
  );
  assert.equal(unlimited.copy.state, 'done');
  assert.ok(unlimited.copy.bytesMoved >= unlimited.totalBytes - 2_000 * 16 * 2);
});

test('a rate change takes effect at once, and a lower share slows the copy down', () => {
  const world = new CopyWorld(2_000, 4_000);
  world.copy.setRate(40_000);
  world.runUntil(10_000);
  const fast = world.copy.bytesMoved;
  world.copy.setRate(10_000);
  world.runUntil(20_000);
  const slow = world.copy.bytesMoved - fast;
  assert.ok(fast >= 0.9 * 400_000 && fast <= 400_000 + 80_000, `fast: ${fast} B in 10 s`);
  assert.ok(slow >= 0.85 * 100_000 && slow <= 100_000 + 80_000, `slow: ${slow} B in 10 s`);
});
