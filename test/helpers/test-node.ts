// Starts a real node (runtime, RESP and HTTP servers) on loopback with OS-chosen ports, for
// tests. Storage is in memory unless a data directory is given.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_NODE_CONFIG, type NodeConfig } from '../../src/runtime/config.ts';
import { startNode, type RunningNode } from '../../src/cli/start-node.ts';

export interface TestNode {
  readonly node: RunningNode;
  readonly respPort: number;
  readonly httpUrl: string;
  readonly config: NodeConfig;
  stop(): Promise<void>;
}

export async function startTestNode(overrides: Partial<NodeConfig> = {}): Promise<TestNode> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ringkv-test-'));
  const config: NodeConfig = {
    ...DEFAULT_NODE_CONFIG,
    storage: 'memory',
    dataDir,
    respPort: 0,
    httpPort: 0,
    logLevel: 'silent',
    tickMs: 20,
    ...overrides,
  };
  const node = await startNode(config);
  return {
    node,
    config,
    respPort: node.resp.port,
    httpUrl: `http://127.0.0.1:${node.http.port}`,
    stop: async () => {
      await node.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns true or the deadline passes. */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
