// A fake cluster for the client tests: small node:http servers on loopback (port 0) that
// serve a ring document and the key routes of the HTTP API over one shared in-memory map,
// and record which server got which request. Each server can be told to misbehave: refuse
// connections (closed), never answer, or answer with a chosen error.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RingDocument, RingKeyspace } from '../../src/client/ring-view.ts';

export interface RecordedRequest {
  readonly nodeId: string;
  readonly method: string;
  /** The raw request target, as sent. */
  readonly url: string;
  readonly keyspace: string | null;
  /** The key's bytes as the server decoded them from the URL; null for other routes. */
  readonly key: Uint8Array | null;
  readonly headers: http.IncomingHttpHeaders;
}

/** How a server treats key and listing requests; the ring route always answers. */
export type Behaviour =
  | { readonly kind: 'normal' }
  /** Reads the request, never answers. */
  | { readonly kind: 'hang' }
  | { readonly kind: 'error'; readonly status: number; readonly body: string };

export interface FakeNode {
  readonly id: string;
  readonly http: string;
  behaviour: Behaviour;
  /** Sent as X-Ringkv-Epoch on key answers when set. */
  epochHeader: number | null;
  readonly server: http.Server;
  /** Ring requests this server has answered. */
  ringRequests: number;
}

export interface FakeCluster {
  readonly nodes: readonly FakeNode[];
  /** What GET /v1/cluster/ring answers; replace it to change the ring. */
  ring: RingDocument;
  readonly requests: RecordedRequest[];
  /** Keyspace name + '/' + key as latin1 text, to the stored value. */
  readonly store: Map<string, Uint8Array>;
  node(id: string): FakeNode;
  endpoints(): string[];
  /** Key requests (not ring fetches) recorded so far. */
  keyRequests(): RecordedRequest[];
  /** Closes one server and its open connections: connections to it are refused from then on. */
  kill(id: string): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_RING_KEYSPACE: RingKeyspace = {
  name: 'default',
  id: 0,
  n: 3,
  r: 2,
  w: 2,
  consistency: 'eventual',
  conflicts: 'lww',
  durability: 'sync',
};

function storeKey(keyspace: string, key: Uint8Array): string {
  return `${keyspace}/${Buffer.from(key).toString('latin1')}`;
}

function sendJson(
  response: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
}

function sendError(
  response: http.ServerResponse,
  status: number,
  code: string,
  headers: Record<string, string> = {},
): void {
  sendJson(response, status, { error: { code, message: `fake ${code}` } }, headers);
}

function jsonBytes(value: Uint8Array): { value: string; encoding: 'utf8' | 'base64' } {
  const buffer = Buffer.from(value);
  try {
    return { value: new TextDecoder('utf-8', { fatal: true }).decode(value), encoding: 'utf8' };
  } catch {
    return { value: buffer.toString('base64'), encoding: 'base64' };
  }
}

function readBody(request: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/**
 * Starts `nodeIds.length` servers. `makeRing` gets each node's `host:port` and returns the
 * ring document they all serve.
 */
export async function startFakeCluster(
  nodeIds: readonly string[],
  makeRing: (addresses: ReadonlyMap<string, string>) => RingDocument,
): Promise<FakeCluster> {
  const requests: RecordedRequest[] = [];
  const store = new Map<string, Uint8Array>();
  const nodes: FakeNode[] = [];
  // eslint-disable-next-line prefer-const -- assigned once the addresses are known
  let cluster: FakeCluster;

  const handle = async (
    node: FakeNode,
    request: http.IncomingMessage,
    response: http.ServerResponse,
  ): Promise<void> => {
    const url = request.url ?? '/';
    const body = await readBody(request);
    if (url === '/v1/cluster/ring') {
      node.ringRequests++;
      sendJson(response, 200, cluster.ring);
      return;
    }
    const match = /^\/v1\/kv\/([^/?]+)(?:\/([^?]*))?(?:\?(.*))?$/.exec(url);
    const query = new URLSearchParams(match?.[3] ?? '');
    const keyspace = match === null ? null : decodeURIComponent(match[1]!);
    const keyText = match?.[2];
    const key =
      keyText === undefined
        ? null
        : query.get('keyEncoding') === 'base64'
          ? new Uint8Array(Buffer.from(keyText, 'base64url'))
          : new TextEncoder().encode(decodeURIComponent(keyText));
    requests.push({
      nodeId: node.id,
      method: request.method ?? '',
      url,
      keyspace,
      key,
      headers: request.headers,
    });

    const behaviour = node.behaviour;
    if (behaviour.kind === 'hang') return;
    if (behaviour.kind === 'error') {
      response.writeHead(behaviour.status, { 'content-type': 'application/json' });
      response.end(behaviour.body);
      return;
    }
    const epochHeaders: Record<string, string> =
      node.epochHeader === null ? {} : { 'x-ringkv-epoch': String(node.epochHeader) };
    if (keyspace === null) {
      sendError(response, 404, 'RINGKV_NOT_FOUND', epochHeaders);
      return;
    }
    if (!cluster.ring.keyspaces.some((entry) => entry.name === keyspace)) {
      sendError(response, 404, 'RINGKV_UNKNOWN_KEYSPACE', epochHeaders);
      return;
    }
    if (key === null) {
      // Listing: keys in byte order, the cursor is the index of the next one.
      const prefix = Buffer.from(query.get('prefix') ?? '', 'base64url');
      const all = [...store.keys()]
        .filter((entry) => entry.startsWith(`${keyspace}/`))
        .map((entry) => Buffer.from(entry.slice(keyspace.length + 1), 'latin1'))
        .filter((entry) => entry.subarray(0, prefix.length).equals(prefix))
        .sort(Buffer.compare);
      const start = Number(query.get('cursor') ?? '0');
      const limit = Number(query.get('limit') ?? '100');
      const page = all.slice(start, start + limit);
      const next = start + limit < all.length ? String(start + limit) : null;
      sendJson(
        response,
        200,
        {
          keys: page.map((entry) => entry.toString('base64url')),
          keyEncoding: 'base64',
          cursor: next,
        },
        epochHeaders,
      );
      return;
    }
    const id = storeKey(keyspace, key);
    if (request.method === 'PUT') {
      store.set(id, new Uint8Array(body));
      sendJson(response, 200, { ok: true }, epochHeaders);
    } else if (request.method === 'DELETE') {
      sendJson(response, 200, { deleted: store.delete(id) }, epochHeaders);
    } else {
      const value = store.get(id);
      if (value === undefined) {
        sendError(response, 404, 'RINGKV_NOT_FOUND', epochHeaders);
        return;
      }
      sendJson(
        response,
        200,
        {
          ...jsonBytes(value),
          context: `context-from-${node.id}`,
          expiresAtMs: null,
          siblings: [{ ...jsonBytes(value), timestamp: [1, 0] }],
        },
        { ...epochHeaders, 'x-ringkv-context': `context-from-${node.id}` },
      );
    }
  };

  for (const id of nodeIds) {
    const server = http.createServer();
    const node: FakeNode = {
      id,
      http: '',
      behaviour: { kind: 'normal' },
      epochHeader: null,
      server,
      ringRequests: 0,
    };
    server.on('request', (request, response) => {
      handle(node, request, response).catch((error: unknown) => {
        response.destroy(error instanceof Error ? error : new Error(String(error)));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    (node as { http: string }).http = `127.0.0.1:${port}`;
    nodes.push(node);
  }
  const addresses = new Map(nodes.map((node) => [node.id, node.http]));

  const closeServer = (server: http.Server): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) {
        resolve();
        return;
      }
      server.close(() => resolve());
      server.closeAllConnections();
    });

  cluster = {
    nodes,
    ring: makeRing(addresses),
    requests,
    store,
    node: (id) => {
      const found = nodes.find((node) => node.id === id);
      if (found === undefined) throw new Error(`no fake node ${id}`);
      return found;
    },
    endpoints: () => nodes.map((node) => node.http),
    keyRequests: () => requests.filter((entry) => entry.keyspace !== null),
    kill: (id) => closeServer(cluster.node(id).server),
    close: async () => {
      await Promise.all(nodes.map((node) => closeServer(node.server)));
    },
  };
  return cluster;
}

/** A ring document over the given nodes, all alive, with the given owners. */
export function ringDocument(
  addresses: ReadonlyMap<string, string>,
  owners: readonly string[],
  options: { epoch?: number; keyspaces?: readonly RingKeyspace[] } = {},
): RingDocument {
  return {
    clusterId: 'fake-cluster',
    epoch: options.epoch ?? 1,
    partitionCount: owners.length,
    owners: [...owners],
    nodes: [...addresses].map(([id, address]) => ({
      id,
      http: address,
      resp: '127.0.0.1:0',
      liveness: 'alive' as const,
    })),
    keyspaces: [...(options.keyspaces ?? [DEFAULT_RING_KEYSPACE])],
  };
}
