// A RESP target through ioredis: `connections` sockets spread round-robin over the
// endpoints (any node serves any key). Operations go to the sockets in turn, so when more
// requests are in flight than there are sockets, ioredis pipelines them on one socket.
// Failed requests are not retried or queued offline: the runner must see every failure.

import { Redis } from 'ioredis';
import { assert } from '../../core/bytes.ts';
import type { Endpoint, LoadTarget } from './target.ts';

export interface RespTargetOptions {
  readonly endpoints: readonly Endpoint[];
  readonly connections: number;
  readonly password?: string;
  /** RESP database index, which ringkv maps to a keyspace. */
  readonly database?: number;
}

export async function openRespTarget(options: RespTargetOptions): Promise<LoadTarget> {
  assert(options.endpoints.length > 0, 'a RESP target needs at least one endpoint');
  assert(options.connections > 0, 'a RESP target needs at least one connection');
  const clients: Redis[] = [];
  // Until every socket is up, a failure ends the attempt at once; afterwards a lost socket
  // is redialled (as an application would), and requests meanwhile fail and are counted.
  let opened = false;
  let firstError: Error | null = null;
  for (let index = 0; index < options.connections; index++) {
    const endpoint = options.endpoints[index % options.endpoints.length]!;
    clients.push(
      new Redis({
        host: endpoint.host,
        port: endpoint.port,
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: (times) => (opened ? Math.min(times * 50, 1_000) : null),
        db: options.database ?? 0,
        ...(options.password === undefined ? {} : { password: options.password }),
      }),
    );
  }
  // A socket error also fails the commands on that socket, which is how the runner learns
  // of it; the event itself is only noise (ioredis prints unhandled ones).
  for (const client of clients) client.on('error', (error: Error) => (firstError ??= error));
  try {
    await Promise.all(clients.map((client) => client.connect()));
  } catch (error) {
    clients.forEach((client) => client.disconnect());
    throw firstError ?? error;
  }
  opened = true;
  let turn = 0;
  const nextClient = (): Redis => {
    turn = (turn + 1) % clients.length;
    return clients[turn]!;
  };
  return {
    name: 'resp',
    get: (key) => nextClient().getBuffer(key),
    put: async (key, value) => {
      const view = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      const reply = await nextClient().set(key, view);
      if (reply !== 'OK') throw new Error(`SET answered ${String(reply)}`);
    },
    close: async () => {
      await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
    },
  };
}
