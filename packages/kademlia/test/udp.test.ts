import { describe, expect, it } from 'vitest';
import { createNode, Identity, sha256, utf8Encode } from '@deccom/core';
import { udp } from '@deccom/udp';
import { kademlia } from '../src/index.js';
import { loopbackNetwork } from './loopback.js';

describe('kademlia over real UDP on 127.0.0.1', () => {
  it('40 nodes join through one node and every node is found', async () => {
    const result = await loopbackNetwork(40, 80);
    expect(result.failures).toEqual([]);
    expect(result.ok).toBe(80);
  }, 60_000);

  it('announces and looks up a topic over real sockets', async () => {
    const seed = createNode({ identity: Identity.fromString('t-0'), layers: [udp({ host: '127.0.0.1' }), kademlia()] });
    const nodes = [seed];
    try {
      await seed.start();
      for (let i = 1; i < 12; i++) {
        const node = createNode({ identity: Identity.fromString(`t-${i}`), layers: [udp({ host: '127.0.0.1' }), kademlia({ bootstrap: [seed.localAddress()] })] });
        nodes.push(node);
        await node.start();
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const topic = sha256(utf8Encode('loopback topic'));
      expect(await nodes[3]!.announce(topic)).toBeGreaterThanOrEqual(5);
      expect(await nodes[7]!.announce(topic)).toBeGreaterThanOrEqual(5);
      const providers = await nodes[10]!.lookupTopic(topic);
      expect(new Set(providers.map((p) => p.id.hex))).toEqual(new Set([nodes[3]!.id.hex, nodes[7]!.id.hex]));
    } finally {
      for (const node of nodes) await node.stop();
    }
  }, 30_000);
});
