// Opens a load target by kind. The kinds are the stores the benchmarks compare: ringkv and
// Redis-protocol servers over RESP, and etcd over its gRPC API. The client libraries are
// development dependencies, so each is loaded only when its kind is asked for.

import type { Endpoint, LoadTarget } from './target.ts';

export const TARGET_KINDS = ['resp', 'etcd'] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];

export interface TargetOptions {
  readonly kind: TargetKind;
  readonly endpoints: readonly Endpoint[];
  /** RESP only: sockets to open, spread over the endpoints. */
  readonly connections: number;
  readonly password?: string;
}

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
    case 'etcd': {
      const { openEtcdTarget } = await import('./etcd-target.ts');
      return openEtcdTarget({ endpoints: options.endpoints });
    }
  }
}
