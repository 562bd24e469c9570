// What clients ask the core and what it answers. These are protocol-neutral: the RESP and
// HTTP layers translate to and from them. Keys and values are byte strings.

import type { KvError } from './errors.ts';
import type { Keyspace } from './keyspace.ts';
import type { PlanSummary } from './cluster/membership.ts';

/**
 * How many replicas must answer (reads) or acknowledge (writes) an eventual-keyspace
 * request: `one`, `quorum` (a majority of N), `all` (N), or a number from 1 to N.
 */
export type QuorumSpec = 'one' | 'quorum' | 'all' | number;

/** When a written value expires. Relative times are resolved by the core with its `nowMs`. */
export type Expiry =
  | { readonly kind: 'none' } // no expiry (clears any existing one)
  | { readonly kind: 'keep' } // keep the key's current expiry (SET KEEPTTL)
  | { readonly kind: 'at'; readonly atMs: number } // absolute unix time in ms
  | { readonly kind: 'after'; readonly ms: number }; // relative to now

export type SetCondition = 'always' | 'ifAbsent' | 'ifPresent';
export type ExpireCondition = 'always' | 'ifNoExpiry' | 'ifHasExpiry' | 'ifGreater' | 'ifLess';

export type Mutation =
  | {
      readonly kind: 'set';
      readonly value: Uint8Array;
      readonly condition: SetCondition;
      readonly expiry: Expiry;
      /**
       * The result's `previous` is wanted (SET ... GET). Eventual and strong keyspaces fill
       * it anyway; chain keyspaces only when asked, since it travels down the chain.
       */
      readonly returnPrevious?: true;
    }
  | { readonly kind: 'delete'; readonly returnPrevious?: true }
  | { readonly kind: 'incrBy'; readonly delta: bigint }
  | { readonly kind: 'append'; readonly suffix: Uint8Array }
  /** Set or clear (`none`) the expiry of an existing key. */
  | { readonly kind: 'expire'; readonly expiry: Expiry; readonly condition: ExpireCondition }
  /**
   * Strong and chain keyspaces only: set `value` if the key's version is `expected.version`,
   * or if its value is `expected.value` (null: absent).
   */
  | {
      readonly kind: 'compareAndSet';
      readonly expected: CompareExpectation;
      readonly value: Uint8Array;
    };

export type CompareExpectation =
  { readonly version: number } | { readonly value: Uint8Array | null };

export interface WriteItem {
  readonly key: Uint8Array;
  readonly mutation: Mutation;
  /**
   * Causal context from an earlier read (encoded version vector). Absent: the write
   * supersedes every version the coordinator holds.
   */
  readonly context?: Uint8Array;
}

export type ClientRequest =
  | {
      readonly op: 'get';
      readonly keyspace: string;
      readonly keys: readonly Uint8Array[];
      /**
       * false: only the winning value and its expiry (context empty, siblings empty), which
       * is all RESP needs and spares encoding them. Default true.
       */
      readonly withVersions?: boolean;
      /** Replicas that must answer; the keyspace's `r` when absent. */
      readonly r?: QuorumSpec;
    }
  /**
   * All items of one write are applied atomically on one node. In a cluster, items on
   * different keys are coordinated separately (each key by its own replicas).
   */
  | {
      readonly op: 'write';
      readonly keyspace: string;
      readonly items: readonly WriteItem[];
      /** Replicas that must acknowledge; the keyspace's `w` when absent. */
      readonly w?: QuorumSpec;
    }
  | {
      readonly op: 'scan';
      readonly keyspace: string;
      /** Opaque cursor from the previous page; null starts at the beginning. */
      readonly cursor: Uint8Array | null;
      readonly count: number;
      /** Redis glob pattern (MATCH) or null. */
      readonly match: Uint8Array | null;
      /** Only keys that start with these bytes, or null. */
      readonly prefix: Uint8Array | null;
      /**
       * `cluster` (default): every live key of the keyspace once, whichever nodes hold it.
       * `node`: what this node stores, its replicas of other nodes' partitions included.
       * Cursors of one scope mean nothing to the other.
       */
      readonly scope?: 'cluster' | 'node';
    }
  | { readonly op: 'count'; readonly keyspace: string }
  | { readonly op: 'flush'; readonly keyspace: string }
  /** Creates keyspace `keyspace` with these properties (a cluster map change). */
  | { readonly op: 'createKeyspace'; readonly keyspace: string; readonly spec: KeyspaceProperties }
  /**
   * Plans a membership change and, unless `dryRun`, makes it (a cluster map change). The
   * keyspace field is unused ('').
   */
  | {
      readonly op: 'changeMembership';
      readonly keyspace: string;
      readonly change: MembershipRequest;
      readonly dryRun: boolean;
    };

/**
 * A membership change an operator asks for: a standby joins, a member leaves (its data
 * copied away first), a member that is gone is removed (its data rebuilt from the other
 * replicas), a member is replaced by a standby, or the change in progress is aborted.
 */
export type MembershipRequest =
  | { readonly kind: 'join' | 'leave' | 'remove'; readonly id: string }
  | { readonly kind: 'replace'; readonly id: string; readonly by: string }
  | { readonly kind: 'abort' };

/** The properties a new keyspace is created with (its id is assigned by the cluster). */
export type KeyspaceProperties = Omit<Keyspace, 'id' | 'name'>;

/** One version of a value; several only under the `siblings` policy. */
export interface SiblingView {
  readonly value: Uint8Array;
  /** Hybrid-logical-clock timestamp of the write, as [wall ms, logical]. */
  readonly timestamp: readonly [number, number];
}

export interface ReadResult {
  /** Null: no live value (absent, deleted or expired). */
  readonly value: Uint8Array | null;
  /** Unix ms at which the value expires, or 0 for none. */
  readonly expiresAtMs: number;
  /** Encoded causal context to hand back with a later write; empty when absent. */
  readonly context: Uint8Array;
  /** All live versions (one under `lww`), the winner first. */
  readonly siblings: readonly SiblingView[];
  /**
   * Strong and chain keyspaces: the key's version, which every change increments by one (a
   * compare-and-set may name it); 0 for a key never written.
   */
  readonly version?: number;
}

export interface WriteResult {
  /** Whether the mutation took effect (false: its condition did not hold). */
  readonly applied: boolean;
  /** The live value before the write, or null. */
  readonly previous: Uint8Array | null;
  /** The value after an incrBy. */
  readonly integer: bigint;
  /** The value's length after an append. */
  readonly length: number;
  /**
   * Cluster writes that changed the key: the encoded causal context of the version written,
   * which covers every version it supersedes (checkers compare writes by it).
   */
  readonly context?: Uint8Array;
  /** Strong and chain keyspaces: the key's version after the write. */
  readonly version?: number;
}

export type ClientReply =
  | { readonly ok: false; readonly error: KvError }
  | { readonly ok: true; readonly op: 'get'; readonly results: readonly ReadResult[] }
  | { readonly ok: true; readonly op: 'write'; readonly results: readonly WriteResult[] }
  | {
      readonly ok: true;
      readonly op: 'scan';
      readonly keys: readonly Uint8Array[];
      /** Null when the scan is complete. */
      readonly cursor: Uint8Array | null;
    }
  | { readonly ok: true; readonly op: 'count'; readonly count: number }
  | { readonly ok: true; readonly op: 'flush'; readonly removed: number }
  | { readonly ok: true; readonly op: 'createKeyspace'; readonly keyspace: Keyspace }
  | {
      readonly ok: true;
      readonly op: 'changeMembership';
      /** The epoch of the map with the change (for a dry run, the map it would follow). */
      readonly epoch: number;
      /** What moves; null when nothing does (an abort). */
      readonly plan: PlanSummary | null;
      /** False for a dry run: nothing was changed. */
      readonly made: boolean;
    };
