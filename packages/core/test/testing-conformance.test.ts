import { describe, it } from 'vitest';
import { createNode, seededRandom } from '../src/index.js';
import { MemoryNetwork, VirtualClock, memoryTransport, transportConformanceCases, type TransportHarness } from '../src/testing/index.js';

async function memoryHarness(): Promise<TransportHarness> {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, random: seededRandom(7), defaultLink: { latencyMs: 5, jitterMs: 2 } });
  const rawHost = network.allocateHost();
  const raw = network.bind(rawHost, 0, { deliver: () => {} });
  return {
    createNode: (name) => createNode({ clock, random: name, layers: [memoryTransport(network)] }),
    injectRaw: (to, bytes) => network.send(raw, to, bytes),
    silentAddress: () => ({ host: network.allocateHost(), port: 9 }),
    settle: (ms) => clock.advance(ms),
    waitFor: (predicate, maxMs) => clock.runUntil(predicate, { maxMs, stepMs: 5 }),
    cleanup: async () => network.unbind(raw),
  };
}

describe('transport conformance: memoryTransport', () => {
  for (const c of transportConformanceCases(memoryHarness)) it(c.name, c.run);
});
