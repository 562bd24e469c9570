// A strong keyspace through membership changes, in simulation (docs/PAXOS.md, "Acceptor
// changes"): three founders (the voters) and a register workload on shared keys, while a
// script grows and shrinks the cluster: n4 joins, n5 joins (and crashes while it copies),
// n6 replaces n4, n6 leaves, and n5, crashed for good, is removed. Messages are lost at a
// seeded rate (and duplicated, reordered or delayed on some seeds), and during the first two
// changes every map sent to n3 is lost, so n3 keeps proposing with the map from before
// them: the fences must hold it off. Afterwards the
// history and the final reads through every founder go to the linearizability checker, and
// the acceptor rows are inspected: every key's value on a majority of its replicas, and no
// rows left on nodes that are no longer replicas.
//
// With `crashOnStagedList`, an acceptor that listed keys for a copy is crashed while the
// row of a listed key is still staged on it (docs/PAXOS.md, "Acceptor changes": list answers
// may name rows not yet durable).
//
// With `pauseFirstJoin`, n4's handoff is paused before it joins, and held so for
// PAUSE_HOLD_MS after the join is planned (docs/HANDOFF.md, "Rate and pause"): what n4
// rewrote and whether the join committed meanwhile are reported, then n4 is resumed and
// the script goes on. `watch` watches the same window without pausing (the control).
//
// Everything comes from the seed; a run replays exactly.

import { assert } from '../core/bytes.ts';
import type { ClusterMap } from '../core/cluster/cluster-map.ts';
import { DEFAULT_KEYSPACE, type Keyspace } from '../core/keyspace.ts';
import { decodeKeyState } from '../core/paxos/acceptor-codec.ts';
import { majority } from '../core/paxos/config.ts';
import {
  isValidPaxosMessage,
  PaxosMessageType,
  type ListReplyMessage,
} from '../core/paxos/messages.ts';
import { ballotsEqual } from '../core/paxos/ballot.ts';
import { utf8 } from '../core/bytes.ts';
import type { MembershipRequest } from '../core/requests.ts';
import { partitionOf } from '../core/ring/partition.ts';
import { preferenceList } from '../core/ring/preference-list.ts';
import { paxosKey } from '../core/store/layout.ts';
import { MessageType } from '../core/cluster/messages.ts';
import { ClusterWorld } from './cluster-world.ts';
import { judgeLinearizableRun } from './judge.ts';
import { askForChange, describeChange, pollUntil } from './membership-script.ts';
import {
  DEFAULT_REGISTER_MIX,
  runRegisterWorkload,
  type RegisterKey,
} from './register-workload.ts';

export interface StrongMembershipOptions {
  readonly seed: number;
  /** Negative controls: acceptors that ignore fences, or copies that skip the rewrites. */
  readonly unsafe?: 'ignore-fences' | 'skip-rewrite';
  /** Pause n4's copies through the first join's first PAUSE_HOLD_MS, or only watch them. */
  readonly pauseFirstJoin?: 'pause' | 'watch';
  /**
   * Crash n2 or n3 when a list reply it sent arrives while a batch of its own that writes
   * the acceptor row of a listed key is still staged and not durable, so that the crash
   * takes the row back to its durable state after the key was listed; the node restarts
   * STAGED_LIST_RESTART_MS later. At most STAGED_LIST_CRASHES_MAX times a run.
   */
  readonly crashOnStagedList?: boolean;
  /** Register keys of the workload (default KEYS). */
  readonly keys?: number;
}

/** What n4's copies did in the window the first join was held paused (or watched). */
export interface PausedWindow {
  /** Register keys n4 rewrote within the window. */
  readonly keysRewritten: number;
  /**
   * The most bytes n4's copies of the change showed as moved, and the highest handoff rate
   * (bytes per second) it reported, sampled every POLL_MS (a change that ends clears both).
   */
  readonly bytesMovedMax: number;
  readonly bytesPerSecondMax: number;
  /** Whether the join committed within it. */
  readonly committed: boolean;
}

export interface StrongMembershipResult {
  /** Safety and liveness problems, one line each; empty when the run is clean. */
  readonly anomalies: readonly string[];
  /** Problems the linearizability checker or the version check found (a subset). */
  readonly linearizabilityProblems: readonly string[];
  /** The changes the script made, in order, with the virtual time each took. */
  readonly changes: readonly string[];
  readonly operations: number;
  readonly unknown: number;
  /** Summed over the founders and every node that came and went. */
  readonly fencedRequests: number;
  readonly keysRewritten: number;
  /** Keys whose replicas the changes altered (at least once). */
  readonly keysMoved: number;
  readonly pausedWindow: PausedWindow | null;
  /** Crashes made by `crashOnStagedList`: list replies that named a row the crash took back. */
  readonly stagedListCrashes: number;
}

/** How long the first join is held paused, after it is planned. */
export const PAUSE_HOLD_MS = 2_500;

const KEYS = 12;
const PARTITIONS = 16;
const CLIENTS = 5;
const STRONG: Keyspace = { ...DEFAULT_KEYSPACE, consistency: 'strong' };
const CHANGE_TIMEOUT_MS = 60_000;
const STAGED_LIST_CRASHES_MAX = 3;
const STAGED_LIST_RESTART_MS = 300;
const POLL_MS = 50;

type Step =
  | { readonly kind: 'standby'; readonly id: string }
  | { readonly kind: 'change'; readonly request: MembershipRequest }
  /** For good: the node is removed afterwards. */
  | { readonly kind: 'crash'; readonly id: string }
  | { readonly kind: 'maps-to-n3'; readonly lost: boolean }
  /** The workload runs on this long before the next step. */
  | { readonly kind: 'wait'; readonly ms: number };

/** The script: each change waits for the previous one to end (commit seen by n1). */
const SCRIPT: readonly Step[] = [
  { kind: 'standby', id: 'n4' },
  { kind: 'maps-to-n3', lost: true },
  { kind: 'change', request: { kind: 'join', id: 'n4' } },
  { kind: 'wait', ms: 1_000 },
  { kind: 'standby', id: 'n5' },
  { kind: 'change', request: { kind: 'join', id: 'n5' } },
  { kind: 'wait', ms: 1_000 },
  { kind: 'maps-to-n3', lost: false },
  { kind: 'standby', id: 'n6' },
  { kind: 'change', request: { kind: 'replace', id: 'n4', by: 'n6' } },
  { kind: 'wait', ms: 500 },
  { kind: 'change', request: { kind: 'leave', id: 'n6' } },
  { kind: 'wait', ms: 500 },
  { kind: 'crash', id: 'n5' },
  { kind: 'change', request: { kind: 'remove', id: 'n5' } },
  { kind: 'wait', ms: 500 },
];

/** Runs one seed of the scenario; see the file's opening. */
export function runStrongMembership(options: StrongMembershipOptions): StrongMembershipResult {
  const { seed } = options;
  const world = new ClusterWorld({
    seed,
    nodeCount: 3,
    keyspaces: [STRONG],
    partitionCount: PARTITIONS,
    lossRate: seed % 3 === 0 ? 0 : 0.01,
    // Some seeds also duplicate, reorder (a reconnect) or hold back (a long tail) messages.
    duplicateRate: seed % 2 === 0 ? 0.02 : 0,
    reorderRate: seed % 4 === 1 ? 0.02 : 0,
    tailRate: seed % 5 === 2 ? 0.01 : 0,
    requestTimeoutMs: 800,
    ...(options.unsafe === undefined ? {} : { strongAcceptorChangeUnsafe: options.unsafe }),
  });
  assert(world.waitFormed(), 'the founders form a cluster');
  const keys: RegisterKey[] = Array.from({ length: options.keys ?? KEYS }, (_, i) => ({
    keyspace: STRONG.name,
    key: `k${i}`,
    historyKey: `k${i}`,
  }));
  const everyNode = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6'];
  const ownersSeen: (readonly string[])[] = [world.node('n1').clusterMap()!.owners];
  const changes: string[] = [];
  const problems: string[] = [];
  let stepIndex = 0;
  let scriptDone = false;

  const mapOf = (id: string): ClusterMap | null =>
    world.isUp(id) ? world.node(id).clusterMap() : null;
  const poll = (check: () => boolean, then: () => void, deadlineMs: number, what: string) =>
    pollUntil(
      world,
      {
        check,
        deadlineMs,
        pollMs: POLL_MS,
        onTimeout: () => {
          problems.push(`${what} did not happen within ${CHANGE_TIMEOUT_MS} ms`);
          scriptDone = true;
        },
      },
      then,
    );
  const nextStep = (): void => {
    const step = SCRIPT[stepIndex++];
    if (step === undefined) {
      scriptDone = true;
      return;
    }
    switch (step.kind) {
      case 'standby':
        world.addNode(step.id, 'n1');
        if (step.id === 'n4' && options.pauseFirstJoin === 'pause') {
          world.node('n4').setHandoff({ paused: true });
        }
        return poll(
          () => mapOf('n1')?.members.some((member) => member.id === step.id) === true,
          nextStep,
          world.nowMs + CHANGE_TIMEOUT_MS,
          `standby ${step.id} added`,
        );
      case 'maps-to-n3':
        world.dropWhere(
          step.lost
            ? (_from, to, message) =>
                to === 'n3' &&
                Array.isArray(message) &&
                (message[0] === MessageType.map || message[0] === MessageType.mapFetch)
            : null,
        );
        return nextStep();
      case 'crash':
        world.crash(step.id);
        return nextStep();
      case 'wait':
        return world.at(world.nowMs + step.ms, nextStep);
      case 'change':
        return runChange(step.request);
    }
  };
  const runChange = (request: MembershipRequest): void => {
    const startMs = world.nowMs;
    const deadlineMs = startMs + CHANGE_TIMEOUT_MS;
    const describe = describeChange(request);
    const epochBefore = mapOf('n1')!.epoch;
    const onStarted = (): void => {
      if (request.kind === 'join' && request.id === 'n4' && options.pauseFirstJoin) {
        watchPausedJoin(epochBefore);
      }
      if (request.kind === 'join' && request.id === 'n5') {
        // The receiver crashes while it copies, and comes back on its storage.
        world.at(world.nowMs + 30, () => {
          if (world.isUp('n5')) world.crash('n5');
          world.at(world.nowMs + 700, () => world.restart('n5'));
        });
      }
      poll(
        () => {
          const map = mapOf('n1');
          return map !== null && map.epoch > epochBefore + 1 && map.change === undefined;
        },
        () => {
          ownersSeen.push(mapOf('n1')!.owners);
          changes.push(`${describe}: ${world.nowMs - startMs} ms`);
          nextStep();
        },
        deadlineMs,
        `${describe} committed`,
      );
    };
    askForChange(
      world,
      {
        request,
        via: () => 'n1',
        startedOn: (planned) =>
          planned !== null && planned.epoch > epochBefore && planned.change !== undefined,
        deadlineMs,
      },
      onStarted,
      (message) => {
        problems.push(`${describe} was refused: ${message}`);
        scriptDone = true;
      },
    );
  };

  let pausedWindow: PausedWindow | null = null;
  const watchPausedJoin = (epochBefore: number): void => {
    const joinEpoch = mapOf('n1')?.change?.epoch;
    const keysBefore = world.node('n4').protocolStats().paxos_keys_rewritten_total ?? 0;
    const endMs = world.nowMs + PAUSE_HOLD_MS;
    let bytesMovedMax = 0;
    let bytesPerSecondMax = 0;
    const sample = (): void => {
      const stats = world.node('n4').protocolStats();
      bytesMovedMax = Math.max(bytesMovedMax, stats.handoff_bytes_received ?? 0);
      bytesPerSecondMax = Math.max(bytesPerSecondMax, stats.handoff_bytes_per_second ?? 0);
      if (world.nowMs < endMs) return world.at(world.nowMs + POLL_MS, sample);
      const map = mapOf('n1');
      pausedWindow = {
        keysRewritten: (stats.paxos_keys_rewritten_total ?? 0) - keysBefore,
        bytesMovedMax,
        bytesPerSecondMax,
        // Ended: the map moved past the join's change (the script may plan the next one).
        committed: map !== null && map.epoch > epochBefore + 1 && map.change?.epoch !== joinEpoch,
      };
      world.node('n4').setHandoff({ paused: false });
    };
    sample();
  };

  let stagedListCrashes = 0;
  if (options.crashOnStagedList === true) {
    world.onDeliver(({ from, message }) => {
      if (stagedListCrashes >= STAGED_LIST_CRASHES_MAX || !(from === 'n2' || from === 'n3')) return;
      const reply = listReplyIn(message);
      if (reply === null || !world.isUp(from)) return;
      const rows = reply[3].map((key) =>
        paxosKey(STRONG.id, partitionOf(STRONG.id, key, PARTITIONS), key),
      );
      if (!rows.some((row) => world.writesUnpersisted(from, row))) return;
      stagedListCrashes++;
      world.crash(from);
      world.at(world.nowMs + STAGED_LIST_RESTART_MS, () => world.restart(from));
    });
  }

  world.at(world.nowMs + 500, nextStep);
  const workload = runRegisterWorkload(world, {
    seed,
    clients: CLIENTS,
    operations: 100_000,
    keys,
    keySkew: 0.6,
    mix: DEFAULT_REGISTER_MIX,
    thinkMsMax: 60,
    timeoutMs: 1_000,
    consistency: 'strong',
    stopWhen: () => scriptDone,
  });
  world.dropWhere(null);
  const judgement = judgeLinearizableRun(world, workload.history, {
    settleTimeoutMs: 10_000,
    keys,
    firstClient: CLIENTS,
    observations: workload.observations,
    checkBudgetMs: 20_000,
  });
  // Rows: every key's value on a majority of its replicas now, none on other nodes.
  const finalMap = world.node('n1').clusterMap()!;
  world.runFor(2_000);
  for (const key of keys) {
    const bytes = utf8(key.key);
    const partition = partitionOf(STRONG.id, bytes, PARTITIONS);
    const replicas = preferenceList(finalMap.owners, partition, 3);
    const states = replicas.map((id) => {
      const row = world.storage(id).get(paxosKey(STRONG.id, partition, bytes));
      return row === undefined ? null : decodeKeyState(row);
    });
    const highest = states.reduce<ReturnType<typeof decodeKeyState> | null>(
      (best, state) =>
        state !== null && (best === null || state.accepted.counter > best.accepted.counter)
          ? state
          : best,
      null,
    );
    const holding = states.filter(
      (state) =>
        state !== null && highest !== null && ballotsEqual(state.accepted, highest.accepted),
    ).length;
    if (highest !== null && holding < majority(replicas.length)) {
      problems.push(
        `${key.key}: its value is on ${holding} of its replicas ${replicas.join(', ')}`,
      );
    }
    for (const id of everyNode) {
      // Nodes that left keep what they had (a node that is not in the map adopts no map).
      const member = finalMap.members.some((other) => other.id === id);
      if (replicas.includes(id) || !member || !world.isUp(id)) continue;
      if (world.storage(id).get(paxosKey(STRONG.id, partition, bytes)) !== undefined) {
        problems.push(`${key.key}: ${id} still holds its acceptor row, and is not a replica`);
      }
    }
  }
  let fencedRequests = 0;
  let keysRewritten = 0;
  for (const id of everyNode) {
    if (!world.isUp(id)) continue;
    fencedRequests += world.node(id).protocolStats().paxos_fenced_total ?? 0;
  }
  for (const id of everyNode) {
    if (!world.isUp(id)) continue;
    keysRewritten += world.node(id).protocolStats().paxos_keys_rewritten_total ?? 0;
  }
  const keysMoved = keys.filter((key) => {
    const partition = partitionOf(STRONG.id, utf8(key.key), PARTITIONS);
    const sets = ownersSeen.map((owners) => preferenceList(owners, partition, 3).sort().join());
    return new Set(sets).size > 1;
  }).length;
  const linearizabilityProblems = judgement.anomalies.filter(
    (anomaly) => anomaly.startsWith('not linearizable') || anomaly.startsWith('versions'),
  );
  return {
    anomalies: [...problems, ...judgement.anomalies],
    linearizabilityProblems,
    changes,
    operations: workload.history.length,
    unknown: workload.history.filter((operation) => operation.outcome === 'unknown').length,
    fencedRequests,
    keysRewritten,
    keysMoved,
    pausedWindow,
    stagedListCrashes,
  };
}

/** The list reply a peer message carries, if it carries one. */
function listReplyIn(message: unknown): ListReplyMessage | null {
  if (!Array.isArray(message) || message[0] !== MessageType.paxos) return null;
  const inner: unknown = message[2];
  if (!isValidPaxosMessage(inner) || inner[0] !== PaxosMessageType.listReply) return null;
  return inner;
}
