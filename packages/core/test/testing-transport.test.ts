import { describe, expect, it } from 'vitest';
import { createNode, Identity, InvalidArgumentError, seededRandom, TimeoutError, type Address } from '../src/index.js';
import { MemoryNetwork, VirtualClock, memoryTransport, type Nat, type NatType } from '../src/testing/index.js';

function world(seed = 1) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, random: seededRandom(seed), defaultLink: { latencyMs: 10 } });
  let count = 0;
  const started: { stop(): Promise<void> }[] = [];
  const node = async (options: { nat?: Nat; host?: string } = {}) => {
    const n = createNode({ identity: Identity.fromString(`n${count}`), clock, random: count++, layers: [memoryTransport(network, options)] });
    const inbox: { data: number[]; from: Address }[] = [];
    n.handle('datagram', (data, from) => void inbox.push({ data: [...data], from }));
    await n.start();
    started.push(n);
    return Object.assign(n, { inbox });
  };
  const stopAll = async () => {
    for (const n of started) await n.stop();
  };
  return { clock, network, node, stopAll };
}

/** Settles a promise into a value or its error, so virtual time can run meanwhile. */
const outcome = <T>(promise: Promise<T>): Promise<T | unknown> => promise.then((value) => value, (error: unknown) => error);

describe('memoryTransport', () => {
  it('checks its options and destination addresses like the UDP transport', async () => {
    const network = new MemoryNetwork({ clock: new VirtualClock() });
    expect(() => memoryTransport(network, { port: 70_000 })).toThrow(InvalidArgumentError);
    expect(() => memoryTransport(network, { maxDatagramSize: -1 })).toThrow(InvalidArgumentError);
    expect(() => memoryTransport(network, { pingTimeoutMs: 0 })).toThrow(InvalidArgumentError);
    expect(() => memoryTransport(network, { host: 'localhost' })).toThrow(InvalidArgumentError);
    const { node, stopAll } = world();
    const a = await node();
    for (const to of [{ host: 'not-an-ip', port: 1 }, { host: '10.0.0.1', port: 0 }, { host: '10.0.0.1', port: 65_536 }]) {
      expect(() => a.sendDatagram(to, Uint8Array.of(1))).toThrow(InvalidArgumentError);
      await expect(a.sendPing(to)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    // IPv6 has no route on this IPv4 network: dropped and counted, as UDP does for the other family.
    a.sendDatagram({ host: '::1', port: 1 }, Uint8Array.of(1));
    expect(a.counters()['memory']!['dropped.address-family']).toBe(1);
    expect(a.maxDatagramSize()).toBe(1400);
    await stopAll();
  });

  it('binds the requested host and port, and the same address again after a restart', async () => {
    const { node, network, stopAll } = world();
    const host = network.allocateHost();
    const a = await node({ host });
    const first = a.localAddress();
    expect(first.host).toBe(host);
    await a.stop();
    expect(network.size).toBe(0);
    await a.start();
    expect(a.localAddress()).toEqual(first);
    await stopAll();
  });

  it('ping round trip equals twice the link latency, on the virtual clock', async () => {
    const { node, clock, stopAll } = world();
    const a = await node();
    const b = await node();
    const rtt = outcome(a.sendPing(b.localAddress()));
    await clock.advance(50);
    expect(await rtt).toBe(20);
    expect(b.counters()['memory']!['pings-in']).toBe(1);
    await stopAll();
    expect(clock.pendingTimers).toBe(0);
  });

  it('a node behind a NAT reaches out; the outside reaches it only through its mapping', async () => {
    const { node, network, clock, stopAll } = world();
    const nat = network.createNat({ type: 'port-restricted' });
    const inside = await node({ nat });
    const server = await node();
    expect(nat.isPrivate(inside.localAddress().host)).toBe(true);
    // Unsolicited ping to the private address: not routable, times out.
    const unsolicited = outcome(server.sendPing(inside.localAddress(), { timeoutMs: 500 }));
    await clock.advance(600);
    expect(await unsolicited).toBeInstanceOf(TimeoutError);
    // Inside pings out: the answer comes back through the mapping.
    const out = outcome(inside.sendPing(server.localAddress()));
    await clock.advance(50);
    expect(await out).toBe(20);
    inside.sendDatagram(server.localAddress(), Uint8Array.of(1));
    await clock.advance(20);
    const mapping = server.inbox[0]!.from;
    expect(mapping.host).toBe(nat.publicHost);
    const back = outcome(server.sendPing(mapping));
    await clock.advance(50);
    expect(await back).toBe(20);
    await stopAll();
  });

  /**
   * Two nodes behind NATs learn each other's mapping from a rendezvous server, then both
   * send at once (UDP hole punching). Cone NATs let it work; a symmetric NAT's mapping
   * towards the peer differs from the one the server saw, so it works only when the other
   * side accepts a new port from the same host (full cone, address-restricted).
   */
  async function punch(typeA: NatType, typeB: NatType): Promise<boolean> {
    const { node, network, clock, stopAll } = world();
    const a = await node({ nat: network.createNat({ type: typeA }) });
    const b = await node({ nat: network.createNat({ type: typeB }) });
    const server = await node();
    a.sendDatagram(server.localAddress(), Uint8Array.of(0xa));
    b.sendDatagram(server.localAddress(), Uint8Array.of(0xb));
    await clock.advance(20);
    const seen = new Map(server.inbox.map((m) => [m.data[0], m.from]));
    // Each side probes the address the server saw, and answers any probe that got through
    // at the address it came from.
    for (let round = 0; round < 3; round++) {
      for (const [self, peerKey, mark] of [[a, 0xb, 1], [b, 0xa, 2]] as const) {
        const targets = new Map([seen.get(peerKey)!, ...self.inbox.map((m) => m.from)].map((address) => [`${address.host}:${address.port}`, address]));
        for (const to of targets.values()) self.sendDatagram(to, Uint8Array.of(mark));
      }
      await clock.advance(100);
    }
    const through = a.inbox.some((m) => m.data[0] === 2) && b.inbox.some((m) => m.data[0] === 1);
    await stopAll();
    return through;
  }

  it('hole punching works between cone NATs and fails with symmetric ones', async () => {
    expect(await punch('full-cone', 'full-cone')).toBe(true);
    expect(await punch('address-restricted', 'port-restricted')).toBe(true);
    expect(await punch('port-restricted', 'port-restricted')).toBe(true);
    expect(await punch('symmetric', 'full-cone')).toBe(true);
    expect(await punch('symmetric', 'address-restricted')).toBe(true);
    expect(await punch('symmetric', 'port-restricted')).toBe(false);
    expect(await punch('symmetric', 'symmetric')).toBe(false);
  });

  it('drops and counts what has no receiver', async () => {
    const { clock, network, node, stopAll } = world();
    const lonely = createNode({ identity: Identity.fromString('lonely'), clock, layers: [memoryTransport(network)] });
    await lonely.start();
    const other = await node();
    other.sendDatagram(lonely.localAddress(), Uint8Array.of(1));
    await clock.advance(20);
    expect(lonely.counters()['memory']!['dropped.no-receiver']).toBe(1);
    await lonely.stop();
    await stopAll();
  });
});

describe('memoryTransport receive path fuzz', () => {
  it('survives 100,000 random and mutated frames without throwing, and keeps answering pings', async () => {
    const { clock, network, node, stopAll } = world(3);
    const target = await node();
    const peer = await node();
    const raw = network.bind(network.allocateHost(), 0, { deliver: () => {} });
    const random = seededRandom(99);
    const valid = [
      Uint8Array.of(0x00, 1, 2, 3),
      Uint8Array.of(0x01, 0x01, 0x01, 0x01, 0, 0, 0, 1), // ping
      Uint8Array.of(0x01, 0x01, 0x01, 0x02, 0, 0, 0, 1), // unsolicited pong
    ];
    for (let i = 0; i < 100_000; i++) {
      let bytes: Uint8Array;
      if (i % 2 === 0) {
        bytes = new Uint8Array(random.int(12));
        for (let k = 0; k < bytes.length; k++) bytes[k] = random.int(256);
      } else {
        const base = valid[random.int(valid.length)]!;
        const length = random.int(4) === 0 ? random.int(base.length + 3) : base.length;
        bytes = new Uint8Array(length);
        bytes.set(base.subarray(0, Math.min(length, base.length)));
        for (let m = 1 + random.int(3); m > 0 && length > 0; m--) bytes[random.int(length)] = random.int(256);
      }
      network.send(raw, target.localAddress(), bytes);
      if (i % 5000 === 4999) await clock.advance(20);
    }
    await clock.advance(20);
    const counters = target.counters()['memory']!;
    expect(counters['datagrams-in']).toBe(100_000);
    const dropped = Object.entries(counters).filter(([key]) => key.startsWith('dropped.')).reduce((sum, [, value]) => sum + value, 0);
    expect(dropped).toBeGreaterThan(50_000);
    const rtt = outcome(peer.sendPing(target.localAddress()));
    await clock.advance(50);
    expect(await rtt).toBe(20);
    network.unbind(raw);
    await stopAll();
  });
});

describe('VirtualClock', () => {
  it('runUntil stops as soon as the predicate holds, and carries many timers in order', async () => {
    const clock = new VirtualClock();
    const fired: number[] = [];
    const random = seededRandom(5);
    for (let i = 0; i < 100_000; i++) {
      const at = random.int(10_000);
      clock.setTimeout(() => void fired.push(at), at);
    }
    expect(clock.pendingTimers).toBe(100_000);
    expect(await clock.runUntil(() => fired.length >= 50_000, { maxMs: 20_000, stepMs: 100 })).toBe(true);
    expect(clock.now()).toBeLessThan(6000);
    await clock.advance(10_000);
    expect(fired).toHaveLength(100_000);
    expect(fired.every((at, i) => i === 0 || fired[i - 1]! <= at)).toBe(true);
    expect(clock.pendingTimers).toBe(0);
  });

  it('lets async code waiting on timers progress within one advance', async () => {
    const clock = new VirtualClock();
    const sleep = (ms: number) => new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
    const steps: number[] = [];
    void (async () => {
      for (let i = 0; i < 5; i++) {
        await sleep(10);
        steps.push(clock.now());
      }
    })();
    await clock.advance(50);
    expect(steps).toEqual([10, 20, 30, 40, 50]);
  });
});
