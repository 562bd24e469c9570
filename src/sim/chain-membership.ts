// A chain keyspace through a series of membership changes, in simulation: three founders
// (the voters, through which the clients go) form a cluster, create a chain keyspace, and
// then, while the register workload of register-workload.ts runs on its keys, newcomers
// join, a member is removed after it died, one is replaced and one leaves, one change after
// another; the network loses messages and a node may crash during a change. Afterwards the
// judge of judge.ts checks the history linearizable with final reads of every key through
// every founder, and this file checks that every chain holds exactly its replicas under the
// final owners and that no founder keeps a chain replica of a partition it does not serve.
//
// Rules kept: one seed decides everything (the world's and the workload's generators); the
// script runs on the world's clock (polled every SCRIPT_POLL_MS), never on real time; a step
// that does not commit in STEP_TIMEOUT_MS ends the script and is reported, as a run that
// stops on an assertion is.

import { utf8 } from '../core/bytes.ts';
import type { ClusterMap } from '../core/cluster/cluster-map.ts';
import { chainReplicas } from '../core/cluster/membership.ts';
import type { ClientReply, ClientRequest, MembershipRequest } from '../core/requests.ts';
import type { History } from '../check/history.ts';
import { ClusterWorld } from './cluster-world.ts';
import { judgeLinearizableRun } from './judge.ts';
import { stoppedBy } from './swarm.ts';
import {
  DEFAULT_REGISTER_MIX,
  runRegisterWorkload,
  type KindCounts,
  type RegisterKey,
} from './register-workload.ts';

/** One membership change of the script. */
export type ChainMembershipStep =
  /** `id` is started as a standby (through n1), then joins. */
  | { readonly kind: 'join'; readonly id: string }
  /**
   * `id` is started as a standby and joins; once it is in a chain, the change is aborted
   * (it stays a standby).
   */
  | { readonly kind: 'abort-join'; readonly id: string }
  | { readonly kind: 'leave'; readonly id: string }
  /** `id` is crashed for good; once n1 sees it down, it is removed. */
  | { readonly kind: 'remove'; readonly id: string }
  /** `by` is started as a standby, then replaces `id`. */
  | { readonly kind: 'replace'; readonly id: string; readonly by: string };

/** A crash during a step: `node` goes down `afterMs` after the plan and is back `downMs` later. */
export interface StepCrash {
  readonly step: number;
  readonly node: string;
  readonly afterMs: number;
  readonly downMs: number;
}

export interface ChainMembershipOptions {
  readonly seed: number;
  /** The chain keyspace's n. */
  readonly n: number;
  readonly steps: readonly ChainMembershipStep[];
  readonly lossRate: number;
  readonly crash?: StepCrash;
  /** Negative control when false: tails join after the commit (ClusterWorldOptions). */
  readonly chainTailsBeforeCommit?: boolean;
  readonly clients?: number;
  readonly keys?: number;
}

/** What the chains looked like when one step's change committed. */
export interface CommittedStep {
  readonly step: string;
  readonly atMs: number;
  /** Chains whose members were not exactly their replicas under the committed owners. */
  readonly chainsInexact: number;
  /** The most members any chain had while the change was in progress. */
  readonly longestChainDuring: number;
}

export interface ChainMembershipResult {
  /** Every problem found, one line each; empty when the run is clean. */
  readonly anomalies: readonly string[];
  readonly history: History;
  readonly kinds: KindCounts | null;
  readonly committed: readonly CommittedStep[];
  /** What the judge checked, one line each. */
  readonly checks: readonly string[];
  readonly virtualMs: number;
}

const FOUNDERS = ['n1', 'n2', 'n3'] as const;
/** Few partitions: every chain still moves, and a run costs a few seconds. */
const PARTITIONS = 16;
const SCRIPT_POLL_MS = 10;
const STEP_TIMEOUT_MS = 120_000;
/** Time for the workload to run before the first change and after the last. */
const QUIET_MS = 2_000;
/** A refused change request (a map compare-and-set lost to another) is sent again after this. */
const RETRY_MS = 500;
const KEYSPACE = 'chain';

interface Script {
  finished: boolean;
  problem: string | null;
  readonly committed: CommittedStep[];
}

/** Runs one seed of the scenario to its end and judges it. */
export function runChainMembership(options: ChainMembershipOptions): ChainMembershipResult {
  const world = new ClusterWorld({
    seed: options.seed,
    nodeCount: FOUNDERS.length,
    partitionCount: PARTITIONS,
    requestTimeoutMs: 800,
    ...(options.chainTailsBeforeCommit === false ? { chainTailsBeforeCommit: false } : {}),
  });
  const startMs = world.nowMs;
  const clients = options.clients ?? 5;
  const keys: RegisterKey[] = Array.from({ length: options.keys ?? 12 }, (_, index) => ({
    keyspace: KEYSPACE,
    key: `k${index}`,
    historyKey: `k${index}`,
  }));
  const stop = (problem: string): ChainMembershipResult => ({
    anomalies: [problem],
    history: [],
    kinds: null,
    committed: [],
    checks: [],
    virtualMs: world.nowMs - startMs,
  });
  if (!world.waitFormed()) return stop('the cluster did not form');
  const prepared = createChainKeyspace(world, options.n, keys);
  if (prepared !== null) return stop(prepared);
  world.setLossRate(options.lossRate);

  const script: Script = { finished: false, problem: null, committed: [] };
  world.at(world.nowMs + QUIET_MS, () => runStep(world, options, script, 0));
  let workload: ReturnType<typeof runRegisterWorkload>;
  try {
    workload = runRegisterWorkload(world, {
      seed: options.seed,
      clients,
      operations: 100_000,
      keys,
      keySkew: 0.6,
      mix: DEFAULT_REGISTER_MIX,
      thinkMsMax: 200,
      timeoutMs: 1_000,
      consistency: 'chain',
      stopWhen: () => script.finished,
    });
  } catch (error) {
    return stop(`the run stopped: ${stoppedBy(error)}`);
  }
  const judgement = judgeLinearizableRun(world, workload.history, {
    settleTimeoutMs: 60_000,
    chainLength: options.n,
    retryUnavailableReads: true,
    keys,
    firstClient: clients,
    observations: workload.observations,
    checkBudgetMs: 20_000,
  });
  const anomalies = [
    ...(script.problem === null ? [] : [script.problem]),
    ...judgement.anomalies,
    ...exactChainProblems(world),
  ];
  return {
    anomalies,
    history: judgement.history,
    kinds: workload.kinds,
    committed: script.committed,
    checks: judgement.checks,
    virtualMs: world.nowMs - startMs,
  };
}

/** Creates the chain keyspace through n1 and waits until every key answers; or says why not. */
function createChainKeyspace(
  world: ClusterWorld,
  n: number,
  keys: readonly RegisterKey[],
): string | null {
  const quorum = Math.max(1, Math.ceil((n + 1) / 2));
  const created = world.call('n1', {
    op: 'createKeyspace',
    keyspace: KEYSPACE,
    spec: { n, r: quorum, w: quorum, consistency: 'chain', conflicts: 'lww', durability: 'sync' },
  });
  if (!created.ok) return `the chain keyspace was not created: ${created.error.message}`;
  for (const key of keys) {
    const read: ClientRequest = { op: 'get', keyspace: KEYSPACE, keys: [utf8(key.key)] };
    let answered = world.call('n1', read).ok;
    for (let attempt = 0; attempt < 300 && !answered; attempt++) {
      world.runFor(100);
      answered = world.call('n1', read).ok;
    }
    if (!answered) return `${key.key} did not answer a read once the keyspace was created`;
  }
  return null;
}

function describeStep(step: ChainMembershipStep): string {
  if (step.kind === 'abort-join') return `join ${step.id}, aborted`;
  return step.kind === 'replace' ? `replace ${step.id} by ${step.by}` : `${step.kind} ${step.id}`;
}

/** Prepares step `index`, proposes its change, and goes on to the next once it committed. */
function runStep(
  world: ClusterWorld,
  options: ChainMembershipOptions,
  script: Script,
  index: number,
): void {
  const step = options.steps[index];
  if (step === undefined) {
    world.at(world.nowMs + QUIET_MS, () => (script.finished = true));
    return;
  }
  const name = describeStep(step);
  const deadlineMs = world.nowMs + STEP_TIMEOUT_MS;
  const fail = (problem: string): void => {
    script.problem = `${name}: ${problem}`;
    script.finished = true;
  };
  const newcomer =
    step.kind === 'join' || step.kind === 'abort-join'
      ? step.id
      : step.kind === 'replace'
        ? step.by
        : null;
  if (newcomer !== null) world.addNode(newcomer, 'n1');
  if (step.kind === 'remove') world.crash(step.id);
  const ready = (): boolean => {
    const map = world.node('n1').clusterMap()!;
    if (newcomer !== null) return map.members.some((member) => member.id === newcomer);
    if (step.kind === 'remove') return world.node('n1').liveness(step.id) === 'down';
    return true;
  };
  const request: MembershipRequest =
    step.kind === 'replace'
      ? { kind: 'replace', id: step.id, by: step.by }
      : { kind: step.kind === 'abort-join' ? 'join' : step.kind, id: step.id };
  let attempt = 0;
  const propose = (): void => {
    if (world.nowMs > deadlineMs) return fail('the change was never accepted');
    // An answer lost or unknown (its compare-and-set may have landed): the map tells.
    const map = world.node('n1').clusterMap()!;
    if (map.change?.kind === request.kind && map.change.subject === step.id) {
      return planned(map.change.epoch);
    }
    if (step.kind !== 'abort-join' && alreadyMade(map, step)) return planned(0);
    if (!ready()) return world.at(world.nowMs + SCRIPT_POLL_MS, propose);
    const via = FOUNDERS[attempt++ % FOUNDERS.length]!;
    if (!world.isUp(via)) return world.at(world.nowMs + RETRY_MS, propose);
    world.submit(
      via,
      { op: 'changeMembership', keyspace: '', change: request, dryRun: false },
      (reply: ClientReply) => {
        if (!reply.ok || reply.op !== 'changeMembership') {
          world.at(world.nowMs + RETRY_MS, propose);
          return;
        }
        planned(reply.epoch);
      },
    );
  };
  let longest = 0;
  /** The epoch of the map holding the change: n1 may not have seen it yet. */
  let plannedEpoch = 0;
  const planned = (epoch: number): void => {
    plannedEpoch = epoch;
    if (options.crash?.step === index) {
      const { node, afterMs, downMs } = options.crash;
      world.at(world.nowMs + afterMs, () => {
        if (!world.isUp(node)) return;
        world.crash(node);
        world.at(world.nowMs + downMs, () => world.restart(node));
      });
    }
    if (step.kind === 'abort-join') abortOnceJoined();
    else watch();
  };
  /** Waits until the joiner is in some chain, then aborts the change (again until it is). */
  const abortOnceJoined = (): void => {
    if (world.nowMs > deadlineMs) return fail('the abort was never made');
    const map = world.node('n1').clusterMap()!;
    if (map.change === undefined) {
      return map.epoch > plannedEpoch &&
        map.members.some((m) => m.id === step.id && m.role === 'standby')
        ? watch()
        : fail('the join committed before it could be aborted');
    }
    for (const config of map.chains ?? []) longest = Math.max(longest, config.members.length);
    const joined = (map.chains ?? []).some((config) =>
      config.members.some((member) => member.id === step.id),
    );
    if (!joined) return world.at(world.nowMs + SCRIPT_POLL_MS, abortOnceJoined);
    const via = FOUNDERS[attempt++ % FOUNDERS.length]!;
    if (!world.isUp(via)) return world.at(world.nowMs + RETRY_MS, abortOnceJoined);
    world.submit(
      via,
      { op: 'changeMembership', keyspace: '', change: { kind: 'abort' }, dryRun: false },
      () => world.at(world.nowMs + RETRY_MS, abortOnceJoined),
    );
  };
  const watch = (): void => {
    if (world.nowMs > deadlineMs) return fail(`not committed in ${STEP_TIMEOUT_MS} ms`);
    const map = world.isUp('n1') ? world.node('n1').clusterMap() : null;
    if (map === null || map.epoch <= plannedEpoch || map.change !== undefined) {
      for (const config of map?.chains ?? []) longest = Math.max(longest, config.members.length);
      return world.at(world.nowMs + SCRIPT_POLL_MS, watch);
    }
    script.committed.push({
      step: name,
      atMs: world.nowMs,
      chainsInexact: inexactChains(map).length,
      longestChainDuring: longest,
    });
    world.at(world.nowMs + QUIET_MS, () => runStep(world, options, script, index + 1));
  };
  world.at(world.nowMs, propose);
}

/** Whether the map shows the step's change committed already (its request's answer was lost). */
function alreadyMade(map: ClusterMap, step: ChainMembershipStep): boolean {
  if (map.change !== undefined) return false;
  const subject = map.members.find((member) => member.id === step.id);
  if (step.kind === 'join') return subject !== undefined && subject.role !== 'standby';
  return subject === undefined;
}

/** The partitions whose chain is not exactly its replicas under the map's owners. */
function inexactChains(map: ClusterMap): number[] {
  return (map.chains ?? [])
    .filter((config) => {
      const wanted = chainReplicas(map, map.owners, config.partition).sort();
      const members = config.members.map((member) => member.id).sort();
      return wanted.join() !== members.join();
    })
    .map((config) => config.partition);
}

/**
 * Once settled: every founder holds the same map, with no change in progress, in which every
 * chain is exactly its replicas; and each founder, and each standby up, holds a chain
 * replica for exactly the chains that name it (no stray state of partitions given away, or
 * of a join aborted).
 */
function exactChainProblems(world: ClusterWorld): string[] {
  const problems: string[] = [];
  const maps = FOUNDERS.map((id) => world.node(id).clusterMap()!);
  const map = maps[0]!;
  if (maps.some((other) => other.epoch !== map.epoch)) {
    problems.push(`the founders hold maps of epochs ${maps.map((m) => m.epoch).join(', ')}`);
  }
  if (map.change !== undefined) problems.push('a change is still in progress at the end');
  const inexact = inexactChains(map);
  if (inexact.length > 0) {
    problems.push(
      `${inexact.length} chains are not exactly their replicas at the end, partitions ` +
        inexact.slice(0, 4).join(', '),
    );
  }
  const standbys = map.members.filter((m) => m.role === 'standby').map((m) => m.id);
  for (const id of [...FOUNDERS, ...standbys.filter((standby) => world.isUp(standby))]) {
    const named = (map.chains ?? []).filter((config) =>
      config.members.some((member) => member.id === id),
    ).length;
    const held = world.node(id).protocolStats().chain_replicas;
    if (held !== named) {
      problems.push(`${id} holds ${held} chain replicas, and ${named} chains name it`);
    }
  }
  return problems;
}
