// What the load generator drives: a store seen through three calls, and two more for stores
// with compare-and-set. Each adapter in this folder maps them onto one client (RESP, etcd,
// the ringkv client). A missing key reads as null; every failure rejects, and the runner
// counts it by kind.

/** A value with the version a compare-and-set names; an absent key has a version too. */
export interface VersionedValue {
  readonly value: Uint8Array | null;
  /** Changes with every write of the key (etcd: its mod revision; ringkv: its version). */
  readonly version: number;
}

export interface LoadTarget {
  /** A short name for reports, such as `resp` or `etcd`. */
  readonly name: string;
  get(key: string): Promise<Uint8Array | null>;
  put(key: string, value: Uint8Array): Promise<void>;
  /** A linearizable read with the key's version; only targets that can compare-and-set. */
  getVersioned?(key: string): Promise<VersionedValue>;
  /** Writes `value` only if the key is still at `expectedVersion`; says whether it did. */
  compareAndSet?(key: string, expectedVersion: number, value: Uint8Array): Promise<boolean>;
  close(): Promise<void>;
}

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** Parses `host:port,host:port` (IPv6 hosts in brackets) into endpoints. */
export function parseEndpoints(text: string): Endpoint[] {
  const endpoints: Endpoint[] = [];
  for (const part of text.split(',')) {
    const trimmed = part.trim();
    const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(trimmed);
    const port = match === null ? NaN : Number(match[2]);
    if (match === null || !(port >= 1 && port <= 65535)) {
      throw new Error(`'${trimmed}' is not host:port`);
    }
    endpoints.push({ host: match[1]!.replace(/^\[|\]$/g, ''), port });
  }
  return endpoints;
}

export function formatEndpoint(endpoint: Endpoint): string {
  return endpoint.host.includes(':')
    ? `[${endpoint.host}]:${endpoint.port}`
    : `${endpoint.host}:${endpoint.port}`;
}
