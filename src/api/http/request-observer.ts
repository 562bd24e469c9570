// One log line and, for key-value routes, one metrics observation per request, written
// when the response has been sent. Log levels: error for 5xx, warn for 401, debug for the
// hot routes (key-value, /health, /metrics), info for the rest. Headers are not logged;
// the server's logger redacts the Authorization header should anything log one.
//
// A request's outcome for ringkv_requests_total is `ok` when the node answered it, which
// includes a miss (404 RINGKV_NOT_FOUND) and an unmet condition (412): like a Redis nil,
// those are answers. Everything else at 4xx or 5xx is an `error`.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Metrics } from '../../runtime/metrics.ts';
import { HttpErrorCode } from './http-errors.ts';

/** Error codes that are answers, not failures. */
const ANSWER_CODES: ReadonlySet<string> = new Set([
  HttpErrorCode.NOT_FOUND,
  HttpErrorCode.PRECONDITION_FAILED,
]);

export class RequestObserver {
  /** The stable error code each failed request was answered with. */
  private readonly errorCodes = new WeakMap<FastifyRequest, string>();
  private readonly metrics: Metrics;

  constructor(metrics: Metrics) {
    this.metrics = metrics;
  }

  /** Called by the error paths, before the response is sent. */
  noteError(request: FastifyRequest, code: string): void {
    this.errorCodes.set(request, code);
  }

  install(app: FastifyInstance): void {
    app.addHook('onResponse', async (request, reply) => this.record(request, reply));
  }

  /**
   * Records a request whose response has been sent. The hook above does it for routed
   * requests; the router's own refusals (which run no hooks) call it directly.
   */
  record(request: FastifyRequest, reply: FastifyReply): void {
    const status = reply.statusCode;
    const code = this.errorCodes.get(request);
    const config = request.routeOptions.config;
    // Unknown for the router's refusals, which never started the reply's clock.
    const elapsedMs = Number.isFinite(reply.elapsedTime) ? reply.elapsedTime : 0;
    if (config?.operation !== undefined) {
      const ok = status < 400 || (code !== undefined && ANSWER_CODES.has(code));
      this.metrics.observeRequest('http', config.operation, ok, elapsedMs / 1000);
    }
    const entry = {
      method: request.method,
      url: request.url,
      status,
      ms: Math.round(elapsedMs * 1000) / 1000,
      ...(code === undefined ? {} : { code }),
    };
    if (status >= 500) request.log.error(entry, 'request failed');
    else if (status === 401) request.log.warn(entry, 'request refused');
    else if (config?.hot === true) request.log.debug(entry, 'request');
    else request.log.info(entry, 'request');
  }
}
