// The HTTP/JSON interface (fastify): key-value routes, status, metrics, health. Bodies are
// taken raw (any content type) up to the value size limit. When a password is configured,
// every route but /health needs `Authorization: Bearer <password>`.

import { timingSafeEqual } from 'node:crypto';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
} from 'fastify';
import type { Logger } from 'pino';
import type { NodeConfig } from '../../runtime/config.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import type { NodeApi } from '../../runtime/node-api.ts';
import { HttpError, HttpErrorCode } from './http-errors.ts';
import { registerKvRoutes } from './kv-routes.ts';

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

function bearerMatches(header: string | undefined, password: string): boolean {
  if (header === undefined || !header.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice('Bearer '.length));
  const expected = Buffer.from(password);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export async function buildHttpApp(options: HttpServerOptions): Promise<FastifyInstance> {
  const { node, config, metrics, logger } = options;
  const app = Fastify({
    loggerInstance: logger.child({ component: 'http' }) as FastifyBaseLogger,
    // Requests are logged by the onResponse hook below, at debug unless they fail.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.valueBytesMax,
    // A key of keyBytesMax bytes, percent-encoded, is up to three times as long.
    routerOptions: { maxParamLength: config.keyBytesMax * 3 + 64 },
  });

  // Values are bytes: take every body raw, whatever its content type.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: config.valueBytesMax },
    (_request, body, done) => {
      done(null, body);
    },
  );

  app.addHook('onRequest', async (request) => {
    if (config.password === null || request.url === '/health') return;
    if (!bearerMatches(request.headers.authorization, config.password)) {
      throw new HttpError(
        HttpErrorCode.UNAUTHORIZED,
        'a valid Authorization: Bearer <password> header is required',
      );
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    const entry = {
      method: request.method,
      url: request.url,
      status: reply.statusCode,
      ms: reply.elapsedTime,
    };
    if (reply.statusCode >= 500) request.log.error(entry, 'request failed');
    else request.log.debug(entry, 'request');
  });

  app.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
    let httpError: HttpError;
    if (error instanceof HttpError) httpError = error;
    else if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      httpError = new HttpError(
        'RINGKV_VALUE_TOO_LARGE',
        `the value is larger than the limit of ${config.valueBytesMax} bytes`,
      );
    } else if (typeof error.statusCode === 'number' && error.statusCode < 500) {
      httpError = new HttpError(HttpErrorCode.BAD_REQUEST, error.message);
    } else {
      request.log.error({ err: error }, 'unexpected error');
      httpError = new HttpError(HttpErrorCode.INTERNAL, 'internal error');
    }
    return reply.status(httpError.statusCode).send(httpError.body());
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new HttpError(
      HttpErrorCode.NOT_FOUND,
      `no route ${request.method} ${request.url}`,
    );
    return reply.status(404).send(error.body());
  });

  app.get('/health', async () => ({ ok: true }));
  app.get('/v1/status', async () => ({
    node: node.status(),
    keyspaces: node.keyspaces(),
    limits: node.limits,
  }));
  app.get('/v1/keyspaces', async () => ({ keyspaces: node.keyspaces() }));
  app.get('/metrics', async (_request, reply) =>
    reply.type('text/plain; version=0.0.4').send(metrics.render()),
  );
  registerKvRoutes(app, node, metrics);
  return app;
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const app = await buildHttpApp(options);
  await app.listen({ port: options.config.httpPort, host: options.config.host });
  const address = app.server.address();
  const port =
    typeof address === 'object' && address !== null ? address.port : options.config.httpPort;
  options.logger.info({ host: options.config.host, port }, 'http listening');
  return { port, app, close: () => app.close() };
}
