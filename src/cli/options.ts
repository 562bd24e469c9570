// A node's options from flags, the environment (RINGKV_*) and a JSON config file, with
// precedence flags > environment > file > defaults. Every field of NodeConfig has one entry
// in OPTION_TABLE, which also drives --help and docs/CONFIGURATION.md.

import { readFileSync } from 'node:fs';
import { KEY_BYTES_CEILING, VALUE_BYTES_CEILING } from '../core/limits.ts';
import { parseElasticSettings } from '../core/cluster/elastic-host.ts';
import { DEFAULT_NODE_CONFIG, type NodeConfig } from '../runtime/config.ts';
import { DEFAULT_CLUSTER_TIMINGS } from '../core/node.ts';
import { tombstoneGraceProblem } from '../core/tombstones/tombstone-purger.ts';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

type OptionKind =
  | { readonly type: 'string'; readonly pattern?: RegExp }
  | { readonly type: 'integer'; readonly min: number; readonly max: number }
  | { readonly type: 'choice'; readonly choices: readonly string[] }
  | { readonly type: 'nullable-string' }
  /** Comma-separated host:port addresses. */
  | { readonly type: 'address-list' }
  /** A JSON object (a string of JSON in flags and the environment), or null. */
  | { readonly type: 'json'; readonly parse: (value: unknown) => unknown };

export interface OptionSpec {
  readonly key: keyof NodeConfig;
  readonly flag: string;
  readonly env: string;
  readonly kind: OptionKind;
  readonly help: string;
}

export const OPTION_TABLE: readonly OptionSpec[] = [
  {
    key: 'nodeId',
    flag: 'node-id',
    env: 'RINGKV_NODE_ID',
    kind: { type: 'string', pattern: /^[A-Za-z0-9_.-]{1,64}$/ },
    help: 'stable name of this node (letters, digits, _ . -)',
  },
  {
    key: 'dataDir',
    flag: 'data',
    env: 'RINGKV_DATA',
    kind: { type: 'string' },
    help: 'data directory',
  },
  {
    key: 'storage',
    flag: 'storage',
    env: 'RINGKV_STORAGE',
    kind: { type: 'choice', choices: ['lmdb', 'memory'] },
    help: 'storage engine',
  },
  {
    key: 'durability',
    flag: 'durability',
    env: 'RINGKV_DURABILITY',
    kind: { type: 'choice', choices: ['sync', 'relaxed'] },
    help: 'durability of the default keyspace: sync (fsync before the reply) or relaxed',
  },
  {
    key: 'host',
    flag: 'host',
    env: 'RINGKV_HOST',
    kind: { type: 'string' },
    help: 'address the client ports listen on',
  },
  {
    key: 'respPort',
    flag: 'resp-port',
    env: 'RINGKV_RESP_PORT',
    kind: { type: 'integer', min: 0, max: 65535 },
    help: 'Redis protocol port (0: any free port)',
  },
  {
    key: 'httpPort',
    flag: 'http-port',
    env: 'RINGKV_HTTP_PORT',
    kind: { type: 'integer', min: 0, max: 65535 },
    help: 'HTTP port (0: any free port)',
  },
  {
    key: 'password',
    flag: 'password',
    env: 'RINGKV_PASSWORD',
    kind: { type: 'nullable-string' },
    help: 'client password (RESP AUTH, HTTP bearer token); unset: no authentication',
  },
  {
    key: 'keyBytesMax',
    flag: 'key-bytes-max',
    env: 'RINGKV_KEY_BYTES_MAX',
    kind: { type: 'integer', min: 1, max: KEY_BYTES_CEILING },
    help: 'largest key in bytes',
  },
  {
    key: 'valueBytesMax',
    flag: 'value-bytes-max',
    env: 'RINGKV_VALUE_BYTES_MAX',
    kind: { type: 'integer', min: 1, max: VALUE_BYTES_CEILING },
    help: 'largest value in bytes',
  },
  {
    key: 'connectionsMax',
    flag: 'connections-max',
    env: 'RINGKV_CONNECTIONS_MAX',
    kind: { type: 'integer', min: 1, max: 1_000_000 },
    help: 'most client connections at once, per port (RESP, HTTP)',
  },
  {
    key: 'requestsInFlightMax',
    flag: 'requests-in-flight-max',
    env: 'RINGKV_REQUESTS_IN_FLIGHT_MAX',
    kind: { type: 'integer', min: 1, max: 10_000_000 },
    help: 'most requests in flight in the node, and most write batches waiting for a storage commit',
  },
  {
    key: 'respInputBytesMax',
    flag: 'resp-input-bytes-max',
    env: 'RINGKV_RESP_INPUT_BYTES_MAX',
    kind: { type: 'integer', min: 1024, max: 1024 * 1024 * 1024 },
    help: 'most bytes of one RESP command',
  },
  {
    key: 'tickMs',
    flag: 'tick-ms',
    env: 'RINGKV_TICK_MS',
    kind: { type: 'integer', min: 1, max: 60_000 },
    help: 'period of the node tick (expiry)',
  },
  {
    key: 'peerPort',
    flag: 'peer-port',
    env: 'RINGKV_PEER_PORT',
    kind: { type: 'integer', min: 0, max: 65535 },
    help: 'port other nodes reach this one on (cluster mode)',
  },
  {
    key: 'seeds',
    flag: 'seeds',
    env: 'RINGKV_SEEDS',
    kind: { type: 'address-list' },
    help: 'peer addresses HOST:PORT,... of every founding member, this node included',
  },
  {
    key: 'join',
    flag: 'join',
    env: 'RINGKV_JOIN',
    kind: { type: 'nullable-string' },
    help: 'peer address HOST:PORT of a member of a running cluster to join through, as a standby',
  },
  {
    key: 'clusterId',
    flag: 'cluster-id',
    env: 'RINGKV_CLUSTER_ID',
    kind: { type: 'string', pattern: /^[A-Za-z0-9_.-]{1,64}$/ },
    help: 'name of the cluster',
  },
  {
    key: 'clusterSecret',
    flag: 'cluster-secret',
    env: 'RINGKV_CLUSTER_SECRET',
    kind: { type: 'nullable-string' },
    help: 'secret shared by the nodes of the cluster (required with --seeds)',
  },
  {
    key: 'adminToken',
    flag: 'admin-token',
    env: 'RINGKV_ADMIN_TOKEN',
    kind: { type: 'nullable-string' },
    help: 'bearer token for the admin routes; unset: admin routes need only the password',
  },
  {
    key: 'requestTimeoutMs',
    flag: 'request-timeout-ms',
    env: 'RINGKV_REQUEST_TIMEOUT_MS',
    kind: { type: 'integer', min: 10, max: 600_000 },
    help: 'a request not answered by enough replicas in this time fails',
  },
  {
    key: 'probeIntervalMs',
    flag: 'probe-interval-ms',
    env: 'RINGKV_PROBE_INTERVAL_MS',
    kind: { type: 'integer', min: 10, max: 600_000 },
    help: 'failure detection: one probe per period',
  },
  {
    key: 'probeTimeoutMs',
    flag: 'probe-timeout-ms',
    env: 'RINGKV_PROBE_TIMEOUT_MS',
    kind: { type: 'integer', min: 1, max: 600_000 },
    help: 'failure detection: wait for a direct ack before indirect probes',
  },
  {
    key: 'suspicionTimeoutMs',
    flag: 'suspicion-timeout-ms',
    env: 'RINGKV_SUSPICION_TIMEOUT_MS',
    kind: { type: 'integer', min: 1, max: 3_600_000 },
    help: 'failure detection: a suspect not refuted in this time is marked down',
  },
  {
    key: 'hintsMax',
    flag: 'hints-max',
    env: 'RINGKV_HINTS_MAX',
    kind: { type: 'integer', min: 0, max: 1_000_000_000 },
    help: 'most hints held for unreachable replicas',
  },
  {
    key: 'elastic',
    flag: 'elastic',
    env: 'RINGKV_ELASTIC',
    kind: { type: 'json', parse: parseElasticSettings },
    help:
      'elastic policy as JSON: {"joinAbove":{"keys"|"bytes"|"requestsPerSecond":N},' +
      '"leaveBelow":{...},"minMembers":N,"coolDownMs":N,"intervalMs":N}',
  },
  {
    key: 'tombstoneGraceMs',
    flag: 'tombstone-grace-ms',
    env: 'RINGKV_TOMBSTONE_GRACE_MS',
    kind: { type: 'integer', min: 1_000, max: 31_536_000_000 },
    help: 'a tombstone is purged no sooner than this after its delete (and only once every member has it)',
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    env: 'RINGKV_LOG_LEVEL',
    kind: {
      type: 'choice',
      choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    },
    help: 'log level',
  },
];

function parseValue(spec: OptionSpec, raw: unknown, where: string): unknown {
  const kind = spec.kind;
  switch (kind.type) {
    case 'string': {
      if (typeof raw !== 'string' || raw.length === 0)
        throw new UsageError(`${where}: expected a non-empty string`);
      if (kind.pattern !== undefined && !kind.pattern.test(raw))
        throw new UsageError(`${where}: '${raw}' is not allowed (${spec.help})`);
      return raw;
    }
    case 'nullable-string':
      if (raw === null) return null;
      if (typeof raw !== 'string' || raw.length === 0)
        throw new UsageError(`${where}: expected a non-empty string`);
      return raw;
    case 'integer': {
      const value =
        typeof raw === 'number'
          ? raw
          : typeof raw === 'string' && /^-?\d+$/.test(raw)
            ? Number(raw)
            : NaN;
      if (!Number.isSafeInteger(value) || value < kind.min || value > kind.max) {
        throw new UsageError(
          `${where}: expected an integer from ${kind.min} to ${kind.max}, got '${String(raw)}'`,
        );
      }
      return value;
    }
    case 'address-list': {
      const items = Array.isArray(raw)
        ? raw
        : typeof raw === 'string'
          ? raw.split(',').filter((item) => item.length > 0)
          : null;
      if (items === null) throw new UsageError(`${where}: expected HOST:PORT,HOST:PORT,...`);
      for (const item of items) {
        if (
          typeof item !== 'string' ||
          !/^[^\s:,]+:\d{1,5}$/.test(item) ||
          Number(item.split(':')[1]) > 65535
        ) {
          throw new UsageError(`${where}: '${String(item)}' is not HOST:PORT`);
        }
      }
      return items;
    }
    case 'json': {
      let value = raw;
      if (typeof raw === 'string') {
        try {
          value = JSON.parse(raw);
        } catch (error) {
          throw new UsageError(`${where}: not valid JSON: ${(error as Error).message}`);
        }
      }
      if (value === null) return null;
      try {
        return kind.parse(value);
      } catch (error) {
        throw new UsageError(`${where}: ${(error as Error).message}`);
      }
    }
    case 'choice':
      if (typeof raw !== 'string' || !kind.choices.includes(raw)) {
        throw new UsageError(
          `${where}: expected one of ${kind.choices.join(', ')}, got '${String(raw)}'`,
        );
      }
      return raw;
  }
}

/** Reads and validates a JSON config file: an object whose keys are NodeConfig fields. */
export function readConfigFile(path: string): Partial<Record<keyof NodeConfig, unknown>> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`config file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`config file ${path} must hold a JSON object`);
  }
  const known = new Set(OPTION_TABLE.map((spec) => spec.key as string));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key))
      throw new UsageError(
        `config file ${path}: unknown option '${key}' (known: ${[...known].join(', ')})`,
      );
  }
  return parsed as Partial<Record<keyof NodeConfig, unknown>>;
}

/**
 * Resolves the configuration. `flags` are the parsed command-line values by flag name;
 * `environment` is usually process.env.
 */
export function resolveNodeConfig(
  flags: Readonly<Record<string, string | undefined>>,
  environment: Readonly<Record<string, string | undefined>>,
  configPath: string | undefined,
): NodeConfig {
  const file = configPath === undefined ? {} : readConfigFile(configPath);
  const config: Record<string, unknown> = { ...DEFAULT_NODE_CONFIG };
  for (const spec of OPTION_TABLE) {
    if (spec.key in file)
      config[spec.key] = parseValue(spec, file[spec.key], `config file key ${spec.key}`);
    const fromEnvironment = environment[spec.env];
    if (fromEnvironment !== undefined && fromEnvironment !== '') {
      config[spec.key] = parseValue(spec, fromEnvironment, `environment variable ${spec.env}`);
    }
    const fromFlag = flags[spec.flag];
    if (fromFlag !== undefined) config[spec.key] = parseValue(spec, fromFlag, `--${spec.flag}`);
  }
  const resolved = config as unknown as NodeConfig;
  checkTimings(resolved);
  return resolved;
}

/** Options that must agree with each other (failure detection needs a tick inside a probe). */
function checkTimings(config: NodeConfig): void {
  if (config.probeTimeoutMs + config.tickMs >= config.probeIntervalMs) {
    throw new UsageError(
      `probeTimeoutMs (${config.probeTimeoutMs}) + tickMs (${config.tickMs}) must be less than ` +
        `probeIntervalMs (${config.probeIntervalMs}): indirect probes need a tick before the period ends`,
    );
  }
  const graceProblem = tombstoneGraceProblem(
    config.tombstoneGraceMs,
    config.requestTimeoutMs,
    DEFAULT_CLUSTER_TIMINGS.handoffIntervalMs,
  );
  if (graceProblem !== null) throw new UsageError(graceProblem);
  if (config.seeds.length > 0 && config.clusterSecret === null) {
    throw new UsageError(
      '--seeds needs a cluster secret: --cluster-secret or RINGKV_CLUSTER_SECRET',
    );
  }
  if (config.join !== null) {
    if (config.seeds.length > 0) {
      throw new UsageError(
        '--join and --seeds exclude each other: founders name --seeds, a node joining later --join',
      );
    }
    if (config.clusterSecret === null) {
      throw new UsageError(
        '--join needs a cluster secret: --cluster-secret or RINGKV_CLUSTER_SECRET',
      );
    }
    if (!/^[^:\s]+:\d{1,5}$/.test(config.join)) {
      throw new UsageError(`--join: expected HOST:PORT, got '${config.join}'`);
    }
  }
}

export function optionsHelp(): string {
  return OPTION_TABLE.map((spec) => {
    const fallback = DEFAULT_NODE_CONFIG[spec.key];
    const shown =
      fallback === null || (Array.isArray(fallback) && fallback.length === 0)
        ? 'unset'
        : String(fallback);
    return `  --${spec.flag.padEnd(24)} ${spec.help} (default ${shown}; env ${spec.env})`;
  }).join('\n');
}
