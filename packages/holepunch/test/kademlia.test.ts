import { describe, expect, it } from 'vitest';
import { createNode, Identity, utf8Decode, utf8Encode, type Address, type NodeId } from '@deccom/core';
import { MemoryNetwork, memoryTransport, VirtualClock, type NatType as MemoryNatType } from '@deccom/core/testing';
import { kademlia } from '@deccom/kademlia';
import { holepunch, type ConnectOutcome } from '../src/index.js';

describe('holepunch under kademlia (heardFrom from discovery)', () => {
  it('nodes behind every kind of NAT find each other and exchange datagrams, punched or relayed', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 15, jitterMs: 5 } });
    const bootstrapNode = createNode({ identity: Identity.fromString('bootstrap'), clock, random: 1, layers: [memoryTransport(network), holepunch(), kademlia()] });
    await bootstrapNode.start();
    const bootstrap = [bootstrapNode.localAddress()];
    const types: (MemoryNatType | 'none')[] = ['none', 'full-cone', 'address-restricted', 'port-restricted', 'symmetric', 'port-restricted', 'symmetric', 'full-cone'];
    const outcomes: ConnectOutcome[] = [];
    const make = (i: number, type: MemoryNatType | 'none') => {
      const nat = type === 'none' ? undefined : network.createNat({ type });
      return createNode({
        identity: Identity.fromString(`node-${i}`),
        clock,
        random: i + 10,
        layers: [memoryTransport(network, nat ? { nat } : {}), holepunch(), kademlia({ bootstrap })],
      });
    };
    const nodes: ReturnType<typeof make>[] = [];
    for (const [i, type] of types.entries()) {
      const node = make(i, type);
      node.on('punch-outcome', (o) => outcomes.push(o));
      await node.start();
      nodes.push(node);
    }
    await clock.advance(10_000);
    const received = new Map<string, Set<string>>();
    for (const node of nodes) {
      received.set(node.id.hex, new Set());
      node.handle('datagram', (data) => received.get(node.id.hex)!.add(utf8Decode(data)));
    }
    const find = async (node: ReturnType<typeof make>, id: NodeId): Promise<Address> => {
      let result: Address | undefined;
      let error: unknown;
      node.findPeer(id).then(
        (peer) => (result = peer.address),
        (e: unknown) => (error = e),
      );
      await clock.runUntil(() => result !== undefined || error !== undefined, { maxMs: 30_000, stepMs: 10 });
      if (!result) throw new Error(`lookup failed: ${String(error)}`);
      return result;
    };
    for (const [i, from] of nodes.entries()) {
      for (const [j, to] of nodes.entries()) {
        if (i === j) continue;
        const address = await find(from, to.id);
        from.sendDatagram(address, utf8Encode(`${i}->${j}`));
      }
    }
    await clock.advance(15_000);
    const missing: string[] = [];
    for (const [j, to] of nodes.entries()) for (const [i] of nodes.entries()) if (i !== j && !received.get(to.id.hex)!.has(`${i}->${j}`)) missing.push(`${i}(${types[i]})->${j}(${types[j]})`);
    expect(missing).toEqual([]);
    expect(outcomes.filter((o) => o.mechanism === 'failed')).toEqual([]);
    expect(outcomes.some((o) => o.mechanism === 'relayed')).toBe(true);
    expect(outcomes.some((o) => o.mechanism === 'punched-udp')).toBe(true);
    for (const node of [...nodes, bootstrapNode]) await node.stop();
    await clock.advance(1_000);
    expect(clock.pendingTimers).toBe(0);
  });
});
