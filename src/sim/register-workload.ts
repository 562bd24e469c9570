// Concurrent clients against the strong keyspaces of a simulated cluster, recorded as a
// history (src/check/history.ts) for the linearizability checker. Clients share a few keys
// (zipfian: one or two are hot, so operations on them overlap), run one operation at a time,
// and send each request to a node picked at random, which runs it or forwards it.
//
// Operations: get, put, delete, compare-and-set on the value or on the version, set if
// absent, and increment. The history's register model knows values only, so a
// compare-and-set on a version is recorded as one on the value that version named, and is
// issued only when that value was written once (a unique string): then the key holds that
// value exactly while it is at that version, and the two are the same test. Values that
// may repeat (integers, the absent key) are compared by value.
//
// Outcomes, from what the client can know:
// - ok: the node answered with success (output: the value read, whether a compare-and-set
//   applied, an increment's new value);
// - failed: nothing was done: a read that failed, a node that was down when the request was
//   sent, an error that says so (not an integer, overflow, invalid, overloaded);
// - unknown: no answer within the client's timeout, or UNAVAILABLE on a write (it may have
//   landed). A late answer to an operation already unknown is ignored, as a real client would.
//
// Beside the history, every ok operation leaves an observation of the key's version and the
// value at it, for the version checks of the judge (src/sim/judge.ts). The same workload runs
// on strong and on chain keyspaces; one difference shows: a chain answers a compare-and-set
// that did not apply without the key's value (it travels down the chain only when asked,
// and a compare-and-set cannot ask), so such an answer teaches the version alone and leaves
// no observation. Set-if-absent asks for the previous value, so it teaches both everywhere.

import { assert, fromUtf8, utf8 } from '../core/bytes.ts';
import type { ClientReply, ClientRequest, Mutation } from '../core/requests.ts';
import { Prng } from '../core/prng.ts';
import type { History, Operation, Outcome, Value } from '../check/history.ts';
import { isDecimalInteger } from '../check/history.ts';
import { ZipfianChooser } from '../loadgen/key-chooser.ts';
import type { ClusterWorld } from './cluster-world.ts';

/** A key of the workload: the keyspace and key a request names, and its name in the history. */
export interface RegisterKey {
  readonly keyspace: string;
  readonly key: string;
  readonly historyKey: string;
}

/** Shares of each kind of operation, in percent; they add up to 100. */
export interface RegisterMix {
  readonly get: number;
  readonly put: number;
  readonly delete: number;
  readonly casValue: number;
  readonly casVersion: number;
  readonly setIfAbsent: number;
  readonly incr: number;
}

export const DEFAULT_REGISTER_MIX: RegisterMix = {
  get: 30,
  put: 18,
  delete: 7,
  casValue: 15,
  casVersion: 12,
  setIfAbsent: 6,
  incr: 12,
};

/** The kinds of a mix, in the order a roll walks them. */
const KINDS: readonly RegisterKind[] = [
  'get',
  'put',
  'delete',
  'casValue',
  'casVersion',
  'setIfAbsent',
  'incr',
];

export interface RegisterWorkloadOptions {
  readonly seed: number;
  readonly clients: number;
  /** Operations in all, over every client. */
  readonly operations: number;
  /** The keys, hottest first. */
  readonly keys: readonly RegisterKey[];
  /**
   * The zipfian constant of the key choice, in (0, 1): higher, hotter first keys. Skew
   * makes operations overlap; too much puts so many operations of unknown outcome on one
   * key that the checker's search cannot finish.
   */
  readonly keySkew: number;
  readonly mix: RegisterMix;
  /** A client waits up to this long between two operations. */
  readonly thinkMsMax: number;
  /** A client gives up on an answer after this long: the operation is unknown. */
  readonly timeoutMs: number;
  /** The keys' consistency: what a compare-and-set that did not apply answers depends on it. */
  readonly consistency: 'strong' | 'chain';
  /**
   * When given, clients start no new operation once it holds (checked before each), and
   * `operations` is only the most they run: a workload that lasts as long as something
   * else does (a series of membership changes).
   */
  readonly stopWhen?: () => boolean;
}

/** What an ok operation taught about a key: its version, and the value at that version. */
export interface VersionObservation {
  readonly key: string;
  readonly version: number;
  readonly value: Value;
  readonly invokedAt: number;
  readonly completedAt: number;
  /** The operation's index in the history. */
  readonly operation: number;
}

export interface RegisterWorkloadResult {
  readonly history: History;
  readonly observations: readonly VersionObservation[];
  readonly kinds: KindCounts;
}

/** Errors after which a strong write surely did nothing. */
const NOTHING_DONE = new Set([
  'RINGKV_NOT_AN_INTEGER',
  'RINGKV_INTEGER_OVERFLOW',
  'RINGKV_INVALID_ARGUMENT',
  'RINGKV_OVERLOADED',
  'RINGKV_KEY_TOO_LARGE',
  'RINGKV_KEY_EMPTY',
  'RINGKV_VALUE_TOO_LARGE',
  'RINGKV_UNKNOWN_KEYSPACE',
]);

/** Near the top of a signed 64-bit integer, so that an increment may overflow. */
const NEAR_INT64_MAX = '9223372036854775800';

export type RegisterKind = keyof RegisterMix;

/** Operations of each kind by outcome (a compare-and-set on a version whose value may
 * repeat is sent on the value instead, and counted there). */
export type KindCounts = Readonly<Record<RegisterKind, Readonly<Record<Outcome, number>>>>;

/** An operation as drawn: its kind, the request's mutation (null: a get), the history's record. */
interface Drawn {
  readonly kind: RegisterKind;
  readonly mutation: Mutation | null;
  readonly record: Pick<Operation, 'op' | 'input'>;
}

/** Runs the workload to its end (every operation completed or unknown). */
export function runRegisterWorkload(
  world: ClusterWorld,
  options: RegisterWorkloadOptions,
): RegisterWorkloadResult {
  assert(options.clients >= 1 && options.operations >= 0, 'a workload has clients');
  assert(options.keys.length >= 1, 'a workload has keys');
  const mix = options.mix;
  const shares = KINDS.map((kind) => mix[kind]);
  assert(
    shares.every((share) => Number.isInteger(share) && share >= 0),
    'shares are counts',
  );
  assert(shares.reduce((sum, share) => sum + share, 0) === 100, 'shares add up to 100');
  // Apart from the world's generator (seeded by the same seed), so the two do not mirror.
  const prng = new Prng((options.seed ^ 0x52e6_1571) >>> 0);
  const chooser = new ZipfianChooser(options.keys.length, prng, options.keySkew);
  const history: Operation[] = [];
  const observations: VersionObservation[] = [];
  /** What each client last learned of each key. */
  const known = Array.from(
    { length: options.clients },
    () => new Map<string, { value: Value; version: number }>(),
  );
  const sequenceOf = new Array<number>(options.clients).fill(0);
  /** The kind of each operation of the history, by index. */
  const kindsDrawn: RegisterKind[] = [];
  let issued = 0;
  let finished = 0;
  let clientsStopped = 0;

  const draw = (client: number, key: RegisterKey): Drawn => {
    const fresh = `c${client}.${++sequenceOf[client]!}`;
    const last = known[client]!.get(key.historyKey);
    const kind = kindOf(prng.below(100), mix);
    if (kind === 'get') return { kind, mutation: null, record: { op: 'get', input: null } };
    if (kind === 'put') {
      // Some integers, so that increments have something to add to; once in a while one
      // near the top, so that an increment may overflow.
      const value = prng.chance(0.35)
        ? prng.chance(0.05)
          ? NEAR_INT64_MAX
          : String(prng.between(0, 40))
        : fresh;
      return {
        kind,
        mutation: {
          kind: 'set',
          value: utf8(value),
          condition: 'always',
          expiry: { kind: 'none' },
        },
        record: { op: 'put', input: { value } },
      };
    }
    if (kind === 'delete') {
      return { kind, mutation: { kind: 'delete' }, record: { op: 'delete', input: null } };
    }
    if (kind === 'casVersion' && last !== undefined && writtenOnce(last.value)) {
      return {
        kind,
        mutation: {
          kind: 'compareAndSet',
          expected: { version: last.version },
          value: utf8(fresh),
        },
        record: { op: 'cas', input: { expected: last.value, value: fresh } },
      };
    }
    if (kind === 'casValue' || kind === 'casVersion') {
      const expected = last === undefined || prng.chance(0.2) ? null : last.value;
      return {
        kind: 'casValue',
        mutation: {
          kind: 'compareAndSet',
          expected: { value: expected === null ? null : utf8(expected) },
          value: utf8(fresh),
        },
        record: { op: 'cas', input: { expected, value: fresh } },
      };
    }
    if (kind === 'setIfAbsent') {
      return {
        kind,
        mutation: {
          kind: 'set',
          value: utf8(fresh),
          condition: 'ifAbsent',
          expiry: { kind: 'none' },
          returnPrevious: true,
        },
        record: { op: 'cas', input: { expected: null, value: fresh } },
      };
    }
    const delta = prng.between(-3, 9);
    return {
      kind: 'incr',
      mutation: { kind: 'incrBy', delta: BigInt(delta) },
      record: { op: 'incr', input: { delta } },
    };
  };

  const issue = (client: number): void => {
    if (issued >= options.operations || options.stopWhen?.() === true) {
      clientsStopped++;
      return;
    }
    issued++;
    const key = options.keys[chooser.next()]!;
    const via = world.ids[prng.below(world.ids.length)]!;
    const { kind, mutation, record } = draw(client, key);
    kindsDrawn.push(kind);
    const operation = {
      client,
      key: key.historyKey,
      ...record,
      output: null,
      invokedAt: world.nowMs,
      completedAt: null,
      outcome: 'unknown',
    } as Operation;
    const index = history.push(operation) - 1;
    let settled = false;
    const settle = (): void => {
      settled = true;
      finished++;
      world.at(world.nowMs + prng.between(0, options.thinkMsMax), () => issue(client));
    };
    // A node that is down refuses the connection: the request never ran.
    if (!world.isUp(via)) {
      operation.outcome = 'failed';
      operation.completedAt = world.nowMs;
      settle();
      return;
    }
    world.at(world.nowMs + options.timeoutMs, () => {
      if (settled) return;
      operation.outcome = 'unknown';
      settle();
    });
    world.submit(via, requestOf(key, mutation), (reply) => {
      if (settled) return;
      const learned = recordReply(operation, mutation, reply, world.nowMs, options.consistency);
      if (learned !== null) {
        known[client]!.set(key.historyKey, learned);
        observations.push({
          key: key.historyKey,
          ...learned,
          invokedAt: operation.invokedAt,
          completedAt: world.nowMs,
          operation: index,
        });
      }
      settle();
    });
  };

  for (let client = 0; client < options.clients; client++) {
    world.at(world.nowMs + prng.between(0, options.thinkMsMax), () => issue(client));
  }
  const done = world.runUntil(
    () =>
      options.stopWhen === undefined
        ? finished === options.operations
        : clientsStopped === options.clients,
    options.operations * (options.timeoutMs + options.thinkMsMax) + 1_000,
  );
  assert(done, 'every operation of the workload ends');
  const kinds = Object.fromEntries(
    KINDS.map((kind) => [kind, { ok: 0, failed: 0, unknown: 0 }]),
  ) as Record<RegisterKind, Record<Outcome, number>>;
  history.forEach((operation, index) => kinds[kindsDrawn[index]!][operation.outcome]++);
  return { history, observations, kinds };
}

/** The kind of operation a roll in [0, 100) picks under `mix`. */
function kindOf(roll: number, mix: RegisterMix): RegisterKind {
  let below = 0;
  for (const kind of KINDS) {
    below += mix[kind];
    if (roll < below) return kind;
  }
  throw new Error('the shares of a mix add up to 100');
}

/** A value written by one write only: neither absent nor an integer (which repeat). */
function writtenOnce(value: Value): value is string {
  return value !== null && !isDecimalInteger(value);
}

/** The request of one operation on one key. */
export function requestOf(key: RegisterKey, mutation: Mutation | null): ClientRequest {
  const bytes = utf8(key.key);
  if (mutation === null) return { op: 'get', keyspace: key.keyspace, keys: [bytes] };
  return { op: 'write', keyspace: key.keyspace, items: [{ key: bytes, mutation }] };
}

/**
 * Fills in an operation's outcome and output from the node's reply; answers the key's
 * version and value after an ok operation (null otherwise, or when the reply leaves the
 * value out).
 */
function recordReply(
  operation: Operation,
  mutation: Mutation | null,
  reply: ClientReply,
  nowMs: number,
  consistency: 'strong' | 'chain',
): { value: Value; version: number } | null {
  if (!reply.ok) {
    // A read that failed changed nothing; so did a write refused for a reason that says
    // so. Any other failed write may have landed.
    if (mutation === null || NOTHING_DONE.has(reply.error.code)) {
      operation.outcome = 'failed';
      operation.completedAt = nowMs;
    }
    return null;
  }
  operation.outcome = 'ok';
  operation.completedAt = nowMs;
  if (reply.op === 'get') {
    assert(mutation === null, 'a get is answered by a read');
    const result = reply.results[0];
    assert(result !== undefined && result.version !== undefined, 'a strong read has a version');
    const value = result.value === null ? null : fromUtf8(result.value);
    operation.output = value;
    return { value, version: result.version };
  }
  assert(reply.op === 'write' && mutation !== null, 'a write is answered by a write');
  const result = reply.results[0];
  assert(result !== undefined && result.version !== undefined, 'a strong write has a version');
  const previous = result.previous === null ? null : fromUtf8(result.previous);
  switch (operation.op) {
    case 'put':
      return { value: operation.input.value, version: result.version };
    case 'delete':
      return { value: null, version: result.version };
    case 'cas': {
      operation.output = result.applied;
      if (result.applied) return { value: operation.input.value, version: result.version };
      // A chain leaves out the value a compare-and-set found, unless the write asked for it.
      const valueAnswered =
        consistency === 'strong' || (mutation.kind === 'set' && mutation.returnPrevious === true);
      return valueAnswered ? { value: previous, version: result.version } : null;
    }
    case 'incr': {
      const value = result.integer.toString();
      operation.output = value;
      return { value, version: result.version };
    }
    default:
      throw new Error(`a write does not answer ${operation.op}`);
  }
}
