// One node's SWIM failure detector as a pure state machine (Das, Gupta, Motivala 2002).
// The node core drives it with `tick(nowMs)` and `receive(from, message, nowMs)` and carries
// out the sends it returns; `changes` report every liveness transition of another member.
//
// Rules it keeps:
// - Each period it probes one member, round-robin over a list reshuffled every round; a
//   probe unanswered after probeTimeoutMs is retried directly and through k others
//   (ping-req); still unanswered at the end of the period, the target becomes suspect.
// - A suspect not refuted within suspicionTimeoutMs becomes down. Down is a liveness state:
//   down members stay in the list and are pinged every downProbeIntervalMs, so a node
//   that returns is noticed.
// - Only a member raises its own incarnation, when it hears itself suspected or declared
//   down; every message carries the sender's incarnation, so any message from it refutes.
// - Any message to a member held suspect or down carries that belief, so the member learns
//   of it from whoever holds it and can refute (Lifeguard's "buddy system").
// - Everything is bounded: members, queued updates, indirect probes run for others.
// No clock, no randomness but the Prng handed in, no I/O.

import { assert } from '../bytes.ts';
import type { Prng } from '../prng.ts';
import { FORWARDS_MAX, MEMBER_COUNT_MAX, retransmitLimit, validateSwimConfig } from './config.ts';
import type { SwimConfig } from './config.ts';
import { UpdateQueue } from './dissemination.ts';
import { MemberList } from './member-list.ts';
import { SEQUENCE_LIMIT, isValidMemberId, isValidSwimMessage } from './messages.ts';
import type { Liveness, SwimMessage, SwimUpdate } from './messages.ts';

export {
  DEFAULT_SWIM_CONFIG,
  detectionBoundMs,
  recoveryBoundMs,
  retransmitLimit,
  MEMBER_COUNT_MAX,
} from './config.ts';
export type { SwimConfig } from './config.ts';
export type { Liveness, SwimMessage, SwimUpdate } from './messages.ts';

export interface SwimSend {
  readonly to: string;
  readonly message: SwimMessage;
}

export interface SwimChange {
  readonly id: string;
  readonly liveness: Liveness;
  readonly incarnation: number;
}

export interface SwimOutput {
  readonly sends: readonly SwimSend[];
  readonly changes: readonly SwimChange[];
}

export interface SwimMemberView {
  readonly id: string;
  readonly liveness: Liveness;
  readonly incarnation: number;
}

interface ActiveProbe {
  readonly target: string;
  readonly sequence: number;
  readonly startedAtMs: number;
  acked: boolean;
  escalated: boolean;
}

/** An indirect probe this node runs for another: relay the target's ack to the requester. */
interface Forward {
  readonly requester: string;
  readonly requesterSequence: number;
  readonly expiresAtMs: number;
}

export class Swim {
  private readonly selfId: string;
  private readonly config: SwimConfig;
  private readonly prng: Prng;
  private readonly memberList = new MemberList();
  private readonly updates = new UpdateQueue();
  private readonly forwards = new Map<number, Forward>();
  private selfIncarnation = 0;
  private nextSequence: number;
  private lastNowMs = -Infinity;

  private probeOrder: string[] = [];
  private probeCursor = 0;
  private probe: ActiveProbe | undefined;
  private nextProbeAtMs: number | undefined;

  private downProbeOrder: string[] = [];
  private downProbeCursor = 0;
  private nextDownProbeAtMs: number | undefined;

  private sends: SwimSend[] = [];
  private changes: SwimChange[] = [];

  constructor(selfId: string, members: readonly string[], config: SwimConfig, prng: Prng) {
    assert(isValidMemberId(selfId), 'selfId is a valid member id');
    validateSwimConfig(config);
    this.selfId = selfId;
    this.config = config;
    this.prng = prng;
    // A random start makes a restarted node's sequence numbers unlikely to match acks still
    // in flight to its previous life.
    this.nextSequence = prng.nextUint32();
    this.setMembers(members);
  }

  /** Drives timers: probe periods, the indirect stage, suspicion timeouts, down probes. */
  tick(nowMs: number): SwimOutput {
    this.advanceClock(nowMs);
    this.expireForwards(nowMs);
    this.expireSuspicions(nowMs);
    const probe = this.probe;
    if (
      probe !== undefined &&
      !probe.acked &&
      !probe.escalated &&
      nowMs >= probe.startedAtMs + this.config.probeTimeoutMs
    ) {
      this.escalate(probe);
    }
    this.nextProbeAtMs ??= nowMs;
    if (nowMs >= this.nextProbeAtMs) {
      this.finishProbe(nowMs);
      this.startProbe(nowMs);
      // Periods keep a fixed cadence; after a long stall the next one starts a period away.
      this.nextProbeAtMs += this.config.probeIntervalMs;
      if (this.nextProbeAtMs <= nowMs) this.nextProbeAtMs = nowMs + this.config.probeIntervalMs;
    }
    this.nextDownProbeAtMs ??= nowMs + this.config.downProbeIntervalMs;
    if (nowMs >= this.nextDownProbeAtMs) {
      this.probeDownMember();
      this.nextDownProbeAtMs += this.config.downProbeIntervalMs;
      if (this.nextDownProbeAtMs <= nowMs) {
        this.nextDownProbeAtMs = nowMs + this.config.downProbeIntervalMs;
      }
    }
    return this.flush();
  }

  /** Handles one message from the network; invalid messages are ignored. */
  receive(from: string, message: SwimMessage, nowMs: number): SwimOutput {
    this.advanceClock(nowMs);
    if (from === this.selfId || !isValidMemberId(from) || !isValidSwimMessage(message)) {
      return this.flush();
    }
    for (const update of message.updates) {
      // Another member's `down` is only a suspicion here: this node declares a member down
      // by its own suspicion timer alone. A node back from isolation gossips the downs it
      // declared while cut off; taken as they come, they would take down members that
      // everyone else reaches. As a suspicion, the accused is pinged and refutes first.
      const demoted: SwimUpdate =
        update.liveness === 'down' && update.id !== this.selfId
          ? { ...update, liveness: 'suspect' }
          : update;
      this.applyUpdate(demoted, nowMs);
    }
    // The message itself shows that its sender is alive at the incarnation it carries.
    this.applyUpdate({ id: from, liveness: 'alive', incarnation: message.incarnation }, nowMs);
    switch (message.type) {
      case 'ping':
        // Answered whoever asks: a node that joined a newer map than ours must not time out.
        this.send(from, { type: 'ack', sequence: message.sequence });
        break;
      case 'ping-req':
        this.forwardProbe(from, message.sequence, message.target, nowMs);
        break;
      case 'ack':
        this.handleAck(message.sequence);
        break;
    }
    return this.flush();
  }

  liveness(id: string): Liveness {
    if (id === this.selfId) return 'alive';
    const record = this.memberList.get(id);
    assert(record !== undefined, `liveness of a member: ${id} is not one`);
    return record.liveness;
  }

  incarnation(id: string): number {
    if (id === this.selfId) return this.selfIncarnation;
    const record = this.memberList.get(id);
    assert(record !== undefined, `incarnation of a member: ${id} is not one`);
    return record.incarnation;
  }

  /** Every member, this node first. */
  members(): readonly SwimMemberView[] {
    const views: SwimMemberView[] = [
      { id: this.selfId, liveness: 'alive', incarnation: this.selfIncarnation },
    ];
    for (const record of this.memberList.all()) {
      views.push({ id: record.id, liveness: record.liveness, incarnation: record.incarnation });
    }
    return views;
  }

  /**
   * The membership changed: members kept keep their state, new ones start alive at
   * incarnation 0 at a random place in the current round, removed ones are forgotten.
   * Emits no changes: membership is the cluster map's business, liveness is ours.
   */
  setMembers(members: readonly string[]): void {
    const wanted = new Set<string>();
    for (const id of members) {
      assert(isValidMemberId(id), 'member ids are valid');
      if (id !== this.selfId) wanted.add(id);
    }
    assert(wanted.size < MEMBER_COUNT_MAX, `at most ${MEMBER_COUNT_MAX} members`);
    for (const record of [...this.memberList.all()]) {
      if (wanted.has(record.id)) continue;
      this.memberList.remove(record.id);
      this.updates.remove(record.id);
    }
    for (const id of wanted) {
      if (this.memberList.has(id)) continue;
      this.memberList.add(id);
      this.insertIntoRound(id);
    }
  }

  isValidMessage(message: unknown): message is SwimMessage {
    return isValidSwimMessage(message);
  }

  // --- probing ---

  private startProbe(nowMs: number): void {
    const target = this.nextProbeTarget();
    if (target === undefined) {
      this.probe = undefined;
      return;
    }
    const sequence = this.takeSequence();
    this.probe = { target, sequence, startedAtMs: nowMs, acked: false, escalated: false };
    this.send(target, { type: 'ping', sequence });
  }

  /**
   * No direct ack in time: ping the target again (a second chance against one lost
   * datagram) and ask k others to probe it, over paths that do not share our link.
   */
  private escalate(probe: ActiveProbe): void {
    probe.escalated = true;
    const helpers: string[] = [];
    for (const record of this.memberList.all()) {
      if (record.id !== probe.target && record.liveness === 'alive') helpers.push(record.id);
    }
    this.shuffle(helpers);
    const count = Math.min(this.config.indirectProbes, helpers.length);
    for (let index = 0; index < count; index++) {
      this.send(helpers[index]!, {
        type: 'ping-req',
        sequence: probe.sequence,
        target: probe.target,
      });
    }
    this.send(probe.target, { type: 'ping', sequence: probe.sequence });
  }

  /** The period is over: an unanswered probe makes an alive target suspect. */
  private finishProbe(nowMs: number): void {
    const probe = this.probe;
    this.probe = undefined;
    if (probe === undefined || probe.acked) return;
    const record = this.memberList.get(probe.target);
    if (record === undefined || record.liveness !== 'alive') return;
    this.applyUpdate(
      { id: record.id, liveness: 'suspect', incarnation: record.incarnation },
      nowMs,
    );
    assert(this.memberList.get(record.id)?.liveness === 'suspect', 'the target is suspect');
  }

  private handleAck(sequence: number): void {
    if (this.probe !== undefined && this.probe.sequence === sequence) {
      this.probe.acked = true;
      return;
    }
    const forward = this.forwards.get(sequence);
    if (forward === undefined) return;
    this.forwards.delete(sequence);
    this.send(forward.requester, { type: 'ack', sequence: forward.requesterSequence });
  }

  private forwardProbe(
    requester: string,
    requesterSequence: number,
    target: string,
    nowMs: number,
  ): void {
    if (target === this.selfId) {
      // Asked to probe ourselves: we are the answer.
      this.send(requester, { type: 'ack', sequence: requesterSequence });
      return;
    }
    if (this.forwards.size >= FORWARDS_MAX) return;
    const sequence = this.takeSequence();
    this.forwards.set(sequence, {
      requester,
      requesterSequence,
      expiresAtMs: nowMs + this.config.probeIntervalMs,
    });
    this.send(target, { type: 'ping', sequence });
  }

  private expireForwards(nowMs: number): void {
    for (const [sequence, forward] of this.forwards) {
      if (nowMs >= forward.expiresAtMs) this.forwards.delete(sequence);
    }
  }

  /**
   * The next member to probe: round-robin over the members not down, reshuffled each
   * round. Members that went down mid-round are skipped when their turn comes.
   */
  private nextProbeTarget(): string | undefined {
    for (let pass = 0; pass < 2; pass++) {
      while (this.probeCursor < this.probeOrder.length) {
        const id = this.probeOrder[this.probeCursor++]!;
        const record = this.memberList.get(id);
        if (record !== undefined && record.liveness !== 'down') return id;
      }
      const eligible: string[] = [];
      for (const record of this.memberList.all()) {
        if (record.liveness !== 'down') eligible.push(record.id);
      }
      this.shuffle(eligible);
      this.probeOrder = eligible;
      this.probeCursor = 0;
      if (eligible.length === 0) return undefined;
    }
    assert(false, 'a fresh round holds an eligible member');
  }

  /** A member new to the rounds goes to a random place among those not yet probed. */
  private insertIntoRound(id: string): void {
    if (this.probeOrder.indexOf(id, this.probeCursor) >= 0) return;
    const remaining = this.probeOrder.length - this.probeCursor;
    const position = this.probeCursor + this.prng.below(remaining + 1);
    this.probeOrder.splice(position, 0, id);
    assert(this.probeOrder.length <= 2 * MEMBER_COUNT_MAX, 'the round stays bounded');
  }

  /** Pings one down member; its ack (or any later message) can show it is back. */
  private probeDownMember(): void {
    for (let pass = 0; pass < 2; pass++) {
      while (this.downProbeCursor < this.downProbeOrder.length) {
        const id = this.downProbeOrder[this.downProbeCursor++]!;
        if (this.memberList.get(id)?.liveness === 'down') {
          this.send(id, { type: 'ping', sequence: this.takeSequence() });
          return;
        }
      }
      const down: string[] = [];
      for (const record of this.memberList.all()) {
        if (record.liveness === 'down') down.push(record.id);
      }
      this.shuffle(down);
      this.downProbeOrder = down;
      this.downProbeCursor = 0;
      if (down.length === 0) return;
    }
  }

  // --- suspicion and dissemination ---

  private expireSuspicions(nowMs: number): void {
    for (const id of this.memberList.suspects()) {
      const record = this.memberList.get(id)!;
      if (nowMs < record.suspectedAtMs + this.config.suspicionTimeoutMs) continue;
      this.applyUpdate({ id, liveness: 'down', incarnation: record.incarnation }, nowMs);
      assert(record.liveness === 'down', 'a timed-out suspect is down');
    }
  }

  /** Applies an update by precedence, queues it for gossip and reports a liveness change. */
  private applyUpdate(update: SwimUpdate, nowMs: number): void {
    if (update.id === this.selfId) {
      this.answerAboutSelf(update);
      return;
    }
    const before = this.memberList.apply(update, nowMs);
    if (before === undefined) return;
    this.updates.enqueue(update);
    if (before === update.liveness) return;
    this.changes.push({
      id: update.id,
      liveness: update.liveness,
      incarnation: update.incarnation,
    });
    if (before === 'down') this.insertIntoRound(update.id);
    // Tell the suspect at once (the ping carries the suspicion): it can refute in one round
    // trip instead of waiting for gossip to reach it, and its ack refutes back to us.
    if (update.liveness === 'suspect')
      this.send(update.id, { type: 'ping', sequence: this.takeSequence() });
  }

  /** Refutation: only this node raises its own incarnation. */
  private answerAboutSelf(update: SwimUpdate): void {
    if (update.liveness === 'alive') {
      // Others remember a later life than this one (we restarted): carry on from there.
      if (update.incarnation > this.selfIncarnation) this.selfIncarnation = update.incarnation;
      return;
    }
    if (update.incarnation >= this.selfIncarnation) {
      this.selfIncarnation = update.incarnation + 1;
    }
    // Stale or not, whoever spreads the accusation has not heard the refutation yet.
    this.updates.enqueue({ id: this.selfId, liveness: 'alive', incarnation: this.selfIncarnation });
    assert(this.selfIncarnation > update.incarnation, 'the refutation outranks the accusation');
  }

  // --- output ---

  private send(to: string, body: { type: 'ping' | 'ack'; sequence: number }): void;
  private send(to: string, body: { type: 'ping-req'; sequence: number; target: string }): void;
  private send(
    to: string,
    body: { type: 'ping' | 'ack' | 'ping-req'; sequence: number; target?: string },
  ): void {
    const updates = this.piggyback(to);
    const message: SwimMessage =
      body.type === 'ping-req'
        ? {
            type: 'ping-req',
            sequence: body.sequence,
            target: body.target!,
            incarnation: this.selfIncarnation,
            updates,
          }
        : { type: body.type, sequence: body.sequence, incarnation: this.selfIncarnation, updates };
    this.sends.push({ to, message });
  }

  /** Our belief about the recipient if it is not alive, then the least-sent gossip. */
  private piggyback(to: string): SwimUpdate[] {
    const updates: SwimUpdate[] = [];
    const record = this.memberList.get(to);
    if (record !== undefined && record.liveness !== 'alive') {
      updates.push({ id: to, liveness: record.liveness, incarnation: record.incarnation });
    }
    const limit = retransmitLimit(this.config, this.memberList.size + 1);
    // The recipient knows better than anyone whether it is alive: news about it is skipped.
    updates.push(...this.updates.take(this.config.piggybackMax - updates.length, limit, to));
    return updates;
  }

  private flush(): SwimOutput {
    const output: SwimOutput = { sends: this.sends, changes: this.changes };
    this.sends = [];
    this.changes = [];
    return output;
  }

  private takeSequence(): number {
    const sequence = this.nextSequence;
    this.nextSequence = (this.nextSequence + 1) % SEQUENCE_LIMIT;
    return sequence;
  }

  private advanceClock(nowMs: number): void {
    assert(Number.isFinite(nowMs), 'nowMs is a finite number');
    assert(nowMs >= this.lastNowMs, 'time does not go back');
    this.lastNowMs = nowMs;
  }

  private shuffle(items: string[]): void {
    for (let index = items.length - 1; index > 0; index--) {
      const other = this.prng.below(index + 1);
      const held = items[index]!;
      items[index] = items[other]!;
      items[other] = held;
    }
  }
}
