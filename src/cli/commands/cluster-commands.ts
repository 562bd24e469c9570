// `ringkv cluster|ring|keyspace|fault`: the cluster as one node sees it, membership changes
// and their progress, handoff settings, keyspaces, and fault injection, over the node's HTTP
// routes (docs/HTTP.md, "Cluster routes").
//
// Rules: the node is found as the client commands find it (--node, then RINGKV_URL, then
// 127.0.0.1:6480) and requests go through their helpers; admin routes (keyspace create,
// membership changes, handoff settings, faults) send the admin token (--admin-token or
// RINGKV_ADMIN_TOKEN), or the password when no admin token is given; reads send the
// password. A refused request exits 1 with the node's error code; a usage mistake exits 2.
// The progress of a change is asked of each receiving member itself, with a deadline: one
// that does not answer is shown as such, and the command still succeeds. The formatters are
// pure functions of the answers, so tests feed them fixtures.

import { parseArgs } from 'node:util';
import { formatBytes } from '../../core/cluster/membership.ts';
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
       ringkv cluster handoff [--rate BYTES_PER_S] [--pause|--resume] [--all] [options]

status (the default): prints the cluster as the node sees it: each member with its role
(member, or standby: started with --join, owning nothing), liveness (alive, suspect, down),
the partitions it owns, the hints this node holds for it, and its addresses. While a
membership change is in progress it also prints the change and, asked of each member that
receives copies, their progress: copies made of all, bytes received of the estimated total,
keys, rate and time left, and one line per copy running. A member that does not answer is
shown as unreachable.
join ID: a standby (a node started with --join) takes its share of the partitions.
leave ID: a member hands its partitions to the others, its data copied first.
remove ID: a member that is gone is taken out; its data is rebuilt from the other replicas.
replace ID BY: standby BY takes exactly the partitions of member ID.
abort: gives up the change in progress.
A change prints its plan (which partitions move where, how much data) and then makes it;
with --dry-run it prints the plan only.
handoff: sets how this node pulls its copies (with --all: every member) and prints the
settings; without options it only prints them. Settings are lost when a node restarts.
Changes and handoff are admin routes.
  --dry-run          print the plan, change nothing
  --rate BYTES_PER_S bytes per second a node's copies may pull in all, 0 for no limit;
                     a number with an optional unit B, KiB, MiB or GiB (10MiB)
  --pause            stop pulling copies (a change then waits)
  --resume           pull again
  --all              apply to every member the node lists, not just the node

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
  /** The node, with the token its command needs (the admin token for admin routes). */
  readonly target: Target;
  /** The node, with the client password: for the reads an admin command makes first. */
  readonly clientTarget: Target;
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
  const clientTarget: Target = {
    url:
      node === undefined ? (process.env.RINGKV_URL ?? 'http://127.0.0.1:6480') : `http://${node}`,
    keyspace: 'default',
    password,
  };
  const target: Target = {
    ...clientTarget,
    password: admin ? (adminToken ?? password) : password,
  };
  return { target, clientTarget, positionals, values } satisfies ParsedFlags;
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

/** How long a member asked for its progress, or given handoff settings, has to answer. */
const MEMBER_ANSWER_TIMEOUT_MS = 3000;

/**
 * A request to another member than the one named on the command line: bounded in time, and
 * failing with a message that names the member's address.
 */
async function askMember(
  url: string,
  password: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const headers: Record<string, string> = {};
  if (password !== undefined) headers.authorization = `Bearer ${password}`;
  let response: Response;
  try {
    response = await fetch(new URL(path, url), {
      method,
      headers,
      signal: AbortSignal.timeout(MEMBER_ANSWER_TIMEOUT_MS),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (error) {
    if ((error as Error).name === 'TimeoutError') {
      throw new Error(`no answer from ${url} within ${MEMBER_ANSWER_TIMEOUT_MS / 1000} s`, {
        cause: error,
      });
    }
    const cause = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message;
    throw new Error(`cannot reach ${url}: ${cause}`, { cause: error });
  }
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** A member's HTTP address as a URL; a single node lists none, and is the node asked. */
function memberUrl(member: { readonly http: string }, target: Target): string {
  return member.http === '' ? target.url : `http://${member.http}`;
}

/**
 * The progress of the change in progress, asked of every receiver that has not reported
 * its copies made (the node that answered is not asked twice), and the keyspace names.
 */
async function changeProgressOf(answer: ClusterAnswer, target: Target): Promise<ChangeProgress> {
  const receivers = new Map<string, ReceiverReport>();
  const change = answer.change ?? null;
  if (change === null) return { receivers, keyspaceNames: new Map() };
  const asked = change.receivers.filter((id) => !change.copied.includes(id));
  const reportOf = async (id: string): Promise<ReceiverReport> => {
    if (id === answer.node) return { answered: true, status: answer };
    const member = answer.members.find((candidate) => candidate.id === id);
    if (member === undefined) return { answered: false, reason: 'not in the member list' };
    try {
      const status = await askMember(
        memberUrl(member, target),
        target.password,
        'GET',
        '/v1/cluster',
      );
      return { answered: true, status: status as ClusterAnswer };
    } catch (error) {
      return { answered: false, reason: (error as Error).message };
    }
  };
  const [names, reports] = await Promise.all([
    getJson(target, '/v1/keyspaces').then(
      (body) => (body as { keyspaces: KeyspaceAnswer[] }).keyspaces,
      // Without names the copies show keyspace ids: no reason to fail the whole status.
      () => [] as KeyspaceAnswer[],
    ),
    Promise.all(asked.map(reportOf)),
  ]);
  asked.forEach((id, index) => receivers.set(id, reports[index]!));
  return {
    receivers,
    keyspaceNames: new Map(names.map((keyspace) => [keyspace.id, keyspace.name])),
  };
}

const RATE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** `--rate`: bytes per second, with an optional binary unit (10MiB); 0 is no limit. */
export function parseRate(raw: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(raw.trim());
  const unit = RATE_UNITS[match?.[2]?.toLowerCase() ?? 'none'];
  if (match === null || unit === undefined) {
    throw new UsageError(
      `--rate: expected bytes per second, a number with an optional unit B, KiB, MiB or GiB (10MiB), got '${raw}'`,
    );
  }
  const rate = Math.round(Number(match[1]) * unit);
  if (!Number.isSafeInteger(rate)) throw new UsageError(`--rate: '${raw}' is too large`);
  return rate;
}

const CLUSTER_ACTION_FLAGS = ['dry-run', 'rate', 'pause', 'resume', 'all'] as const;

/** A flag given to a `ringkv cluster` action it does not belong to is a usage mistake. */
function checkClusterFlags(action: string, values: ParsedFlags['values']): void {
  const allowed: readonly string[] =
    action === 'handoff'
      ? ['rate', 'pause', 'resume', 'all']
      : action === 'status'
        ? []
        : ['dry-run'];
  for (const flag of CLUSTER_ACTION_FLAGS) {
    if (values[flag] !== undefined && !allowed.includes(flag)) {
      throw new UsageError(
        `ringkv cluster ${action} takes no --${flag}\n\n${CLUSTER_HELP.cluster!}`,
      );
    }
  }
  if (values.pause === true && values.resume === true) {
    throw new UsageError('ringkv cluster handoff: --pause and --resume exclude each other');
  }
}

/** The body of `POST /v1/admin/handoff` the flags ask for; empty: only show the settings. */
export function handoffSettingsOf(values: ParsedFlags['values']): {
  bytesPerSecond?: number;
  paused?: boolean;
} {
  const rate = values.rate as string | undefined;
  return {
    ...(rate === undefined ? {} : { bytesPerSecond: parseRate(rate) }),
    ...(values.pause === true ? { paused: true } : {}),
    ...(values.resume === true ? { paused: false } : {}),
  };
}

/** `ringkv cluster handoff`: the settings set on the node, or on every member with --all. */
async function handoffCommand(parsed: ParsedFlags, out: (text: string) => void): Promise<number> {
  const { target, clientTarget, positionals, values } = parsed;
  if (positionals.length !== 1) {
    throw new UsageError(`ringkv cluster handoff takes no arguments, only options`);
  }
  const settings = handoffSettingsOf(values);
  if (values.all !== true) {
    const answer = (await sendJson(target, 'POST', '/v1/admin/handoff', settings)) as {
      handoff: HandoffAnswer;
    };
    out(`${formatHandoff(answer.handoff)}\n`);
    return 0;
  }
  const cluster = (await getJson(clientTarget, '/v1/cluster')) as ClusterAnswer;
  const results = await Promise.all(
    cluster.members.map(async (member) => {
      try {
        const answer = (await askMember(
          memberUrl(member, target),
          target.password,
          'POST',
          '/v1/admin/handoff',
          settings,
        )) as { handoff: HandoffAnswer };
        return `${member.id}: ${formatHandoff(answer.handoff)}`;
      } catch (error) {
        return `${member.id}: not set: ${(error as Error).message}`;
      }
    }),
  );
  out(results.map((line) => `${line}\n`).join(''));
  return results.some((line) => / not set: /.test(line)) ? 1 : 0;
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

/** One copy a member receives, as its `/v1/cluster` shows it (`handoff.transfers[]`). */
export interface CopyAnswer {
  readonly keyspaceId: number;
  readonly partition: number;
  readonly state: string;
  readonly stalled: boolean;
  readonly source: string;
  readonly keysReceived: number;
  readonly bytesReceived: number;
  readonly bytesPerSecond: number;
  readonly bytesTotalEstimate: number | null;
  readonly etaMs: number | null;
}

/** A member's copies in the change in progress and its settings (`handoff`). */
export interface HandoffAnswer {
  readonly changeEpoch: number | null;
  readonly transfers: readonly CopyAnswer[];
  readonly copiesWaiting: number;
  readonly copiesDone: number;
  readonly bytesPerSecondLimit: number;
  readonly paused: boolean;
  /** The node's receive rate over all its copies (absent from older nodes). */
  readonly bytesPerSecond?: number;
}

/** `GET /v1/cluster`; the fields added with membership changes are optional (older nodes). */
export interface ClusterAnswer {
  readonly node: string;
  readonly clusterId: string;
  readonly state: string;
  readonly epoch: number;
  readonly partitionCount: number;
  readonly members: readonly {
    readonly id: string;
    readonly role?: string;
    readonly voter?: boolean;
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
  readonly left?: boolean;
  readonly load?: {
    readonly keys: number;
    readonly bytes: number;
    readonly requestsPerSecond: number;
  } | null;
  readonly elastic?: {
    readonly deciding: boolean;
    readonly decisions: number;
    readonly lastDecision: {
      readonly kind: string;
      readonly id?: string;
      readonly member?: { readonly id: string };
      readonly reason: string;
    } | null;
  } | null;
  readonly change?: {
    readonly kind: string;
    readonly subject: string;
    readonly by: string | null;
    readonly epoch: number;
    readonly receivers: readonly string[];
    readonly copied: readonly string[];
  } | null;
  readonly handoff?: HandoffAnswer;
}

/** What a receiving member said about its copies, or why it said nothing. */
export type ReceiverReport =
  | { readonly answered: true; readonly status: ClusterAnswer }
  | { readonly answered: false; readonly reason: string };

/** What `formatCluster` needs beyond the node's answer to show a change's progress. */
export interface ChangeProgress {
  /** By receiver id; a receiver missing here is shown as not asked. */
  readonly receivers: ReadonlyMap<string, ReceiverReport>;
  readonly keyspaceNames: ReadonlyMap<number, string>;
}

const PROGRESS_BAR_WIDTH = 20;

/** `[#####---------------]`: done of total, in PROGRESS_BAR_WIDTH steps (full only when done). */
export function progressBar(done: number, total: number): string {
  const fraction = total <= 0 ? 1 : Math.min(1, Math.max(0, done / total));
  let filled = Math.floor(fraction * PROGRESS_BAR_WIDTH);
  if (filled === PROGRESS_BAR_WIDTH && done < total) filled--;
  return `[${'#'.repeat(filled)}${'-'.repeat(PROGRESS_BAR_WIDTH - filled)}]`;
}

/** Milliseconds as a person reads them: 45 s, 3 min 20 s, 2 h 5 min. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const seconds = Math.ceil(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** Bytes per second in binary units: 512 KiB/s. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.max(0, Math.round(bytesPerSecond)))}/s`;
}

/** A member's copies summed: what its progress lines show. */
export interface ReceiverTotals {
  readonly copies: number;
  readonly copiesDone: number;
  readonly keys: number;
  readonly bytes: number;
  /**
   * The bytes of every copy: the sizes known (a copy done, or one whose count reached the
   * end), and for the rest, the mean of those; null while no size is known.
   */
  readonly bytesTotal: number | null;
  /** Copies whose size is known; below `copies`, `bytesTotal` is extrapolated. */
  readonly sizesKnown: number;
  readonly bytesPerSecond: number;
  readonly etaMs: number | null;
}

export function receiverTotals(handoff: HandoffAnswer): ReceiverTotals {
  let keys = 0;
  let bytes = 0;
  let bytesPerSecond = 0;
  let sizesKnown = 0;
  let bytesKnown = 0;
  for (const copy of handoff.transfers) {
    keys += copy.keysReceived;
    bytes += copy.bytesReceived;
    if (copy.state === 'running') bytesPerSecond += copy.bytesPerSecond;
    // A copy that is done holds the partition: what it received is its size.
    const size = copy.state === 'done' ? copy.bytesReceived : copy.bytesTotalEstimate;
    if (size === null) continue;
    sizesKnown++;
    bytesKnown += size;
  }
  const copies = handoff.transfers.length + handoff.copiesWaiting;
  // Partitions of one keyspace hold about the same data (keys are spread by hash), so the
  // copies measured say what the others hold: an estimate from the first copy done, where
  // waiting for every size would leave the total unknown for most of a large change.
  const bytesTotal =
    sizesKnown === 0 ? null : bytesKnown + (bytesKnown / sizesKnown) * (copies - sizesKnown);
  const finished = handoff.copiesDone === copies;
  // The node's own rate over all copies, where it gives one: the running copies' averages
  // read low (a short copy ends before its meter has a whole window).
  if (handoff.bytesPerSecond !== undefined) bytesPerSecond = handoff.bytesPerSecond;
  const etaMs = finished
    ? 0
    : bytesTotal === null || bytesPerSecond <= 0 || handoff.paused
      ? null
      : (1000 * Math.max(0, bytesTotal - bytes)) / bytesPerSecond;
  return {
    copies,
    copiesDone: handoff.copiesDone,
    keys,
    bytes,
    bytesTotal,
    sizesKnown,
    bytesPerSecond,
    etaMs,
  };
}

/** The handoff settings and copy count of one node, on one line (no newline). */
export function formatHandoff(handoff: HandoffAnswer): string {
  const limit =
    handoff.bytesPerSecondLimit === 0 ? 'none' : formatRate(handoff.bytesPerSecondLimit);
  const copies = handoff.transfers.length + handoff.copiesWaiting;
  return (
    `rate limit ${limit}  paused ${handoff.paused ? 'yes' : 'no'}  ` +
    `copies done ${handoff.copiesDone} of ${copies}`
  );
}

function copyState(copy: CopyAnswer): string {
  return copy.state === 'running' && copy.stalled ? 'stalled' : copy.state;
}

/** The lines of one receiver in the change section. */
function receiverLines(
  id: string,
  change: NonNullable<ClusterAnswer['change']>,
  report: ReceiverReport | undefined,
  keyspaceNames: ReadonlyMap<number, string>,
): string[] {
  if (change.copied.includes(id)) return [`${id}  every copy made (reported in the map)`];
  if (report === undefined) return [`${id}  not asked`];
  if (!report.answered) return [`${id}  unreachable: ${report.reason}`];
  const handoff = report.status.handoff;
  if (handoff === undefined) return [`${id}  answers without handoff progress (an older node)`];
  if (handoff.changeEpoch !== change.epoch) {
    return [
      `${id}  has not started this change's copies yet (its map is at epoch ` +
        `${report.status.epoch}, the change at ${change.epoch})`,
    ];
  }
  const totals = receiverTotals(handoff);
  const pad = ' '.repeat(id.length);
  const settings = [
    ...(handoff.paused ? ['paused'] : []),
    ...(handoff.bytesPerSecondLimit > 0
      ? [`limit ${formatRate(handoff.bytesPerSecondLimit)}`]
      : []),
  ];
  const bytes =
    totals.bytesTotal === null
      ? `${formatBytes(totals.bytes)} of a total not known yet`
      : `${progressBar(totals.bytes, totals.bytesTotal)} ${formatBytes(totals.bytes)} of ` +
        `~${formatBytes(Math.round(totals.bytesTotal))}` +
        (totals.sizesKnown < totals.copies
          ? ` (${totals.sizesKnown} of ${totals.copies} sizes known)`
          : '');
  const lines = [
    `${id}  copies ${progressBar(totals.copiesDone, totals.copies)} ${totals.copiesDone} of ${totals.copies} made` +
      (handoff.copiesWaiting > 0 ? `, ${handoff.copiesWaiting} waiting to start` : '') +
      settings.map((setting) => `  ${setting}`).join(''),
    `${pad}  bytes  ${bytes}  keys ${totals.keys}  rate ${formatRate(totals.bytesPerSecond)}  ` +
      `ETA ${totals.etaMs === null ? '?' : formatDuration(totals.etaMs)}`,
  ];
  const running = handoff.transfers.filter((copy) => copy.state !== 'done');
  if (running.length > 0) {
    const rows = [['KEYSPACE', 'PARTITION', 'SOURCE', 'STATE', 'KEYS', 'BYTES', 'RATE', 'ETA']];
    for (const copy of running) {
      const size =
        copy.bytesTotalEstimate === null ? '' : ` of ~${formatBytes(copy.bytesTotalEstimate)}`;
      rows.push([
        keyspaceNames.get(copy.keyspaceId) ?? `#${copy.keyspaceId}`,
        String(copy.partition),
        copy.source,
        copyState(copy),
        String(copy.keysReceived),
        `${formatBytes(copy.bytesReceived)}${size}`,
        copy.state === 'running' ? formatRate(copy.bytesPerSecond) : '-',
        copy.etaMs === null ? '?' : formatDuration(copy.etaMs),
      ]);
    }
    for (const line of formatTable(rows).trimEnd().split('\n')) lines.push(`${pad}  ${line}`);
  }
  return lines;
}

/** What the change in progress does to member `id`, for the ROLE column. */
function partInChange(
  change: NonNullable<ClusterAnswer['change']>,
  id: string,
): string | undefined {
  if (change.kind === 'replace' && change.by === id) return `replacing ${change.subject}`;
  if (change.subject !== id) return undefined;
  const parts: Readonly<Record<string, string>> = {
    join: 'joining',
    leave: 'leaving',
    remove: 'being removed',
    replace: 'being replaced',
  };
  return parts[change.kind];
}

/**
 * The cluster as `ringkv cluster status` prints it: a header, one row per member, and while
 * a membership change is in progress a section with each receiver's progress (`progress`
 * holds what the receivers answered; without it they are shown as not asked).
 */
export function formatCluster(answer: ClusterAnswer, progress?: ChangeProgress): string {
  let text =
    `cluster ${answer.clusterId}  state ${answer.state}  epoch ${answer.epoch}  ` +
    `partitions ${answer.partitionCount}  seen from ${answer.node}  ` +
    `hints held ${answer.hintsTotal}\n`;
  if (answer.problem !== null) text += `problem: ${answer.problem}\n`;
  if (answer.left === true) {
    text += `${answer.node} has left the cluster: what follows is the last map it saw\n`;
  }
  if ((answer.chainsShort ?? 0) > 0) {
    text += `chains short of a replica: ${answer.chainsShort} (being repaired)\n`;
  }
  if (answer.load !== undefined && answer.load !== null) {
    const load = answer.load;
    text +=
      `load of ${answer.node}: ${load.keys} keys, ${formatBytes(load.bytes)}, ` +
      `${Math.round(load.requestsPerSecond)} requests/s\n`;
  }
  const elastic = answer.elastic ?? null;
  if (elastic !== null) {
    const last = elastic.lastDecision;
    text +=
      `elastic policy: ${elastic.deciding ? `decided by ${answer.node}` : `set on ${answer.node}, decided by the first voter up`}; ` +
      (last === null
        ? 'no change asked for yet\n'
        : `last asked: ${last.kind} ${last.member?.id ?? last.id ?? '?'} (${last.reason}), ` +
          `${elastic.decisions} in all\n`);
  }
  const rows = [
    ['MEMBER', 'ROLE', 'LIVENESS', 'PARTITIONS', 'HINTS PENDING', 'PEER', 'HTTP', 'RESP'],
  ];
  const change = answer.change ?? null;
  for (const member of answer.members) {
    const part = change === null ? undefined : partInChange(change, member.id);
    rows.push([
      member.id,
      `${member.role ?? 'member'}${member.voter === true ? ', voter' : ''}` +
        (part === undefined ? '' : ` (${part})`),
      member.liveness,
      String(member.partitionsOwned),
      String(answer.hintsPending[member.id] ?? 0),
      member.peer || '-',
      member.http || '-',
      member.resp || '-',
    ]);
  }
  text += formatTable(rows);
  if (change === null) return text;
  const title =
    change.kind === 'replace'
      ? `replace ${change.subject} by ${change.by ?? '?'}`
      : `${change.kind} ${change.subject}`;
  text +=
    `\nchange in progress: ${title} (since map epoch ${change.epoch}); ` +
    `${change.copied.length} of ${change.receivers.length} receivers have made every copy\n`;
  if (change.receivers.length === 0) {
    text += 'no member receives copies in this change\n';
  }
  for (const id of change.receivers) {
    const report = progress?.receivers.get(id);
    for (const line of receiverLines(id, change, report, progress?.keyspaceNames ?? new Map())) {
      text += `${line}\n`;
    }
  }
  return text;
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
        ? {
            'dry-run': 'boolean',
            rate: 'string',
            pause: 'boolean',
            resume: 'boolean',
            all: 'boolean',
          }
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
      const action = positionals[0] ?? 'status';
      if (action === 'status' || action === 'handoff') checkClusterFlags(action, values);
      if (action === 'status') {
        if (positionals.length > 1)
          throw new UsageError(`ringkv cluster status takes no arguments`);
        const answer = (await getJson(target, '/v1/cluster')) as ClusterAnswer;
        out(formatCluster(answer, await changeProgressOf(answer, target)));
        return 0;
      }
      if (action === 'handoff') return handoffCommand(parsed, out);
      const change = membershipChangeOf(positionals);
      checkClusterFlags(action, values);
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
