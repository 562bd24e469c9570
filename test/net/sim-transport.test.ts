import { SimNetwork } from '../../src/net/sim-transport.ts';
import { CLUSTER, runTransportCompliance, TEST_LIMITS } from './compliance.ts';

runTransportCompliance('sim', () => {
  const network = new SimNetwork({ delayMs: 1 });
  return {
    create: (nodeId, cluster = CLUSTER) =>
      Promise.resolve(network.transport(nodeId, cluster, TEST_LIMITS)),
    addressOf: (transport) => ({ host: 'sim', port: transport.nodeId.length }),
    reserve: () => Promise.resolve({ host: 'sim', port: 0 }),
    createAt: (nodeId) => Promise.resolve(network.transport(nodeId, CLUSTER, TEST_LIMITS)),
    advance: (ms) => network.advance(ms),
    dispose: () => Promise.resolve(),
  };
});
