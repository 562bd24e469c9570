// What the load generator drives: a store seen through three calls. Each adapter in this
// folder maps them onto one client (RESP, etcd, the ringkv client). A missing key reads as
// null; every failure rejects, and the runner counts it by kind.

export interface LoadTarget {
  /** A short name for reports, such as `resp` or `etcd`. */
  readonly name: string;
  get(key: string): Promise<Uint8Array | null>;
  put(key: string, value: Uint8Array): Promise<void>;
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
