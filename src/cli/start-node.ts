// Starts one node: storage and runtime, then the RESP and HTTP servers; stops them in the
// reverse order. Endpoints are printed on stdout in a fixed form that scripts and tests read:
//   ringkv: resp listening on HOST:PORT
//   ringkv: http listening on http://HOST:PORT
// Logs (JSON lines) go to stderr.

import pino, { type Logger } from 'pino';
import { startHttpServer, type HttpServer } from '../api/http/server.ts';
import { startRespServer, type RespServer } from '../api/resp/server.ts';
import type { NodeConfig } from '../runtime/config.ts';
import { Metrics } from '../runtime/metrics.ts';
import { NodeRuntime } from '../runtime/node-runtime.ts';

export interface RunningNode {
  readonly runtime: NodeRuntime;
  readonly resp: RespServer;
  readonly http: HttpServer;
  readonly logger: Logger;
  stop(): Promise<void>;
}

export async function startNode(
  config: NodeConfig,
  onFatal?: (error: Error) => void,
): Promise<RunningNode> {
  const logger = pino(
    {
      level: config.logLevel,
      base: { node: config.nodeId },
      redact: ['req.headers.authorization'],
    },
    pino.destination(2),
  );
  const metrics = new Metrics();
  const runtime = await NodeRuntime.open(config, {
    metrics,
    logger,
    ...(onFatal === undefined ? {} : { onFatal }),
  });
  let resp: RespServer | null = null;
  try {
    resp = await startRespServer({ node: runtime, config, metrics, logger });
    const http = await startHttpServer({ node: runtime, config, metrics, logger });
    const respServer = resp;
    let stopping: Promise<void> | null = null;
    return {
      runtime,
      resp: respServer,
      http,
      logger,
      stop: () => {
        stopping ??= (async () => {
          await Promise.all([respServer.close(), http.close()]);
          await runtime.close();
          logger.info('stopped');
          logger.flush();
        })();
        return stopping;
      },
    };
  } catch (error) {
    await resp?.close();
    await runtime.close();
    throw error;
  }
}
