// The liveness phase of a simulated run and the verdict of every checker on it, for one
// keyspace (`default` as the world was given it: its n, r, w and conflict policy). Faults stop, every node runs, the cluster is given its time to
// settle (every node sees every other alive, every hint handed back); then:
//
// 1. optionally, before anything reads, every key's replicas must hold the same winner:
//    convergence by hinted handoff alone. Sound only where every write a replica missed
//    left a hint (it was down in everyone's view while it missed them): until anti-entropy
//    exists, nothing else brings a replica that is never read up to date;
// 2. every key of the history is read with R = all (which also repairs, where read repair
//    is on) and judged by the acknowledged-writes checker, with each key's final version
//    (keys with one writer only: that checker orders a key's writes by its writer);
// 3. once read repair has had its time, every key's replicas must hold the same winner;
// 4. the session checker judges the history's reads, where DESIGN section 1 promises what it
//    checks: R + W > N and no fallback replica involved, which a FallbackWatch started
//    before the workload shows (no node ever saw another down, no node ever held a hint).
//    Elsewhere it is skipped and the judgement says why, unless asked for anyway (a
//    negative control runs it where the promise does not hold, to see it fail).
//
// Every anomaly is one line in `anomalies`; the structured fields say the same in parts.
//
// Strong and chain keyspaces have a judge of their own (judgeLinearizableRun): faults stop,
// every node runs and sees every other alive; for chain keyspaces, every partition's chain
// must then be whole again (its n members in the map, every node holding that map) within
// the settle time; then every key is read through every node, one read at a time
// (liveness: each must succeed), and those reads join the history; the whole history must
// be linearizable per key (checkLinearizable), and the versions the operations answered
// must agree with it: each version of a key names one value, and no operation sees a
// version older than one an operation finished before it began had seen.

import {
  checkAcknowledgedWrites,
  type Allowance,
  type LostWrite,
} from '../check/acknowledged-writes.ts';
import type { History, Operation, Value, Version } from '../check/history.ts';
import { checkLinearizable, type LinearizabilityResult } from '../check/linearizability.ts';
import { checkSessionOrder, type SessionOrderVerdict } from '../check/session-order.ts';
import { assert, fromUtf8, utf8 } from '../core/bytes.ts';
import { DEFAULT_KEYSPACE, type Keyspace } from '../core/keyspace.ts';
import type { ClientReply, QuorumSpec } from '../core/requests.ts';
import type { ClusterWorld } from './cluster-world.ts';
import { requestOf, type RegisterKey, type VersionObservation } from './register-workload.ts';
import { versionOf } from './workload.ts';

/** What a FallbackWatch saw: any sign that a request may have used a fallback replica. */
export interface FallbackWatch {
  /** The first sign seen, e.g. "n1 saw n3 down at 1700000001234", or null for none. */
  readonly firstSign: () => string | null;
  /** Stops watching (the judge stops it before the liveness phase restarts nodes). */
  readonly stop: () => void;
}

/**
 * Polls every node that is up, every `intervalMs` of virtual time, for a peer it sees down
 * (only then do its requests take fallbacks) or a hint it holds (a fallback stood in). A
 * down view lasts until the peer refutes it, a message round trip at least: two ms or more
 * in the simulator, whose times are whole ms, so a poll every ms sees every one.
 */
export function watchFallbacks(
  world: ClusterWorld,
  intervalMs = 1,
  /** The nodes to watch, asked at every poll (the world's founders when absent). */
  nodes: () => readonly string[] = () => world.ids,
): FallbackWatch {
  assert(intervalMs > 0, 'a watch polls forward in time');
  let firstSign: string | null = null;
  let stopped = false;
  const poll = (): void => {
    if (stopped || firstSign !== null) return;
    const watched = nodes();
    for (const id of watched) {
      if (!world.isUp(id)) continue;
      const node = world.node(id);
      // A node asked of a peer its map does not hold yet (a newcomer) has no view of it.
      const map = node.clusterMap();
      const down = watched.find(
        (other) =>
          other !== id &&
          map?.members.some((member) => member.id === other) === true &&
          node.liveness(other) === 'down',
      );
      if (down !== undefined) {
        firstSign = `${id} saw ${down} down at ${world.nowMs}`;
        return;
      }
      const hints = node.clusterStatus().hintsTotal;
      if (hints > 0) {
        firstSign = `${id} held ${hints} hint(s) at ${world.nowMs}`;
        return;
      }
    }
    world.at(world.nowMs + intervalMs, poll);
  };
  world.at(world.nowMs, poll);
  return {
    firstSign: () => firstSign,
    stop: () => {
      stopped = true;
    },
  };
}

export interface JudgeOptions {
  /** Time the cluster gets to settle once faults stop, in virtual ms. */
  readonly settleTimeoutMs: number;
  /** The keyspace the workload used, as the world was configured; DEFAULT_KEYSPACE if absent. */
  readonly keyspace?: Keyspace;
  /** The workload's read and write quorums (the keyspace's r and w when absent). */
  readonly r?: QuorumSpec;
  readonly w?: QuorumSpec;
  /** Started before the workload; without it no run is shown free of fallbacks. */
  readonly fallbacks?: FallbackWatch;
  /** `when-promised` (default) or `always`: also where DESIGN does not promise it. */
  readonly sessionCheck?: 'when-promised' | 'always';
  /** Check step 1 (replicas agree before any read): see the file's opening. */
  readonly convergeBeforeReads?: boolean;
  /** Report a cluster that did not settle (default true; a lying disk may keep it busy). */
  readonly requireSettled?: boolean;
  /**
   * The members of the cluster once settled, when they changed during the run (the world's
   * founders when absent): they are restarted, must see each other alive and hand their
   * hints back, and the first of them reads every key.
   */
  readonly members?: readonly string[];
}

export interface FullJudgement {
  /** Every node saw every other alive in time. */
  readonly alive: boolean;
  /** Hints still held when the settle time ran out (0: all handed back). */
  readonly hintsLeft: number;
  /** Keys judged by the acknowledged-writes checker (those with one writer). */
  readonly keysChecked: number;
  /** Keys written by several clients, which that checker cannot order: left out of it. */
  readonly sharedKeys: number;
  readonly lost: readonly LostWrite[];
  /** Final values other than the last acknowledged write's, and why each is allowed. */
  readonly allowances: readonly Allowance[];
  readonly unreadable: readonly string[];
  /** Keys whose replicas disagreed once settled, before the final reads (step 1). */
  readonly divergedBeforeReads: readonly string[];
  /** Keys whose replicas disagreed after the final reads (step 3). */
  readonly diverged: readonly string[];
  readonly session: {
    /** Whether the session checker ran, and why (or why not). */
    readonly ran: boolean;
    readonly scope: string;
    readonly verdict: SessionOrderVerdict | null;
  };
  /** Every problem above, one line each; empty when the run is clean. */
  readonly anomalies: readonly string[];
}

const REPAIR_TIME_MS = 500;

/** The liveness phase, then every checker: see the file's opening. */
export function judgeRun(
  world: ClusterWorld,
  history: History,
  options: JudgeOptions,
): FullJudgement {
  const keyspace = options.keyspace ?? DEFAULT_KEYSPACE;
  const members = options.members ?? world.ids;
  const n = keyspace.n === 'all' ? members.length : keyspace.n;
  assert(n >= 1 && n <= members.length, 'a key has from one to every node as replicas');
  const session = sessionScope(keyspace, n, options);
  options.fallbacks?.stop();
  world.calmNetwork();
  for (const id of members) if (!world.isUp(id)) world.restart(id);
  const startMs = world.nowMs;
  const alive = world.runUntil(
    () =>
      members.every(
        (id) =>
          world.isUp(id) && members.every((other) => world.node(id).liveness(other) === 'alive'),
      ),
    options.settleTimeoutMs,
  );
  if (options.members === undefined) {
    world.waitSettled(Math.max(0, startMs + options.settleTimeoutMs - world.nowMs));
  } else {
    world.runUntil(
      () => members.every((id) => world.node(id).clusterStatus().hintsTotal === 0),
      Math.max(0, startMs + options.settleTimeoutMs - world.nowMs),
    );
  }
  let hintsLeft = 0;
  for (const id of members) hintsLeft += world.node(id).clusterStatus().hintsTotal;
  const keys = [...new Set(history.map((operation) => operation.key))];

  const divergedBeforeReads =
    options.convergeBeforeReads === true ? disagreements(world, keyspace.id, keys, n) : [];
  const finals = new Map<string, Value>();
  const finalVersions = new Map<string, Version>();
  const finalSiblings = new Map<string, readonly string[]>();
  const unreadable: string[] = [];
  for (const key of keys) {
    const reply = world.call(members[0]!, {
      op: 'get',
      keyspace: keyspace.name,
      keys: [utf8(key)],
      r: 'all',
    });
    if (!reply.ok || reply.op !== 'get') {
      unreadable.push(key);
      continue;
    }
    const result = reply.results[0]!;
    finals.set(key, result.value === null ? null : fromUtf8(result.value));
    finalVersions.set(key, versionOf(result.context));
    finalSiblings.set(
      key,
      result.siblings.map((sibling) => fromUtf8(sibling.value)),
    );
  }
  // The acknowledged-writes checker orders a key's writes by their one writer; keys with
  // several writers (a shared-key workload) are left out of it, and counted.
  const writersOf = new Map<string, Set<number>>();
  for (const operation of history) {
    if (operation.op !== 'put' && operation.op !== 'delete') continue;
    const writers = writersOf.get(operation.key) ?? new Set<number>();
    writersOf.set(operation.key, writers.add(operation.client));
  }
  const sharedKeys = [...writersOf].filter(([, writers]) => writers.size > 1).length;
  const judged = history.filter(
    (operation) => finals.has(operation.key) && (writersOf.get(operation.key)?.size ?? 0) <= 1,
  );
  const verdict = checkAcknowledgedWrites(judged, finals, {
    policy: keyspace.conflicts,
    finalVersions,
    finalSiblings,
  });
  world.runFor(REPAIR_TIME_MS);
  const diverged = disagreements(world, keyspace.id, keys, n);
  const sessionVerdict = session.ran ? checkSessionOrder(history) : null;

  const anomalies: string[] = [];
  if (options.requireSettled !== false && !alive) {
    anomalies.push(
      `the cluster did not settle: not every node saw every other alive in ${options.settleTimeoutMs} ms`,
    );
  }
  if (options.requireSettled !== false && hintsLeft > 0) {
    anomalies.push(`${hintsLeft} hint(s) not handed back in ${options.settleTimeoutMs} ms`);
  }
  anomalies.push(
    ...divergedBeforeReads.map((line) => `${line}, once settled and before any read`),
    ...unreadable.map((key) => `${key} could not be read once settled`),
    ...verdict.violations.map(
      (lost) =>
        `${lost.key}: lost write: holds ${JSON.stringify(lost.found)}, allowed ` +
        `${JSON.stringify(lost.allowed)}: ${lost.reason}`,
    ),
    ...diverged.map((line) => `${line}, after the final reads`),
    ...(sessionVerdict?.violations ?? []).map(
      (violation) => `session (${violation.kind}): ${violation.explanation}`,
    ),
  );
  return {
    alive,
    hintsLeft,
    keysChecked: verdict.keysChecked,
    sharedKeys,
    lost: verdict.violations,
    allowances: verdict.allowances,
    unreadable,
    divergedBeforeReads,
    diverged,
    session: { ...session, verdict: sessionVerdict },
    anomalies,
  };
}

/** Whether the session checker runs, and the reason, from the quorums and the watch. */
function sessionScope(
  keyspace: Keyspace,
  n: number,
  options: JudgeOptions,
): { ran: boolean; scope: string } {
  const r = resolveQuorum(options.r ?? keyspace.r, n);
  const w = resolveQuorum(options.w ?? keyspace.w, n);
  const sign = options.fallbacks?.firstSign() ?? null;
  const reasons: string[] = [];
  if (r + w <= n) reasons.push(`R + W = ${r + w} does not exceed N = ${n}`);
  if (options.fallbacks === undefined) reasons.push('no fallback watch shows a strict quorum');
  if (sign !== null) reasons.push(`a fallback may have been used (${sign})`);
  if (reasons.length === 0) {
    return { ran: true, scope: `promised: R = ${r}, W = ${w}, N = ${n}, no fallback seen` };
  }
  const why = reasons.join('; ');
  if (options.sessionCheck === 'always') {
    return { ran: true, scope: `not promised, run anyway: ${why}` };
  }
  return { ran: false, scope: `skipped, not promised: ${why}` };
}

function resolveQuorum(spec: QuorumSpec, n: number): number {
  if (spec === 'one') return 1;
  if (spec === 'quorum') return Math.floor(n / 2) + 1;
  if (spec === 'all') return n;
  assert(Number.isInteger(spec) && spec >= 1 && spec <= n, 'a quorum from 1 to n');
  return spec;
}

/** Keys whose first `n` replicas hold different winners, each as one line. */
function disagreements(
  world: ClusterWorld,
  keyspaceId: number,
  keys: readonly string[],
  n: number,
): string[] {
  const lines: string[] = [];
  for (const key of keys) {
    const winners = world.replicasOf(keyspaceId, utf8(key), n).map((id) => {
      const winner = world.storedWinner(id, keyspaceId, utf8(key));
      return winner === null ? null : fromUtf8(winner);
    });
    if (new Set(winners).size !== 1) {
      lines.push(
        `${key}: replicas disagree (${winners.map((winner) => JSON.stringify(winner)).join(' | ')})`,
      );
    }
  }
  return lines;
}

export interface LinearizableJudgeOptions {
  /**
   * Time the cluster gets to settle once faults stop, in virtual ms: to see every node
   * alive, and then (chain keyspaces) to make every chain whole.
   */
  readonly settleTimeoutMs: number;
  /** Chain keyspaces: the replicas every partition's chain must have again before the reads. */
  readonly chainLength?: number;
  /** Every key of the workload. */
  readonly keys: readonly RegisterKey[];
  /** Client ids of the final reads: one per node, from this one up (after the workload's). */
  readonly firstClient: number;
  /** Version observations of the workload's ok operations. */
  readonly observations: readonly VersionObservation[];
  /** Wall time the linearizability checker may take, in ms; past it the run is undecided. */
  readonly checkBudgetMs: number;
  /** How long one final read may take, in virtual ms (its retries included). */
  readonly readTimeoutMs?: number;
  /**
   * Try a final read again, until readTimeoutMs, when the node answers it unavailable. A
   * chain's new tail answers nothing until its copy is done and it holds a lease
   * (docs/CHAIN.md), so a read just after the chains are whole again may be refused.
   */
  readonly retryUnavailableReads?: boolean;
  /**
   * The nodes restarted, settled and read through: the world's founders unless given (a run
   * whose founders all left names the members it ends with).
   */
  readonly nodes?: readonly string[];
}

export interface LinearizableJudgement {
  /** Every node saw every other alive in time. */
  readonly alive: boolean;
  /** Chain keyspaces: what kept the chains from being whole in time, or null (whole, or no chains). */
  readonly chainsShort: string | null;
  /** The workload's history with the final reads after it: what the checker judged. */
  readonly history: History;
  readonly finalReads: number;
  /** Final reads that failed, one line each (key, node, error). */
  readonly unreadable: readonly string[];
  readonly linearizability: LinearizabilityResult;
  readonly versionProblems: readonly string[];
  /** What was checked, one line each, for a summary. */
  readonly checks: readonly string[];
  /** Every problem above, one line each; empty when the run is clean. */
  readonly anomalies: readonly string[];
}

const FINAL_READ_TIMEOUT_MS = 5_000;
/** The pause before a final read refused as unavailable is tried again. */
const FINAL_READ_RETRY_MS = 100;

/** The liveness phase of a strong or chain run, then its checkers: see the file's opening. */
export function judgeLinearizableRun(
  world: ClusterWorld,
  workloadHistory: History,
  options: LinearizableJudgeOptions,
): LinearizableJudgement {
  assert(options.keys.length > 0, 'a linearizable run has keys');
  assert(options.firstClient >= 0, 'client ids are not negative');
  world.calmNetwork();
  const nodes = options.nodes ?? world.ids;
  for (const id of nodes) if (!world.isUp(id)) world.restart(id);
  const settleStartMs = world.nowMs;
  const alive = world.runUntil(
    () =>
      nodes.every(
        (id) =>
          world.isUp(id) && nodes.every((other) => world.node(id).liveness(other) === 'alive'),
      ),
    options.settleTimeoutMs,
  );
  let chainsShort: string | null = null;
  const chainLength = options.chainLength;
  if (chainLength !== undefined) {
    const leftMs = Math.max(0, settleStartMs + options.settleTimeoutMs - world.nowMs);
    world.runUntil(() => chainShortfall(world, chainLength) === null, leftMs);
    const shortfall = chainShortfall(world, chainLength);
    if (shortfall !== null) {
      chainsShort = `the chains were not whole ${options.settleTimeoutMs} ms after faults stopped: ${shortfall}`;
    }
  }
  const history: Operation[] = [...workloadHistory];
  const observations: VersionObservation[] = [...options.observations];
  const unreadable: string[] = [];
  const readTimeoutMs = options.readTimeoutMs ?? FINAL_READ_TIMEOUT_MS;
  for (const key of options.keys) {
    nodes.forEach((id, index) => {
      const operation: Operation = {
        client: options.firstClient + index,
        key: key.historyKey,
        op: 'get',
        input: null,
        output: null,
        invokedAt: world.nowMs,
        completedAt: null,
        outcome: 'unknown',
      };
      const { answer, invokedAt } = finalRead(
        world,
        id,
        key,
        world.nowMs + readTimeoutMs,
        options.retryUnavailableReads === true,
      );
      operation.invokedAt = invokedAt;
      if (answer === null || !answer.ok || answer.op !== 'get') {
        const why =
          answer === null
            ? `no answer in ${readTimeoutMs} ms`
            : answer.ok
              ? `answered ${answer.op}`
              : answer.error.code;
        unreadable.push(`${key.historyKey} could not be read through ${id} once settled: ${why}`);
        // A read changes nothing: one that did not answer is left out of the history.
        if (answer !== null)
          history.push({ ...operation, outcome: 'failed', completedAt: world.nowMs });
        return;
      }
      const result = answer.results[0];
      assert(
        result !== undefined && result.version !== undefined,
        'a linearizable read has a version',
      );
      const value = result.value === null ? null : fromUtf8(result.value);
      history.push({ ...operation, output: value, outcome: 'ok', completedAt: world.nowMs });
      observations.push({
        key: key.historyKey,
        version: result.version,
        value,
        invokedAt: operation.invokedAt,
        completedAt: world.nowMs,
        operation: history.length - 1,
      });
    });
  }
  const finalReads = options.keys.length * nodes.length;
  const linearizability = checkLinearizable(history, { budgetMs: options.checkBudgetMs });
  const versionProblems = checkStrongVersions(observations);

  const anomalies: string[] = [];
  if (!alive) {
    anomalies.push(
      `the cluster did not settle: not every node saw every other alive in ${options.settleTimeoutMs} ms`,
    );
  }
  if (chainsShort !== null) anomalies.push(chainsShort);
  anomalies.push(...unreadable);
  if (linearizability.result === 'not-linearizable') {
    anomalies.push(`not linearizable: ${linearizability.explanation ?? ''}`);
  } else if (linearizability.result === 'unknown') {
    anomalies.push(`linearizability not decided: ${linearizability.explanation ?? ''}`);
  }
  anomalies.push(...versionProblems.map((problem) => `versions: ${problem}`));
  const checks = [
    ...(chainLength === undefined
      ? []
      : [
          `chains: ${chainsShort === null ? `whole again, ${chainLength} replicas each` : 'not whole'}`,
        ]),
    `final reads: ${options.keys.length} keys through each of ${nodes.length} nodes, ` +
      `${finalReads - unreadable.length} of ${finalReads} answered`,
    `linearizability: ${linearizability.result}, ${linearizability.keysLinearizable} of ` +
      `${linearizability.keysTotal} keys, ${history.length} operations`,
    `versions: ${observations.length} observed, ${versionProblems.length} problems`,
  ];
  return {
    alive,
    chainsShort,
    history,
    finalReads,
    unreadable,
    linearizability,
    versionProblems,
    checks,
    anomalies,
  };
}

/**
 * One final read through `id`, waited for until `deadlineMs`; when `retry`, sent again
 * (after a pause) while the node answers it unavailable. A failed read changed nothing, so
 * the attempt that counts is the last, invoked when it was sent.
 */
function finalRead(
  world: ClusterWorld,
  id: string,
  key: RegisterKey,
  deadlineMs: number,
  retry: boolean,
): { answer: ClientReply | null; invokedAt: number } {
  for (;;) {
    let reply: ClientReply | null = null;
    const invokedAt = world.nowMs;
    world.submit(id, requestOf(key, null), (received) => (reply = received));
    world.runUntil(() => reply !== null, Math.max(0, deadlineMs - world.nowMs));
    const answer = reply as ClientReply | null;
    const refused = answer !== null && !answer.ok && answer.error.code === 'RINGKV_UNAVAILABLE';
    if (!retry || !refused || world.nowMs + FINAL_READ_RETRY_MS >= deadlineMs) {
      return { answer, invokedAt };
    }
    world.runFor(FINAL_READ_RETRY_MS);
  }
}

/** Partitions named in a shortfall line; the count says how many more there are. */
const SHORT_PARTITIONS_SHOWN_MAX = 4;

/**
 * Why the chains are not whole yet, or null when they are: every node is up and holds the
 * same map, and every partition's chain in it has `chainLength` members (at most the
 * members of the cluster).
 */
export function chainShortfall(world: ClusterWorld, chainLength: number): string | null {
  assert(Number.isInteger(chainLength) && chainLength >= 1, 'a chain has replicas');
  const down = world.ids.filter((id) => !world.isUp(id));
  if (down.length > 0) return `${down.join(', ')} down`;
  const maps = world.ids.map((id) => world.node(id).clusterMap());
  const epochs = maps.map((map) => map?.epoch ?? 0);
  const newest = maps[epochs.indexOf(Math.max(...epochs))];
  if (newest === null || newest === undefined || newest.chains === undefined) {
    return 'no node holds a map with chains';
  }
  if (new Set(epochs).size > 1) {
    return `the nodes hold maps of different epochs (${world.ids.map((id, index) => `${id} ${epochs[index]}`).join(', ')})`;
  }
  const wanted = Math.min(chainLength, newest.members.length);
  const short = newest.chains.filter((config) => config.members.length !== wanted);
  if (short.length === 0) return null;
  const shown = short
    .slice(0, SHORT_PARTITIONS_SHOWN_MAX)
    .map(
      (config) =>
        `partition ${config.partition} [${config.members.map((member) => member.id).join(' ')}]`,
    );
  const more = short.length - shown.length;
  return (
    `${short.length} of ${newest.chains.length} chains lack a replica at epoch ${newest.epoch}: ` +
    `${shown.join(', ')}${more > 0 ? `, and ${more} more` : ''}`
  );
}

/** Problems reported per key: one bug often shows many times over. */
const VERSION_PROBLEMS_SHOWN_MAX = 5;

/**
 * What the versions a strong or chain keyspace answered must satisfy, as one line per problem (at
 * most a few per key): each version of a key names one value (a version counts the key's
 * changes, and never repeats, purges included), and versions never go back in real time
 * (an operation that begins after another ended sees that one's version or a later one).
 */
export function checkStrongVersions(observations: readonly VersionObservation[]): string[] {
  const byKey = new Map<string, VersionObservation[]>();
  for (const observation of observations) {
    assert(Number.isSafeInteger(observation.version), 'a version is an integer');
    const list = byKey.get(observation.key) ?? [];
    byKey.set(observation.key, list);
    list.push(observation);
  }
  const problems: string[] = [];
  for (const [key, list] of byKey) {
    const keyProblems: string[] = [];
    const valueOf = new Map<number, VersionObservation>();
    for (const observation of list) {
      const first = valueOf.get(observation.version);
      if (first === undefined) valueOf.set(observation.version, observation);
      else if (first.value !== observation.value) {
        keyProblems.push(
          `${key}: version ${observation.version} names ${JSON.stringify(first.value)} ` +
            `(operation ${first.operation}) and ${JSON.stringify(observation.value)} ` +
            `(operation ${observation.operation})`,
        );
      }
    }
    // Sweep by invocation: the highest version among operations that ended strictly before
    // an operation began must not exceed what that operation saw.
    const byInvocation = [...list].sort((a, b) => a.invokedAt - b.invokedAt);
    const byCompletion = [...list].sort((a, b) => a.completedAt - b.completedAt);
    let ended = 0;
    let highest: VersionObservation | null = null;
    for (const observation of byInvocation) {
      while (
        ended < byCompletion.length &&
        byCompletion[ended]!.completedAt < observation.invokedAt
      ) {
        const candidate = byCompletion[ended]!;
        if (highest === null || candidate.version > highest.version) highest = candidate;
        ended++;
      }
      if (highest !== null && observation.version < highest.version) {
        keyProblems.push(
          `${key}: operation ${observation.operation} saw version ${observation.version} after ` +
            `operation ${highest.operation} had ended at version ${highest.version}`,
        );
      }
    }
    problems.push(...keyProblems.slice(0, VERSION_PROBLEMS_SHOWN_MAX));
  }
  return problems;
}
