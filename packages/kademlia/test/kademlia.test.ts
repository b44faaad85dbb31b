import { describe, expect, it } from 'vitest';
import { createNode, Identity, NodeId, NotFoundError, seededRandom, sha256, StateError, utf8Encode, defineLayer } from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport } from '@deccom/core/testing';
import { kademlia } from '../src/index.js';
import { buildNetwork, runLookups, stopAll } from '../src/simulation.js';

describe('kademlia on the in-memory network', () => {
  it('100 nodes joined through one seed: every lookup succeeds in few rounds', async () => {
    const sim = await buildNetwork(100);
    const sizes = sim.nodes.map((n) => n.getPeers().length);
    expect(Math.min(...sizes)).toBeGreaterThan(10);
    const results = await runLookups(sim, 200);
    expect(results.filter((r) => r.ok).length).toBe(200);
    const rounds = results.flatMap((r) => (r.stats ? [r.stats.rounds] : []));
    expect(Math.max(...rounds)).toBeLessThanOrEqual(5);
    await stopAll(sim);
    // Only datagrams still in flight on the simulated wire remain; no node keeps a timer.
    await sim.clock.advance(1000);
    expect(sim.clock.pendingTimers).toBe(0);
  }, 60_000);

  it('finds peers after 25% of the network left', async () => {
    const sim = await buildNetwork(200, { seed: 2 });
    const random = seededRandom(3);
    for (let i = 0; i < 50; i++) {
      const index = 1 + random.int(sim.alive.length - 1);
      const [gone] = sim.alive.splice(index, 1);
      await gone!.stop();
    }
    const results = await runLookups(sim, 200, 9);
    expect(results.filter((r) => r.ok).length / results.length).toBeGreaterThanOrEqual(0.99);
    await stopAll(sim);
  }, 60_000);

  it('rejects a lookup for an absent id with NotFoundError, and a stopped node with StateError', async () => {
    const sim = await buildNetwork(30);
    const missing = NodeId.ofString('nobody');
    const lookup = sim.nodes[5]!.findPeer(missing);
    const settled = lookup.then(
      () => undefined,
      (e: unknown) => e,
    );
    await sim.clock.advance(15_000);
    expect(await settled).toBeInstanceOf(NotFoundError);
    await stopAll(sim);
    await expect(sim.nodes[5]!.findPeer(missing)).rejects.toBeInstanceOf(StateError);
  }, 30_000);

  it('shares one search between concurrent lookups of one id, and aborts with the signal', async () => {
    const sim = await buildNetwork(60);
    const from = sim.nodes[7]!;
    const target = sim.nodes.find((n) => !from.getPeer(n.id) && n !== from)!;
    const before = sim.lookups.length;
    const both = Promise.all([from.findPeer(target.id), from.findPeer(target.id)]);
    await sim.clock.advance(5000);
    const [a, b] = await both;
    expect(a.id.equals(target.id) && b.id.equals(target.id)).toBe(true);
    expect(sim.lookups.slice(before).filter((s) => s.target === target.id.hex)).toHaveLength(1);
    const controller = new AbortController();
    const aborted = sim.nodes[9]!.findPeer(NodeId.ofString('x'), { signal: controller.signal });
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' });
    await stopAll(sim);
  }, 30_000);

  it('announces topics and finds the providers', async () => {
    const sim = await buildNetwork(80);
    const topic = sha256(utf8Encode('chat room 1'));
    const providers = [sim.nodes[3]!, sim.nodes[40]!, sim.nodes[77]!];
    const stored = Promise.all(providers.map((p) => p.announce(topic)));
    await sim.clock.advance(5000);
    for (const count of await stored) expect(count).toBeGreaterThan(5);
    const found = sim.nodes[20]!.lookupTopic(topic);
    await sim.clock.advance(5000);
    const ids = new Set((await found).map((p) => p.id.hex));
    for (const p of providers) expect(ids.has(p.id.hex)).toBe(true);
    await stopAll(sim);
  }, 30_000);

  it('asks the approval hook before a peer joins, and reports joins as events', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 10 } });
    const gate = defineLayer({
      type: 'gate',
      takes: ['approve'],
      create: () => ({ takes: { approve: async (peer) => peer.identity.toString() !== 'mallory' } }),
    });
    const seed = createNode({ clock, identity: Identity.fromString('seed'), layers: [memoryTransport(network), kademlia(), gate] });
    await seed.start();
    const joined: string[] = [];
    seed.on('peer-connect', (peer) => void joined.push(peer.identity.toString()));
    const others = ['alice', 'mallory', 'bob'].map((name) =>
      createNode({ clock, identity: Identity.fromString(name), layers: [memoryTransport(network), kademlia({ bootstrap: [seed.localAddress()] })] }),
    );
    for (const o of others) await o.start();
    await clock.advance(3000);
    expect(joined.sort()).toEqual(['alice', 'bob']);
    expect(seed.getPeers().map((p) => p.identity.toString()).sort()).toEqual(['alice', 'bob']);
    expect(seed.counters()['kademlia']!['rejected-peers']).toBeGreaterThanOrEqual(1);
    for (const n of [seed, ...others]) await n.stop();
  });

  it('passes application datagrams through, framed apart from its own messages', async () => {
    const sim = await buildNetwork(3, { link: { latencyMs: 5 } });
    const [a, b] = sim.nodes as [typeof sim.nodes[0], typeof sim.nodes[0]];
    const got: number[][] = [];
    b.handle('datagram', (data) => void got.push([...data]));
    // Bytes that look exactly like a Kademlia control message are still application data.
    a.sendDatagram(b.localAddress(), Uint8Array.of(0x01, 0x08, 0x01, 0x03, 0, 0));
    await sim.clock.advance(100);
    expect(got).toEqual([[0x01, 0x08, 0x01, 0x03, 0, 0]]);
    expect(b.maxDatagramSize()).toBe(a.maxDatagramSize());
    await stopAll(sim);
  });
});
