// A partition's chain as the cluster map holds it: an epoch and the ordered replicas, head
// first and tail last. Each member names the epoch from which it has been a member, so a
// replica that was removed and later appended again (same id, new membership) can tell that
// its old copy must not be trusted. Configurations are plain data, validated field by field
// when they come off the wire, and only ever replaced by one with a higher epoch.

import { assert } from '../bytes.ts';
import { NODE_ID_LENGTH_MAX, PARTITION_LIMIT, REPLICAS_PER_CHAIN_MAX } from './settings.ts';

export interface ChainMember {
  readonly id: string;
  /** The epoch of the configuration that made this replica a member, this time. */
  readonly sinceEpoch: number;
}

export interface ChainConfig {
  readonly partition: number;
  /** Raised by every change; messages carry it, and older ones are refused. */
  readonly epoch: number;
  /** Head first, tail last. */
  readonly members: readonly ChainMember[];
}

export function isValidNodeId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= NODE_ID_LENGTH_MAX;
}

export function isValidPartition(value: unknown): value is number {
  return (
    typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < PARTITION_LIMIT
  );
}

export function isValidEpoch(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function hasExactKeys(value: Record<string, unknown>, keys: readonly string[]): boolean {
  const own = Object.keys(value);
  if (own.length !== keys.length) return false;
  for (const key of keys) if (!Object.hasOwn(value, key)) return false;
  return true;
}

const CONFIG_KEYS: readonly string[] = ['partition', 'epoch', 'members'];
const MEMBER_KEYS: readonly string[] = ['id', 'sinceEpoch'];

/** Never throws: a configuration is 1..16 distinct members, each since an epoch <= epoch. */
export function isValidChainConfig(value: unknown): value is ChainConfig {
  if (!isPlainObject(value) || !hasExactKeys(value, CONFIG_KEYS)) return false;
  const { partition, epoch, members } = value;
  if (!isValidPartition(partition) || !isValidEpoch(epoch)) return false;
  if (!Array.isArray(members) || members.length < 1 || members.length > REPLICAS_PER_CHAIN_MAX) {
    return false;
  }
  const seen = new Set<string>();
  for (const member of members as unknown[]) {
    if (!isPlainObject(member) || !hasExactKeys(member, MEMBER_KEYS)) return false;
    if (!isValidNodeId(member['id']) || seen.has(member['id'])) return false;
    const since = member['sinceEpoch'];
    if (!isValidEpoch(since) || since > epoch) return false;
    seen.add(member['id']);
  }
  return true;
}

export function createChainConfig(
  partition: number,
  epoch: number,
  members: readonly ChainMember[],
): ChainConfig {
  const config: ChainConfig = {
    partition,
    epoch,
    members: members.map((member) => ({ id: member.id, sinceEpoch: member.sinceEpoch })),
  };
  assert(isValidChainConfig(config), 'a chain configuration is well formed');
  return config;
}

/** The configuration a partition starts with: every replica a member since epoch 1. */
export function foundingChainConfig(partition: number, ids: readonly string[]): ChainConfig {
  return createChainConfig(
    partition,
    1,
    ids.map((id) => ({ id, sinceEpoch: 1 })),
  );
}

/** The next configuration without `id`. The last replica is never removed. */
export function withoutMember(config: ChainConfig, id: string): ChainConfig {
  const members = config.members.filter((member) => member.id !== id);
  assert(members.length === config.members.length - 1, `${id} is a member to remove`);
  assert(members.length >= 1, 'a chain keeps at least one replica');
  return createChainConfig(config.partition, config.epoch + 1, members);
}

/** The next configuration with `id` appended as the new tail. */
export function withTail(config: ChainConfig, id: string): ChainConfig {
  assert(memberIndex(config, id) < 0, `${id} is not a member yet`);
  const epoch = config.epoch + 1;
  return createChainConfig(config.partition, epoch, [...config.members, { id, sinceEpoch: epoch }]);
}

export function memberIndex(config: ChainConfig, id: string): number {
  return config.members.findIndex((member) => member.id === id);
}

export function headOf(config: ChainConfig): string {
  return config.members[0]!.id;
}

export function tailOf(config: ChainConfig): string {
  return config.members[config.members.length - 1]!.id;
}

/** The replica before `id`, or null for the head (or a non-member). */
export function predecessorOf(config: ChainConfig, id: string): string | null {
  const index = memberIndex(config, id);
  return index > 0 ? config.members[index - 1]!.id : null;
}

/** The replica after `id`, or null for the tail (or a non-member). */
export function successorOf(config: ChainConfig, id: string): string | null {
  const index = memberIndex(config, id);
  return index >= 0 && index < config.members.length - 1 ? config.members[index + 1]!.id : null;
}

export function describeChain(config: ChainConfig): string {
  return `p${config.partition}@${config.epoch}[${config.members.map((m) => m.id).join('>')}]`;
}
