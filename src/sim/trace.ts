// A readable, canonical text form of what happens in a simulation: each input the core
// receives and each effect it returns, one line each, stamped with virtual time. Two runs
// of the same seed must produce byte-identical traces.

import type { Effect, Input } from '../core/node.ts';
import type { ClientReply, ClientRequest, Mutation } from '../core/requests.ts';

function bytesText(bytes: Uint8Array | null): string {
  if (bytes === null) return 'nil';
  let printable = true;
  for (const byte of bytes) if (byte < 0x20 || byte > 0x7e || byte === 0x22) printable = false;
  if (printable) return `"${String.fromCharCode(...bytes)}"`;
  return `0x${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

function mutationText(mutation: Mutation): string {
  switch (mutation.kind) {
    case 'set':
      return `set ${bytesText(mutation.value)} ${mutation.condition} expiry=${JSON.stringify(mutation.expiry)}`;
    case 'delete':
      return 'delete';
    case 'incrBy':
      return `incrBy ${mutation.delta}`;
    case 'append':
      return `append ${bytesText(mutation.suffix)}`;
    case 'expire':
      return `expire ${JSON.stringify(mutation.expiry)} ${mutation.condition}`;
    case 'compareAndSet':
      return `compareAndSet ${
        'version' in mutation.expected
          ? `version=${mutation.expected.version}`
          : `value=${mutation.expected.value === null ? 'absent' : bytesText(mutation.expected.value)}`
      } ${bytesText(mutation.value)}`;
  }
}

export function requestText(request: ClientRequest): string {
  switch (request.op) {
    case 'get':
      return `get ${request.keyspace} ${request.keys.map(bytesText).join(' ')}`;
    case 'write':
      return `write ${request.keyspace} ${request.items
        .map((item) => `${bytesText(item.key)}:${mutationText(item.mutation)}`)
        .join(', ')}`;
    case 'scan':
      return `scan ${request.keyspace} cursor=${bytesText(request.cursor)} count=${request.count}`;
    case 'count':
    case 'flush':
      return `${request.op} ${request.keyspace}`;
    case 'createKeyspace':
      return `createKeyspace ${request.keyspace} ${JSON.stringify(request.spec)}`;
    case 'changeMembership':
      return `changeMembership ${JSON.stringify(request.change)}${request.dryRun ? ' dry-run' : ''}`;
  }
}

export function replyText(reply: ClientReply): string {
  if (!reply.ok) return `error ${reply.error.code} ${reply.error.message}`;
  switch (reply.op) {
    case 'get':
      return `values ${reply.results
        .map((r) => `${bytesText(r.value)}@${r.expiresAtMs}/${bytesText(r.context)}`)
        .join(' ')}`;
    case 'write':
      return `written ${reply.results
        .map(
          (r) =>
            `${r.applied ? 'applied' : 'skipped'} prev=${bytesText(r.previous)} int=${r.integer} len=${r.length}`,
        )
        .join(', ')}`;
    case 'scan':
      return `keys ${reply.keys.map(bytesText).join(' ')} next=${bytesText(reply.cursor)}`;
    case 'count':
      return `count ${reply.count}`;
    case 'flush':
      return `flushed ${reply.removed}`;
    case 'createKeyspace':
      return `created ${JSON.stringify(reply.keyspace)}`;
    case 'changeMembership':
      return `membership ${reply.made ? 'changed' : 'planned'} at epoch ${reply.epoch}`;
  }
}

export function inputText(input: Input): string {
  switch (input.type) {
    case 'request':
      return `${input.nowMs} in request #${input.requestId} ${requestText(input.request)}`;
    case 'tick':
      return `${input.nowMs} in tick`;
    case 'persisted':
      return `${input.nowMs} in persisted batch ${input.batchId}`;
    case 'peer':
      return `${input.nowMs} in peer ${input.from} ${messageText(input.message)}`;
    case 'peer-lost':
      return `${input.nowMs} in peer-lost ${input.peer}`;
  }
}

/** A peer message as text: arrays and byte strings spelled out, in order. */
function messageText(message: unknown): string {
  if (message instanceof Uint8Array) return bytesText(message);
  if (Array.isArray(message)) return `[${message.map(messageText).join(' ')}]`;
  if (typeof message === 'bigint') return `${message}n`;
  if (typeof message === 'object' && message !== null) {
    return `{${Object.entries(message)
      .map(([name, value]) => `${name}:${messageText(value)}`)
      .join(' ')}}`;
  }
  return JSON.stringify(message) ?? 'undefined';
}

export function effectText(nowMs: number, effect: Effect): string {
  if (effect.type === 'reply') {
    return `${nowMs} out reply #${effect.requestId} ${replyText(effect.reply)}`;
  }
  if (effect.type === 'send')
    return `${nowMs} out send ${effect.to} ${messageText(effect.message)}`;
  if (effect.type === 'map') return `${nowMs} out map epoch ${effect.map.epoch}`;
  const writes = effect.writes
    .map((write) => `${bytesText(write.key)}=${bytesText(write.value)}`)
    .join(' ');
  return `${nowMs} out persist batch ${effect.batchId} durable=${effect.durable} ${writes}`;
}
