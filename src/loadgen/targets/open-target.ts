// Opens a load target by kind. The kinds are the stores the benchmarks compare: ringkv and
// Redis-protocol servers over RESP, ringkv through its own client over HTTP, and etcd over
// its gRPC API. The client libraries are
// development dependencies, so each is loaded only when its kind is asked for.

import type { Endpoint, LoadTarget } from './target.ts';

export const TARGET_KINDS = ['resp', 'client', 'etcd'] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];

export interface TargetOptions {
  readonly kind: TargetKind;
  readonly endpoints: readonly Endpoint[];
  /** RESP only: sockets to open, spread over the endpoints. */
  readonly connections: number;
  /** The password: RESP AUTH, or the client's bearer token. */
  readonly password?: string;
  /** Client only: the keyspace to use (RESP uses database 0, the default keyspace). */
  readonly keyspace?: string;
}

/** Where each kind listens by default: a node's RESP and HTTP ports, etcd's client port. */
export const DEFAULT_ENDPOINTS: Readonly<Record<TargetKind, string>> = {
  resp: '127.0.0.1:6380',
  client: '127.0.0.1:6480',
  etcd: '127.0.0.1:2379',
};

export async function openTarget(options: TargetOptions): Promise<LoadTarget> {
  switch (options.kind) {
    case 'resp': {
      const { openRespTarget } = await import('./resp-target.ts');
      return openRespTarget({
        endpoints: options.endpoints,
        connections: options.connections,
        ...(options.password === undefined ? {} : { password: options.password }),
      });
    }
    case 'client': {
      const { openRingkvClientTarget } = await import('./ringkv-client-target.ts');
      return openRingkvClientTarget({
        endpoints: options.endpoints,
        keyspace: options.keyspace ?? 'default',
        ...(options.password === undefined ? {} : { token: options.password }),
      });
    }
    case 'etcd': {
      const { openEtcdTarget } = await import('./etcd-target.ts');
      return openEtcdTarget({ endpoints: options.endpoints });
    }
  }
}
