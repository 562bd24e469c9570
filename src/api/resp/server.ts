// The RESP (Redis protocol) server: accepts connections on node:net, bounds their number,
// and hands each to a Connection. Commands come from the tables in ./commands/.

import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { NodeConfig } from '../../runtime/config.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import type { NodeApi } from '../../runtime/node-api.ts';
import { KeyspaceCounts } from './keyspace-counts.ts';
import { CommandTable, ScanCursors, type RespServerState } from './command-table.ts';
import { connectionCommands } from './commands/connection-commands.ts';
import { KEY_COMMANDS } from './commands/key-commands.ts';
import { RINGKV_COMMANDS } from './commands/ringkv-commands.ts';
import { STRING_COMMANDS } from './commands/string-commands.ts';
import { Connection } from './connection.ts';
import { FlushQueue } from './flush-queue.ts';

export interface RespServerOptions {
  readonly node: NodeApi;
  readonly config: NodeConfig;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

export interface RespServer {
  readonly port: number;
  connectionCount(): number;
  close(): Promise<void>;
}

export function buildCommandTable(): CommandTable {
  const table = new CommandTable();
  for (const spec of [
    ...STRING_COMMANDS,
    ...KEY_COMMANDS,
    ...RINGKV_COMMANDS,
    ...connectionCommands(() => table.all()),
  ]) {
    table.add(spec);
  }
  return table;
}

/**
 * A connection to `node` over `socket` outside a listening server, with no password: for
 * benchmarks and tests that drive the RESP layer through a stand-in socket.
 */
export function detachedConnection(
  socket: Socket,
  node: NodeApi,
  options: { readonly metrics: Metrics; readonly logger: Logger; readonly inputBytesMax: number },
): Connection {
  return new Connection({
    id: 1,
    socket,
    server: {
      node,
      password: null,
      port: () => 0,
      startedAtMs: Date.now(),
      connectionCount: () => 1,
      commandsProcessed: () => 0,
      connectionsReceived: () => 1,
      listClients: () => [],
      scanCursors: new ScanCursors(),
      keyspaceCounts: new KeyspaceCounts(),
    },
    commands: buildCommandTable(),
    ...options,
    flushQueue: new FlushQueue(),
    onCommand: () => {},
    onClose: () => {},
  });
}

export async function startRespServer(options: RespServerOptions): Promise<RespServer> {
  const { node, config, metrics, logger } = options;
  const commands = buildCommandTable();
  const flushQueue = new FlushQueue();
  const connections = new Map<number, Connection>();
  const sockets = new Set<Socket>();
  let nextClientId = 1;
  let commandsProcessed = 0;
  let connectionsReceived = 0;
  let port = 0;
  const state: RespServerState = {
    node,
    password: config.password,
    port: () => port,
    startedAtMs: Date.now(),
    connectionCount: () => connections.size,
    commandsProcessed: () => commandsProcessed,
    connectionsReceived: () => connectionsReceived,
    listClients: () => [...connections.values()].map((connection) => connection.describe()),
    scanCursors: new ScanCursors(),
    keyspaceCounts: new KeyspaceCounts(),
  };
  metrics.connections.track(() => connections.size, { protocol: 'resp' });

  const server: Server = createServer((socket) => {
    connectionsReceived++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    if (connections.size >= config.connectionsMax) {
      socket.on('error', () => {});
      socket.end('-ERR max number of clients reached\r\n');
      return;
    }
    const id = nextClientId++;
    const connection = new Connection({
      id,
      socket,
      server: state,
      commands,
      metrics,
      logger,
      inputBytesMax: config.respInputBytesMax,
      flushQueue,
      onCommand: () => {
        commandsProcessed++;
      },
      onClose: () => connections.delete(id),
    });
    connections.set(id, connection);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.respPort, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  port = typeof address === 'object' && address !== null ? address.port : config.respPort;
  logger.info({ host: config.host, port }, 'resp listening');

  return {
    port,
    connectionCount: () => connections.size,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
