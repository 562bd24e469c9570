// The membership swarm: one seed runs a cluster of eventual keyspace `default` (N=3 R=2
// W=2) through a random sequence of membership changes (a standby joins, a member leaves, a
// crashed member is removed, a crashed member is replaced by a standby, a change is aborted
// midway) under the recorded client load of workload.ts and under faults: message loss,
// long tails, duplication, reordering, partitions, crashes and restarts aimed at the
// change's receiver, one of its sources or the departing member, pauses and clock jumps.
// When the changes are done the faults stop, every member still in the map comes back, and
// the last change must commit. Then:
//
// - the judge of judge.ts over the final members: every acknowledged write there (versions
//   judged), replicas agreeing, the session checker where it is promised;
// - every member stores rows only of the partitions it replicates under the final owners
//   (no stray copies once the drop delay has passed), and every key with a row anywhere
//   has one on each of its N replicas;
// - the owners share the partitions evenly (Q/M or Q/M + 1 each);
// - no deleted value comes back: the final reads give the same answers again after
//   anti-entropy has had its time;
// - no node crashed for good is still a member, and a node no longer a member that is up
//   refuses clients.
//
// Voters (the founders here, at most five) are never asked to leave or go: membership.ts
// refuses that. Everything is drawn from the seed, each concern from its own generator, so
// a run replays exactly. No Promises, no real time.

import type { History } from '../check/history.ts';
import { assert, fromUtf8, utf8 } from '../core/bytes.ts';
import { isStandby, votersOf, type ClusterMap } from '../core/cluster/cluster-map.ts';
import { ownersOf, receiversOf } from '../core/cluster/membership.ts';
import { DEFAULT_KEYSPACE, type Keyspace } from '../core/keyspace.ts';
import { Prng } from '../core/prng.ts';
import type { ClientReply, ClientRequest, MembershipRequest } from '../core/requests.ts';
import { preferenceList } from '../core/ring/preference-list.ts';
import { dataKey, dataPrefix, dataPrefixEnd } from '../core/store/layout.ts';
import { ClusterWorld } from './cluster-world.ts';
import { judgeRun, watchFallbacks, type FallbackWatch } from './judge.ts';
import { describePartition, randomPartition } from './network-faults.ts';
import { stoppedBy, type InjectedFault } from './swarm.ts';
import { runWorkload } from './workload.ts';

export interface MembershipSwarmOptions {
  /** Membership changes to make (each may be aborted); drawn from 3 to 5 when absent. */
  readonly changes?: number;
  /** False: no faults at all, only the changes under the load (a calm run). */
  readonly faults?: boolean;
  /**
   * Mechanisms turned off, for negative controls and their positive twins: no anti-entropy,
   * no read repair, and receivers that report copies they never made.
   */
  readonly antiEntropy?: boolean;
  readonly readRepair?: boolean;
  readonly handoffCopies?: boolean;
  /** The conflict policy of keyspace `default` (`lww` when absent). */
  readonly conflicts?: Keyspace['conflicts'];
}

export type ChangeOutcome = 'committed' | 'aborted' | 'not made';

/** One membership change the run asked for, and how it ended. */
export interface ChangeRecord {
  /** Virtual ms since the world began, when the change was asked for. */
  readonly atMs: number;
  readonly request: MembershipRequest;
  /** Whether the run asked for an abort of it. */
  readonly abortAsked: boolean;
  outcome: ChangeOutcome;
  /** Virtual ms from the request to the change's end (commit or abort); null if not made. */
  tookMs: number | null;
  /** Why a change was not made (the last refusal), or ''. */
  why: string;
}

export interface MembershipSwarmResult {
  readonly seed: number;
  readonly conflicts: Keyspace['conflicts'];
  readonly founders: number;
  readonly changes: readonly ChangeRecord[];
  /** Faults as they happened, in virtual time order. */
  readonly injected: readonly InjectedFault[];
  /** Network fault rates in force until the end phase. */
  readonly network: Readonly<Record<string, number>>;
  readonly history: History;
  /** The members and owners of the final map. */
  readonly members: readonly string[];
  readonly owners: readonly string[];
  /** Virtual ms from the start of the load to the judge's verdict. */
  readonly virtualMs: number;
  readonly anomalies: readonly string[];
}

const KEYSPACE = DEFAULT_KEYSPACE;
const N = 3;
const CLIENTS = 6;
const KEYS_PER_CLIENT = 10;
/** A ceiling on the load (it stops when the changes are done, long before). */
const OPERATIONS_MAX = 50_000;
const OWNERS_MIN = 3;
const OWNERS_MAX = 6;
/** Nodes the world may hold in all: founders, standbys, and standbys started later. */
const NODES_MAX = 10;
/** How long the changes may take in all before the run stops asking for more. */
const CHANGES_MS_MAX = 240_000;
/** One change's budget once faults have stopped, to commit (or end its abort). */
const LAST_CHANGE_MS_MAX = 90_000;
/** The node's delay before it drops the partitions it gave away, and a margin. */
const DROP_WAIT_MS = 8_000;
const SETTLE_TIMEOUT_MS = 60_000;
/** Anti-entropy's time before the final reads are made again. */
const RESURRECTION_WAIT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 20_000;
const POLL_MS = 250;

/** A small stable hash of a name, so each concern of a seed gets its own generator. */
function streamOf(seed: number, name: string): Prng {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  return new Prng((seed ^ hash) >>> 0);
}

/** The command that replays a seed, for failure messages. */
export function membershipReplay(seed: number, conflicts: Keyspace['conflicts'] = 'lww'): string {
  const policy = conflicts === 'lww' ? '' : ` MEMBERSHIP_CONFLICTS=${conflicts}`;
  return `MEMBERSHIP_SEEDS=${seed}${policy} npx node --test test/sim/membership-swarm.test.ts`;
}

/** The run in a few lines, for a failure message. */
export function describeMembershipRun(result: MembershipSwarmResult): string {
  const changes = result.changes.map((change) => {
    const request = change.request;
    const what =
      request.kind === 'replace'
        ? `replace ${request.id} by ${request.by}`
        : request.kind === 'abort'
          ? 'abort'
          : `${request.kind} ${request.id}`;
    return `${what}${change.abortAsked ? ' (abort asked)' : ''}: ${change.outcome}`;
  });
  return [
    `seed ${result.seed} (${result.conflicts}): ${result.founders} founders; changes: ${changes.join('; ')}`,
    `network: ${JSON.stringify(result.network)}`,
    ...result.injected.map((fault) => `  ${fault.atMs} ms: ${fault.description}`),
    ...result.anomalies.map((anomaly) => `  anomaly: ${anomaly}`),
    `replay: ${membershipReplay(result.seed, result.conflicts)}`,
  ].join('\n');
}

/** Runs one seed (see the file's opening). */
export function runMembershipSeed(
  seed: number,
  options: MembershipSwarmOptions = {},
): MembershipSwarmResult {
  const layout = streamOf(seed, 'layout');
  const faultsOn = options.faults !== false;
  const founders = layout.between(3, 4);
  const standbys = layout.between(2, 3);
  const changesWanted = options.changes ?? layout.between(3, 5);
  assert(changesWanted >= 1, 'a run makes changes');
  const network = faultsOn ? drawNetwork(streamOf(seed, 'network')) : {};
  const keyspace: Keyspace = { ...KEYSPACE, conflicts: options.conflicts ?? KEYSPACE.conflicts };
  const world = new ClusterWorld({
    seed,
    keyspaces: [keyspace],
    nodeCount: founders,
    commitMsMin: 1,
    commitMsMax: 20,
    requestTimeoutMs: 800,
    ...network,
    ...(options.antiEntropy === false ? { antiEntropy: false } : {}),
    ...(options.readRepair === false ? { readRepair: false } : {}),
    ...(options.handoffCopies === false ? { handoffCopies: false } : {}),
  });
  const injected: InjectedFault[] = [];
  const worldStartMs = world.nowMs;
  const record = (kind: string, description: string): void => {
    injected.push({ atMs: world.nowMs - worldStartMs, kind, description });
  };
  const changes: ChangeRecord[] = [];
  const anomalies: string[] = [];
  const finish = (history: History, startMs: number): MembershipSwarmResult => {
    const map = latestMap(world);
    return {
      seed,
      conflicts: keyspace.conflicts,
      founders,
      changes,
      injected,
      network,
      history,
      members: map?.members.map((member) => member.id) ?? [],
      owners: map === null ? [] : ownersOf(map),
      virtualMs: world.nowMs - startMs,
      anomalies,
    };
  };
  if (!world.waitFormed()) {
    anomalies.push('the cluster did not form');
    return finish([], world.nowMs);
  }
  let nextNodeNumber = founders + 1;
  const startStandby = (): string => {
    const id = `n${nextNodeNumber++}`;
    world.addNode(id, `n${1 + ((nextNodeNumber + seed) % founders)}`);
    return id;
  };
  for (let i = 0; i < standbys; i++) startStandby();
  const known = world.runUntil(
    () =>
      world.nodeIds.every(
        (id) =>
          world
            .node(id)
            .clusterMap()
            ?.members.some((member) => member.id === id) === true,
      ),
    20_000,
  );
  if (!known) {
    anomalies.push('the standbys were not added to the map');
    return finish([], world.nowMs);
  }

  // Nodes crashed on purpose for a remove or a replace: they stay down unless the change is
  // aborted or not made (the operator then brings them back).
  const gone = new Set<string>();
  const startMs = world.nowMs;
  let conductorDone = false;
  const members = (): string[] => {
    const map = latestMap(world);
    return map === null ? [] : map.members.map((member) => member.id);
  };
  const faults = new FaultPlan(world, streamOf(seed, 'faults'), record, gone);
  if (faultsOn) faults.scheduleBackground(startMs, changesWanted * 9_000, members);
  const conductor = new Conductor(
    world,
    streamOf(seed, 'conductor'),
    changesWanted,
    changes,
    worldStartMs,
    gone,
    faultsOn ? faults : null,
    startStandby,
    record,
    () => {
      conductorDone = true;
    },
  );
  world.at(world.nowMs + 1_000, () => conductor.next());
  const fallbacks = watchFallbacks(world, 1, members);
  let history: History;
  try {
    history = runWorkload(world, {
      seed,
      clients: CLIENTS,
      operations: OPERATIONS_MAX,
      keys: KEYS_PER_CLIENT,
      distribution: 'zipfian',
      keyspace: KEYSPACE.name,
      readFraction: 0.3,
      deleteFraction: 0.15,
      thinkMsMax: 400,
      timeoutMs: 1_000,
      keysPerClient: true,
      via: members,
      stop: () => conductorDone || world.nowMs - startMs > CHANGES_MS_MAX,
    });
  } catch (error) {
    anomalies.push(`the run stopped: ${stoppedBy(error)}`);
    return finish([], startMs);
  }
  if (!conductorDone) anomalies.push(`the changes took longer than ${CHANGES_MS_MAX} ms`);
  conductor.stop();

  try {
    judgeEnd(world, keyspace, history, gone, fallbacks, anomalies);
  } catch (error) {
    // A node's assertion (or the simulator's) stops the run: a bug found, reported with the
    // seed like any anomaly.
    anomalies.push(`the run stopped while judging: ${stoppedBy(error)}`);
  }
  return finish(history, startMs);
}

/**
 * The end of a run: faults stop, the members come back, the last change must end; then every
 * check of the file's opening, each problem one line in `anomalies`.
 */
function judgeEnd(
  world: ClusterWorld,
  keyspace: Keyspace,
  history: History,
  gone: ReadonlySet<string>,
  fallbacks: FallbackWatch,
  anomalies: string[],
): void {
  const members = (): string[] => latestMap(world)?.members.map((member) => member.id) ?? [];
  // The end: faults stop, members come back, the last change must end.
  world.calmNetwork();
  for (const id of members()) if (!world.isUp(id) && !gone.has(id)) world.restart(id);
  const ended = world.runUntil(() => {
    const map = latestMap(world);
    return map !== null && map.change === undefined && mapsAgree(world, map);
  }, LAST_CHANGE_MS_MAX);
  const map = latestMap(world);
  if (!ended || map === null) {
    const change = map?.change;
    anomalies.push(
      change === undefined
        ? 'the members did not agree on the last map once faults stopped'
        : `the last change (${change.kind} ${change.subject}) did not end within ${LAST_CHANGE_MS_MAX} ms ` +
            `of the faults stopping; copies reported by ${change.copied.join(', ') || 'none'} of ` +
            `${receiversOf(map!).join(', ')}`,
    );
    return;
  }
  world.runFor(DROP_WAIT_MS);
  const finalMembers = map.members.map((member) => member.id);
  for (const id of finalMembers) {
    if (gone.has(id)) anomalies.push(`${id} was crashed for good but is still a member`);
  }
  const judgement = judgeRun(world, history, {
    settleTimeoutMs: SETTLE_TIMEOUT_MS,
    keyspace,
    fallbacks,
    members: finalMembers,
  });
  anomalies.push(...judgement.anomalies);
  const finalMap = latestMap(world)!;
  anomalies.push(...placementProblems(world, finalMap, history));
  anomalies.push(...balanceProblems(finalMap));
  anomalies.push(...departedProblems(world, finalMap));
  anomalies.push(...resurrections(world, finalMap, history));
}

/** Network fault rates for a seed: each kind on for some seeds. */
function drawNetwork(prng: Prng): Record<string, number> {
  const network: Record<string, number> = {};
  if (prng.chance(0.5)) network.lossRate = prng.next() * 0.03;
  if (prng.chance(0.4)) network.tailRate = prng.next() * 0.02;
  if (prng.chance(0.3)) network.duplicateRate = prng.next() * 0.05;
  if (prng.chance(0.3)) network.reorderRate = prng.next() * 0.05;
  return network;
}

/** The newest map among the nodes that are up and hold themselves members. */
function latestMap(world: ClusterWorld): ClusterMap | null {
  let best: ClusterMap | null = null;
  for (const id of world.nodeIds) {
    if (!world.isUp(id)) continue;
    const map = world.node(id).clusterMap();
    if (map === null || !map.members.some((member) => member.id === id)) continue;
    if (best === null || map.epoch > best.epoch) best = map;
  }
  return best;
}

/** Every member of `map` is up and holds a map of its epoch. */
function mapsAgree(world: ClusterWorld, map: ClusterMap): boolean {
  return map.members.every(
    (member) => world.isUp(member.id) && world.node(member.id).clusterMap()?.epoch === map.epoch,
  );
}

/**
 * Faults of the whole run (partitions over the members of the moment, crashes of any of
 * them, pauses, a clock jump) and those aimed at a change (its receiver, a source, the
 * departing member). Every crash is followed by a restart; faults still to come when the
 * network is calmed are called off.
 */
class FaultPlan {
  private readonly world: ClusterWorld;
  private readonly prng: Prng;
  private readonly record: (kind: string, description: string) => void;
  private readonly gone: ReadonlySet<string>;

  constructor(
    world: ClusterWorld,
    prng: Prng,
    record: (kind: string, description: string) => void,
    gone: ReadonlySet<string>,
  ) {
    this.world = world;
    this.prng = prng;
    this.record = record;
    this.gone = gone;
  }

  scheduleBackground(startMs: number, phaseMs: number, members: () => string[]): void {
    const { prng, world } = this;
    const partitions = prng.chance(0.5) ? prng.between(1, 2) : 0;
    for (let i = 0; i < partitions; i++) {
      const atMs = startMs + prng.between(0, phaseMs);
      const healMs = prng.between(500, 3_000);
      const shapeSeed = prng.nextUint32();
      this.at(atMs, () => {
        const ids = members().filter((id) => world.isUp(id));
        if (ids.length < 2) return;
        const shape = randomPartition(ids, new Prng(shapeSeed));
        world.applyPartition(shape);
        this.record('partition', `partition: ${describePartition(shape)}`);
        this.at(world.nowMs + healMs, () => {
          world.healAll();
          this.record('partition', 'the partition heals');
        });
      });
    }
    const crashes = prng.chance(0.5) ? prng.between(1, 2) : 0;
    for (let i = 0; i < crashes; i++) {
      const atMs = startMs + prng.between(0, phaseMs);
      const downMs = prng.between(200, 3_000);
      const pick = prng.nextUint32();
      this.at(atMs, () => {
        const ids = members().filter((id) => world.isUp(id));
        if (ids.length === 0) return;
        this.crashFor(ids[pick % ids.length]!, downMs, 'crash');
      });
    }
    const pauses = prng.chance(0.4) ? prng.between(1, 2) : 0;
    for (let i = 0; i < pauses; i++) {
      const atMs = startMs + prng.between(0, phaseMs);
      const durationMs = prng.between(100, 2_000);
      const pick = prng.nextUint32();
      this.at(atMs, () => {
        const ids = members();
        const id = ids[pick % ids.length]!;
        world.pause(id, durationMs);
        this.record('pause', `${id} pauses for ${durationMs} ms`);
      });
    }
    if (prng.chance(0.3)) {
      const atMs = startMs + prng.between(0, phaseMs);
      const deltaMs = prng.between(-10_000, 10_000);
      const pick = prng.nextUint32();
      this.at(atMs, () => {
        const ids = members();
        const id = ids[pick % ids.length]!;
        world.jumpClock(id, deltaMs);
        this.record('clock-jump', `${id}'s clock jumps by ${deltaMs} ms`);
      });
    }
  }

  /**
   * Maybe crashes one node the change involves, a while after it is asked for, and
   * restarts it later: the receiver, a source, or the departing member.
   */
  aimAtChange(map: ClusterMap, request: MembershipRequest): void {
    const { prng, world } = this;
    if (request.kind === 'abort' || !prng.chance(0.6)) return;
    const receivers = receiversOf(map);
    const subject = request.id;
    const sources = ownersOf(map).filter((id) => id !== subject && !receivers.includes(id));
    const roles: { role: string; id: string }[] = [];
    const receiver = receivers.length > 0 ? prng.pick(receivers) : undefined;
    if (receiver !== undefined) roles.push({ role: 'receiver', id: receiver });
    if (sources.length > 0) roles.push({ role: 'source', id: prng.pick(sources) });
    if (request.kind === 'leave') roles.push({ role: 'departing member', id: subject });
    if (roles.length === 0) return;
    const { role, id } = prng.pick(roles);
    const atMs = world.nowMs + prng.between(0, 8_000);
    const downMs = prng.between(300, 4_000);
    this.at(atMs, () => this.crashFor(id, downMs, `crash of the ${role}`));
  }

  private crashFor(id: string, downMs: number, kind: string): void {
    const world = this.world;
    if (!world.isUp(id) || this.gone.has(id)) return;
    world.crash(id);
    this.record(kind, `${id} crashes (${kind})`);
    this.at(world.nowMs + downMs, () => {
      if (world.isUp(id) || this.gone.has(id)) return;
      world.restart(id);
      this.record(kind, `${id} restarts`);
    });
  }

  /** Runs `action` at `atMs` unless the network has been calmed since it was scheduled. */
  private at(atMs: number, action: () => void): void {
    const calms = this.world.calmCount;
    this.world.at(atMs, () => {
      if (this.world.calmCount === calms) action();
    });
  }
}

/**
 * Makes the run's membership changes one after another: picks one the map allows, crashes
 * the member a remove or a replace is about first, asks for the change through a member,
 * maybe asks for its abort a while later, and waits until the map shows it ended.
 */
class Conductor {
  private readonly world: ClusterWorld;
  private readonly prng: Prng;
  private remaining: number;
  private readonly changes: ChangeRecord[];
  private readonly worldStartMs: number;
  private readonly gone: Set<string>;
  private readonly faults: FaultPlan | null;
  private readonly startStandby: () => string;
  private readonly record: (kind: string, description: string) => void;
  private readonly onDone: () => void;
  private stopped = false;

  constructor(
    world: ClusterWorld,
    prng: Prng,
    changes: number,
    records: ChangeRecord[],
    worldStartMs: number,
    gone: Set<string>,
    faults: FaultPlan | null,
    startStandby: () => string,
    record: (kind: string, description: string) => void,
    onDone: () => void,
  ) {
    this.world = world;
    this.prng = prng;
    this.remaining = changes;
    this.changes = records;
    this.worldStartMs = worldStartMs;
    this.gone = gone;
    this.faults = faults;
    this.startStandby = startStandby;
    this.record = record;
    this.onDone = onDone;
  }

  stop(): void {
    this.stopped = true;
  }

  /** Picks and starts the next change, or waits for the map to be free of one. */
  next(): void {
    if (this.stopped) return;
    if (this.remaining === 0) return this.onDone();
    const map = latestMap(this.world);
    if (map === null || map.change !== undefined) return this.later(() => this.next());
    const voters = votersOf(map);
    const owners = ownersOf(map);
    const standbysUp = map.members
      .filter((member) => isStandby(member) && this.world.isUp(member.id))
      .map((member) => member.id);
    if (standbysUp.length === 0 && this.world.nodeIds.length < NODES_MAX) {
      const id = this.startStandby();
      this.record('standby', `${id} starts and asks to join as a standby`);
      return this.later(() => this.next(), 2_000);
    }
    const goable = owners.filter((id) => !voters.includes(id));
    const goableUp = goable.filter((id) => this.world.isUp(id));
    const kinds: MembershipRequest['kind'][] = [];
    if (standbysUp.length > 0 && owners.length < OWNERS_MAX) kinds.push('join', 'join');
    if (owners.length > OWNERS_MIN && goableUp.length > 0) kinds.push('leave');
    if (owners.length > OWNERS_MIN && goable.length > 0) kinds.push('remove');
    if (standbysUp.length > 0 && goable.length > 0) kinds.push('replace');
    if (kinds.length === 0) {
      // Only voters own partitions and no standby is up: wait for one to come back.
      return this.later(() => this.next(), 1_000);
    }
    const kind = this.prng.pick(kinds);
    let request: MembershipRequest;
    let victim: string | null = null;
    if (kind === 'join') {
      request = { kind, id: this.prng.pick(standbysUp) };
    } else if (kind === 'leave') {
      request = { kind, id: this.prng.pick(goableUp) };
    } else if (kind === 'remove') {
      victim = this.prng.pick(goable);
      request = { kind, id: victim };
    } else {
      victim = this.prng.pick(goable);
      request = { kind: 'replace', id: victim, by: this.prng.pick(standbysUp) };
    }
    this.remaining--;
    const abortAsked = this.prng.chance(0.25);
    const change: ChangeRecord = {
      atMs: this.world.nowMs - this.worldStartMs,
      request,
      abortAsked,
      outcome: 'not made',
      tookMs: null,
      why: '',
    };
    this.changes.push(change);
    if (victim === null) return this.ask(change, map.epoch, 1);
    // The member is lost for good: crashed, then removed or replaced.
    const id = victim;
    this.gone.add(id);
    if (this.world.isUp(id)) {
      this.world.crash(id);
      this.record(
        'lost',
        `${id} crashes for good (to be ${kind === 'remove' ? 'removed' : 'replaced'})`,
      );
    }
    this.later(() => this.ask(change, map.epoch, 1), this.prng.between(300, 2_000));
  }

  /** Asks for the change through a member that is up; `epoch` is the map it was chosen on. */
  private ask(change: ChangeRecord, epoch: number, attempt: number): void {
    if (this.stopped) return;
    const request = change.request;
    const askedMs = this.world.nowMs;
    this.submit(request, (reply) => {
      const map = latestMap(this.world);
      const inProgress =
        map?.change !== undefined &&
        map.change.kind === request.kind &&
        'id' in request &&
        map.change.subject === request.id;
      if (reply?.ok === true || inProgress) {
        const planned = map?.change?.epoch ?? epoch + 1;
        if (map !== null && map.change !== undefined) this.faults?.aimAtChange(map, request);
        if (change.abortAsked) {
          this.later(() => this.abort(change, planned, 1), this.prng.between(200, 6_000));
        }
        return this.waitForEnd(change, planned, askedMs);
      }
      change.why = reply === null ? 'no answer' : reply.ok ? '' : reply.error.message;
      const transient = reply === null || (!reply.ok && reply.error.code === 'RINGKV_UNAVAILABLE');
      if (transient && attempt < 6) {
        return this.later(() => this.ask(change, epoch, attempt + 1), 1_000);
      }
      // Not made: a member crashed for it comes back.
      this.bringBack(request);
      this.later(() => this.next(), 500);
    });
  }

  private abort(change: ChangeRecord, planned: number, attempt: number): void {
    if (this.stopped) return;
    const map = latestMap(this.world);
    if (map === null || map.change?.epoch !== planned) return;
    this.submit({ kind: 'abort' }, (reply) => {
      const ok = reply?.ok === true;
      if (!ok && attempt < 4) this.later(() => this.abort(change, planned, attempt + 1), 1_000);
    });
  }

  /** Waits until the map shows the change `planned` ended, committed or aborted. */
  private waitForEnd(change: ChangeRecord, planned: number, askedMs: number): void {
    if (this.stopped) return;
    const map = latestMap(this.world);
    if (map === null || map.change?.epoch === planned || map.epoch <= planned) {
      return this.later(() => this.waitForEnd(change, planned, askedMs));
    }
    const request = change.request;
    const newcomer =
      request.kind === 'join' ? request.id : request.kind === 'replace' ? request.by : null;
    const departing = request.kind === 'join' || request.kind === 'abort' ? null : request.id;
    const committed =
      newcomer !== null
        ? map.owners.includes(newcomer)
        : departing !== null && !map.members.some((member) => member.id === departing);
    change.outcome = committed ? 'committed' : 'aborted';
    change.tookMs = this.world.nowMs - askedMs;
    if (!committed) this.bringBack(request);
    else if ((request.kind === 'remove' || request.kind === 'replace') && this.prng.chance(0.4)) {
      // The node taken out is started again over its old disk (an operator's mistake): it
      // must learn it is no longer a member, and refuse its clients.
      const id = request.id;
      this.later(
        () => {
          if (this.world.isUp(id)) return;
          this.gone.delete(id);
          this.world.restart(id);
          this.record('lost', `${id}, no longer a member, is started again over its old disk`);
        },
        this.prng.between(500, 5_000),
      );
    }
    this.later(() => this.next(), this.prng.between(500, 3_000));
  }

  /** A member crashed for a remove or a replace that did not happen is started again. */
  private bringBack(request: MembershipRequest): void {
    if (request.kind !== 'remove' && request.kind !== 'replace') return;
    const id = request.id;
    this.gone.delete(id);
    if (!this.world.isUp(id)) {
      this.world.restart(id);
      this.record('lost', `${id} comes back (its ${request.kind} did not happen)`);
    }
  }

  /** Sends a membership request through a member that is up; `onReply(null)`: no answer. */
  private submit(change: MembershipRequest, onReply: (reply: ClientReply | null) => void): void {
    const map = latestMap(this.world);
    const via = (map?.members ?? [])
      .filter((member) => !isStandby(member) && this.world.isUp(member.id))
      .map((member) => member.id);
    if (via.length === 0) return onReply(null);
    const request: ClientRequest = { op: 'changeMembership', keyspace: '', change, dryRun: false };
    let answered = false;
    this.world.submit(this.prng.pick(via), request, (reply) => {
      if (answered) return;
      answered = true;
      onReply(reply);
    });
    this.world.at(this.world.nowMs + REQUEST_TIMEOUT_MS, () => {
      if (answered) return;
      answered = true;
      onReply(null);
    });
  }

  private later(action: () => void, delayMs = POLL_MS): void {
    this.world.at(this.world.nowMs + delayMs, () => {
      if (!this.stopped) action();
    });
  }
}

/**
 * Rows a member holds of partitions it does not replicate under the final owners, and keys
 * of the history that have a row somewhere but not on each of their N replicas.
 */
function placementProblems(world: ClusterWorld, map: ClusterMap, history: History): string[] {
  const problems: string[] = [];
  const members = map.members.map((member) => member.id);
  for (const id of members) {
    const rows = world.storage(id).scan({
      start: dataPrefix(KEYSPACE.id),
      end: dataPrefixEnd(KEYSPACE.id),
      limit: 1_000_000,
    });
    const stray = new Map<number, number>();
    for (const row of rows) {
      const partition = (row.key[5]! << 8) | row.key[6]!;
      if (!preferenceList(map.owners, partition, N).includes(id)) {
        stray.set(partition, (stray.get(partition) ?? 0) + 1);
      }
    }
    if (stray.size > 0) {
      const listed = [...stray].slice(0, 4).map(([p, count]) => `p${p}: ${count}`);
      problems.push(
        `${id} holds rows of ${stray.size} partition(s) it does not replicate (${listed.join(', ')}${stray.size > 4 ? ', ...' : ''})`,
      );
    }
  }
  const keys = [...new Set(history.map((operation) => operation.key))];
  for (const key of keys) {
    const replicas = world.replicasOf(KEYSPACE.id, utf8(key), N);
    const holders = members.filter((id) => world.storage(id).get(rowKey(world, key)) !== undefined);
    if (holders.length > 0 && replicas.some((id) => !holders.includes(id))) {
      problems.push(
        `${key}: held by ${holders.join(', ')}, but its replicas are ${replicas.join(', ')}`,
      );
    }
  }
  return problems;
}

function rowKey(world: ClusterWorld, key: string): Uint8Array {
  const bytes = utf8(key);
  return dataKey(KEYSPACE.id, world.partitionOfKey(KEYSPACE.id, bytes), bytes);
}

/** Owners whose share of the partitions is not Q/M or Q/M + 1. */
function balanceProblems(map: ClusterMap): string[] {
  const counts = new Map<string, number>();
  for (const owner of map.owners) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  const low = Math.floor(map.partitionCount / counts.size);
  const high = Math.ceil(map.partitionCount / counts.size);
  const problems: string[] = [];
  for (const [id, count] of counts) {
    if (count < low || count > high) {
      problems.push(
        `${id} owns ${count} of ${map.partitionCount} partitions (${low} to ${high} expected)`,
      );
    }
  }
  for (const member of map.members) {
    if (!isStandby(member) && !counts.has(member.id)) {
      problems.push(`${member.id} is a member that owns no partition`);
    }
  }
  return problems;
}

/** Nodes no longer in the map that are up must refuse clients: they left. */
function departedProblems(world: ClusterWorld, map: ClusterMap): string[] {
  const problems: string[] = [];
  for (const id of world.nodeIds) {
    if (map.members.some((member) => member.id === id) || !world.isUp(id)) continue;
    const reply = world.call(id, { op: 'get', keyspace: KEYSPACE.name, keys: [utf8('c0-k0')] });
    if (reply.ok) problems.push(`${id} left the cluster but still answers clients`);
  }
  return problems;
}

/**
 * Reads every key of the history through every member, twice, anti-entropy's time apart:
 * the second answers must be the first ones (a deleted value coming back would differ).
 */
function resurrections(world: ClusterWorld, map: ClusterMap, history: History): string[] {
  const members = map.members.map((member) => member.id);
  const keys = [...new Set(history.map((operation) => operation.key))];
  const readAll = (): Map<string, string> => {
    const values = new Map<string, string>();
    for (const key of keys) {
      for (const id of members) {
        const reply = world.call(id, {
          op: 'get',
          keyspace: KEYSPACE.name,
          keys: [utf8(key)],
          r: 'all',
        });
        values.set(`${key} via ${id}`, describeRead(reply));
      }
    }
    return values;
  };
  const first = readAll();
  world.runFor(RESURRECTION_WAIT_MS);
  const second = readAll();
  const problems: string[] = [];
  for (const [what, value] of first) {
    const again = second.get(what);
    if (again !== value) problems.push(`${what} read ${value}, then ${String(again)}`);
  }
  const values = new Map<string, Set<string>>();
  for (const [what, value] of second) {
    const key = what.slice(0, what.indexOf(' via '));
    values.set(key, (values.get(key) ?? new Set()).add(value));
  }
  for (const [key, seen] of values) {
    if (seen.size > 1)
      problems.push(`${key} reads differently through different members: ${[...seen].join(' | ')}`);
  }
  return problems;
}

function describeRead(reply: ClientReply): string {
  if (!reply.ok || reply.op !== 'get') return `error ${reply.ok ? reply.op : reply.error.code}`;
  const value = reply.results[0]?.value ?? null;
  return value === null ? 'absent' : JSON.stringify(fromUtf8(value));
}
