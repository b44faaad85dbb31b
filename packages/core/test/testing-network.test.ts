import { describe, expect, it } from 'vitest';
import { Identity, InvalidArgumentError, seededRandom, type Address } from '../src/index.js';
import { MemoryNetwork, VirtualClock, type NatType, type NetworkEvent } from '../src/testing/index.js';

function endpoint(network: MemoryNetwork, host: string, port = 0, nat?: Parameters<MemoryNetwork['bind']>[3]) {
  const inbox: { data: number[]; from: Address; at: number }[] = [];
  const address = network.bind(host, port, { deliver: (data, from) => void inbox.push({ data: [...data], from, at: network.clock.now() }) }, nat);
  return { address, inbox };
}

describe('VirtualClock', () => {
  it('fires timers in time order, ties in scheduling order, and lets promise continuations run', async () => {
    const clock = new VirtualClock();
    const order: string[] = [];
    clock.setTimeout(() => order.push('b@10'), 10);
    clock.setTimeout(() => order.push('a@5'), 5);
    clock.setTimeout(() => order.push('c@10'), 10);
    const cancelled = clock.setTimeout(() => order.push('never'), 7);
    clock.clearTimeout(cancelled);
    clock.setTimeout(() => void Promise.resolve().then(() => order.push(`continuation@${clock.now()}`)), 6);
    await clock.advance(20);
    expect(order).toEqual(['a@5', 'continuation@6', 'b@10', 'c@10']);
    expect(clock.now()).toBe(20);
    expect(clock.pendingTimers).toBe(0);
    expect(await clock.runUntil(() => false, { maxMs: 100 })).toBe(false);
    expect(clock.now()).toBe(120);
  });
});

describe('MemoryNetwork links', () => {
  it('applies latency, jitter and bandwidth', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, random: seededRandom(1) });
    const a = endpoint(network, network.allocateHost());
    const b = endpoint(network, network.allocateHost());
    network.setLink(a.address.host, b.address.host, { latencyMs: 30, bandwidthBytesPerSecond: 1000 });
    network.send(a.address, b.address, new Uint8Array(100)); // 100 ms on the wire
    network.send(a.address, b.address, new Uint8Array(100)); // queued behind it
    await clock.advance(1000);
    expect(b.inbox.map((m) => m.at)).toEqual([130, 230]);
  });

  it('loses and duplicates at the configured rates, deterministically for a seed', async () => {
    const run = async (seed: number) => {
      const clock = new VirtualClock();
      const network = new MemoryNetwork({ clock, random: seededRandom(seed), defaultLink: { loss: 0.2, duplicate: 0.1, latencyMs: 1, jitterMs: 5 } });
      const a = endpoint(network, network.allocateHost());
      const b = endpoint(network, network.allocateHost());
      for (let i = 0; i < 10_000; i++) network.send(a.address, b.address, Uint8Array.of(i >> 8, i & 0xff));
      await clock.advance(100);
      return { inbox: b.inbox.map((m) => (m.data[0]! << 8) | m.data[1]!), stats: network.stats };
    };
    const first = await run(3);
    expect(first.stats.dropped['loss']).toBeGreaterThan(1850);
    expect(first.stats.dropped['loss']).toBeLessThan(2150);
    expect(first.stats.duplicated).toBeGreaterThan(650);
    expect(first.stats.duplicated).toBeLessThan(950);
    expect(first.inbox.length).toBe(10_000 - first.stats.dropped['loss']! + first.stats.duplicated);
    expect((await run(3)).inbox).toEqual(first.inbox);
    expect((await run(4)).inbox).not.toEqual(first.inbox);
  });

  it('reorders at the configured rate, with a replayable delivery trace', async () => {
    const run = async (seed: number) => {
      const clock = new VirtualClock();
      const network = new MemoryNetwork({ clock, random: seededRandom(seed), defaultLink: { latencyMs: 10, reorder: 0.1, reorderDelayMs: 30 } });
      const trace: NetworkEvent[] = [];
      network.observe((event) => void trace.push(event));
      const a = endpoint(network, network.allocateHost());
      const b = endpoint(network, network.allocateHost());
      // One datagram per virtual millisecond, so a datagram held up to 30 ms is overtaken.
      for (let i = 0; i < 5000; i++) {
        network.send(a.address, b.address, Uint8Array.of(i >> 8, i & 0xff));
        await clock.advance(1);
      }
      await clock.advance(100);
      const order = b.inbox.map((m) => (m.data[0]! << 8) | m.data[1]!);
      // A datagram is "late" when a later-sent one arrived before it.
      let late = 0;
      let highest = -1;
      for (const id of order) {
        if (id < highest) late++;
        highest = Math.max(highest, id);
      }
      return { order, late, trace: trace.map((e) => `${e.at}:${e.kind}:${e.bytes}`), stats: network.stats };
    };
    const first = await run(11);
    expect(first.order).toHaveLength(5000);
    expect(new Set(first.order).size).toBe(5000);
    // 10% are held back by up to 30 ms; nearly all of them (all but those held < 1 ms) are overtaken.
    expect(first.late).toBeGreaterThan(400);
    expect(first.late).toBeLessThan(600);
    expect(first.stats.delivered).toBe(5000);
    const replay = await run(11);
    expect(replay.trace).toEqual(first.trace);
    expect(replay.order).toEqual(first.order);
    expect((await run(12)).order).not.toEqual(first.order);
  });

  it('drops datagrams over the link MTU', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, defaultLink: { mtu: 576 } });
    const a = endpoint(network, network.allocateHost());
    const b = endpoint(network, network.allocateHost());
    network.send(a.address, b.address, new Uint8Array(576));
    network.send(a.address, b.address, new Uint8Array(577));
    await clock.advance(1);
    expect(b.inbox.map((m) => m.data.length)).toEqual([576]);
    expect(network.stats.dropped['mtu']).toBe(1);
  });

  it('sets links in one direction or both, and validates link options', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 1 } });
    const a = endpoint(network, network.allocateHost());
    const b = endpoint(network, network.allocateHost());
    network.setLink(a.address.host, b.address.host, { latencyMs: 100 }, true);
    network.send(a.address, b.address, Uint8Array.of(1));
    network.send(b.address, a.address, Uint8Array.of(2));
    await clock.advance(200);
    expect(b.inbox[0]!.at).toBe(100);
    expect(a.inbox[0]!.at).toBe(1);
    network.setLink(a.address.host, b.address.host, { latencyMs: 7 });
    network.send(b.address, a.address, Uint8Array.of(3));
    await clock.advance(10);
    expect(a.inbox[1]!.at).toBe(207);
    expect(() => network.setLink('10.0.0.1', '10.0.0.2', { loss: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => network.setLink('10.0.0.1', '10.0.0.2', { latencyMs: -1 })).toThrow(InvalidArgumentError);
    expect(() => network.setLink('10.0.0.1', '10.0.0.2', { bandwidthBytesPerSecond: 0 })).toThrow(InvalidArgumentError);
  });

  it('gives unique hosts and ports, and refuses a bound address', () => {
    const network = new MemoryNetwork({ clock: new VirtualClock() });
    const hosts = new Set(Array.from({ length: 70_000 }, () => network.allocateHost()));
    expect(hosts.size).toBe(70_000);
    expect([...hosts].every((host) => /^10\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host))).toBe(true);
    const host = network.allocateHost();
    const first = network.bind(host, 0, { deliver: () => {} });
    const second = network.bind(host, 0, { deliver: () => {} });
    expect(first.port).not.toBe(second.port);
    expect(() => network.bind(host, first.port, { deliver: () => {} })).toThrow(InvalidArgumentError);
    network.unbind(first);
    expect(network.bind(host, first.port, { deliver: () => {} })).toEqual(first);
  });

  it('partitions and heals', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const hosts = [network.allocateHost(), network.allocateHost(), network.allocateHost()];
    const [a, b, c] = hosts.map((h) => endpoint(network, h));
    network.partition([hosts[0]!], [hosts[1]!]);
    network.send(a!.address, b!.address, Uint8Array.of(1));
    network.send(a!.address, c!.address, Uint8Array.of(2));
    await clock.advance(10);
    expect(b!.inbox).toEqual([]);
    expect(c!.inbox).toHaveLength(1);
    expect(network.stats.dropped['partition']).toBe(1);
    network.heal();
    network.send(a!.address, b!.address, Uint8Array.of(3));
    await clock.advance(10);
    expect(b!.inbox).toHaveLength(1);
  });
});

describe('NAT emulation', () => {
  /**
   * Inside sends to `first`; then `first`, a second port on first's host, and an unrelated
   * host try to reach inside's public mapping.
   */
  async function probe(type: NatType) {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const nat = network.createNat({ type });
    const inside = endpoint(network, nat.allocatePrivateHost(), 5000, nat);
    const firstHost = network.allocateHost();
    const first = endpoint(network, firstHost, 1000);
    const samePortElsewhere = endpoint(network, firstHost, 1001);
    const stranger = endpoint(network, network.allocateHost(), 1000);
    const second = endpoint(network, network.allocateHost(), 1000);
    network.send(inside.address, first.address, Uint8Array.of(1));
    network.send(inside.address, second.address, Uint8Array.of(1));
    await clock.advance(5);
    const mappingToFirst = first.inbox[0]!.from;
    const mappingToSecond = second.inbox[0]!.from;
    const reached = async (from: { address: Address }) => {
      const before = inside.inbox.length;
      network.send(from.address, mappingToFirst, Uint8Array.of(9));
      await clock.advance(5);
      return inside.inbox.length > before;
    };
    return {
      nat,
      publicHost: mappingToFirst.host,
      sameMappingForBoth: mappingToFirst.port === mappingToSecond.port,
      fromFirst: await reached(first),
      fromOtherPortSameHost: await reached(samePortElsewhere),
      fromStranger: await reached(stranger),
    };
  }

  it('full cone: one mapping, anyone may send to it', async () => {
    const r = await probe('full-cone');
    expect(r.publicHost).toBe(r.nat.publicHost);
    expect([r.sameMappingForBoth, r.fromFirst, r.fromOtherPortSameHost, r.fromStranger]).toEqual([true, true, true, true]);
  });

  it('address-restricted: hosts we sent to, any port', async () => {
    const r = await probe('address-restricted');
    expect([r.sameMappingForBoth, r.fromFirst, r.fromOtherPortSameHost, r.fromStranger]).toEqual([true, true, true, false]);
  });

  it('port-restricted: only the exact host and port we sent to', async () => {
    const r = await probe('port-restricted');
    expect([r.sameMappingForBoth, r.fromFirst, r.fromOtherPortSameHost, r.fromStranger]).toEqual([true, true, false, false]);
  });

  it('symmetric: a new mapping per destination, answers only from it', async () => {
    const r = await probe('symmetric');
    expect([r.sameMappingForBoth, r.fromFirst, r.fromOtherPortSameHost, r.fromStranger]).toEqual([false, true, false, false]);
  });

  it('drops unsolicited traffic, hairpin, and expired mappings', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const nat = network.createNat({ type: 'full-cone', mappingTimeoutMs: 1000 });
    const inside = endpoint(network, nat.allocatePrivateHost(), 5000, nat);
    const neighbour = endpoint(network, nat.allocatePrivateHost(), 5000, nat);
    const outside = endpoint(network, network.allocateHost(), 1000);
    network.send(outside.address, { host: nat.publicHost, port: 20000 }, Uint8Array.of(1));
    await clock.advance(5);
    expect(network.stats.dropped['nat-filtered']).toBe(1);
    network.send(inside.address, outside.address, Uint8Array.of(1));
    await clock.advance(5);
    const mapping = outside.inbox[0]!.from;
    network.send(neighbour.address, mapping, Uint8Array.of(2));
    expect(network.stats.dropped['hairpin']).toBe(1);
    network.send(inside.address, neighbour.address, Uint8Array.of(3)); // same private network: direct
    await clock.advance(2000);
    expect(neighbour.inbox).toHaveLength(1);
    network.send(outside.address, mapping, Uint8Array.of(4));
    await clock.advance(5);
    expect(inside.inbox).toHaveLength(0);
    expect(network.stats.dropped['nat-filtered']).toBe(2);
  });

  it('hairpins when enabled', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const nat = network.createNat({ type: 'full-cone', hairpin: true });
    const inside = endpoint(network, nat.allocatePrivateHost(), 5000, nat);
    const neighbour = endpoint(network, nat.allocatePrivateHost(), 5000, nat);
    const outside = endpoint(network, network.allocateHost(), 1000);
    network.send(inside.address, outside.address, Uint8Array.of(1));
    await clock.advance(1);
    network.send(neighbour.address, outside.inbox[0]!.from, Uint8Array.of(2));
    await clock.advance(1);
    expect(inside.inbox).toHaveLength(1);
    expect(inside.inbox[0]!.from.host).toBe(nat.publicHost);
  });

  it('never routes to a private host from outside its NAT', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const natA = network.createNat({ type: 'full-cone' });
    const natB = network.createNat({ type: 'full-cone' });
    const a = endpoint(network, natA.allocatePrivateHost(), 5000, natA);
    const b = endpoint(network, natB.allocatePrivateHost(), 5000, natB);
    const outside = endpoint(network, network.allocateHost(), 1000);
    network.send(outside.address, a.address, Uint8Array.of(1));
    network.send(b.address, a.address, Uint8Array.of(2));
    await clock.advance(5);
    expect(a.inbox).toHaveLength(0);
    expect(network.stats.dropped['unroutable']).toBe(2);
    expect(natA.publicHost).not.toBe(natB.publicHost);
    expect(a.address.host).not.toBe(b.address.host);
  });

  it('keeps a mapping alive while used, and reuses the ports of expired mappings', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const nat = network.createNat({ type: 'symmetric', mappingTimeoutMs: 1000 });
    const inside = endpoint(network, nat.allocatePrivateHost(), 5000, nat);
    const peer = endpoint(network, network.allocateHost(), 1000);
    // Refreshed every 600 ms for 3 s: one mapping, still open.
    for (let i = 0; i < 5; i++) {
      network.send(inside.address, peer.address, Uint8Array.of(i));
      await clock.advance(600);
    }
    expect(new Set(peer.inbox.map((m) => m.from.port)).size).toBe(1);
    network.send(peer.address, peer.inbox[0]!.from, Uint8Array.of(9));
    await clock.advance(1);
    expect(inside.inbox).toHaveLength(1);
    // 50,000 short-lived destinations: more than the NAT's 45,536 public ports, so the
    // ports of expired mappings must be reclaimed.
    for (let i = 0; i < 50_000; i++) {
      network.send(inside.address, { host: peer.address.host, port: 2000 + (i % 60_000) }, Uint8Array.of(0));
      if (i % 1000 === 999) await clock.advance(1001);
    }
    expect(nat.mappings).toBeLessThanOrEqual(65_536 - 20_000);
  });
});

describe('scale', () => {
  it('carries 10,000 nodes exchanging datagrams in one process', async () => {
    const { createNode } = await import('../src/index.js');
    const { memoryTransport } = await import('../src/testing/index.js');
    const clock = new VirtualClock(0, 1);
    const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 50, jitterMs: 10 } });
    // String identities: the test measures the simulator, not Ed25519 key generation.
    const nodes = Array.from({ length: 10_000 }, (_, i) => createNode({ identity: Identity.fromString(`node-${i}`), clock, random: i, layers: [memoryTransport(network)] }));
    let received = 0;
    for (const node of nodes) {
      await node.start();
      node.handle('datagram', () => void received++);
    }
    nodes.forEach((node, i) => {
      for (let k = 1; k <= 3; k++) node.sendDatagram(nodes[(i + k * 997) % nodes.length]!.localAddress(), Uint8Array.of(k));
    });
    await clock.advance(200);
    expect(received).toBe(30_000);
    expect(network.size).toBe(10_000);
    for (const node of nodes) await node.stop();
    expect(network.size).toBe(0);
  }, 60_000);
});
