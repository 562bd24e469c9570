// The elastic policy running in a node: the decider gathers every owning member's load and
// asks elastic.ts what to do; the node makes the change it answers like any other.
//
// Rules kept:
// - One decider: the first voter, by id, that this node does not see down. Every node runs
//   the host; only the decider asks for loads and decides. Two nodes that both think they
//   decide make at most two proposals, and the map register lets one change through: a
//   membership change is refused while another is in progress.
// - Every `intervalMs` the decider starts a round: it asks each other owning member for its
//   load. A decision is made from the reports of the newest round only, once every owning
//   member has answered it, so no decision rests on stale or partial figures.
// - After a decision, none until the map shows a change and then shows it ended (or until
//   the proposal fails); the cool-down of the policy counts from that end, and from the
//   host's start, so a restarted decider does not act on its first round.
//
// Messages (the payload of MessageType.load): [0, round] asks for a load; [1, round, keys,
// bytes, requestsPerSecond] answers it.

import { assert } from '../bytes.ts';
import { votersOf, type ClusterMap } from './cluster-map.ts';
import {
  elasticDecision,
  elasticPolicyProblem,
  type ElasticDecision,
  type ElasticPolicy,
  type NodeLoad,
} from './elastic.ts';
import { ownersOf } from './membership.ts';

export interface ElasticSettings extends ElasticPolicy {
  /** How often the decider asks for loads. */
  readonly intervalMs: number;
}

export const ELASTIC_INTERVAL_MS_DEFAULT = 10_000;
export const ELASTIC_MIN_MEMBERS_DEFAULT = 3;
export const ELASTIC_COOL_DOWN_MS_DEFAULT = 300_000;

export type LoadMessage = readonly [0, number] | readonly [1, number, number, number, number];

export interface LoadSend {
  readonly to: string;
  readonly message: LoadMessage;
}

export interface ElasticStatus {
  readonly deciding: boolean;
  readonly round: number;
  /** Loads reported for the newest round, by member id. */
  readonly loads: Readonly<Record<string, NodeLoad>>;
  readonly lastDecision: (ElasticDecision & { readonly atMs: number }) | null;
  readonly decisions: number;
}

/** What is wrong with elastic settings, or null. */
export function elasticSettingsProblem(settings: ElasticSettings): string | null {
  if (!(Number.isSafeInteger(settings.intervalMs) && settings.intervalMs > 0)) {
    return 'intervalMs must be a positive integer of milliseconds';
  }
  return elasticPolicyProblem(settings);
}

/**
 * Settings from a configuration value (an object with `joinAbove` and optionally
 * `leaveBelow`, `minMembers`, `coolDownMs`, `intervalMs`); throws an Error naming the
 * problem.
 */
export function parseElasticSettings(value: unknown): ElasticSettings {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('expected an object');
  }
  const fields = value as Record<string, unknown>;
  const known = ['joinAbove', 'leaveBelow', 'minMembers', 'coolDownMs', 'intervalMs'];
  const unknown = Object.keys(fields).find((key) => !known.includes(key));
  if (unknown !== undefined)
    throw new Error(`unknown field '${unknown}' (known: ${known.join(', ')})`);
  const thresholds = (name: string): Record<string, number> => {
    const given = fields[name] ?? {};
    if (typeof given !== 'object' || given === null || Array.isArray(given)) {
      throw new Error(`${name} must be an object of thresholds`);
    }
    for (const [metric, threshold] of Object.entries(given)) {
      if (!['keys', 'bytes', 'requestsPerSecond'].includes(metric)) {
        throw new Error(`${name}.${metric}: the metrics are keys, bytes and requestsPerSecond`);
      }
      if (typeof threshold !== 'number') throw new Error(`${name}.${metric} must be a number`);
    }
    return given as Record<string, number>;
  };
  const settings: ElasticSettings = {
    joinAbove: thresholds('joinAbove'),
    leaveBelow: thresholds('leaveBelow'),
    minMembers: (fields.minMembers ?? ELASTIC_MIN_MEMBERS_DEFAULT) as number,
    coolDownMs: (fields.coolDownMs ?? ELASTIC_COOL_DOWN_MS_DEFAULT) as number,
    intervalMs: (fields.intervalMs ?? ELASTIC_INTERVAL_MS_DEFAULT) as number,
  };
  const problem = elasticSettingsProblem(settings);
  if (problem !== null) throw new Error(problem);
  return settings;
}

export class ElasticHost {
  private readonly nodeId: string;
  private readonly settings: ElasticSettings;
  private round = 0;
  private nextRoundMs: number | null = null;
  private readonly loads = new Map<string, NodeLoad>();
  /** Set from a decision until the change it asked for has come and gone. */
  private awaiting: 'proposal' | 'end' | null = null;
  private lastChangeEndMs: number | null = null;
  private hadChange = false;
  private lastDecision: (ElasticDecision & { readonly atMs: number }) | null = null;
  private decisions = 0;
  private deciding = false;

  constructor(nodeId: string, settings: ElasticSettings) {
    const problem = elasticSettingsProblem(settings);
    assert(problem === null, `elastic settings: ${String(problem)}`);
    this.nodeId = nodeId;
    this.settings = settings;
  }

  /**
   * Starts a round when one is due, and answers the decision the newest round's complete
   * reports call for (at most one until its change has ended).
   */
  tick(
    nowMs: number,
    map: ClusterMap,
    isUp: (id: string) => boolean,
    ownLoad: NodeLoad | undefined,
  ): { sends: LoadSend[]; decision: ElasticDecision | null } {
    this.lastChangeEndMs ??= nowMs;
    this.followChange(map, nowMs);
    this.deciding = votersOf(map).find((id) => id === this.nodeId || isUp(id)) === this.nodeId;
    const sends: LoadSend[] = [];
    if (!this.deciding) {
      this.nextRoundMs = null;
      return { sends, decision: null };
    }
    if (this.nextRoundMs === null || nowMs >= this.nextRoundMs) {
      this.nextRoundMs = nowMs + this.settings.intervalMs;
      this.round++;
      this.loads.clear();
      for (const id of ownersOf(map)) {
        if (id !== this.nodeId && isUp(id)) sends.push({ to: id, message: [0, this.round] });
      }
    }
    if (ownLoad !== undefined && ownersOf(map).includes(this.nodeId)) {
      this.loads.set(this.nodeId, ownLoad);
    }
    if (this.awaiting !== null) return { sends, decision: null };
    const decision = elasticDecision(map, this.loads, this.settings, nowMs, this.lastChangeEndMs);
    if (decision !== null) {
      this.awaiting = 'proposal';
      this.decisions++;
      this.lastDecision = { ...decision, atMs: nowMs };
    }
    return { sends, decision };
  }

  /** The proposal of the last decision was made (the change is in the map) or failed. */
  proposed(ok: boolean, nowMs: number): void {
    if (this.awaiting !== 'proposal') return;
    this.awaiting = ok ? 'end' : null;
    // The map this node adopted holds the change now: its end is the next map without one.
    if (ok) this.hadChange = true;
    else this.lastChangeEndMs = nowMs;
  }

  /** A load report from `from`; it counts only for the newest round this node started. */
  receiveReport(from: string, message: unknown): void {
    if (!isLoadMessage(message) || message[0] !== 1) return;
    if (this.deciding && message[1] === this.round) {
      this.loads.set(from, { keys: message[2], bytes: message[3], requestsPerSecond: message[4] });
    }
  }

  status(): ElasticStatus {
    return {
      deciding: this.deciding,
      round: this.round,
      loads: Object.fromEntries(this.loads),
      lastDecision: this.lastDecision,
      decisions: this.decisions,
    };
  }

  /** Notes when a change ends; a decision's wait ends with the change it made. */
  private followChange(map: ClusterMap, nowMs: number): void {
    const hasChange = map.change !== undefined;
    if (this.hadChange && !hasChange) {
      this.lastChangeEndMs = nowMs;
      if (this.awaiting === 'end') this.awaiting = null;
    }
    this.hadChange = hasChange;
  }
}

/**
 * The answer to a load query from `from`, or null: not a query, or this node has no count
 * of its data yet. Every node answers, with a policy or without.
 */
export function answerLoadQuery(
  from: string,
  message: unknown,
  ownLoad: NodeLoad | undefined,
): LoadSend | null {
  if (!isLoadMessage(message) || message[0] !== 0 || ownLoad === undefined) return null;
  const { keys, bytes, requestsPerSecond } = ownLoad;
  return { to: from, message: [1, message[1], keys, bytes, requestsPerSecond] };
}

function isLoadMessage(value: unknown): value is LoadMessage {
  if (!Array.isArray(value)) return false;
  const round = value[1] as unknown;
  if (!Number.isSafeInteger(round)) return false;
  if (value[0] === 0) return value.length === 2;
  const isFigure = (figure: unknown): boolean =>
    typeof figure === 'number' && Number.isFinite(figure) && figure >= 0;
  return value[0] === 1 && value.length === 5 && value.slice(2).every(isFigure);
}
