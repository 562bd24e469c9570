// Two real nodes in this process for the membership tests: node1 founds a cluster alone
// (one voter, every partition), node2 is started with `join` through it and becomes a
// standby. Both take the same admin token; ports are chosen by the OS, except node1's peer
// port, which its own seed list must name (picked free, retried if taken meanwhile).

import { createServer } from 'node:net';
import { startTestNode, waitFor, type TestNode } from '../../helpers/test-node.ts';

export const ADMIN_TOKEN = 'membership-admin-token';
const STANDBY_TIMEOUT_MS = 10_000;
const FOUNDER_ATTEMPTS_MAX = 3;

const FAST_DETECTION = {
  probeIntervalMs: 200,
  probeTimeoutMs: 80,
  suspicionTimeoutMs: 1000,
  tickMs: 20,
} as const;

export interface StandbyCluster {
  readonly founder: TestNode;
  readonly standby: TestNode;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startFounder(): Promise<{ founder: TestNode; peerPort: number }> {
  for (let attempt = 1; ; attempt++) {
    const peerPort = await freePort();
    try {
      const founder = await startTestNode({
        ...FAST_DETECTION,
        nodeId: 'node1',
        peerPort,
        seeds: [`127.0.0.1:${peerPort}`],
        clusterSecret: 'membership-secret',
        adminToken: ADMIN_TOKEN,
      });
      return { founder, peerPort };
    } catch (error) {
      // Another process took the port between the probe and the bind.
      if (attempt >= FOUNDER_ATTEMPTS_MAX) throw error;
    }
  }
}

/** node1 founded alone, node2 its standby; resolves once node1's map lists node2. */
export async function startStandbyCluster(): Promise<StandbyCluster> {
  const { founder, peerPort } = await startFounder();
  let standby: TestNode;
  try {
    standby = await startTestNode({
      ...FAST_DETECTION,
      nodeId: 'node2',
      join: `127.0.0.1:${peerPort}`,
      clusterSecret: 'membership-secret',
      adminToken: ADMIN_TOKEN,
    });
  } catch (error) {
    await founder.stop();
    throw error;
  }
  const close = async (): Promise<void> => {
    await standby.stop();
    await founder.stop();
  };
  try {
    await waitFor(
      () => {
        const seenByFounder = founder.node.runtime.clusterStatus().members;
        const seenByStandby = standby.node.runtime.clusterStatus();
        return (
          seenByFounder.some((member) => member.id === 'node2' && member.role === 'standby') &&
          seenByStandby.state === 'ready'
        );
      },
      STANDBY_TIMEOUT_MS,
      'node2 to be a standby in node1 map, and to hold the map',
    );
  } catch (error) {
    await close();
    throw error;
  }
  return { founder, standby, close };
}
