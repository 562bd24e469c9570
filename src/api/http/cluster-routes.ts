// Cluster routes: what the cluster looks like from this node, the ring document clients
// route with, keyspace creation, membership changes, and fault injection. Keyspace
// creation, membership changes and fault injection are admin routes (route config `admin: true`): with an admin token configured
// they need `Authorization: Bearer <admin token>` (server.ts checks it).

import type { FastifyInstance } from 'fastify';
import { ErrorCode } from '../../core/errors.ts';
import { formatPlan } from '../../core/cluster/membership.ts';
import type { KeyspaceProperties, MembershipRequest } from '../../core/requests.ts';
import type { FaultSettings } from '../../runtime/faults.ts';
import type { NodeApi } from '../../runtime/node-api.ts';
import { HttpError, HttpErrorCode } from './http-errors.ts';
import { checkQueryParameters, type ParsedQuery } from './key-codec.ts';
import { ask } from './node-request.ts';

interface NoParameters {
  Querystring: ParsedQuery;
}

const KEYSPACE_FIELDS = ['name', 'n', 'r', 'w', 'consistency', 'conflicts', 'durability'];
const FAULT_FIELDS = ['failed', 'delayMs', 'lossRate', 'cutPeers'];
const HANDOFF_FIELDS = ['bytesPerSecond', 'paused'];
const MEMBERSHIP_FIELDS = ['kind', 'id', 'by', 'dryRun'];
const MEMBERSHIP_KINDS = ['join', 'leave', 'remove', 'replace', 'abort'];

/** The membership change a request body names; anything else is a clear 400. */
function membershipRequestOf(body: Record<string, unknown>): MembershipRequest {
  const { kind, id, by } = body;
  if (kind === undefined) {
    throw new HttpError(
      ErrorCode.INVALID_ARGUMENT,
      `kind is required: one of ${MEMBERSHIP_KINDS.join(', ')}`,
    );
  }
  if (typeof kind !== 'string' || !MEMBERSHIP_KINDS.includes(kind)) {
    throw new HttpError(
      ErrorCode.INVALID_ARGUMENT,
      `unknown kind ${JSON.stringify(kind)}: one of ${MEMBERSHIP_KINDS.join(', ')}`,
    );
  }
  if (kind === 'abort') {
    if (id !== undefined || by !== undefined) {
      throw new HttpError(ErrorCode.INVALID_ARGUMENT, 'abort takes no id and no by');
    }
    return { kind: 'abort' };
  }
  if (id === undefined) {
    throw new HttpError(ErrorCode.INVALID_ARGUMENT, `id is required: the member to ${kind}`);
  }
  if (typeof id !== 'string' || id === '') {
    throw new HttpError(ErrorCode.INVALID_ARGUMENT, 'id must be a node id: a non-empty string');
  }
  if (kind === 'replace') {
    if (by === undefined) {
      throw new HttpError(ErrorCode.INVALID_ARGUMENT, 'by is required: the standby that replaces');
    }
    if (typeof by !== 'string' || by === '') {
      throw new HttpError(ErrorCode.INVALID_ARGUMENT, 'by must be a node id: a non-empty string');
    }
    return { kind, id, by };
  }
  if (by !== undefined) {
    throw new HttpError(
      ErrorCode.INVALID_ARGUMENT,
      `${kind} takes no by: only a replace names the standby that takes over`,
    );
  }
  return { kind: kind as 'join' | 'leave' | 'remove', id };
}
const EVENTUAL_ONLY_FIELDS = ['r', 'w', 'conflicts', 'durability'] as const;

/** The JSON object in a request body; anything else is a clear 400. */
function jsonBody(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HttpError(HttpErrorCode.BAD_REQUEST, 'the body must be a JSON object');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new HttpError(HttpErrorCode.BAD_REQUEST, 'the body must be a JSON object');
  }
  for (const field of Object.keys(parsed)) {
    if (!allowed.includes(field)) {
      throw new HttpError(
        HttpErrorCode.BAD_REQUEST,
        `unknown field '${field}' (known: ${allowed.join(', ')})`,
      );
    }
  }
  return parsed as Record<string, unknown>;
}

export function registerClusterRoutes(app: FastifyInstance, node: NodeApi): void {
  app.get<NoParameters>('/v1/cluster', async (request) => {
    checkQueryParameters(request.query, []);
    return { node: node.status().nodeId, ...node.clusterStatus() };
  });

  app.get<NoParameters>('/v1/cluster/ring', async (request) => {
    checkQueryParameters(request.query, []);
    const map = node.clusterMap();
    if (map === null) {
      throw new HttpError(ErrorCode.UNAVAILABLE, 'the cluster is forming: no ring yet');
    }
    const status = node.clusterStatus();
    const liveness = new Map(status.members.map((member) => [member.id, member.liveness]));
    // A single node started without cluster options does not know its own addresses: it
    // is reached where this request reached it.
    const socket = request.socket;
    const here =
      socket.localAddress === undefined
        ? ''
        : `${socket.localFamily === 'IPv6' ? `[${socket.localAddress}]` : socket.localAddress}:${socket.localPort}`;
    return {
      clusterId: map.clusterId,
      epoch: map.epoch,
      partitionCount: map.partitionCount,
      owners: map.owners,
      nodes: map.members.map((member) => ({
        id: member.id,
        http: member.http === '' ? here : member.http,
        resp: member.resp,
        liveness: liveness.get(member.id) ?? 'alive',
      })),
      keyspaces: node.keyspaces(),
    };
  });

  app.post<NoParameters>('/v1/keyspaces', { config: { admin: true } }, async (request, reply) => {
    checkQueryParameters(request.query, []);
    const body = jsonBody(request.body, KEYSPACE_FIELDS);
    if (typeof body.name !== 'string') {
      throw new HttpError(ErrorCode.INVALID_ARGUMENT, 'name is required: a keyspace name');
    }
    const consistency = (body.consistency ?? 'eventual') as KeyspaceProperties['consistency'];
    const n = (body.n ?? 3) as number | 'all';
    let r = (body.r ?? 2) as number;
    let w = (body.w ?? 2) as number;
    if (consistency !== 'eventual') {
      // Linearizable keyspaces need a majority of n for every operation, and keep one value
      // per key, durably: the eventual options would promise what they cannot keep.
      const given = EVENTUAL_ONLY_FIELDS.filter((field) => body[field] !== undefined);
      if (given.length > 0) {
        throw new HttpError(
          ErrorCode.INVALID_ARGUMENT,
          `${given.join(', ')} ${given.length === 1 ? 'is an option' : 'are options'} of eventual keyspaces; a ${consistency} keyspace takes only n`,
        );
      }
      if (typeof n === 'number') r = w = Math.floor(n / 2) + 1;
    }
    const spec: KeyspaceProperties = {
      n,
      r,
      w,
      consistency,
      conflicts: (body.conflicts ?? 'lww') as KeyspaceProperties['conflicts'],
      durability: (body.durability ?? 'sync') as KeyspaceProperties['durability'],
    };
    const answer = await ask(node, { op: 'createKeyspace', keyspace: body.name, spec });
    return reply.status(201).send({ keyspace: answer.keyspace });
  });

  app.post<NoParameters>('/v1/cluster/membership', { config: { admin: true } }, async (request) => {
    checkQueryParameters(request.query, []);
    const body = jsonBody(request.body, MEMBERSHIP_FIELDS);
    if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean') {
      throw new HttpError(ErrorCode.INVALID_ARGUMENT, 'dryRun must be true or false');
    }
    const answer = await ask(node, {
      op: 'changeMembership',
      keyspace: '',
      change: membershipRequestOf(body),
      dryRun: body.dryRun === true,
    });
    return {
      made: answer.made,
      epoch: answer.epoch,
      plan: answer.plan,
      planText: answer.plan === null ? [] : formatPlan(answer.plan),
    };
  });

  app.post<NoParameters>('/v1/admin/handoff', { config: { admin: true } }, async (request) => {
    checkQueryParameters(request.query, []);
    const body = jsonBody(request.body, HANDOFF_FIELDS);
    const { bytesPerSecond, paused } = body;
    if (
      bytesPerSecond !== undefined &&
      !(
        typeof bytesPerSecond === 'number' &&
        Number.isFinite(bytesPerSecond) &&
        bytesPerSecond >= 0
      )
    ) {
      throw new HttpError(
        ErrorCode.INVALID_ARGUMENT,
        'bytesPerSecond must be a number of bytes per second, at least 0 (0: no limit)',
      );
    }
    if (paused !== undefined && typeof paused !== 'boolean') {
      throw new HttpError(ErrorCode.INVALID_ARGUMENT, 'paused must be true or false');
    }
    return {
      handoff: node.setHandoff({
        ...(bytesPerSecond === undefined ? {} : { bytesPerSecond }),
        ...(paused === undefined ? {} : { paused }),
      }),
    };
  });

  app.get<NoParameters>('/v1/admin/faults', { config: { admin: true } }, async (request) => {
    checkQueryParameters(request.query, []);
    return { faults: node.faultSettings() };
  });

  app.post<NoParameters>('/v1/admin/faults', { config: { admin: true } }, async (request) => {
    checkQueryParameters(request.query, []);
    const body = jsonBody(request.body, FAULT_FIELDS) as Partial<FaultSettings>;
    try {
      return { faults: node.setFaults(body) };
    } catch (error) {
      if (error instanceof RangeError) {
        throw new HttpError(ErrorCode.INVALID_ARGUMENT, error.message);
      }
      throw error;
    }
  });

  app.delete<NoParameters>('/v1/admin/faults', { config: { admin: true } }, async (request) => {
    checkQueryParameters(request.query, []);
    return {
      faults: node.setFaults({ failed: false, delayMs: 0, lossRate: 0, cutPeers: [] }),
    };
  });
}
