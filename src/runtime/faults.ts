// Fault injection at the edge of a node (DESIGN section 6, "fail and recover a node, add
// delay or loss to its messages, cut it off from chosen peers"). It sits between the core's
// `send` effects and the transport, and in front of incoming peer messages, so a failed or
// cut-off node looks to its peers exactly like one behind a broken network.
//
// - failed: no peer message goes out or comes in, and clients are refused (503/-ERR);
// - delayMs: every outgoing message waits this long (order kept: one fixed delay);
// - lossRate: each outgoing message is dropped with this probability;
// - cutPeers: no message goes to or comes from these peers.
// Delayed messages are bounded: past DELAYED_MESSAGES_MAX the newest are dropped.

export interface FaultSettings {
  readonly failed: boolean;
  readonly delayMs: number;
  readonly lossRate: number;
  readonly cutPeers: readonly string[];
}

export const NO_FAULTS: FaultSettings = { failed: false, delayMs: 0, lossRate: 0, cutPeers: [] };

/** The longest delay that can be injected. */
export const FAULT_DELAY_MS_MAX = 60_000;
const DELAYED_MESSAGES_MAX = 100_000;

export class FaultInjector {
  private current: FaultSettings = NO_FAULTS;
  private cut = new Set<string>();
  private readonly deliver: (to: string, message: unknown) => void;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(deliver: (to: string, message: unknown) => void) {
    this.deliver = deliver;
  }

  settings(): FaultSettings {
    return this.current;
  }

  /** Changes some settings; throws RangeError on a value out of range. */
  set(change: Partial<FaultSettings>): FaultSettings {
    const next = { ...this.current, ...change };
    if (typeof next.failed !== 'boolean') throw new RangeError('failed must be true or false');
    if (!(
      Number.isInteger(next.delayMs) &&
      next.delayMs >= 0 &&
      next.delayMs <= FAULT_DELAY_MS_MAX
    )) {
      throw new RangeError(`delayMs must be an integer from 0 to ${FAULT_DELAY_MS_MAX}`);
    }
    if (!(typeof next.lossRate === 'number' && next.lossRate >= 0 && next.lossRate <= 1)) {
      throw new RangeError('lossRate must be a number from 0 to 1');
    }
    if (!Array.isArray(next.cutPeers) || !next.cutPeers.every((id) => typeof id === 'string')) {
      throw new RangeError('cutPeers must be a list of node ids');
    }
    this.current = { ...next, cutPeers: [...next.cutPeers] };
    this.cut = new Set(next.cutPeers);
    return this.current;
  }

  /** Whether a message from `from` may reach the node. */
  admits(from: string): boolean {
    return !this.current.failed && !this.cut.has(from);
  }

  send(to: string, message: unknown): void {
    const faults = this.current;
    if (faults.failed || this.cut.has(to)) return;
    if (faults.lossRate > 0 && Math.random() < faults.lossRate) return;
    if (faults.delayMs === 0) return this.deliver(to, message);
    if (this.timers.size >= DELAYED_MESSAGES_MAX) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.deliver(to, message);
    }, faults.delayMs);
    this.timers.add(timer);
  }

  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}
