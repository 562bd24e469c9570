// A real node runtime (memory storage) behind the HTTP server on a loopback port chosen by
// the OS, and a small fetch wrapper, for the HTTP tests.

import type { Writable } from 'node:stream';
import pino from 'pino';
import { startHttpServer, type HttpServer } from '../../../src/api/http/server.ts';
import type { Keyspace } from '../../../src/core/keyspace.ts';
import { DEFAULT_NODE_CONFIG, type NodeConfig } from '../../../src/runtime/config.ts';
import { Metrics } from '../../../src/runtime/metrics.ts';
import { NodeRuntime } from '../../../src/runtime/node-runtime.ts';

export interface HttpNode {
  readonly url: string;
  readonly runtime: NodeRuntime;
  readonly server: HttpServer;
  readonly metrics: Metrics;
  readonly config: NodeConfig;
  call(method: string, path: string, options?: CallOptions): Promise<Response>;
  close(): Promise<void>;
}

export interface CallOptions {
  readonly headers?: Record<string, string>;
  readonly body?: string | Uint8Array;
}

export interface HttpNodeOptions {
  readonly config?: Partial<NodeConfig>;
  readonly keyspaces?: readonly Keyspace[];
  /** Where the node's JSON log lines go; nowhere when absent. */
  readonly logStream?: Writable;
  readonly logLevel?: string;
}

export async function startHttpNode(options: HttpNodeOptions = {}): Promise<HttpNode> {
  const config: NodeConfig = {
    ...DEFAULT_NODE_CONFIG,
    storage: 'memory',
    dataDir: 'unused-by-memory-storage',
    httpPort: 0,
    tickMs: 20,
    logLevel: 'silent',
    ...options.config,
  };
  const logger =
    options.logStream === undefined
      ? pino({ level: 'silent' })
      : pino({ level: options.logLevel ?? 'debug' }, options.logStream);
  const metrics = new Metrics();
  const runtime = await NodeRuntime.open(config, {
    metrics,
    logger,
    ...(options.keyspaces === undefined ? {} : { keyspaces: options.keyspaces }),
  });
  const server = await startHttpServer({ node: runtime, config, metrics, logger });
  const url = `http://127.0.0.1:${server.port}`;
  return {
    url,
    runtime,
    server,
    metrics,
    config,
    call: (method, path, callOptions = {}) =>
      fetch(url + path, {
        method,
        ...(callOptions.headers === undefined ? {} : { headers: callOptions.headers }),
        ...(callOptions.body === undefined ? {} : { body: callOptions.body }),
      }),
    close: async () => {
      await server.close();
      await runtime.close();
    },
  };
}

/** Writes keys straight through the node, for tests that need many (HTTP would be slow). */
export function writeDirect(
  node: HttpNode,
  keyspace: string,
  entries: readonly (readonly [key: string | Uint8Array, value: Uint8Array, ttlMs?: number])[],
): Promise<void> {
  const items = entries.map(([key, value, ttlMs]) => ({
    key: typeof key === 'string' ? Buffer.from(key) : key,
    mutation: {
      kind: 'set' as const,
      value,
      condition: 'always' as const,
      expiry:
        ttlMs === undefined ? { kind: 'none' as const } : { kind: 'after' as const, ms: ttlMs },
    },
  }));
  return new Promise((resolve, reject) =>
    node.runtime.submit({ op: 'write', keyspace, items }, (reply) =>
      reply.ok ? resolve() : reject(new Error(reply.error.message)),
    ),
  );
}

/** The `{ error: { code } }` of an error response, checking its shape and status. */
export async function errorCodeOf(response: Response, status: number): Promise<string> {
  const text = await response.text();
  if (response.status !== status) {
    throw new Error(`expected status ${status}, got ${response.status}: ${text}`);
  }
  const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
  if (typeof body.error?.code !== 'string' || typeof body.error.message !== 'string') {
    throw new Error(`not an error body: ${text}`);
  }
  if (body.error.message.length === 0) throw new Error(`empty error message: ${text}`);
  return body.error.code;
}

export { waitFor as waitUntil } from '../../helpers/test-node.ts';
