// The node's callback interface as promises for route handlers. A failed reply becomes an
// HttpError carrying the node's stable code; a reply of another kind than the request's is
// a bug in the node and fails loudly.

import type { ClientReply, ClientRequest } from '../../core/requests.ts';
import type { NodeApi } from '../../runtime/node-api.ts';
import { HttpError } from './http-errors.ts';

type Answer<Op extends ClientRequest['op']> = Extract<ClientReply, { ok: true; op: Op }>;

export function ask<Request extends ClientRequest>(
  node: NodeApi,
  request: Request,
): Promise<Answer<Request['op']>> {
  return new Promise((resolve, reject) => {
    node.submit(request, (reply) => {
      if (!reply.ok) reject(HttpError.from(reply.error));
      else if (reply.op !== request.op) {
        reject(new Error(`the node answered a ${request.op} request with a ${reply.op} reply`));
      } else resolve(reply as Answer<Request['op']>);
    });
  });
}
