// Routes about the node rather than its keys: /health (liveness, open to all), /v1/status,
// /v1/keyspaces and /metrics (Prometheus text exposition format 0.0.4).

import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../runtime/metrics.ts';
import type { NodeApi } from '../../runtime/node-api.ts';
import { checkQueryParameters, type ParsedQuery } from './key-codec.ts';

export const HEALTH_PATH = '/health';
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

interface NoParameters {
  Querystring: ParsedQuery;
}

export function registerStatusRoutes(app: FastifyInstance, node: NodeApi, metrics: Metrics): void {
  app.get<NoParameters>(HEALTH_PATH, { config: { hot: true } }, async (request) => {
    checkQueryParameters(request.query, []);
    return { ok: true };
  });

  app.get<NoParameters>('/v1/status', async (request) => {
    checkQueryParameters(request.query, []);
    return { node: node.status(), keyspaces: node.keyspaces(), limits: node.limits };
  });

  app.get<NoParameters>('/v1/keyspaces', async (request) => {
    checkQueryParameters(request.query, []);
    return { keyspaces: node.keyspaces() };
  });

  app.get<NoParameters>('/metrics', { config: { hot: true } }, async (request, reply) => {
    checkQueryParameters(request.query, []);
    return reply.type(PROMETHEUS_CONTENT_TYPE).send(metrics.render());
  });
}
