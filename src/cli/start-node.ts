// Starts one node: storage and runtime, then the RESP and HTTP servers; stops them in the
// reverse order. Endpoints are printed on stdout in a fixed form that scripts and tests read:
//   ringkv: resp listening on HOST:PORT
//   ringkv: http listening on http://HOST:PORT
// Logs (JSON lines) go to stderr.

import { randomInt } from 'node:crypto';
import pino, { type Logger } from 'pino';
import { startHttpServer, type HttpServer } from '../api/http/server.ts';
import { startRespServer, type RespServer } from '../api/resp/server.ts';
import { storedClusterMap } from '../core/node.ts';
import type { PeerAddress } from '../net/contract.ts';
import { TcpTransport } from '../net/tcp-transport.ts';
import type { Storage } from '../storage/contract.ts';
import { openStorage } from '../storage/open-storage.ts';
import type { NodeConfig } from '../runtime/config.ts';
import { Metrics } from '../runtime/metrics.ts';
import { LateNodeApi } from '../runtime/late-node-api.ts';
import {
  limitsOf,
  NodeRuntime,
  parseAddress,
  type RuntimeCluster,
} from '../runtime/node-runtime.ts';

/** How long one attempt to reach a seed waits, and the pause between attempts. */
const SEED_ATTEMPT_TIMEOUT_MS = 2000;
const SEED_RETRY_PAUSE_MS = 250;

export interface RunningNode {
  readonly runtime: NodeRuntime;
  readonly resp: RespServer;
  readonly http: HttpServer;
  readonly logger: Logger;
  stop(): Promise<void>;
}

export async function startNode(
  config: NodeConfig,
  onFatal?: (error: Error) => void,
): Promise<RunningNode> {
  const logger = pino(
    {
      level: config.logLevel,
      base: { node: config.nodeId },
      redact: ['req.headers.authorization'],
    },
    pino.destination(2),
  );
  const metrics = new Metrics();
  const storage = await openStorage(config.storage, config.dataDir);
  let cluster: RuntimeCluster | undefined;
  let resp: RespServer | null = null;
  let http: HttpServer | null = null;
  const startedAtMs = Date.now();
  const late = new LateNodeApi(limitsOf(config), config.clusterId, () => ({
    nodeId: config.nodeId,
    startedAtMs,
    uptimeMs: Date.now() - startedAtMs,
    storageEngine: config.storage,
    dataDir: config.storage === 'memory' ? null : config.dataDir,
    requestsInFlight: 0,
    commitsTotal: 0,
    commitBatchSizeMean: 0,
  }));
  let clients: { readonly http: string; readonly resp: string };
  try {
    // The client ports are bound first so that the addresses the cluster map (and the ring
    // that clients route by) carries are the real ones, port 0 included.
    resp = await startRespServer({ node: late, config, metrics, logger });
    http = await startHttpServer({ node: late, config, metrics, logger });
    clients = { http: `${config.host}:${http.port}`, resp: `${config.host}:${resp.port}` };
    if (config.seeds.length > 0 || config.join !== null) {
      cluster = await joinCluster(config, storage, logger, clients);
    }
  } catch (error) {
    await resp?.close();
    await http?.close();
    await storage.close();
    throw error;
  }
  const runtime = await NodeRuntime.open(config, {
    storage,
    metrics,
    logger,
    ...(onFatal === undefined ? {} : { onFatal }),
    ...(cluster === undefined ? { self: { peer: '', ...clients } } : { cluster }),
  });
  try {
    late.bind(runtime);
    const httpServer = http;
    const respServer = resp;
    let stopping: Promise<void> | null = null;
    return {
      runtime,
      resp: respServer,
      http: httpServer,
      logger,
      stop: () => {
        stopping ??= (async () => {
          await Promise.all([respServer.close(), httpServer.close()]);
          await runtime.close();
          logger.info('stopped');
          logger.flush();
        })();
        return stopping;
      },
    };
  } catch (error) {
    await resp?.close();
    await http?.close();
    await runtime.close();
    throw error;
  }
}

/**
 * Listens for peers and, unless this node already holds a cluster map, learns the id of
 * every other founder by reaching its seed address (retrying until each answers: founders
 * start in any order).
 */
async function joinCluster(
  config: NodeConfig,
  storage: Storage,
  logger: Logger,
  clients: { readonly http: string; readonly resp: string },
): Promise<RuntimeCluster> {
  if (config.clusterSecret === null) {
    throw new Error(
      'cluster mode (--seeds or --join) needs a cluster secret: --cluster-secret or RINGKV_CLUSTER_SECRET',
    );
  }
  const transport = await TcpTransport.listen({
    nodeId: config.nodeId,
    clusterId: config.clusterId,
    secret: config.clusterSecret,
    host: config.host,
    port: config.peerPort,
    logger,
  });
  const self = `${config.host}:${transport.port}`;
  const founders = new Map<string, PeerAddress>();
  let joinVia: string | undefined;
  try {
    if (storedClusterMap(storage) === null && config.join !== null) {
      const address = parseAddress(config.join);
      for (let attempt = 1; joinVia === undefined; attempt++) {
        try {
          joinVia = await transport.identify(address, SEED_ATTEMPT_TIMEOUT_MS);
          founders.set(joinVia, address);
          logger.info({ join: config.join, id: joinVia }, 'joining through member');
        } catch {
          if (attempt % 20 === 1)
            logger.info({ join: config.join }, 'waiting for the member to join through');
          await new Promise((resolve) => setTimeout(resolve, SEED_RETRY_PAUSE_MS));
        }
      }
    } else if (storedClusterMap(storage) === null) {
      const others = config.seeds.filter(
        (seed) => !isOwnAddress(seed, config.host, transport.port),
      );
      if (others.length === config.seeds.length) {
        throw new Error(`--seeds must include this node's own peer address ${self}`);
      }
      for (const seed of others) {
        const address = parseAddress(seed);
        for (let attempt = 1; ; attempt++) {
          try {
            const id = await transport.identify(address, SEED_ATTEMPT_TIMEOUT_MS);
            if (founders.has(id)) throw new Error(`seeds ${seed} and another both are node ${id}`);
            founders.set(id, address);
            logger.info({ seed, id }, 'founder found');
            break;
          } catch (error) {
            if ((error as Error).message.includes('both are node')) throw error;
            if (attempt % 20 === 1) logger.info({ seed }, 'waiting for founder');
            await new Promise((resolve) => setTimeout(resolve, SEED_RETRY_PAUSE_MS));
          }
        }
      }
    }
  } catch (error) {
    await transport.close();
    throw error;
  }
  return {
    transport,
    founders,
    ...(joinVia === undefined ? {} : { joinVia }),
    self: { peer: self, ...clients },
    seed: randomInt(2 ** 31),
  };
}

function isOwnAddress(seed: string, host: string, port: number): boolean {
  const address = parseAddress(seed);
  if (address.port !== port) return false;
  const loopback = ['127.0.0.1', 'localhost', '::1'];
  return address.host === host || (loopback.includes(address.host) && loopback.includes(host));
}
