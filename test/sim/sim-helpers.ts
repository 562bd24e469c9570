// What the simulation tests share: requests in a few words, replies read back, and the
// seeds a test runs (CLUSTER_SEED=<n> replays one).
import assert from 'node:assert/strict';
import { fromUtf8, utf8 } from '../../src/core/bytes.ts';
import type { ClientReply, ClientRequest, QuorumSpec } from '../../src/core/requests.ts';
import type { ClusterWorld } from '../../src/sim/cluster-world.ts';

const FIXED_SEED = process.env.CLUSTER_SEED === undefined ? null : Number(process.env.CLUSTER_SEED);

/** `count` seeds from `base`, or the one seed CLUSTER_SEED names. */
export function seedsFor(count: number, base: number): number[] {
  return FIXED_SEED !== null ? [FIXED_SEED] : Array.from({ length: count }, (_, i) => base + i);
}

/** CLUSTER_SEED if set, else `fallback`. */
export function seedOr(fallback: number): number {
  return FIXED_SEED ?? fallback;
}

export function put(
  key: string,
  value: string,
  w?: QuorumSpec,
  context?: Uint8Array,
): ClientRequest {
  return {
    op: 'write',
    keyspace: 'default',
    items: [
      {
        key: utf8(key),
        mutation: {
          kind: 'set',
          value: utf8(value),
          condition: 'always',
          expiry: { kind: 'none' },
        },
        ...(context === undefined ? {} : { context }),
      },
    ],
    ...(w === undefined ? {} : { w }),
  };
}

export function get(key: string, r?: QuorumSpec, keyspace = 'default'): ClientRequest {
  return { op: 'get', keyspace, keys: [utf8(key)], ...(r === undefined ? {} : { r }) };
}

/** A reply as text for messages (bigints included). */
export function show(reply: ClientReply): string {
  return JSON.stringify(reply, (_, value: unknown) =>
    typeof value === 'bigint' ? `${value}` : value,
  );
}

/** The value and context a one-key read returned. */
export function readOf(reply: ClientReply): { value: string | null; context: Uint8Array } {
  assert.ok(reply.ok && reply.op === 'get', `expected a value, got ${show(reply)}`);
  const result = reply.results[0]!;
  return { value: result.value === null ? null : fromUtf8(result.value), context: result.context };
}

export function valueOf(reply: ClientReply): string | null {
  return readOf(reply).value;
}

export function formed(world: ClusterWorld): ClusterWorld {
  assert.ok(world.waitFormed(), 'the cluster forms');
  return world;
}

/** The replicas of a key in keyspace `default`. */
export function replicasOf(world: ClusterWorld, key: string, n = 3): string[] {
  return world.replicasOf(0, utf8(key), n);
}

/** The winning value a node's own storage holds for a key of `default`, read directly. */
export function storedValue(world: ClusterWorld, id: string, key: string): string | null {
  const winner = world.storedWinner(id, 0, utf8(key));
  return winner === null ? null : fromUtf8(winner);
}
