// A deterministic world for SWIM alone: M Swim instances on a virtual clock, an event queue,
// a network with seeded delay and loss, and crashes and restarts. One seed decides every
// draw, so a run replays exactly. A crashed node neither sends nor receives; a restart is a
// fresh Swim instance (nothing survives but the id). Every message crosses the network as a
// plain object and is validated on arrival, as the real transport would.

import { assert } from '../core/bytes.ts';
import { Prng } from '../core/prng.ts';
import { Swim } from '../core/swim/swim.ts';
import type { Liveness, SwimConfig, SwimMessage, SwimOutput } from '../core/swim/swim.ts';
import { EventQueue } from './event-queue.ts';

export interface SwimWorldOptions {
  readonly seed: number;
  readonly memberCount: number;
  readonly config: SwimConfig;
  readonly delayMsMin: number;
  readonly delayMsMax: number;
  readonly lossProbability: number;
  /** Each node ticks at this interval, from its own random phase. */
  readonly tickIntervalMs: number;
}

/** One liveness transition seen by one observer. */
export interface ObservedChange {
  readonly atMs: number;
  readonly observer: string;
  readonly id: string;
  readonly liveness: Liveness;
  readonly incarnation: number;
}

type WorldEvent =
  | { readonly kind: 'tick'; readonly node: string; readonly life: number }
  | {
      readonly kind: 'deliver';
      readonly from: string;
      readonly to: string;
      readonly message: SwimMessage;
    };

interface SimulatedNode {
  swim: Swim;
  up: boolean;
  /** Bumped on crash and restart, so the tick chain of an earlier life stops. */
  life: number;
}

/** Ceiling on events handled by one run call: a run that loops forever fails loudly. */
const EVENTS_PER_RUN_MAX = 50_000_000;

export class SwimWorld {
  readonly ids: readonly string[];
  readonly changes: ObservedChange[] = [];
  private readonly options: SwimWorldOptions;
  private readonly prng: Prng;
  private readonly queue = new EventQueue<WorldEvent>();
  private readonly nodes = new Map<string, SimulatedNode>();
  /** Extra delay added to every message sent to a node, for slow-link scenarios. */
  private readonly extraDelayMsTo = new Map<string, number>();
  private clockMs = 0;
  messagesSent = 0;
  messagesLost = 0;

  constructor(options: SwimWorldOptions) {
    assert(options.memberCount >= 2, 'a world has at least two members');
    assert(options.delayMsMin >= 0 && options.delayMsMax >= options.delayMsMin, 'delay range');
    assert(options.lossProbability >= 0 && options.lossProbability < 1, 'loss in [0, 1)');
    this.options = options;
    this.prng = new Prng(options.seed);
    const ids: string[] = [];
    for (let index = 0; index < options.memberCount; index++) ids.push(`n${index}`);
    this.ids = ids;
    for (const id of ids) {
      this.nodes.set(id, { swim: this.freshSwim(id), up: true, life: 0 });
      this.scheduleFirstTick(id, 0);
    }
  }

  get nowMs(): number {
    return this.clockMs;
  }

  swim(id: string): Swim {
    return this.node(id).swim;
  }

  isUp(id: string): boolean {
    return this.node(id).up;
  }

  liveIds(): string[] {
    return this.ids.filter((id) => this.node(id).up);
  }

  crash(id: string): void {
    const node = this.node(id);
    assert(node.up, `${id} is up before it crashes`);
    node.up = false;
    node.life += 1;
  }

  restart(id: string): void {
    const node = this.node(id);
    assert(!node.up, `${id} is down before it restarts`);
    node.swim = this.freshSwim(id);
    node.up = true;
    node.life += 1;
    this.scheduleFirstTick(id, node.life);
  }

  setExtraDelayTo(id: string, delayMs: number): void {
    assert(delayMs >= 0, 'extra delay is non-negative');
    if (delayMs === 0) this.extraDelayMsTo.delete(id);
    else this.extraDelayMsTo.set(id, delayMs);
  }

  /** Delivers `message` to `to` now, as if `from` had sent it (forged gossip for tests). */
  inject(from: string, to: string, message: SwimMessage): void {
    this.queue.push(this.clockMs, { kind: 'deliver', from, to, message });
  }

  /**
   * Runs events up to `untilMs` (inclusive), or until `stop` returns true after an event;
   * returns whether it stopped early.
   */
  run(untilMs: number, stop?: () => boolean): boolean {
    for (let handled = 0; handled < EVENTS_PER_RUN_MAX; handled++) {
      const nextMs = this.queue.peekTime();
      if (nextMs === undefined || nextMs > untilMs) {
        this.clockMs = Math.max(this.clockMs, untilMs);
        return false;
      }
      const event = this.queue.pop()!;
      assert(event.atMs >= this.clockMs, 'virtual time does not go back');
      this.clockMs = event.atMs;
      this.handle(event.payload);
      if (stop !== undefined && stop()) return true;
    }
    assert(false, `a run handles at most ${EVENTS_PER_RUN_MAX} events`);
  }

  /** Does every live member other than `id` hold `id` at `liveness`? */
  everyLiveMemberHolds(id: string, liveness: Liveness): boolean {
    for (const observer of this.ids) {
      if (observer === id || !this.node(observer).up) continue;
      if (this.node(observer).swim.liveness(id) !== liveness) return false;
    }
    return true;
  }

  private handle(event: WorldEvent): void {
    if (event.kind === 'tick') {
      const node = this.node(event.node);
      if (!node.up || node.life !== event.life) return;
      this.carryOut(event.node, node.swim.tick(this.clockMs));
      this.queue.push(this.clockMs + this.options.tickIntervalMs, event);
      return;
    }
    const node = this.node(event.to);
    if (!node.up) return;
    // The receiving side validates what came off the wire, as the node core will.
    assert(node.swim.isValidMessage(event.message), 'every message sent is valid');
    this.carryOut(event.to, node.swim.receive(event.from, event.message, this.clockMs));
  }

  private carryOut(from: string, output: SwimOutput): void {
    for (const change of output.changes) {
      this.changes.push({ atMs: this.clockMs, observer: from, ...change });
    }
    for (const send of output.sends) {
      this.messagesSent += 1;
      if (this.prng.chance(this.options.lossProbability)) {
        this.messagesLost += 1;
        continue;
      }
      const delayMs =
        this.prng.between(this.options.delayMsMin, this.options.delayMsMax) +
        (this.extraDelayMsTo.get(send.to) ?? 0);
      this.queue.push(this.clockMs + delayMs, {
        kind: 'deliver',
        from,
        to: send.to,
        message: send.message,
      });
    }
  }

  private freshSwim(id: string): Swim {
    return new Swim(id, this.ids, this.options.config, new Prng(this.prng.nextUint32()));
  }

  private scheduleFirstTick(id: string, life: number): void {
    const phaseMs = this.prng.below(this.options.tickIntervalMs);
    this.queue.push(this.clockMs + phaseMs, { kind: 'tick', node: id, life });
  }

  private node(id: string): SimulatedNode {
    const node = this.nodes.get(id);
    // Runs for every event: the message is built only when the lookup fails.
    if (node === undefined) assert(false, `${id} is a node of this world`);
    return node;
  }
}
