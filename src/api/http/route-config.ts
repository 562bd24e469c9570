// What each route tells the request observer (metrics and logs) about itself, attached
// through fastify's per-route `config`, and the custom headers the routes use.

export interface RingkvRouteConfig {
  /** Operation name for ringkv_requests_total; only key-value routes have one. */
  readonly operation?: string;
  /** Called often (key-value routes, probes, scrapes): logged at debug instead of info. */
  readonly hot?: boolean;
  /** An admin route: with an admin token configured, it takes that token. */
  readonly admin?: boolean;
}

declare module 'fastify' {
  // Declaration merging is how fastify types per-route config.
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface FastifyContextConfig extends RingkvRouteConfig {}
}

/** The causal context of a read, to hand back with a later write (base64url). */
export const CONTEXT_HEADER = 'x-ringkv-context';
/**
 * Strong keyspaces: a compare-and-set on the value, the expected value base64url (with
 * If-Match on the version, the other form of compare-and-set).
 */
export const IF_VALUE_HEADER = 'x-ringkv-if-value';
/** Unix time in ms at which a value expires; absent when it has no expiry. */
export const EXPIRES_AT_HEADER = 'x-ringkv-expires-at';
