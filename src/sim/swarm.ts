// One swarm run: fault settings drawn from the seed (swarm testing: each run turns on its own
// mix of faults), a safety phase with a recorded workload under those faults, then a
// liveness phase in which faults stop and the cluster must settle; then the judge
// (judge.ts). The same seed, configuration, node count, operation count and fault list
// always give the same run.
//
// Eventual configurations (SWARM_CONFIGURATIONS) run the workload of workload.ts, each
// client on keys of its own; the judge reads every key with R = all and runs every checker:
// acknowledged writes judged by versions, replicas agreeing, and the session checker where
// it is promised. Linearizable configurations, strong (STRONG_SWARM_CONFIGURATIONS) and
// chain (CHAIN_SWARM_CONFIGURATIONS), run the register workload of register-workload.ts,
// every client on the same few keys; the judge (judgeLinearizableRun) waits, for chains,
// until every partition's chain is whole again, reads every key through every node and
// checks the whole history linearizable, and the versions against it. Every kind draws its
// faults from the same registry, the same way.
//
// Chain keyspaces are created by a request once the cluster has formed (a keyspace given at
// start gets no chains in the first map), and the run waits until every key answers a read
// before the faults are scheduled, so that the safety phase starts on chains that work.
//
// Two tables shape a run. A configuration names the keyspace settings and the workload's
// mix. The fault registry names each kind of fault with how it is drawn and scheduled: a
// new kind is one entry. Each kind draws from its own generator (the seed and the kind's
// name), so allowing or adding one kind never changes what another draws for a seed.

import type { History } from '../check/history.ts';
import { assert } from '../core/bytes.ts';
import { DEFAULT_KEYSPACE, type Keyspace } from '../core/keyspace.ts';
import { Prng } from '../core/prng.ts';
import type { ClientReply, ClientRequest } from '../core/requests.ts';
import { ClusterWorld, type ClusterWorldOptions } from './cluster-world.ts';
import { judgeLinearizableRun, judgeRun, watchFallbacks } from './judge.ts';
import { describePartition, randomPartition, swizzleSchedule } from './network-faults.ts';
import {
  DEFAULT_REGISTER_MIX,
  requestOf,
  runRegisterWorkload,
  type KindCounts,
  type RegisterKey,
  type RegisterMix,
  type RegisterWorkloadResult,
} from './register-workload.ts';
import { runWorkload } from './workload.ts';

/** A fault kind's settings for one seed: plain numbers, printed as they are. */
export type FaultSettings = Readonly<Record<string, number>>;

/** A kind of fault a seed turned on, with its drawn settings. */
export interface DrawnFault {
  readonly kind: string;
  readonly settings: FaultSettings;
}

/** A fault as it happened: what, and when. */
export interface InjectedFault {
  /** Virtual milliseconds since the simulated world began. */
  readonly atMs: number;
  readonly kind: string;
  readonly description: string;
}

/** What a fault kind schedules its events with. */
export interface FaultScheduler {
  readonly world: ClusterWorld;
  /** The kind's own generator, continued from its draw. */
  readonly prng: Prng;
  /** When the world began, in virtual time (network faults are in force from then on). */
  readonly worldStartMs: number;
  /** The safety phase, in virtual time: faults start inside [startMs, startMs + phaseMs). */
  readonly startMs: number;
  readonly phaseMs: number;
  /** Runs `action` at virtual time `atMs`; what it answers is recorded (null: nothing happened). */
  readonly at: (atMs: number, action: () => string | null) => void;
  /** Records a fault in force since virtual time `atMs` (the network's, set as the world is built). */
  readonly record: (atMs: number, description: string) => void;
}

export interface FaultKind {
  readonly name: string;
  /** One line, for --help and the summary. */
  readonly description: string;
  /** Draws whether this kind is on for a seed, and how; null leaves it off. */
  readonly draw: (prng: Prng, nodeCount: number) => FaultSettings | null;
  /** World options the kind needs from the start (network rates). */
  readonly worldOptions?: (settings: FaultSettings) => Partial<ClusterWorldOptions>;
  /** Schedules the kind's events in the safety phase. */
  readonly schedule: (scheduler: FaultScheduler, settings: FaultSettings) => void;
}

function setting(settings: FaultSettings, name: string): number {
  const value = settings[name];
  assert(value !== undefined, `fault setting ${name} is drawn`);
  return value;
}

function percent(rate: number): string {
  return `${(rate * 100).toFixed(1)}%`;
}

/**
 * Every fault kind the swarm can draw, in the order they are scheduled. Clock skew is not
 * here yet: a blind write through a coordinator that just took over is ordered against the
 * writes it has not seen by timestamps (docs/CLUSTER.md), so skew can let an earlier write
 * win, and the acknowledged-writes checker would report it.
 */
export const FAULT_KINDS: readonly FaultKind[] = [
  {
    name: 'crash',
    description: 'up to two nodes crash (losing what was not durable) and restart later',
    draw: (prng) => {
      const count = prng.between(0, 2);
      return count === 0 ? null : { count };
    },
    schedule: (scheduler, settings) => {
      const { world, prng } = scheduler;
      for (let i = 0; i < setting(settings, 'count'); i++) {
        const victim = prng.pick(world.ids);
        const atMs = scheduler.startMs + prng.between(0, scheduler.phaseMs);
        const downMs = prng.between(200, 2_000);
        scheduler.at(atMs, () => {
          if (!world.isUp(victim)) return null;
          world.crash(victim);
          return `${victim} crashes`;
        });
        scheduler.at(atMs + downMs, () => {
          if (world.isUp(victim)) return null;
          world.restart(victim);
          return `${victim} restarts`;
        });
      }
    },
  },
  {
    name: 'power-loss',
    description: 'every node crashes at once and restarts 100 ms later',
    draw: (prng) => (prng.chance(0.3) ? { restartAfterMs: 100 } : null),
    schedule: (scheduler, settings) => {
      const { world, prng } = scheduler;
      const atMs = scheduler.startMs + prng.between(0, scheduler.phaseMs);
      scheduler.at(atMs, () => {
        for (const id of world.ids) if (world.isUp(id)) world.crash(id);
        return 'every node loses power';
      });
      scheduler.at(atMs + setting(settings, 'restartAfterMs'), () => {
        for (const id of world.ids) if (!world.isUp(id)) world.restart(id);
        return 'power returns: every node restarts';
      });
    },
  },
  {
    name: 'isolate',
    description: 'one node is cut off from every other, both ways, for 0.5 to 3 s',
    draw: (prng) => (prng.chance(0.4) ? { nodes: 1 } : null),
    schedule: (scheduler) => {
      const { world, prng } = scheduler;
      const cutOff = prng.pick(world.ids);
      const atMs = scheduler.startMs + prng.between(0, scheduler.phaseMs);
      scheduler.at(atMs, () => {
        world.isolate(cutOff);
        return `${cutOff} is isolated`;
      });
      scheduler.at(atMs + prng.between(500, 3_000), () => {
        world.healAll();
        return 'the network heals';
      });
    },
  },
  {
    name: 'loss',
    description: 'up to 5% of messages are lost until the liveness phase',
    draw: (prng) => (prng.chance(0.5) ? { rate: prng.next() * 0.05 } : null),
    worldOptions: (settings) => ({ lossRate: setting(settings, 'rate') }),
    schedule: (scheduler, settings) => {
      scheduler.record(
        scheduler.worldStartMs,
        `${percent(setting(settings, 'rate'))} of messages are lost`,
      );
    },
  },
  {
    name: 'tail',
    description: 'up to 3% of messages take a long tail (up to 500 ms) until the liveness phase',
    draw: (prng) => (prng.chance(0.5) ? { rate: prng.next() * 0.03 } : null),
    worldOptions: (settings) => ({ tailRate: setting(settings, 'rate') }),
    schedule: (scheduler, settings) => {
      scheduler.record(
        scheduler.worldStartMs,
        `${percent(setting(settings, 'rate'))} of messages take a long tail`,
      );
    },
  },
  {
    name: 'pause',
    description: 'up to two nodes stop running (a long GC pause) for 0.1 to 2 s, losing nothing',
    draw: (prng) => (prng.chance(0.4) ? { count: prng.between(1, 2) } : null),
    schedule: (scheduler, settings) => {
      const { world, prng } = scheduler;
      for (let i = 0; i < setting(settings, 'count'); i++) {
        const sleeper = prng.pick(world.ids);
        const atMs = scheduler.startMs + prng.between(0, scheduler.phaseMs);
        const durationMs = prng.between(100, 2_000);
        scheduler.at(atMs, () => {
          world.pause(sleeper, durationMs);
          return `${sleeper} pauses for ${durationMs} ms`;
        });
      }
    },
  },
  {
    name: 'duplicate',
    description: 'up to 10% of messages are delivered twice until the liveness phase',
    draw: (prng) => (prng.chance(0.3) ? { rate: prng.next() * 0.1 } : null),
    worldOptions: (settings) => ({ duplicateRate: setting(settings, 'rate') }),
    schedule: (scheduler, settings) => {
      scheduler.record(
        scheduler.worldStartMs,
        `${percent(setting(settings, 'rate'))} of messages arrive twice`,
      );
    },
  },
  {
    name: 'reorder',
    description: 'up to 10% of messages overtake earlier ones on their link',
    draw: (prng) => (prng.chance(0.3) ? { rate: prng.next() * 0.1 } : null),
    worldOptions: (settings) => ({ reorderRate: setting(settings, 'rate') }),
    schedule: (scheduler, settings) => {
      scheduler.record(
        scheduler.worldStartMs,
        `${percent(setting(settings, 'rate'))} of messages may overtake others`,
      );
    },
  },
  {
    name: 'partition',
    description:
      'a partition of a random shape (halves, one isolated, majority ring, bridge, one-way) for 0.5 to 3 s',
    draw: (prng) => (prng.chance(0.3) ? { partitions: 1 } : null),
    schedule: (scheduler) => {
      const { world, prng } = scheduler;
      const shape = randomPartition(world.ids, prng);
      const atMs = scheduler.startMs + prng.between(0, scheduler.phaseMs);
      scheduler.at(atMs, () => {
        world.applyPartition(shape);
        return `partition: ${describePartition(shape)}`;
      });
      scheduler.at(atMs + prng.between(500, 3_000), () => {
        world.healAll();
        return 'the partition heals';
      });
    },
  },
  {
    name: 'clog',
    description:
      'swizzle-clogging: the links of some nodes clog one by one, then unclog in random order',
    draw: (prng) => (prng.chance(0.2) ? { spacingMs: prng.between(100, 400) } : null),
    schedule: (scheduler, settings) => {
      const { world, prng } = scheduler;
      const schedule = swizzleSchedule(world.ids, prng, {
        startMs: scheduler.startMs + prng.between(0, scheduler.phaseMs),
        spacingMs: setting(settings, 'spacingMs'),
      });
      for (const step of schedule.steps) {
        scheduler.at(step.atMs, () => {
          if (step.action === 'clog') world.clogNode(step.node);
          else world.unclogNode(step.node);
          return `${step.action} ${step.node}`;
        });
      }
    },
  },
  {
    name: 'skew',
    description: "one or two nodes' wall clocks run up to 5 s ahead of or behind the others",
    draw: (prng) => (prng.chance(0.3) ? { count: prng.between(1, 2) } : null),
    schedule: (scheduler, settings) => {
      const { world, prng } = scheduler;
      for (let i = 0; i < setting(settings, 'count'); i++) {
        const node = prng.pick(world.ids);
        const offsetMs = prng.between(-5_000, 5_000);
        scheduler.at(scheduler.startMs, () => {
          world.skewClock(node, offsetMs);
          return `${node}'s clock is off by ${offsetMs} ms`;
        });
      }
    },
  },
  {
    name: 'clock-jump',
    description: "a node's wall clock jumps up to 10 s forward or back",
    draw: (prng) => (prng.chance(0.3) ? { jumps: 1 } : null),
    schedule: (scheduler) => {
      const { world, prng } = scheduler;
      const node = prng.pick(world.ids);
      const deltaMs = prng.between(-10_000, 10_000);
      scheduler.at(scheduler.startMs + prng.between(0, scheduler.phaseMs), () => {
        world.jumpClock(node, deltaMs);
        return `${node}'s clock jumps by ${deltaMs} ms`;
      });
    },
  },
];

export const FAULT_KIND_NAMES: readonly string[] = FAULT_KINDS.map((kind) => kind.name);

/** A named set of keyspace settings and workload mix. */
export interface SwarmConfiguration {
  readonly name: string;
  readonly description: string;
  /** Node counts drawn from when the run does not fix one. */
  readonly nodeCountMin: number;
  readonly nodeCountMax: number;
  /**
   * The keyspace for a cluster of `nodeCount` nodes. It is always id 0 named `default`:
   * the judge (settleAndJudge) reads that keyspace.
   */
  readonly keyspace: (nodeCount: number) => Keyspace;
  readonly readFraction: number;
  readonly deleteFraction: number;
  /** Why CI and the soak leave it out; absent when they run it. */
  readonly excludedBecause?: string;
}

function majority(count: number): number {
  return Math.floor(count / 2) + 1;
}

export const SWARM_CONFIGURATIONS: readonly SwarmConfiguration[] = [
  {
    name: 'n3-quorum',
    description: 'N=3 R=2 W=2 lww on 3 to 7 nodes, 30% reads, 10% deletes',
    nodeCountMin: 3,
    nodeCountMax: 7,
    keyspace: () => DEFAULT_KEYSPACE,
    readFraction: 0.3,
    deleteFraction: 0.1,
  },
  {
    name: 'n3-siblings',
    description: 'N=3 R=2 W=2 siblings on 3 to 7 nodes, 30% reads, 10% deletes',
    nodeCountMin: 3,
    nodeCountMax: 7,
    keyspace: () => ({ ...DEFAULT_KEYSPACE, conflicts: 'siblings' }),
    readFraction: 0.3,
    deleteFraction: 0.1,
  },
  {
    name: 'n5-quorum',
    description: 'N=5 R=3 W=3 lww on 5 to 7 nodes, 30% reads, 10% deletes',
    nodeCountMin: 5,
    nodeCountMax: 7,
    keyspace: () => ({ ...DEFAULT_KEYSPACE, n: 5, r: 3, w: 3 }),
    readFraction: 0.3,
    deleteFraction: 0.1,
  },
  {
    name: 'n-all',
    description: 'N=all, R and W a majority of the nodes, lww on 3 to 5 nodes, 30% reads',
    nodeCountMin: 3,
    nodeCountMax: 5,
    keyspace: (nodeCount) => ({
      ...DEFAULT_KEYSPACE,
      n: 'all',
      r: majority(nodeCount),
      w: majority(nodeCount),
    }),
    readFraction: 0.3,
    deleteFraction: 0.1,
  },
  {
    name: 'read-heavy',
    description: 'N=3 R=2 W=2 lww on 3 to 7 nodes, 70% reads, 5% deletes',
    nodeCountMin: 3,
    nodeCountMax: 7,
    keyspace: () => DEFAULT_KEYSPACE,
    readFraction: 0.7,
    deleteFraction: 0.05,
  },
];

export type LinearizableConsistency = 'strong' | 'chain';

/**
 * A linearizable configuration: keyspaces whose keys are CASPaxos registers (strong) or
 * live on partition chains (chain), and the register workload's mix. Kept apart from
 * SWARM_CONFIGURATIONS, whose runs and judge are eventual.
 */
export interface LinearizableSwarmConfiguration {
  readonly name: string;
  readonly description: string;
  readonly consistency: LinearizableConsistency;
  readonly nodeCountMin: number;
  readonly nodeCountMax: number;
  /**
   * The keyspaces for a cluster of `nodeCount` nodes, every one of the configuration's
   * consistency. Strong ones are given to the world at start; chain ones are created by
   * request in this order (the cluster assigns their ids), all with the same n, since chain
   * keyspaces share the partitions' chains.
   */
  readonly keyspaces: (nodeCount: number) => readonly Keyspace[];
  /** Keys of each keyspace that the clients share. */
  readonly keysPerKeyspace: number;
  /** The zipfian constant of the workload's key choice (register-workload.ts). */
  readonly keySkew: number;
  readonly mix: RegisterMix;
  /** Why CI and the soak leave it out; absent when they run it. */
  readonly excludedBecause?: string;
}

const STRONG_KEYSPACE: Keyspace = { ...DEFAULT_KEYSPACE, consistency: 'strong' };

/**
 * Keys and skew are set from measurement: over seeds 1 to 1000 of each, the checker decides
 * every history within its default bounds (the slowest in under 2 s). Fewer keys or a hotter
 * first key pile so many writes of unknown outcome on one key that some searches do not
 * finish (docs/CHECKERS.md).
 */
export const STRONG_SWARM_CONFIGURATIONS: readonly LinearizableSwarmConfiguration[] = [
  {
    name: 'strong-n3',
    description: 'strong N=3 on 3 nodes, 6 clients sharing 8 keys, every register operation',
    consistency: 'strong',
    nodeCountMin: 3,
    nodeCountMax: 3,
    keyspaces: () => [STRONG_KEYSPACE],
    keysPerKeyspace: 8,
    keySkew: 0.8,
    mix: DEFAULT_REGISTER_MIX,
  },
  {
    name: 'strong-n5',
    description: 'strong N=3 and N=5 on 5 nodes (N=3 keys forwarded by non-replicas), 4 keys each',
    consistency: 'strong',
    nodeCountMin: 5,
    nodeCountMax: 5,
    keyspaces: () => [STRONG_KEYSPACE, { ...STRONG_KEYSPACE, id: 1, name: 'wide', n: 5 }],
    keysPerKeyspace: 4,
    keySkew: 0.8,
    mix: DEFAULT_REGISTER_MIX,
  },
];

const CHAIN_KEYSPACE: Keyspace = {
  ...DEFAULT_KEYSPACE,
  id: 1,
  name: 'chain',
  consistency: 'chain',
};

/**
 * More keys, and in chain-n5 a flatter choice, than the strong configurations, for the
 * same reason: the checker's search must finish on every seed within its default bounds.
 * Chains leave more writes of unknown outcome on a hot key (its partition's writes stall
 * while a replica is out of the chain, or while a lost forward waits for its resend,
 * docs/CHECKERS.md), and with 8 keys at 0.8 (chain-n3), or 6 or 8 per keyspace at 0.8
 * (chain-n5), 1 to 3 of 1000 seeds left 18 to 43 of them on the hottest key, past those
 * bounds (every such history was linearizable, decided with bounds 100 times larger).
 */
export const CHAIN_SWARM_CONFIGURATIONS: readonly LinearizableSwarmConfiguration[] = [
  {
    name: 'chain-n3',
    description: 'chain N=3 on 3 nodes, 6 clients sharing 12 keys, every register operation',
    consistency: 'chain',
    nodeCountMin: 3,
    nodeCountMax: 3,
    keyspaces: () => [CHAIN_KEYSPACE],
    keysPerKeyspace: 12,
    keySkew: 0.8,
    mix: DEFAULT_REGISTER_MIX,
  },
  {
    name: 'chain-n5',
    description:
      'two chain keyspaces of N=3 on 5 nodes sharing their chains, 8 keys each at skew 0.6',
    consistency: 'chain',
    nodeCountMin: 5,
    nodeCountMax: 5,
    keyspaces: () => [CHAIN_KEYSPACE, { ...CHAIN_KEYSPACE, id: 2, name: 'second' }],
    keysPerKeyspace: 8,
    keySkew: 0.6,
    mix: DEFAULT_REGISTER_MIX,
  },
];

export const DEFAULT_CONFIGURATION = 'n3-quorum';
export const DEFAULT_STRONG_CONFIGURATION = 'strong-n3';
export const DEFAULT_CHAIN_CONFIGURATION = 'chain-n3';
export const DEFAULT_OPERATIONS = 300;
/** Node counts a run may fix (the simulator runs them all in one process). */
export const NODE_COUNT_MAX = 16;

/** An eventual configuration by name. */
export function swarmConfiguration(name: string): SwarmConfiguration | undefined {
  return SWARM_CONFIGURATIONS.find((configuration) => configuration.name === name);
}

/** A strong or chain configuration by name. */
export function linearizableSwarmConfiguration(
  name: string,
): LinearizableSwarmConfiguration | undefined {
  return [...STRONG_SWARM_CONFIGURATIONS, ...CHAIN_SWARM_CONFIGURATIONS].find(
    (configuration) => configuration.name === name,
  );
}

/** The kind of keyspace a configuration runs, or undefined for no such configuration. */
export function configurationConsistency(
  name: string,
): 'eventual' | LinearizableConsistency | undefined {
  if (swarmConfiguration(name) !== undefined) return 'eventual';
  return linearizableSwarmConfiguration(name)?.consistency;
}

/** What --help and a summary say of a configuration, of any kind. */
export function configurationDescription(name: string): string {
  const configuration = swarmConfiguration(name) ?? linearizableSwarmConfiguration(name);
  assert(configuration !== undefined, `no swarm configuration ${name}`);
  return configuration.description;
}

export interface SwarmOptions {
  /** A name from SWARM_CONFIGURATIONS, STRONG_ or CHAIN_SWARM_CONFIGURATIONS; n3-quorum when absent. */
  readonly configuration?: string;
  /** A fixed node count instead of one drawn from the configuration's range. */
  readonly nodes?: number;
  /** Operations of the workload, over every client. */
  readonly operations?: number;
  /** The fault kinds allowed to be drawn; every kind when absent. */
  readonly faults?: readonly string[];
  /** Negative control: a disk that acknowledges a batch before it writes it. */
  readonly skipFsync?: boolean;
  /** Negative control of strong configurations: operations need one acceptor, not a majority. */
  readonly strongQuorumOfOne?: boolean;
  /** Negative control of chain configurations: replicas serve requests of older chain epochs. */
  readonly chainAcceptOlderEpochs?: boolean;
  /** Told, now and then, how many of the workload's operations have been answered. */
  readonly onProgress?: (operationsAnswered: number, operationsTotal: number) => void;
}

export interface SwarmResult {
  readonly seed: number;
  readonly configuration: string;
  readonly nodeCount: number;
  readonly operations: number;
  /** The fault kinds the seed turned on, with their settings. */
  readonly faults: readonly DrawnFault[];
  /** The faults as they happened, in virtual time order. */
  readonly injected: readonly InjectedFault[];
  /** When the workload began, in virtual ms since the world began (the cluster formed, and chain keyspaces answered). */
  readonly workloadStartMs: number;
  readonly history: History;
  /** Problems, each one line; empty when the run is clean. */
  readonly anomalies: readonly string[];
  /** Strong and chain runs: what the judge checked, one line each (eventual runs leave it out). */
  readonly checks?: readonly string[];
  /** Strong and chain runs: the workload's operations by kind and outcome. */
  readonly registerKinds?: KindCounts;
}

const SAFETY_PHASE_MS = 4_000;
/**
 * Beyond SAFETY_PHASE_MS the safety phase grows with the workload, by about what one
 * operation adds to its length without faults (six clients), so that faults meet operations.
 */
const SAFETY_PHASE_MS_PER_OPERATION = 7;
const LIVENESS_TIMEOUT_MS = 60_000;
/**
 * Wall time the linearizability checker may take on one strong run. Histories of a few
 * hundred operations on a few keys take milliseconds; past this the run is reported
 * undecided, never passed.
 */
const CHECK_BUDGET_MS = 30_000;
/** Clients of the workload, each with keys of its own. */
export const SWARM_CLIENTS = 6;
const KEYS_PER_CLIENT = 10;

/** A small stable hash of a fault kind's name, so each kind gets its own generator. */
function nameHash(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193) >>> 0;
  }
  return hash;
}

/** The node count of a seed: fixed by the options or drawn from the configuration's range. */
export function swarmNodeCount(
  seed: number,
  configuration: Pick<SwarmConfiguration, 'nodeCountMin' | 'nodeCountMax'>,
  nodes?: number,
): number {
  if (nodes !== undefined) return nodes;
  return new Prng(seed ^ 0x5eed).between(configuration.nodeCountMin, configuration.nodeCountMax);
}

/**
 * The fault kinds a seed turns on among those allowed (all when `allowed` is absent), with
 * their settings; each kind's draw depends only on the seed, its name and the node count.
 */
export function swarmFaults(
  seed: number,
  nodeCount: number,
  allowed?: readonly string[],
): DrawnFault[] {
  return drawFaults(seed, nodeCount, allowed).map((drawn) => drawn.fault);
}

/** The drawn faults, each with its kind's generator, continued from the draw for scheduling. */
function drawFaults(
  seed: number,
  nodeCount: number,
  allowed: readonly string[] | undefined,
): { fault: DrawnFault; prng: Prng }[] {
  const drawn: { fault: DrawnFault; prng: Prng }[] = [];
  for (const kind of FAULT_KINDS) {
    if (allowed !== undefined && !allowed.includes(kind.name)) continue;
    const prng = new Prng((seed ^ nameHash(kind.name)) >>> 0);
    const settings = kind.draw(prng, nodeCount);
    if (settings !== null) drawn.push({ fault: { kind: kind.name, settings }, prng });
  }
  return drawn;
}

/** A world that counts the workload's answered operations, for a progress display. */
class ObservedWorld extends ClusterWorld {
  answered = 0;
  counting = true;
  onAnswer: ((answered: number) => void) | null = null;
  private readonly counted = new WeakSet<(reply: ClientReply) => void>();

  override submit(id: string, request: ClientRequest, onReply: (reply: ClientReply) => void): void {
    // A request to a paused node is submitted again when it resumes: count it once.
    if (!this.counting || this.counted.has(onReply)) return super.submit(id, request, onReply);
    const counting = (reply: ClientReply): void => {
      this.answered++;
      this.onAnswer?.(this.answered);
      onReply(reply);
    };
    this.counted.add(counting);
    super.submit(id, request, counting);
  }
}

/** A world built for a seed, with its faults scheduled: what both kinds of run share. */
interface SwarmStage {
  readonly world: ObservedWorld;
  readonly faults: readonly DrawnFault[];
  readonly injected: InjectedFault[];
  readonly worldStartMs: number;
  /** When the workload begins (the cluster formed and was prepared); when it failed, then. */
  readonly startMs: number;
  readonly phaseMs: number;
  /** Why the workload cannot run (the cluster did not form, or was not prepared), or null. */
  readonly problem: string | null;
}

/**
 * Builds the world of a seed (the keyspaces, the faults' network rates, `extra` options),
 * waits for the cluster to form, runs `prepare` (which answers what went wrong, or null),
 * and schedules the drawn faults over the safety phase, which starts after both.
 */
function stageSwarm(
  seed: number,
  nodeCount: number,
  operations: number,
  keyspaces: readonly Keyspace[],
  options: SwarmOptions,
  extra: Partial<ClusterWorldOptions>,
  prepare: (world: ClusterWorld) => string | null = () => null,
): SwarmStage {
  for (const name of options.faults ?? []) {
    assert(FAULT_KIND_NAMES.includes(name), `no fault kind ${name}`);
  }
  assert(nodeCount >= 1 && nodeCount <= NODE_COUNT_MAX, `node count ${nodeCount} out of range`);
  assert(Number.isSafeInteger(operations) && operations >= 1, 'a run has operations');
  const drawn = drawFaults(seed, nodeCount, options.faults);
  const faults = drawn.map(({ fault }) => fault);
  let worldOptions: ClusterWorldOptions = {
    seed,
    nodeCount,
    keyspaces,
    commitMsMin: 1,
    commitMsMax: 20,
    skipFsync: options.skipFsync ?? false,
    ...extra,
  };
  for (const fault of faults) {
    const extraOfKind = kindOf(fault.kind).worldOptions?.(fault.settings);
    if (extraOfKind !== undefined) worldOptions = { ...worldOptions, ...extraOfKind };
  }
  const world = new ObservedWorld(worldOptions);
  const worldStartMs = world.nowMs;
  const injected: InjectedFault[] = [];
  const phaseMs = Math.max(SAFETY_PHASE_MS, operations * SAFETY_PHASE_MS_PER_OPERATION);
  const stage = { world, faults, injected, worldStartMs, phaseMs };
  if (!world.waitFormed()) {
    return { ...stage, startMs: worldStartMs, problem: 'the cluster did not form' };
  }
  let problem: string | null;
  try {
    problem = prepare(world);
  } catch (error) {
    problem = `the run stopped while preparing: ${stoppedBy(error)}`;
  }
  if (problem !== null) return { ...stage, startMs: world.nowMs, problem };
  const startMs = world.nowMs;
  const onProgress = options.onProgress;
  if (onProgress !== undefined) world.onAnswer = (answered) => onProgress(answered, operations);
  for (const { fault, prng } of drawn) {
    const record = (atMs: number, description: string): void => {
      injected.push({ atMs: atMs - worldStartMs, kind: fault.kind, description });
    };
    kindOf(fault.kind).schedule(
      {
        world,
        prng,
        worldStartMs,
        startMs,
        phaseMs,
        at: (atMs, action) => {
          // Faults end when the liveness phase calms the network; what is still to come then
          // is called off.
          const calms = world.calmCount;
          world.at(atMs, () => {
            if (world.calmCount !== calms) return;
            const description = action();
            if (description !== null) record(world.nowMs, description);
          });
        },
        record,
      },
      fault.settings,
    );
  }
  return { ...stage, startMs, problem: null };
}

/** The result of a staged run, its faults as they happened sorted by time. */
function stageResult(
  seed: number,
  configuration: string,
  nodeCount: number,
  operations: number,
  stage: SwarmStage,
  history: History,
  anomalies: readonly string[],
  strong?: Pick<SwarmResult, 'checks' | 'registerKinds'>,
): SwarmResult {
  stage.injected.sort((a, b) => a.atMs - b.atMs);
  return {
    seed,
    configuration,
    nodeCount,
    operations,
    faults: stage.faults,
    injected: stage.injected,
    workloadStartMs: stage.startMs - stage.worldStartMs,
    history,
    anomalies,
    ...strong,
  };
}

/** Runs one seed of a configuration, eventual, strong or chain (see the file's opening). */
export function runSwarmSeed(seed: number, options: SwarmOptions = {}): SwarmResult {
  const name = options.configuration ?? DEFAULT_CONFIGURATION;
  const linearizable = linearizableSwarmConfiguration(name);
  if (linearizable !== undefined) return runLinearizableSwarmSeed(seed, linearizable, options);
  assert(options.strongQuorumOfOne !== true, 'quorums of one are a control of strong keyspaces');
  assert(options.chainAcceptOlderEpochs !== true, 'old epochs are a control of chain keyspaces');
  const configuration = swarmConfiguration(name);
  assert(configuration !== undefined, `no swarm configuration ${name}`);
  const nodeCount = swarmNodeCount(seed, configuration, options.nodes);
  const operations = options.operations ?? DEFAULT_OPERATIONS;
  const keyspace = configuration.keyspace(nodeCount);
  assert(keyspace.id === 0 && keyspace.name === 'default', 'the judge reads keyspace default');
  assert(keyspace.n === 'all' || keyspace.n <= nodeCount, 'a key needs N nodes');
  const stage = stageSwarm(seed, nodeCount, operations, [keyspace], options, {});
  const finish = (history: History, anomalies: readonly string[]): SwarmResult =>
    stageResult(seed, configuration.name, nodeCount, operations, stage, history, anomalies);
  if (stage.problem !== null) return finish([], [stage.problem]);
  const { world, startMs, phaseMs } = stage;
  const fallbacks = watchFallbacks(world);
  const history = runWorkload(world, {
    seed,
    clients: SWARM_CLIENTS,
    operations,
    keys: KEYS_PER_CLIENT,
    distribution: 'zipfian',
    keyspace: 'default',
    readFraction: configuration.readFraction,
    deleteFraction: configuration.deleteFraction,
    thinkMsMax: 20,
    timeoutMs: 1_000,
    keysPerClient: true,
  });
  world.counting = false;
  world.runUntil(() => world.nowMs >= startMs + phaseMs + 3_000, phaseMs + 3_000);
  const judgement = judgeRun(world, history, {
    settleTimeoutMs: LIVENESS_TIMEOUT_MS,
    keyspace,
    fallbacks,
    requireSettled: options.skipFsync !== true,
  });
  return finish(history, judgement.anomalies);
}

/**
 * One seed of a strong or chain configuration: the same faults over a register workload on
 * shared keys, then judgeLinearizableRun: for chains, every chain whole again; final reads
 * of every key through every node, the history checked linearizable, the versions checked
 * against it.
 */
function runLinearizableSwarmSeed(
  seed: number,
  configuration: LinearizableSwarmConfiguration,
  options: SwarmOptions,
): SwarmResult {
  const consistency = configuration.consistency;
  assert(
    options.strongQuorumOfOne !== true || consistency === 'strong',
    'quorums of one are a control of strong keyspaces',
  );
  assert(
    options.chainAcceptOlderEpochs !== true || consistency === 'chain',
    'old epochs are a control of chain keyspaces',
  );
  const nodeCount = swarmNodeCount(seed, configuration, options.nodes);
  const operations = options.operations ?? DEFAULT_OPERATIONS;
  const keyspaces = configuration.keyspaces(nodeCount);
  for (const keyspace of keyspaces) {
    assert(keyspace.consistency === consistency, `keyspace ${keyspace.name} is ${consistency}`);
    assert(keyspace.n !== 'all' && keyspace.n <= nodeCount, 'a key needs N nodes');
  }
  const keys = registerKeys(keyspaces, configuration.keysPerKeyspace);
  const chainLength = consistency === 'chain' ? chainLengthOf(keyspaces) : undefined;
  const stage =
    consistency === 'strong'
      ? stageSwarm(seed, nodeCount, operations, keyspaces, options, {
          ...(options.strongQuorumOfOne === true ? { strongQuorumOfOne: true } : {}),
        })
      : stageSwarm(
          seed,
          nodeCount,
          operations,
          [DEFAULT_KEYSPACE],
          options,
          { ...(options.chainAcceptOlderEpochs === true ? { chainAcceptOlderEpochs: true } : {}) },
          (world) => createChainKeyspaces(world, keyspaces, keys),
        );
  const finish = (
    history: History,
    anomalies: readonly string[],
    linearizable?: Pick<SwarmResult, 'checks' | 'registerKinds'>,
  ): SwarmResult =>
    stageResult(
      seed,
      configuration.name,
      nodeCount,
      operations,
      stage,
      history,
      anomalies,
      linearizable,
    );
  if (stage.problem !== null) return finish([], [stage.problem]);
  const { world, startMs, phaseMs } = stage;
  let workload: RegisterWorkloadResult | null = null;
  try {
    workload = runRegisterWorkload(world, {
      seed,
      clients: SWARM_CLIENTS,
      operations,
      keys,
      keySkew: configuration.keySkew,
      mix: configuration.mix,
      thinkMsMax: 20,
      timeoutMs: 1_000,
      consistency,
    });
    world.counting = false;
    world.runUntil(() => world.nowMs >= startMs + phaseMs + 3_000, phaseMs + 3_000);
    const judgement = judgeLinearizableRun(world, workload.history, {
      settleTimeoutMs: LIVENESS_TIMEOUT_MS,
      ...(chainLength === undefined ? {} : { chainLength, retryUnavailableReads: true }),
      keys,
      firstClient: SWARM_CLIENTS,
      observations: workload.observations,
      checkBudgetMs: CHECK_BUDGET_MS,
    });
    return finish(judgement.history, judgement.anomalies, {
      checks: judgement.checks,
      registerKinds: workload.kinds,
    });
  } catch (error) {
    // A node's assertion (or the simulator's) stops the run: a bug found, reported with
    // the seed like any anomaly rather than ending a range of seeds.
    return finish(workload?.history ?? [], [`the run stopped: ${stoppedBy(error)}`]);
  }
}

/** What stopped a run: the error's message and where it was thrown. */
export function stoppedBy(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // The first frame past the assertion helper names the rule's owner.
  const frame = [...(error.stack ?? '').matchAll(/^\s+at (.+)$/gm)]
    .map((match) => match[1]!)
    .find((line) => !line.includes('/core/bytes.ts'));
  return frame === undefined ? error.message : `${error.message} (at ${frame})`;
}

/** The n every chain keyspace of a configuration shares: the replicas of each chain. */
function chainLengthOf(keyspaces: readonly Keyspace[]): number {
  const n = keyspaces[0]?.n;
  assert(typeof n === 'number', 'chain keyspaces have a fixed n');
  assert(
    keyspaces.every((keyspace) => keyspace.n === n),
    'chain keyspaces share their chains, so their n',
  );
  return n;
}

/**
 * How long a new chain keyspace may take to reach every node and answer every key. The
 * network faults of the seed are in force already (loss, long tails, duplication): a long
 * tail can get a node marked down and its chains changed before the keys answer.
 */
const CHAIN_READY_TIMEOUT_MS = 30_000;

/**
 * Creates the chain keyspaces through the first node, then waits until every node holds a
 * map with all of them and every key answers a read through the first node: the safety
 * phase starts on chains that work. Answers what went wrong, or null.
 */
function createChainKeyspaces(
  world: ClusterWorld,
  keyspaces: readonly Keyspace[],
  keys: readonly RegisterKey[],
): string | null {
  const via = world.ids[0]!;
  const deadlineMs = world.nowMs + CHAIN_READY_TIMEOUT_MS;
  const holds = (id: string, name: string): boolean =>
    world
      .node(id)
      .clusterMap()
      ?.keyspaces.some((held) => held.name === name) === true;
  for (const keyspace of keyspaces) {
    const { n, r, w, consistency, conflicts, durability } = keyspace;
    let created = false;
    let why = 'no answer';
    while (!created && world.nowMs < deadlineMs) {
      const reply = ask(
        world,
        via,
        {
          op: 'createKeyspace',
          keyspace: keyspace.name,
          spec: { n, r, w, consistency, conflicts, durability },
        },
        deadlineMs - world.nowMs,
      );
      // A change that timed out may have been made all the same: the map says so.
      created = reply?.ok === true || holds(via, keyspace.name);
      if (created) break;
      if (reply !== null && !reply.ok) why = `${reply.error.code} (${reply.error.message})`;
      // A new chain keyspace gives every node a batch per chain to write, and the next map
      // change may wait behind them past its timeout: it is tried again.
      if (reply !== null && !reply.ok && reply.error.code !== 'RINGKV_UNAVAILABLE') break;
      world.runFor(READY_RETRY_MS);
    }
    if (!created) return `creating chain keyspace ${keyspace.name} failed: ${why}`;
  }
  const known = world.runUntil(
    () =>
      world.ids.every((id) => {
        const map = world.node(id).clusterMap();
        return map?.chains !== undefined && keyspaces.every((keyspace) => holds(id, keyspace.name));
      }),
    Math.max(0, deadlineMs - world.nowMs),
  );
  if (!known) return `the chain keyspaces did not reach every node in ${CHAIN_READY_TIMEOUT_MS} ms`;
  for (const key of keys) {
    let answered = false;
    while (!answered && world.nowMs < deadlineMs) {
      answered = ask(world, via, requestOf(key, null), deadlineMs - world.nowMs)?.ok === true;
      // A read refused at once is tried again a little later, not in a loop that stops time.
      if (!answered) world.runFor(READY_RETRY_MS);
    }
    if (!answered) return `${key.historyKey} did not answer a read in ${CHAIN_READY_TIMEOUT_MS} ms`;
  }
  return null;
}

/** The pause between two reads that wait for a new chain keyspace to answer. */
const READY_RETRY_MS = 50;

/** Sends a request and runs the world until its reply, or null after `timeoutMs`. */
function ask(
  world: ClusterWorld,
  id: string,
  request: ClientRequest,
  timeoutMs = CHAIN_READY_TIMEOUT_MS,
): ClientReply | null {
  let reply: ClientReply | null = null;
  world.submit(id, request, (answer) => (reply = answer));
  world.runUntil(() => reply !== null, timeoutMs);
  return reply;
}

/** The workload's keys: `keysPerKeyspace` in each keyspace, interleaved so each has hot ones. */
function registerKeys(keyspaces: readonly Keyspace[], keysPerKeyspace: number): RegisterKey[] {
  assert(keyspaces.length >= 1 && keysPerKeyspace >= 1, 'a linearizable run has keys');
  const keys: RegisterKey[] = [];
  for (let index = 0; index < keysPerKeyspace; index++) {
    for (const keyspace of keyspaces) {
      keys.push({
        keyspace: keyspace.name,
        key: `k${index}`,
        historyKey: `${keyspace.name}/k${index}`,
      });
    }
  }
  return keys;
}

function kindOf(name: string): FaultKind {
  const kind = FAULT_KINDS.find((candidate) => candidate.name === name);
  assert(kind !== undefined, `no fault kind ${name}`);
  return kind;
}
