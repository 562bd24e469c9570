// `ringkv cluster|ring|keyspace|fault`: the cluster as one node sees it, keyspaces, and
// fault injection, over the node's HTTP routes (docs/HTTP.md, "Cluster routes").
//
// Rules: the node is found as the client commands find it (--node, then RINGKV_URL, then
// 127.0.0.1:6480) and requests go through their helpers; admin routes (keyspace create,
// faults) send the admin token (--admin-token or RINGKV_ADMIN_TOKEN), or the password when
// no admin token is given. A refused request exits 1 with the node's error code; a usage
// mistake exits 2.

import { parseArgs } from 'node:util';
import { UsageError } from '../options.ts';
import { failure, request, type Target } from './client-commands.ts';

const NODE_HELP = `Options:
  --node HOST:PORT   node's HTTP address (default 127.0.0.1:6480; env RINGKV_URL, a URL)
  --password PW      client password (env RINGKV_PASSWORD)
  --help             show this help
`;

const ADMIN_HELP = `${NODE_HELP}  --admin-token T    the node's admin token (env RINGKV_ADMIN_TOKEN; default: the password)
`;

export const CLUSTER_HELP: Record<string, string> = {
  cluster: `Usage: ringkv cluster [status] [options]
       ringkv cluster join|leave|remove ID [--dry-run] [options]
       ringkv cluster replace ID BY [--dry-run] [options]
       ringkv cluster abort [options]

status (the default): prints the cluster as the node sees it: each member with its role and
liveness (alive, suspect, down), the partitions it owns, the hints this node holds for it,
and its addresses.
join ID: a standby (a node started with --join) takes its share of the partitions.
leave ID: a member hands its partitions to the others, its data copied first.
remove ID: a member that is gone is taken out; its data is rebuilt from the other replicas.
replace ID BY: standby BY takes exactly the partitions of member ID.
abort: gives up the change in progress.
A change prints its plan (which partitions move where, how much data) and then makes it;
with --dry-run it prints the plan only. Changes are admin routes.
  --dry-run          print the plan, change nothing

${ADMIN_HELP}`,
  ring: `Usage: ringkv ring [--partitions] [options]

Prints the ring: how many partitions each node owns, and with --partitions the owner of
every partition.
  --partitions       also print one line per partition: PARTITION OWNER

${NODE_HELP}`,
  keyspace: `Usage: ringkv keyspace create NAME [--consistency eventual|strong|chain] [--n N]
                                   [--r R] [--w W] [--conflicts lww|siblings]
                                   [--durability sync|relaxed] [options]
       ringkv keyspace list [options]

create: adds a keyspace to the cluster (an admin route). Unset properties take the node's
defaults (eventual, n 3, r 2, w 2, lww, sync). N is a replica count or 'all'. Strong
(CASPaxos) and chain (chain replication) keyspaces are linearizable and take only --n: r, w,
conflicts and durability are eventual keyspaces' options; chain keyspaces share one n.
list: prints every keyspace with its properties.

${ADMIN_HELP}`,
  fault: `Usage: ringkv fault ACTION [options]

Injects faults into one node, to see how the cluster copes (an admin route).
Actions:
  fail               the node drops every peer message and refuses its clients
  recover, heal      clear every fault
  delay MS           delay each message the node sends by MS milliseconds (0 clears)
  loss RATE          drop each message the node sends with probability RATE (0 to 1)
  cut ID,ID          drop messages to and from these peers (node ids)
  show               print the faults in force
Each action prints the faults in force after it.

${ADMIN_HELP}`,
};

interface ParsedFlags {
  readonly target: Target;
  readonly positionals: readonly string[];
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
}

function parseFlags(name: string, argv: string[], extra: Record<string, 'string' | 'boolean'>) {
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    node: { type: 'string' },
    password: { type: 'string' },
    'admin-token': { type: 'string' },
    help: { type: 'boolean' },
  };
  for (const [flag, type] of Object.entries(extra)) options[flag] = { type };
  const { values, positionals } = parseArgs({
    args: argv,
    options,
    allowPositionals: true,
    strict: true,
  });
  if (values.help === true) return 'help' as const;
  const node = values.node as string | undefined;
  if (node !== undefined && !/^[^\s/:]+:\d{1,5}$/.test(node)) {
    throw new UsageError(`--node: expected HOST:PORT, got '${node}'\n\n${CLUSTER_HELP[name]!}`);
  }
  const password = (values.password as string | undefined) ?? process.env.RINGKV_PASSWORD;
  const adminToken =
    (values['admin-token'] as string | undefined) ?? process.env.RINGKV_ADMIN_TOKEN;
  const admin =
    name === 'fault' ||
    (name === 'keyspace' && positionals[0] === 'create') ||
    (name === 'cluster' && positionals.length > 0 && positionals[0] !== 'status');
  const target: Target = {
    url:
      node === undefined ? (process.env.RINGKV_URL ?? 'http://127.0.0.1:6480') : `http://${node}`,
    keyspace: 'default',
    password: admin ? (adminToken ?? password) : password,
  };
  return { target, positionals, values } satisfies ParsedFlags;
}

/** Left-aligned columns, two spaces apart; the first row is the header. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, index) => (widths[index] = Math.max(widths[index] ?? 0, cell.length)));
  }
  return rows
    .map((row) =>
      row
        .map((cell, index) => (index === row.length - 1 ? cell : cell.padEnd(widths[index]!)))
        .join('  '),
    )
    .join('\n')
    .concat('\n');
}

async function getJson(target: Target, path: string): Promise<unknown> {
  const response = await request(target, 'GET', path);
  if (!response.ok) throw await failure(response);
  return response.json();
}

async function sendJson(target: Target, method: string, path: string, body?: unknown) {
  const response = await request(
    target,
    method,
    path,
    body === undefined ? undefined : Buffer.from(JSON.stringify(body)),
  );
  if (!response.ok) throw await failure(response);
  return response.json();
}

interface MembershipAnswer {
  readonly made: boolean;
  readonly epoch: number;
  readonly planText: readonly string[];
}

/** The membership change the positionals of `ringkv cluster ACTION ...` name. */
function membershipChangeOf(positionals: readonly string[]): Record<string, string> {
  const [action, id, by] = positionals;
  const usage = `\n\n${CLUSTER_HELP.cluster!}`;
  switch (action) {
    case 'join':
    case 'leave':
    case 'remove':
      if (positionals.length !== 2)
        throw new UsageError(`ringkv cluster ${action} takes ID${usage}`);
      return { kind: action, id: id! };
    case 'replace':
      if (positionals.length !== 3) {
        throw new UsageError(`ringkv cluster replace takes ID and BY${usage}`);
      }
      return { kind: action, id: id!, by: by! };
    case 'abort':
      if (positionals.length !== 1) throw new UsageError(`ringkv cluster abort takes no arguments`);
      return { kind: action };
  }
  throw new UsageError(`ringkv cluster: unknown action '${action ?? ''}'${usage}`);
}

interface ClusterAnswer {
  readonly node: string;
  readonly clusterId: string;
  readonly state: string;
  readonly epoch: number;
  readonly partitionCount: number;
  readonly members: readonly {
    readonly id: string;
    readonly peer: string;
    readonly http: string;
    readonly resp: string;
    readonly liveness: string;
    readonly partitionsOwned: number;
    readonly chainsJoined?: number;
  }[];
  readonly hintsPending: Readonly<Record<string, number>>;
  readonly hintsTotal: number;
  readonly problem: string | null;
  readonly chainsShort?: number;
}

export function formatCluster(answer: ClusterAnswer): string {
  let text =
    `cluster ${answer.clusterId}  state ${answer.state}  epoch ${answer.epoch}  ` +
    `partitions ${answer.partitionCount}  seen from ${answer.node}  ` +
    `hints held ${answer.hintsTotal}\n`;
  if (answer.problem !== null) text += `problem: ${answer.problem}\n`;
  if ((answer.chainsShort ?? 0) > 0) {
    text += `chains short of a replica: ${answer.chainsShort} (being repaired)\n`;
  }
  const rows = [['MEMBER', 'LIVENESS', 'PARTITIONS', 'HINTS PENDING', 'PEER', 'HTTP', 'RESP']];
  for (const member of answer.members) {
    rows.push([
      member.id,
      member.liveness,
      String(member.partitionsOwned),
      String(answer.hintsPending[member.id] ?? 0),
      member.peer || '-',
      member.http || '-',
      member.resp || '-',
    ]);
  }
  return text + formatTable(rows);
}

interface RingAnswer {
  readonly clusterId: string;
  readonly epoch: number;
  readonly partitionCount: number;
  readonly owners: readonly string[];
  readonly nodes: readonly { readonly id: string; readonly liveness: string }[];
}

export function formatRing(answer: RingAnswer, withPartitions: boolean): string {
  const owned = new Map<string, number>();
  for (const owner of answer.owners) owned.set(owner, (owned.get(owner) ?? 0) + 1);
  let text = `cluster ${answer.clusterId}  epoch ${answer.epoch}  partitions ${answer.partitionCount}\n`;
  const rows = [['NODE', 'LIVENESS', 'PARTITIONS', 'SHARE']];
  for (const node of answer.nodes) {
    const count = owned.get(node.id) ?? 0;
    const share = `${((100 * count) / answer.partitionCount).toFixed(1)}%`;
    rows.push([node.id, node.liveness, String(count), share]);
  }
  text += formatTable(rows);
  if (withPartitions) {
    text += formatTable([
      ['PARTITION', 'OWNER'],
      ...answer.owners.map((owner, partition) => [String(partition), owner]),
    ]);
  }
  return text;
}

interface KeyspaceAnswer {
  readonly id: number;
  readonly name: string;
  readonly n: number | 'all';
  readonly r: number;
  readonly w: number;
  readonly consistency: string;
  readonly conflicts: string;
  readonly durability: string;
}

function keyspaceRow(keyspace: KeyspaceAnswer): string[] {
  return [
    keyspace.name,
    String(keyspace.id),
    String(keyspace.n),
    String(keyspace.r),
    String(keyspace.w),
    keyspace.consistency,
    keyspace.conflicts,
    keyspace.durability,
  ];
}

const KEYSPACE_HEADER = ['NAME', 'ID', 'N', 'R', 'W', 'CONSISTENCY', 'CONFLICTS', 'DURABILITY'];

/** A keyspace property flag as the route takes it: an integer, or 'all' for --n. */
function replicaCount(raw: string | undefined, flag: string, allowAll: boolean) {
  if (raw === undefined) return undefined;
  if (allowAll && raw === 'all') return 'all';
  if (!/^\d+$/.test(raw)) {
    throw new UsageError(`--${flag}: expected a positive integer${allowAll ? " or 'all'" : ''}`);
  }
  return Number(raw);
}

interface FaultsAnswer {
  readonly faults: {
    readonly failed: boolean;
    readonly delayMs: number;
    readonly lossRate: number;
    readonly cutPeers: readonly string[];
  };
}

export function formatFaults(answer: FaultsAnswer): string {
  const faults = answer.faults;
  const cut = faults.cutPeers.length === 0 ? '-' : faults.cutPeers.join(',');
  return `failed ${faults.failed}  delayMs ${faults.delayMs}  lossRate ${faults.lossRate}  cutPeers ${cut}\n`;
}

export type FaultAction =
  | { readonly kind: 'show' }
  | { readonly kind: 'clear' }
  | { readonly kind: 'set'; readonly change: Readonly<Record<string, unknown>> };

/** What a `ringkv fault` action asks of the node. */
export function faultAction(action: string | undefined, argument: string | undefined): FaultAction {
  const needs = (what: string): string => {
    if (argument === undefined) throw new UsageError(`ringkv fault ${action} takes ${what}`);
    return argument;
  };
  switch (action) {
    case 'fail':
      return { kind: 'set', change: { failed: true } };
    case 'recover':
    case 'heal':
      return { kind: 'clear' };
    case 'delay': {
      const raw = needs('a delay in milliseconds');
      if (!/^\d+$/.test(raw)) throw new UsageError('ringkv fault delay takes an integer of ms');
      return { kind: 'set', change: { delayMs: Number(raw) } };
    }
    case 'loss': {
      const rate = Number(needs('a loss rate from 0 to 1'));
      if (!(rate >= 0 && rate <= 1))
        throw new UsageError('ringkv fault loss takes a rate from 0 to 1');
      return { kind: 'set', change: { lossRate: rate } };
    }
    case 'cut': {
      const peers = needs('node ids, comma-separated')
        .split(',')
        .filter((id) => id.length > 0);
      return { kind: 'set', change: { cutPeers: peers } };
    }
    case 'show':
      return { kind: 'show' };
  }
  throw new UsageError(`ringkv fault: unknown action '${action ?? ''}'\n\n${CLUSTER_HELP.fault!}`);
}

/** Runs one command; what it prints goes to `out` (stdout unless a caller captures it). */
export async function clusterCommand(
  name: string,
  argv: string[],
  out: (text: string) => void = (text) => process.stdout.write(text),
): Promise<number> {
  const extra: Record<string, 'string' | 'boolean'> =
    name === 'ring'
      ? { partitions: 'boolean' }
      : name === 'cluster'
        ? { 'dry-run': 'boolean' }
        : name === 'keyspace'
          ? {
              n: 'string',
              r: 'string',
              w: 'string',
              conflicts: 'string',
              durability: 'string',
              consistency: 'string',
            }
          : {};
  const parsed = parseFlags(name, argv, extra);
  if (parsed === 'help') {
    out(CLUSTER_HELP[name]!);
    return 0;
  }
  const { target, positionals, values } = parsed;
  const expectPositionals = (count: number): void => {
    if (positionals.length !== count) {
      throw new UsageError(
        `ringkv ${[name, ...positionals.slice(0, 1)].join(' ')} takes ${count - 1} argument(s)\n\n${CLUSTER_HELP[name]!}`,
      );
    }
  };
  switch (name) {
    case 'cluster': {
      if (positionals.length === 0 || positionals[0] === 'status') {
        if (positionals.length > 1)
          throw new UsageError(`ringkv cluster status takes no arguments`);
        out(formatCluster((await getJson(target, '/v1/cluster')) as ClusterAnswer));
        return 0;
      }
      const change = membershipChangeOf(positionals);
      const plan = (await sendJson(target, 'POST', '/v1/cluster/membership', {
        ...change,
        dryRun: true,
      })) as MembershipAnswer;
      out(plan.planText.map((line) => `${line}\n`).join(''));
      if (values['dry-run'] === true) {
        out('dry run: nothing changed\n');
        return 0;
      }
      const made = (await sendJson(target, 'POST', '/v1/cluster/membership', {
        ...change,
        dryRun: false,
      })) as MembershipAnswer;
      out(
        change.kind === 'abort'
          ? `aborted: the map is at epoch ${made.epoch}\n`
          : `made: the map is at epoch ${made.epoch}; data moves now (ringkv cluster status shows it)\n`,
      );
      return 0;
    }
    case 'ring': {
      if (positionals.length !== 0) throw new UsageError(`ringkv ring takes no arguments`);
      const answer = (await getJson(target, '/v1/cluster/ring')) as RingAnswer;
      out(formatRing(answer, values.partitions === true));
      return 0;
    }
    case 'keyspace': {
      if (positionals[0] === 'list') {
        expectPositionals(1);
        const answer = (await getJson(target, '/v1/keyspaces')) as {
          keyspaces: KeyspaceAnswer[];
        };
        out(formatTable([KEYSPACE_HEADER, ...answer.keyspaces.map(keyspaceRow)]));
        return 0;
      }
      if (positionals[0] !== 'create') {
        throw new UsageError(
          `ringkv keyspace: expected 'create' or 'list'\n\n${CLUSTER_HELP.keyspace!}`,
        );
      }
      expectPositionals(2);
      const body = {
        name: positionals[1],
        n: replicaCount(values.n as string | undefined, 'n', true),
        r: replicaCount(values.r as string | undefined, 'r', false),
        w: replicaCount(values.w as string | undefined, 'w', false),
        conflicts: values.conflicts,
        durability: values.durability,
        consistency: values.consistency,
      };
      const answer = (await sendJson(target, 'POST', '/v1/keyspaces', body)) as {
        keyspace: KeyspaceAnswer;
      };
      out(`created keyspace ${answer.keyspace.name}\n`);
      out(formatTable([KEYSPACE_HEADER, keyspaceRow(answer.keyspace)]));
      return 0;
    }
    case 'fault': {
      const action = faultAction(positionals[0], positionals[1]);
      const arity = ['delay', 'loss', 'cut'].includes(positionals[0]!) ? 2 : 1;
      if (positionals.length !== arity) {
        throw new UsageError(`ringkv fault ${positionals[0]} takes ${arity - 1} argument(s)`);
      }
      const answer =
        action.kind === 'show'
          ? await getJson(target, '/v1/admin/faults')
          : action.kind === 'clear'
            ? await sendJson(target, 'DELETE', '/v1/admin/faults')
            : await sendJson(target, 'POST', '/v1/admin/faults', action.change);
      out(formatFaults(answer as FaultsAnswer));
      return 0;
    }
  }
  throw new UsageError(`unknown command ${name}`);
}
