// Keyspaces: named key namespaces with their replication and consistency properties
// (DESIGN section 3). A single node knows them from its configuration; the cluster issue
// moves them into the cluster map. Ids are small integers, stable for a keyspace's life,
// and are what storage keys carry (names may be long).

export type Consistency = 'eventual' | 'strong' | 'chain';
export type ConflictPolicy = 'lww' | 'siblings';
export type Durability = 'sync' | 'relaxed';

export interface Keyspace {
  readonly id: number;
  readonly name: string;
  /** Replication factor; 'all' replicates on every member. */
  readonly n: number | 'all';
  readonly r: number;
  readonly w: number;
  readonly consistency: Consistency;
  readonly conflicts: ConflictPolicy;
  readonly durability: Durability;
}

export const DEFAULT_KEYSPACE: Keyspace = {
  id: 0,
  name: 'default',
  n: 3,
  r: 2,
  w: 2,
  consistency: 'eventual',
  conflicts: 'lww',
  durability: 'sync',
};

/**
 * Keyspace ids fit in 32 bits because storage keys carry them as a u32; the largest is kept
 * for the register that holds the cluster map.
 */
export const KEYSPACE_ID_MAX = 0xffff_fffe;

const NAME_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;

export function isValidKeyspaceName(name: string): boolean {
  return NAME_PATTERN.test(name);
}
