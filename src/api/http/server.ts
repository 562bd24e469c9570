// The HTTP/JSON interface (fastify): key-value routes, listing, status, metrics, health.
// Rules it keeps:
// - Every error, the router's and Node's HTTP parser's included, leaves as
//   `{ error: { code, message } }` with a stable code (http-errors.ts, docs/ERRORS.md).
// - Bodies are taken raw, whatever their content type, up to the value size limit; a larger
//   body is refused with RINGKV_VALUE_TOO_LARGE before it reaches the node.
// - The request line and headers may be as long as a key of the key size limit written
//   fully percent-encoded needs, so every legal key is addressable in the path.
// - With a password configured, every route but /health needs `Authorization: Bearer`.
// - Connections are bounded by config.connectionsMax; Node drops any beyond it. A client
//   has HTTP_REQUEST_TIMEOUT_MS to send a request, so a slow one cannot hold a slot forever.

import type { Socket } from 'node:net';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import { ErrorCode } from '../../core/errors.ts';
import type { NodeConfig } from '../../runtime/config.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import type { NodeApi } from '../../runtime/node-api.ts';
import { BearerCheck } from './auth.ts';
import { clientErrorResponse, HttpError, HttpErrorCode, toHttpError } from './http-errors.ts';
import { parseQueryString } from './key-codec.ts';
import { registerClusterRoutes } from './cluster-routes.ts';
import './route-config.ts';
import { registerKvRoutes } from './kv-routes.ts';
import { registerListRoute } from './list-route.ts';
import { RequestObserver } from './request-observer.ts';
import { HEALTH_PATH, registerStatusRoutes } from './status-routes.ts';

/** Response header carrying the cluster map epoch. */
export const EPOCH_HEADER = 'x-ringkv-epoch';

export interface HttpServerOptions {
  readonly node: NodeApi;
  readonly config: NodeConfig;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

export interface HttpServer {
  readonly port: number;
  readonly app: FastifyInstance;
  close(): Promise<void>;
}

/** Longest keyspace path segment routed; names are at most 64 characters. */
const KEYSPACE_PARAM_CHARS_MAX = 128;
/**
 * Time a client has to send a whole request, body included (fastify leaves it unbounded).
 * Two minutes let a 16 MiB value through at about 140 KB/s.
 */
export const HTTP_REQUEST_TIMEOUT_MS = 120_000;
/** Room for the request line's other parts and the headers, as Node's default allows. */
const HEADER_BYTES_BESIDES_KEY = 16 * 1024;

export async function buildHttpApp(options: HttpServerOptions): Promise<FastifyInstance> {
  const { node, config, metrics, logger } = options;
  // Percent-encoding writes a byte as up to three characters.
  const keyInUrlCharsMax = config.keyBytesMax * 3;
  const bearer = config.password === null ? null : new BearerCheck(config.password);
  const adminBearer = config.adminToken === null ? null : new BearerCheck(config.adminToken);
  const observer = new RequestObserver(metrics);
  let closing = false;

  const sendError = (request: FastifyRequest, reply: FastifyReply, error: HttpError) => {
    observer.noteError(request, error.code);
    if (error.code === HttpErrorCode.UNAUTHORIZED) {
      void reply.header('www-authenticate', 'Bearer realm="ringkv"');
    }
    return reply
      .status(error.statusCode)
      .type('application/json; charset=utf-8')
      .send(error.body());
  };

  const unauthorized = (request: FastifyRequest): HttpError | null => {
    // Admin routes take the admin token in place of the password when one is configured.
    if (adminBearer !== null && request.routeOptions.config.admin === true) {
      return adminBearer.accepts(request.headers.authorization)
        ? null
        : new HttpError(
            HttpErrorCode.UNAUTHORIZED,
            'admin routes need an Authorization: Bearer <admin token> header',
          );
    }
    return passwordRefusal(request);
  };
  const passwordRefusal = (request: FastifyRequest): HttpError | null =>
    bearer === null ||
    request.routeOptions.url === HEALTH_PATH ||
    bearer.accepts(request.headers.authorization)
      ? null
      : new HttpError(
          HttpErrorCode.UNAUTHORIZED,
          'this node needs an Authorization: Bearer <password> header with its password',
        );

  const app = Fastify({
    loggerInstance: logger.child(
      { component: 'http' },
      { redact: { paths: ['req.headers.authorization', 'headers.authorization'] } },
    ) as FastifyBaseLogger,
    // request-observer.ts writes one line per request instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.valueBytesMax,
    requestTimeout: HTTP_REQUEST_TIMEOUT_MS,
    http: { maxHeaderSize: keyInUrlCharsMax + HEADER_BYTES_BESIDES_KEY },
    // Requests on connections open during close are answered by the onRequest hook below
    // in the usual error shape, not by fastify's own 503 body.
    return503OnClosing: false,
    routerOptions: {
      // Bounds the keyspace name in the path; the key, the path's wildcard tail, is bounded
      // by the header size above and judged by the node.
      maxParamLength: KEYSPACE_PARAM_CHARS_MAX,
      querystringParser: parseQueryString,
    },
    // Errors of the router, before any hook: an undecodable URL, an over-long keyspace name.
    frameworkErrors: (error, request, reply) => {
      const refusal =
        unauthorized(request) ??
        (error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? new HttpError(
              ErrorCode.UNKNOWN_KEYSPACE,
              'no keyspace has a name that long (names are 1 to 64 characters)',
            )
          : new HttpError(
              HttpErrorCode.BAD_REQUEST,
              'the URL is not valid percent-encoded UTF-8 (use keyEncoding=base64 for binary keys)',
            ));
      void sendError(request, reply, refusal);
      observer.record(request, reply);
    },
    // Errors of Node's HTTP parser: there is no request, only the socket.
    clientErrorHandler: (error: Error & { code?: string }, socket: Socket) => {
      if (error.code === 'ECONNRESET' || socket.destroyed) return;
      if (socket.writable) socket.write(clientErrorResponse(error.code));
      socket.destroy();
    },
  });

  let connectionsOpen = 0;
  app.server.maxConnections = config.connectionsMax;
  app.server.on('connection', (socket: Socket) => {
    connectionsOpen++;
    socket.once('close', () => connectionsOpen--);
  });
  metrics.connections.track(() => connectionsOpen, { protocol: 'http' });

  // Values are bytes: take every body raw, whatever its content type (JSON included).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => {
    done(null, body);
  });

  app.addHook('preClose', async () => {
    closing = true;
  });
  // The server's close ends the connections idle when it starts; one that was answering
  // then goes idle later, and would keep the close waiting until the client's keep-alive ran
  // out. Each answer sent while closing ends the connections idle by then (a request already
  // queued on one keeps it open, and is refused in our shape by the hook below).
  app.addHook('onResponse', (_request, _reply, done) => {
    if (closing) setImmediate(() => app.server.closeIdleConnections());
    done();
  });
  // The per-request hooks take callbacks rather than being async: each request then runs
  // them without a promise and a microtask apiece.
  app.addHook('onRequest', (request, reply, done) => {
    if (closing) {
      void reply.header('connection', 'close');
      done(new HttpError(ErrorCode.UNAVAILABLE, 'the node is shutting down'));
      return;
    }
    const refusal = unauthorized(request);
    if (refusal !== null) done(refusal);
    else done();
  });
  observer.install(app);

  app.setErrorHandler((error, request, reply) => {
    const { httpError, foreseen } = toHttpError(error, config.valueBytesMax);
    if (!foreseen) request.log.error({ err: error }, 'unexpected error');
    return sendError(request, reply, httpError);
  });
  // The hooks above run for unknown routes too: they need the password, revealing nothing.
  app.setNotFoundHandler((request, reply) =>
    sendError(
      request,
      reply,
      new HttpError(HttpErrorCode.NOT_FOUND, `no route ${request.method} ${request.url}`),
    ),
  );

  registerStatusRoutes(app, node, metrics);
  registerKvRoutes(app, node);
  registerListRoute(app, node);
  registerClusterRoutes(app, node);
  // Clients watch the map epoch to learn that the ring changed.
  app.addHook('onSend', (_request, reply, payload, done) => {
    const epoch = node.clusterMap()?.epoch;
    if (epoch !== undefined) void reply.header(EPOCH_HEADER, String(epoch));
    done(null, payload);
  });
  await app.ready();
  return app;
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const app = await buildHttpApp(options);
  try {
    await app.listen({ port: options.config.httpPort, host: options.config.host });
  } catch (error) {
    await app.close();
    throw error;
  }
  const address = app.server.address();
  if (address === null || typeof address !== 'object') {
    throw new Error(`the HTTP server has no TCP address after listen: ${String(address)}`);
  }
  options.logger.info({ host: options.config.host, port: address.port }, 'http listening');
  return { port: address.port, app, close: () => app.close() };
}
