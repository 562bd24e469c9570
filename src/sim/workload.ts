// Concurrent clients against a simulated cluster, recorded as a history (src/check/
// history.ts): each client runs one operation at a time through a node it picks, and every
// operation's invocation and completion go into the history with the world's time.
//
// Outcomes, from what the client can know:
// - ok: the node answered with success;
// - failed: the node answered with an error that means nothing was done (a read that
//   failed, a request refused before it ran);
// - unknown: no answer within the client's timeout, or an error that leaves the write's
//   fate open (RINGKV_UNAVAILABLE after the write may have reached some replicas). A late
//   answer to an operation already recorded as unknown is ignored, as a real client would.
// Every written value is unique (client and sequence), so checkers can tell writes apart.
// An ok read or write also records the causal context the node answered, decoded into a plain
// version (node id -> counter): what the causal checkers compare.

import { assert, fromUtf8, utf8 } from '../core/bytes.ts';
import type { ClientReply, ClientRequest, QuorumSpec } from '../core/requests.ts';
import { Prng } from '../core/prng.ts';
import { decodeContext } from '../core/store/record.ts';
import type { History, Operation, Version } from '../check/history.ts';
import { keyChooser, type KeyDistribution } from '../loadgen/key-chooser.ts';
import type { ClusterWorld } from './cluster-world.ts';

export interface WorkloadOptions {
  readonly seed: number;
  readonly clients: number;
  /** Operations in all, over every client. */
  readonly operations: number;
  readonly keys: number;
  readonly distribution: KeyDistribution;
  readonly keyspace: string;
  /** Shares of reads and deletes; the rest are puts. */
  readonly readFraction: number;
  readonly deleteFraction: number;
  /** A client waits up to this long between two operations. */
  readonly thinkMsMax: number;
  /** A client gives up on an answer after this long: the operation is unknown. */
  readonly timeoutMs: number;
  /**
   * Each client writes only keys of its own (`c{client}-k{n}`), so every key has one writer:
   * what the acknowledged-writes checker needs.
   */
  readonly keysPerClient?: boolean;
  /** Quorum overrides for every read and write (the keyspace's r and w when absent). */
  readonly r?: QuorumSpec;
  readonly w?: QuorumSpec;
  /**
   * The nodes a client may send its next operation through (every founder of the world when
   * absent): a cluster whose members change names them as they change.
   */
  readonly via?: () => readonly string[];
  /** Once this holds, clients issue nothing more (the workload ends early). */
  readonly stop?: () => boolean;
}

/** Errors after which a write surely did nothing. */
const NOTHING_DONE = new Set([
  'RINGKV_KEY_TOO_LARGE',
  'RINGKV_KEY_EMPTY',
  'RINGKV_VALUE_TOO_LARGE',
  'RINGKV_UNKNOWN_KEYSPACE',
  'RINGKV_INVALID_ARGUMENT',
  'RINGKV_INVALID_CONTEXT',
  'RINGKV_OVERLOADED',
]);

/** Runs the workload to its end (every operation completed or unknown); returns the history. */
export function runWorkload(world: ClusterWorld, options: WorkloadOptions): History {
  assert(options.clients >= 1 && options.operations >= 0, 'a workload has clients');
  assert(options.readFraction + options.deleteFraction <= 1, 'shares add up to at most 1');
  const prng = new Prng(options.seed);
  const keys = keyChooser(options.distribution, options.keys, prng);
  const history: Operation[] = [];
  let issued = 0;
  let finished = 0;
  const sequenceOf = new Array<number>(options.clients).fill(0);

  const issue = (client: number): void => {
    if (issued >= options.operations || options.stop?.() === true) return;
    issued++;
    const key = options.keysPerClient === true ? `c${client}-k${keys.next()}` : `k${keys.next()}`;
    const via = prng.pick(options.via?.() ?? world.ids);
    const roll = prng.next();
    const kind =
      roll < options.readFraction
        ? 'get'
        : roll < options.readFraction + options.deleteFraction
          ? 'delete'
          : 'put';
    const value = `${client}:${++sequenceOf[client]!}`;
    const operation: Operation =
      kind === 'get'
        ? { client, key, op: 'get', input: null, output: null, ...pending(world.nowMs) }
        : kind === 'delete'
          ? { client, key, op: 'delete', input: null, output: null, ...pending(world.nowMs) }
          : { client, key, op: 'put', input: { value }, output: null, ...pending(world.nowMs) };
    history.push(operation);
    let settled = false;
    const settle = (): void => {
      settled = true;
      finished++;
      world.at(world.nowMs + prng.between(0, options.thinkMsMax), () => issue(client));
    };
    world.at(world.nowMs + options.timeoutMs, () => {
      if (settled) return;
      operation.outcome = 'unknown';
      settle();
    });
    world.submit(via, requestOf(operation, options), (reply) => {
      if (settled) return;
      record(operation, reply, world.nowMs);
      settle();
    });
  };

  for (let client = 0; client < options.clients; client++) {
    world.at(world.nowMs + prng.between(0, options.thinkMsMax), () => issue(client));
  }
  const done = world.runUntil(
    () => finished === options.operations || (finished === issued && options.stop?.() === true),
    options.operations * (options.timeoutMs + options.thinkMsMax) + 1_000,
  );
  assert(done, 'every operation of the workload ends');
  return history;
}

function pending(nowMs: number): { invokedAt: number; completedAt: null; outcome: 'unknown' } {
  return { invokedAt: nowMs, completedAt: null, outcome: 'unknown' };
}

function requestOf(operation: Operation, options: WorkloadOptions): ClientRequest {
  const key = utf8(operation.key);
  const keyspace = options.keyspace;
  const r = options.r === undefined ? {} : { r: options.r };
  const w = options.w === undefined ? {} : { w: options.w };
  switch (operation.op) {
    case 'get':
      return { op: 'get', keyspace, keys: [key], ...r };
    case 'delete':
      return { op: 'write', keyspace, items: [{ key, mutation: { kind: 'delete' } }], ...w };
    case 'put':
      return {
        op: 'write',
        keyspace,
        ...w,
        items: [
          {
            key,
            mutation: {
              kind: 'set',
              value: utf8(operation.input.value),
              condition: 'always',
              expiry: { kind: 'none' },
            },
          },
        ],
      };
    default:
      throw new Error(`the workload does not issue ${operation.op}`);
  }
}

/** Fills in an operation's outcome from the node's reply. */
function record(operation: Operation, reply: ClientReply, nowMs: number): void {
  if (reply.ok) {
    operation.outcome = 'ok';
    operation.completedAt = nowMs;
    if (operation.op === 'get' && reply.op === 'get') {
      const result = reply.results[0];
      assert(result !== undefined, 'a read of one key answers one result');
      operation.output = result.value === null ? null : fromUtf8(result.value);
      operation.version = versionOf(result.context);
    } else if (reply.op === 'write') {
      const context = reply.results[0]?.context;
      // A write that changed nothing (a delete of an absent key) names no version.
      if (context !== undefined) operation.version = versionOf(context);
    }
    return;
  }
  // A read that failed changed nothing; a write refused before it ran did nothing; any other
  // failed write may have reached some replicas.
  if (operation.op === 'get' || NOTHING_DONE.has(reply.error.code)) {
    operation.outcome = 'failed';
    operation.completedAt = nowMs;
  }
}

/** A context as the node encodes it, as a history's plain version; empty bytes: no version. */
export function versionOf(context: Uint8Array): Version {
  const version: Record<string, number> = {};
  if (context.length === 0) return version;
  for (const [node, counter] of decodeContext(context)) {
    assert(!Object.hasOwn(version, node), 'a context names each node once');
    version[node] = counter;
  }
  return version;
}
