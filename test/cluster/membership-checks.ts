// What the real-process membership tests share: a cluster of founders with standbys started
// to begin with, and what they check of it after a change: that every member has taken the
// commit, that partitions are shared out evenly, and that every key is stored on exactly its
// replicas (from each member's own listing).

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { partitionOf } from '../../src/core/hash.ts';
import { preferenceList } from '../../src/core/ring/preference-list.ts';
import { FAST_TIMINGS, http, waitFor } from './cluster-harness.ts';
import { NodeProcesses, type RingDocument } from './node-processes.ts';

const LISTING_PAGE_KEYS = 5_000;
const LISTING_PAGES_MAX = 1_000;
const STANDBY_TIMEOUT_MS = 15_000;

/**
 * For a test file: before its tests, starts `founders` on LMDB with the fast timings, then
 * each standby with --join through its `via`, and waits until every founder holds them all
 * as standbys, then runs `setUp` if given; after them, stops every process. Answers the
 * running processes (a test that asks before the start finished fails).
 */
export function clusterWithStandbys(
  founders: readonly string[],
  standbys: readonly { readonly id: string; readonly via: string }[],
  setUp?: (processes: NodeProcesses) => Promise<void>,
): () => NodeProcesses {
  // Made before any start, so that `after` stops what did start if a later start fails.
  const processes = new NodeProcesses({
    storage: 'lmdb',
    timings: FAST_TIMINGS,
    logLevel: process.env.RINGKV_TEST_LOG_LEVEL ?? 'warn',
  });
  let started = false;
  before(async () => {
    await processes.startFounders(founders);
    for (const standby of standbys) await processes.startJoiner(standby.id, standby.via);
    await waitForStandbys(
      processes,
      founders,
      standbys.map((standby) => standby.id),
    );
    started = true;
    await setUp?.(processes);
  });
  after(async () => {
    await processes.close();
  });
  return () => {
    assert.ok(started, 'the cluster started');
    return processes;
  };
}

/** Waits until each of `members` holds every one of `standbys` as a standby in its map. */
export async function waitForStandbys(
  processes: NodeProcesses,
  members: readonly string[],
  standbys: readonly string[],
): Promise<void> {
  await waitFor(
    async () => {
      const views = await Promise.all(members.map((id) => processes.status(id)));
      return views.every((view) =>
        standbys.every((id) =>
          view.members.some((member) => member.id === id && member.role === 'standby'),
        ),
      );
    },
    STANDBY_TIMEOUT_MS,
    `${standbys.join(', ')} to be standbys in the maps of ${members.join(', ')}`,
  );
}

/**
 * Waits until every one of `members` sees no change in progress and one map past
 * `epochAfter`; the ring then, as the first member gives it.
 */
export async function waitForCommit(
  processes: NodeProcesses,
  members: readonly string[],
  epochAfter: number,
  timeoutMs: number,
): Promise<RingDocument> {
  let last = '';
  await waitFor(
    async () => {
      const views = await Promise.all(members.map((id) => processes.status(id)));
      last = views
        .map((view) => `${view.node}: epoch ${view.epoch} change ${JSON.stringify(view.change)}`)
        .join('; ');
      return (
        views.every((view) => view.change === null && view.epoch > epochAfter) &&
        new Set(views.map((view) => view.epoch)).size === 1
      );
    },
    timeoutMs,
    () =>
      `the change made at epoch ${epochAfter} to commit on ${members.join(', ')}: ${last}\n` +
      processes.recentLogs(),
  );
  return processes.ring(members[0]!);
}

/** Every key a member stores of keyspace `default`, from its own listing (scope=node). */
export async function localKeys(processes: NodeProcesses, id: string): Promise<Set<string>> {
  const keys = new Set<string>();
  let cursor: string | null = null;
  for (let page = 0; page < LISTING_PAGES_MAX; page++) {
    const query: string =
      `scope=node&limit=${LISTING_PAGE_KEYS}` +
      (cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`);
    const answer = await http(`${processes.node(id).httpUrl}/v1/kv/default?${query}`);
    assert.equal(answer.status, 200, `${id}'s local listing: ${answer.text}`);
    const body = answer.json as { keys: string[]; cursor: string | null };
    for (const key of body.keys) keys.add(key);
    cursor = body.cursor;
    if (cursor === null) return keys;
  }
  throw new Error(`${id}'s local listing did not end within ${LISTING_PAGES_MAX} pages`);
}

export interface Placement {
  readonly problems: string[];
  readonly keysByNode: Record<string, number>;
}

/**
 * Where keys of `default` (N = `replicas`) are stored against where the ring says they
 * belong: keys a member holds but does not replicate, and keys of `acknowledged` (those
 * acknowledged before the listings start) missing from one of their replicas.
 */
export async function placementProblems(
  processes: NodeProcesses,
  acknowledged: readonly string[],
  members: readonly string[],
  ring: RingDocument,
  replicas: number,
): Promise<Placement> {
  const keyspace = ring.keyspaces.find((candidate) => candidate.name === 'default');
  assert.ok(keyspace !== undefined, 'the ring lists the default keyspace');
  assert.equal(keyspace.n, replicas);
  const encoder = new TextEncoder();
  const replicasOf = (key: string): string[] =>
    preferenceList(
      ring.owners,
      partitionOf(keyspace.id, encoder.encode(key), ring.partitionCount),
      replicas,
    );
  const stored = new Map<string, Set<string>>();
  for (const id of members) stored.set(id, await localKeys(processes, id));
  const problems: string[] = [];
  for (const [id, keys] of stored) {
    for (const key of keys) {
      if (!replicasOf(key).includes(id)) {
        problems.push(`${key} is stored on ${id}, not one of its replicas ${replicasOf(key)}`);
      }
    }
  }
  for (const key of acknowledged) {
    for (const id of replicasOf(key)) {
      if (!stored.get(id)?.has(key)) problems.push(`${key} is missing from its replica ${id}`);
    }
  }
  const keysByNode = Object.fromEntries([...stored].map(([id, keys]) => [id, keys.size]));
  return { problems, keysByNode };
}

/** Each owning member holds floor(Q/M) or ceil(Q/M) partitions, and only they own any. */
export function checkBalance(
  ring: RingDocument,
  members: readonly string[],
): Record<string, number> {
  const owned: Record<string, number> = {};
  for (const owner of ring.owners) owned[owner] = (owned[owner] ?? 0) + 1;
  assert.deepEqual(Object.keys(owned).sort(), [...members].sort(), 'the owners are the members');
  const low = Math.floor(ring.partitionCount / members.length);
  const high = Math.ceil(ring.partitionCount / members.length);
  for (const id of members) {
    const count = owned[id] ?? 0;
    assert.ok(count >= low && count <= high, `${id} owns ${count}, not ${low} or ${high}`);
  }
  return owned;
}
