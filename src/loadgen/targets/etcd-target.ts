// An etcd target through the etcd3 package (gRPC): a put is a KV Put, a get a KV Range of
// one key, and a compare-and-set a transaction that compares the key's mod revision and
// puts only if it holds. The client multiplexes every request over its channels to the given
// members, which is how applications use etcd; its default retry policy stays on (a failed
// call is tried again on another member, three attempts in all), as theirs would.
//
// Its per-member circuit breakers are turned off (etcd3's documented `host: () => noop`).
// By default a member that fails three calls in a row is shunned for 5 s; while a new leader
// is elected every member fails, so every breaker opens and the client refuses all calls for
// seconds after etcd can serve again. Benchmarks measure etcd, not that policy.
//
// Every read is linearizable: a Range is sent with `serializable: false`, said explicitly
// (it is etcd's default, and the comparison with ringkv's strong keyspaces rests on it), so
// the member confirms with the leader (ReadIndex) that it has applied every committed write
// before it answers. Serializable reads, served from one member's state alone, may be stale.

import { noop } from 'cockatiel';
import { Etcd3 } from 'etcd3';
import { assert } from '../../core/bytes.ts';
import { formatEndpoint, type Endpoint, type LoadTarget } from './target.ts';

export interface EtcdTargetOptions {
  readonly endpoints: readonly Endpoint[];
}

/** The largest mod revision this target works with: one a JavaScript number holds exactly. */
const REVISION_MAX = BigInt(Number.MAX_SAFE_INTEGER);

function revisionOf(text: string | number | undefined): number {
  const revision = BigInt(text ?? 0);
  assert(revision >= 0n && revision <= REVISION_MAX, 'a mod revision fits a safe integer');
  return Number(revision);
}

function bufferOf(value: Uint8Array): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export async function openEtcdTarget(options: EtcdTargetOptions): Promise<LoadTarget> {
  assert(options.endpoints.length > 0, 'an etcd target needs at least one endpoint');
  const client = new Etcd3({
    hosts: options.endpoints.map((endpoint) => `http://${formatEndpoint(endpoint)}`),
    dialTimeout: 5_000,
    faultHandling: { host: () => noop },
  });
  // Fail now rather than at the first measured request when no member answers.
  try {
    await client.get('ringkv-bench-probe').serializable(false).buffer();
  } catch (error) {
    client.close();
    throw error;
  }
  return {
    name: 'etcd',
    get: (key) => client.get(key).serializable(false).buffer(),
    put: async (key, value) => {
      await client.put(key).value(bufferOf(value));
    },
    getVersioned: async (key) => {
      const response = await client.get(key).serializable(false).exec();
      const found = response.kvs[0];
      // An absent key compares as mod revision 0 in a transaction: the first write creates it.
      return found === undefined
        ? { value: null, version: 0 }
        : { value: new Uint8Array(found.value), version: revisionOf(found.mod_revision) };
    },
    compareAndSet: async (key, expectedVersion, value) => {
      assert(Number.isSafeInteger(expectedVersion) && expectedVersion >= 0, 'a revision');
      const response = await client
        .if(key, 'Mod', '==', expectedVersion)
        .then(client.put(key).value(bufferOf(value)))
        .commit();
      return response.succeeded;
    },
    close: async () => client.close(),
  };
}
