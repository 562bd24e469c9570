// Opens a load target by kind. The kinds are the stores the benchmarks compare: ringkv and
// Redis-protocol servers over RESP, and etcd over its gRPC API.

import { openEtcdTarget } from './etcd-target.ts';
import { openRespTarget } from './resp-target.ts';
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

export function openTarget(options: TargetOptions): Promise<LoadTarget> {
  switch (options.kind) {
    case 'resp':
      return openRespTarget({
        endpoints: options.endpoints,
        connections: options.connections,
        ...(options.password === undefined ? {} : { password: options.password }),
      });
    case 'etcd':
      return openEtcdTarget({ endpoints: options.endpoints });
  }
}
