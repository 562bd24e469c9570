// A ringkv target through the project's TypeScript client (src/client/): each request goes
// straight to a replica of its key, as the client routes it by the ring, over HTTP or (with
// `transport: 'resp'`) pipelined over the nodes' Redis protocol ports. The
// client's own retry policy stays on, as an application's would; its errors carry stable
// codes, which the runner counts by.
//
// On a strong keyspace reads carry the key's version and the target can compare-and-set on
// it (workload `cas`); on other keyspaces the versioned calls fail, which the runner counts.

import { RingkvClient, type Transport } from '../../client/index.ts';
import { assert } from '../../core/bytes.ts';
import { formatEndpoint, type Endpoint, type LoadTarget } from './target.ts';

export interface RingkvClientTargetOptions {
  /** HTTP endpoints of one or more nodes; the client learns the rest from the ring. */
  readonly endpoints: readonly Endpoint[];
  readonly keyspace: string;
  readonly token?: string;
  /** How the client sends gets, puts and compare-and-sets (default http). */
  readonly transport?: Transport;
}

export async function openRingkvClientTarget(
  options: RingkvClientTargetOptions,
): Promise<LoadTarget> {
  assert(options.endpoints.length > 0, 'a client target needs at least one endpoint');
  assert(options.keyspace.length > 0, 'a client target needs a keyspace');
  const client = await RingkvClient.connect({
    endpoints: options.endpoints.map(formatEndpoint),
    ...(options.token === undefined ? {} : { token: options.token }),
    ...(options.transport === undefined ? {} : { transport: options.transport }),
  });
  const keyspace = options.keyspace;
  return {
    name: options.transport === 'resp' ? 'client (resp)' : 'client',
    get: async (key) => (await client.get(keyspace, key)).value,
    put: (key, value) => client.put(keyspace, key, value),
    getVersioned: async (key) => {
      const read = await client.get(keyspace, key);
      if (read.version === undefined) {
        throw new Error(`keyspace '${keyspace}' has no versions: it is not strong`);
      }
      return { value: read.value, version: read.version };
    },
    compareAndSet: async (key, expectedVersion, value) =>
      (await client.compareAndSet(keyspace, key, { version: expectedVersion }, value)).applied,
    close: async () => client.close(),
  };
}
