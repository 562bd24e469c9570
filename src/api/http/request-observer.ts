// One log line and, for key-value routes, one metrics observation per request, written
// when the response has been sent. Log levels: error for 5xx, warn for 401, debug for the
// hot routes (key-value, /health, /metrics), info for the rest. Headers are not logged;
// the server's logger redacts the Authorization header should anything log one.
//
// A request's outcome for ringkv_requests_total is `ok` when the node answered it, which
// includes a miss (404 RINGKV_NOT_FOUND) and an unmet condition (412): like a Redis nil,
// those are answers. Everything else at 4xx or 5xx is an `error`.
//
// This runs once per request, on the hot path: the hook is a callback (no promise), and the
// log entry is built only when its level is enabled.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Metrics } from '../../runtime/metrics.ts';
import { HttpErrorCode } from './http-errors.ts';

/** Pino's level values, to tell whether a line would be written before building it. */
const LEVEL_VALUES: ReadonlyMap<string, number> = new Map([
  ['trace', 10],
  ['debug', 20],
  ['info', 30],
  ['warn', 40],
  ['error', 50],
  ['fatal', 60],
]);

/** Whether `logger` writes lines at `level`; an unknown level (silent, custom) is honoured by pino itself. */
function writesAt(logger: { level: string }, level: number): boolean {
  const threshold = LEVEL_VALUES.get(logger.level);
  return threshold === undefined ? logger.level !== 'silent' : level >= threshold;
}

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
    app.addHook('onResponse', (request, reply, done) => {
      this.record(request, reply);
      done();
    });
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
    const level = status >= 500 ? 50 : status === 401 ? 40 : config?.hot === true ? 20 : 30;
    if (!writesAt(request.log, level)) return;
    const entry = {
      method: request.method,
      url: request.url,
      status,
      ms: Math.round(elapsedMs * 1000) / 1000,
      ...(code === undefined ? {} : { code }),
    };
    if (level === 50) request.log.error(entry, 'request failed');
    else if (level === 40) request.log.warn(entry, 'request refused');
    else if (level === 20) request.log.debug(entry, 'request');
    else request.log.info(entry, 'request');
  }
}
