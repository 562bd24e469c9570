// An etcd target through the etcd3 package (gRPC): a put is a KV Put, a get a KV Range of
// one key. The client multiplexes every request over its channels to the given members,
// which is how applications use etcd; its default retry policy stays on, as theirs would.

import { Etcd3 } from 'etcd3';
import { assert } from '../../core/bytes.ts';
import { formatEndpoint, type Endpoint, type LoadTarget } from './target.ts';

export interface EtcdTargetOptions {
  readonly endpoints: readonly Endpoint[];
}

export async function openEtcdTarget(options: EtcdTargetOptions): Promise<LoadTarget> {
  assert(options.endpoints.length > 0, 'an etcd target needs at least one endpoint');
  const client = new Etcd3({
    hosts: options.endpoints.map((endpoint) => `http://${formatEndpoint(endpoint)}`),
    dialTimeout: 5_000,
  });
  // Fail now rather than at the first measured request when no member answers.
  try {
    await client.get('ringkv-bench-probe').buffer();
  } catch (error) {
    client.close();
    throw error;
  }
  return {
    name: 'etcd',
    get: (key) => client.get(key).buffer(),
    put: async (key, value) => {
      await client.put(key).value(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    },
    close: async () => client.close(),
  };
}
