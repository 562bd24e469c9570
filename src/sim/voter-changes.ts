// The voters change, in simulation (docs/PAXOS.md, "Changing the voters"): three founders
// (the voters) and two more members, n4 and n5, with n6 a standby, while a script replaces a
// crashed voter by the standby, lets a voter leave, and removes a crashed voter, each change
// moving the map register to another set of acceptors. All along, keyspaces are created from
// several nodes at once (each a map change racing the others and the membership changes),
// a register workload runs on a strong keyspace, and single writes go to an eventual one.
// Messages are lost at a seeded rate. Once the replace has committed, n1's machine comes back
// on its map from before it, with every map sent to it lost, and makes map changes with the
// voters it knows (n1, n2, n3), while n3 hears no map-register request but n1's for three
// seconds: the next voters choose maps on n2 and n6, and only the map register's fences keep
// n1's quorum of n1 and n3 from writing an old map back over them. Then n1 is stopped again.
//
// Judged: every map epoch has one map across every node that ever installed one (each map a
// node installs is recorded by epoch and compared byte for byte), the voters at the end are
// the planned ones, every member ends on the same map, the strong history is linearizable,
// and every acknowledged eventual write is read back. Everything comes from the seed.

import { assert, fromUtf8, utf8 } from '../core/bytes.ts';
import { encodeMap, votersOf, type ClusterMap } from '../core/cluster/cluster-map.ts';
import { MessageType } from '../core/cluster/messages.ts';
import { DEFAULT_KEYSPACE, type Keyspace } from '../core/keyspace.ts';
import { Prng } from '../core/prng.ts';
import type { MembershipRequest } from '../core/requests.ts';
import { ClusterWorld } from './cluster-world.ts';
import { judgeLinearizableRun } from './judge.ts';
import { askForChange, describeChange, pollUntil } from './membership-script.ts';
import {
  DEFAULT_REGISTER_MIX,
  runRegisterWorkload,
  type RegisterKey,
} from './register-workload.ts';

export interface VoterChangeOptions {
  readonly seed: number;
  /** Negative control: the map register's fences ignored, the new voters' fence step skipped. */
  readonly unsafe?: 'ignore-fences';
}

export interface VoterChangeResult {
  /** Safety and liveness problems, one line each; empty when the run is clean. */
  readonly anomalies: readonly string[];
  /** Epochs that carried two different maps (a subset of the anomalies). */
  readonly splitEpochs: readonly string[];
  /** The changes the script made, in order, with the virtual time each took. */
  readonly changes: readonly string[];
  readonly voters: readonly string[];
  readonly keyspacesCreated: number;
  readonly keyspaceCreationsFailed: number;
  readonly operations: number;
  readonly eventualWrites: number;
  readonly mapEpochs: number;
}

/** The voters the script ends with: n1 replaced by n6, n3 left (n4 in), n2 removed (n5 in). */
export const PLANNED_VOTERS: readonly string[] = ['n4', 'n5', 'n6'];

const PARTITIONS = 16;
const KEYS = 12;
const CLIENTS = 3;
const STRONG: Keyspace = { ...DEFAULT_KEYSPACE, id: 1, name: 'strong', consistency: 'strong' };
const CHANGE_TIMEOUT_MS = 60_000;
const POLL_MS = 50;
const STALE_NODE = 'n1';
/** How long after it is back the stale node starts its map changes. */
const STALE_DELAY_MS = 1_000;
/** Keyspace creations stop at this many, whatever the script still does. */
const CREATIONS_MAX = 16;

type Step =
  | { readonly kind: 'standby'; readonly id: string }
  | { readonly kind: 'change'; readonly request: MembershipRequest }
  /** For good: the node is replaced or removed afterwards. */
  | { readonly kind: 'crash'; readonly id: string }
  | { readonly kind: 'stale'; readonly lost: boolean }
  | { readonly kind: 'wait'; readonly ms: number };

/** The script: each change waits for the previous one to end (its commit seen by `via`). */
const SCRIPT: readonly Step[] = [
  { kind: 'standby', id: 'n4' },
  { kind: 'change', request: { kind: 'join', id: 'n4' } },
  { kind: 'standby', id: 'n5' },
  { kind: 'change', request: { kind: 'join', id: 'n5' } },
  { kind: 'standby', id: 'n6' },
  { kind: 'wait', ms: 500 },
  { kind: 'crash', id: 'n1' },
  { kind: 'change', request: { kind: 'replace', id: 'n1', by: 'n6' } },
  { kind: 'stale', lost: true },
  { kind: 'wait', ms: 3_000 },
  { kind: 'stale', lost: false },
  { kind: 'wait', ms: 500 },
  { kind: 'change', request: { kind: 'leave', id: 'n3' } },
  { kind: 'wait', ms: 500 },
  { kind: 'crash', id: 'n2' },
  { kind: 'change', request: { kind: 'remove', id: 'n2' } },
  { kind: 'wait', ms: 1_000 },
];

/** Runs one seed of the scenario; see the file's opening. */
export function runVoterChanges(options: VoterChangeOptions): VoterChangeResult {
  const { seed } = options;
  const world = new ClusterWorld({
    seed,
    nodeCount: 3,
    keyspaces: [DEFAULT_KEYSPACE, STRONG],
    partitionCount: PARTITIONS,
    lossRate: seed % 3 === 0 ? 0 : 0.01,
    duplicateRate: seed % 2 === 0 ? 0.02 : 0,
    reorderRate: seed % 4 === 1 ? 0.02 : 0,
    requestTimeoutMs: 800,
    ...(options.unsafe === undefined ? {} : { voterChangeUnsafe: options.unsafe }),
  });
  const everyNode = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6'];
  const mapsByEpoch = new Map<number, { text: string; by: string }>();
  const splitEpochs: string[] = [];
  world.onMap((id, map) => {
    const text = new TextDecoder().decode(encodeMap(map));
    const seen = mapsByEpoch.get(map.epoch);
    if (seen === undefined) mapsByEpoch.set(map.epoch, { text, by: id });
    else if (seen.text !== text && splitEpochs.length < 10) {
      splitEpochs.push(`epoch ${map.epoch}: ${seen.by} and ${id} installed different maps`);
    }
  });
  assert(world.waitFormed(), 'the founders form a cluster');
  const prng = new Prng((seed ^ 0x7f4a_11c3) >>> 0);
  const problems: string[] = [];
  const changes: string[] = [];
  let stepIndex = 0;
  let scriptDone = false;
  let creations = 0;
  let created = 0;
  let creationsFailed = 0;
  const eventualAcknowledged = new Map<string, string>();
  let eventualWrites = 0;

  const mapOf = (id: string): ClusterMap | null =>
    world.nodeIds.includes(id) && world.isUp(id) ? world.node(id).clusterMap() : null;
  /** The newest map any live node holds. */
  const latestMap = (): ClusterMap | null => {
    let latest: ClusterMap | null = null;
    for (const id of everyNode) {
      const map = mapOf(id);
      if (map !== null && (latest === null || map.epoch > latest.epoch)) latest = map;
    }
    return latest;
  };
  /** Live nodes that own partitions in the newest map. */
  const liveMembers = (): string[] => {
    const owners = new Set(latestMap()?.owners ?? []);
    return everyNode.filter((id) => owners.has(id) && mapOf(id) !== null);
  };
  // The member that drives the script: the first founder still in, else the first member.
  const driver = (): string => {
    const members = liveMembers().filter((id) => id !== STALE_NODE);
    return members[0] ?? 'n4';
  };

  const poll = (check: () => boolean, then: () => void, deadlineMs: number, what: string) =>
    pollUntil(
      world,
      {
        check,
        deadlineMs,
        pollMs: POLL_MS,
        onTimeout: () => {
          // Where it stuck: the change in progress as the newest map holds it (owners left out).
          const map = latestMap();
          const change =
            map?.change === undefined
              ? 'none'
              : JSON.stringify({ ...map.change, nextOwners: undefined });
          problems.push(
            `${what} did not happen within ${CHANGE_TIMEOUT_MS} ms (epoch ${map?.epoch ?? '?'}, change ${change})`,
          );
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
        if (step.id === 'n6') {
          // The voter changes come next: map changes and writes from here on race them.
          world.at(world.nowMs + 50, createSome);
          world.at(world.nowMs + 50, writeSome);
        }
        world.addNode(step.id, driver());
        return poll(
          () => mapOf(driver())?.members.some((member) => member.id === step.id) === true,
          nextStep,
          world.nowMs + CHANGE_TIMEOUT_MS,
          `standby ${step.id} added`,
        );
      case 'stale':
        staleUntilMs = step.lost ? Number.POSITIVE_INFINITY : world.nowMs;
        world.dropWhere(step.lost ? staleFaults : null);
        if (step.lost) {
          // The replaced voter's machine comes back, on its map from before the replace.
          world.restart(STALE_NODE);
          staleFromMs = world.nowMs + STALE_DELAY_MS;
          createFromStale();
        } else {
          world.crash(STALE_NODE);
        }
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
    const subject = request.kind === 'abort' ? '' : request.id;
    const done = (map: ClusterMap | null): boolean =>
      map !== null &&
      map.change === undefined &&
      (request.kind === 'join'
        ? map.owners.includes(subject)
        : !map.members.some((member) => member.id === subject));
    askForChange(
      world,
      {
        request,
        via: driver,
        startedOn: (planned) => planned?.change?.subject === subject || done(planned),
        deadlineMs,
      },
      () =>
        poll(
          () => done(mapOf(driver())),
          () => {
            changes.push(`${describe}: ${world.nowMs - startMs} ms`);
            nextStep();
          },
          deadlineMs,
          `${describe} committed`,
        ),
      (message) => {
        problems.push(`${describe} was refused: ${message}`);
        scriptDone = true;
      },
    );
  };

  let staleUntilMs = 0;
  let staleFromMs = 0;
  /**
   * While n1 is back on its old map: every map sent to it is lost, and the map register's
   * requests to and from n3 are lost except n1's, so that the voters after the replace (n2,
   * n3, n6) choose maps on n2 and n6 alone while n3 falls behind. n1's quorum of the voters
   * it knows (n1, n2, n3) can then be n1 and n3, which both miss the newest map, and only the
   * fences (n3's, and n2's conflicts) turn it away.
   */
  const staleFaults = (from: string, to: string, message: unknown): boolean => {
    if (!Array.isArray(message)) return false;
    if (to === STALE_NODE) {
      return message[0] === MessageType.map || message[0] === MessageType.mapFetch;
    }
    const cut = (to === 'n3' && from !== STALE_NODE) || (from === 'n3' && to !== STALE_NODE);
    if (!cut || message[0] !== MessageType.paxos) return false;
    const request = message[2] as unknown[];
    const key = request[2];
    return key instanceof Uint8Array && key.length >= 4 && key[0] === 0xff && key[1] === 0xff;
  };
  /** The stale node makes map changes on its old map once the next voters have made some. */
  const createFromStale = (): void => {
    if (scriptDone || world.nowMs >= staleUntilMs) return;
    if (world.nowMs >= staleFromMs && world.isUp(STALE_NODE)) {
      world.submit(
        STALE_NODE,
        {
          op: 'createKeyspace',
          keyspace: `stale${++staleCreations}`,
          spec: { n: 3, r: 2, w: 2, consistency: 'eventual', conflicts: 'lww', durability: 'sync' },
        },
        (reply) => {
          if (reply.ok) created++;
          else creationsFailed++;
        },
      );
    }
    world.at(world.nowMs + 100 + prng.below(200), createFromStale);
  };
  let staleCreations = 0;
  // Keyspace creations from random live members all along.
  const createSome = (): void => {
    if (scriptDone || creations >= CREATIONS_MAX) return;
    const members = liveMembers().filter((id) => id !== STALE_NODE || world.nowMs >= staleUntilMs);
    const count = 1 + prng.below(2);
    for (let i = 0; i < count && members.length > 0; i++) {
      const via = members[prng.below(members.length)]!;
      const name = `ks${++creations}`;
      world.submit(
        via,
        {
          op: 'createKeyspace',
          keyspace: name,
          spec: { n: 3, r: 2, w: 2, consistency: 'eventual', conflicts: 'lww', durability: 'sync' },
        },
        (reply) => {
          if (reply.ok) created++;
          else creationsFailed++;
        },
      );
    }
    world.at(world.nowMs + 300 + prng.below(600), createSome);
  };
  // Eventual writes, each key written once: an acknowledged one must be read back at the end.
  const writeSome = (): void => {
    if (scriptDone) return;
    const members = liveMembers();
    if (members.length > 0) {
      const via = members[prng.below(members.length)]!;
      const key = `e${++eventualWrites}`;
      const value = `v${eventualWrites}.${seed}`;
      world.submit(
        via,
        {
          op: 'write',
          keyspace: DEFAULT_KEYSPACE.name,
          items: [
            {
              key: utf8(key),
              mutation: {
                kind: 'set',
                value: utf8(value),
                condition: 'always',
                expiry: { kind: 'none' },
              },
            },
          ],
        },
        (reply) => {
          if (reply.ok) eventualAcknowledged.set(key, value);
        },
      );
    }
    world.at(world.nowMs + 100 + prng.below(200), writeSome);
  };

  world.at(world.nowMs + 300, nextStep);
  const keys: RegisterKey[] = Array.from({ length: KEYS }, (_, i) => ({
    keyspace: STRONG.name,
    key: `k${i}`,
    historyKey: `k${i}`,
  }));
  const workload = runRegisterWorkload(world, {
    seed,
    clients: CLIENTS,
    operations: 100_000,
    keys,
    keySkew: 0.3,
    mix: DEFAULT_REGISTER_MIX,
    thinkMsMax: 250,
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
    // The founders are all gone by the end: the members then are the ones judged.
    nodes: liveMembers().filter((id) => id !== 'n1' && id !== 'n2' && id !== 'n3'),
  });
  world.runFor(2_000);

  // Every member on one map, with the planned voters.
  const finalMap = mapOf(driver());
  const members = finalMap?.members.map((member) => member.id) ?? [];
  for (const id of members) {
    const map = mapOf(id);
    if (map === null || finalMap === null || map.epoch !== finalMap.epoch) {
      problems.push(`${id} ends on epoch ${map?.epoch ?? 'none'}, not ${finalMap?.epoch ?? '?'}`);
    }
  }
  const voters = finalMap === null ? [] : votersOf(finalMap);
  if (problems.length === 0 && voters.join() !== PLANNED_VOTERS.join()) {
    problems.push(`the voters end as ${voters.join(', ')}, not ${PLANNED_VOTERS.join(', ')}`);
  }
  // Every acknowledged eventual write is read back, through a member, with every replica.
  for (const [key, value] of eventualAcknowledged) {
    const reply = world.call(members[0] ?? 'n4', {
      op: 'get',
      keyspace: DEFAULT_KEYSPACE.name,
      keys: [utf8(key)],
      r: 'all',
    });
    const read =
      reply.ok && reply.op === 'get' && reply.results[0]?.value
        ? fromUtf8(reply.results[0].value)
        : null;
    if (read !== value) {
      problems.push(
        `${key}: acknowledged ${value}, read ${read ?? (reply.ok ? 'nothing' : reply.error.message)}`,
      );
    }
  }
  return {
    anomalies: [...splitEpochs, ...problems, ...judgement.anomalies],
    splitEpochs,
    changes,
    voters,
    keyspacesCreated: created,
    keyspaceCreationsFailed: creationsFailed,
    operations: workload.history.length,
    eventualWrites: eventualAcknowledged.size,
    mapEpochs: mapsByEpoch.size,
  };
}
