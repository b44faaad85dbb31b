import { describe, expect, it } from 'vitest';
import { kademlia } from '@deccom/kademlia';
import { gossip } from '@deccom/gossip';
import { biggossip } from '@deccom/biggossip';
import type { Address } from '@deccom/core';
import { discoveryScenario } from '../src/discovery-scenario.js';

// The demo's discovery line, with each protocol: the rest of the scenario is unchanged.
const variants = {
  kademlia: (bootstrap: Address[]) => kademlia({ bootstrap }),
  gossip: (bootstrap: Address[]) => gossip({ bootstrap }),
  biggossip: (bootstrap: Address[]) => biggossip({ bootstrap }),
};

describe('the demo discovery scenario over real UDP on loopback', () => {
  for (const [name, discovery] of Object.entries(variants)) {
    it(`runs unchanged with ${name}`, async () => {
      const lines: string[] = [];
      const result = await discoveryScenario(discovery, (line) => void lines.push(line));
      expect(result.received).toBe('hello node 7, I found you by id');
      expect(Math.min(...result.peersKnown)).toBeGreaterThan(0);
      expect(result.first).toContain(`L2["${name}`);
      expect(lines.length).toBe(10);
    }, 30_000);
  }
});
