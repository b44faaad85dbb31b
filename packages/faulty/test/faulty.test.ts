import { describe, expect, it } from 'vitest';
import { createNode, defineLayer, InvalidArgumentError, seededRandom, StateError, type Address } from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport, transportConformanceCases, type TransportHarness } from '@deccom/core/testing';
import { faulty, type FaultyOptions } from '../src/index.js';

const id = (data: Uint8Array): number => (data[0]! << 16) | (data[1]! << 8) | data[2]!;
const payload = (i: number): Uint8Array => Uint8Array.of(i >> 16, (i >> 8) & 0xff, i & 0xff);

/** A sender with `faulty(options)` over the memory network (1 ms links), and a plain receiver. */
async function pair(options: FaultyOptions) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, random: seededRandom(3), defaultLink: { latencyMs: 1 } });
  const sender = createNode({ clock, random: 1, layers: [memoryTransport(network), faulty(options)] });
  const receiver = createNode({ clock, random: 2, layers: [memoryTransport(network)] });
  await sender.start();
  await receiver.start();
  const received: number[] = [];
  const trace: string[] = [];
  receiver.handle('datagram', (data) => {
    received.push(id(data));
    trace.push(`${clock.now().toFixed(3)}:${id(data)}`);
  });
  let next = 0;
  /** Sends `count` numbered datagrams, one every `gapMs` virtual ms, then lets everything land. */
  const send = async (count: number, gapMs = 0) => {
    for (let n = 0; n < count; n++, next++) {
      sender.sendDatagram(receiver.localAddress(), payload(next));
      if (gapMs > 0) await clock.advance(gapMs);
    }
    await clock.advance(1000);
  };
  return { clock, sender, receiver, received, trace, send, stop: async () => (await sender.stop(), await receiver.stop()) };
}

/** Bounds of a binomial count: mean +- 5 standard deviations. */
function binomialBounds(n: number, p: number): [number, number] {
  const sd = Math.sqrt(n * p * (1 - p));
  return [n * p - 5 * sd, n * p + 5 * sd];
}

describe('faulty', () => {
  it('drops and duplicates outgoing datagrams at the configured rates (10,000 datagrams)', async () => {
    const { received, send, sender, stop } = await pair({ seed: 11, loss: 0.1, duplicate: 0.05 });
    await send(10_000);
    const counters = sender.counters()['faulty']!;
    const lost = counters['outgoing.lost']!;
    const duplicated = counters['outgoing.duplicated']!;
    const [lostLow, lostHigh] = binomialBounds(10_000, 0.1);
    expect(lost).toBeGreaterThan(lostLow);
    expect(lost).toBeLessThan(lostHigh);
    const [dupLow, dupHigh] = binomialBounds(10_000 - lost, 0.05);
    expect(duplicated).toBeGreaterThan(dupLow);
    expect(duplicated).toBeLessThan(dupHigh);
    // What arrived is exactly what the counters say: every survivor once, duplicates twice.
    expect(received.length).toBe(10_000 - lost + duplicated);
    const seen = new Map<number, number>();
    for (const i of received) seen.set(i, (seen.get(i) ?? 0) + 1);
    expect(seen.size).toBe(10_000 - lost);
    expect([...seen.values()].filter((n) => n === 2)).toHaveLength(duplicated);
    await stop();
  });

  it('applies incoming faults to what arrives, at the configured rates', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const a = createNode({ clock, layers: [memoryTransport(network)] });
    const b = createNode({ clock, layers: [memoryTransport(network), faulty({ seed: 'in', incoming: { loss: 0.2, duplicate: 0.1 } })] });
    await a.start();
    await b.start();
    let arrived = 0;
    b.handle('datagram', () => void arrived++);
    for (let i = 0; i < 10_000; i++) a.sendDatagram(b.localAddress(), payload(i));
    await clock.advance(10);
    const counters = b.counters()['faulty']!;
    const [lostLow, lostHigh] = binomialBounds(10_000, 0.2);
    expect(counters['incoming.lost']).toBeGreaterThan(lostLow);
    expect(counters['incoming.lost']).toBeLessThan(lostHigh);
    const [dupLow, dupHigh] = binomialBounds(10_000 - counters['incoming.lost']!, 0.1);
    expect(counters['incoming.duplicated']).toBeGreaterThan(dupLow);
    expect(counters['incoming.duplicated']).toBeLessThan(dupHigh);
    expect(arrived).toBe(10_000 - counters['incoming.lost']! + counters['incoming.duplicated']!);
    expect(counters['outgoing.lost'] ?? 0).toBe(0);
    await a.stop();
    await b.stop();
  });

  it('reorders: a held datagram arrives right after the next one overtook it', async () => {
    const { received, send, sender, stop } = await pair({ seed: 5, reorder: 0.2 });
    await send(1000, 0.5);
    expect(received).toHaveLength(1000);
    expect([...received].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    const reordered = sender.counters()['faulty']!['outgoing.reordered']!;
    const [low, high] = binomialBounds(1000, 0.2);
    expect(reordered).toBeGreaterThan(low);
    expect(reordered).toBeLessThan(high);
    // Each held datagram is released right after one later datagram passed it; a run of
    // held datagrams comes out together, in order, after the next one let through.
    let overtaken = 0;
    let highest = -1;
    for (const i of received) {
      if (i < highest) overtaken++;
      highest = Math.max(highest, i);
    }
    expect(overtaken).toBe(reordered);
    await stop();
  });

  it('lets later traffic overtake by reorderDistance, and releases a held datagram after reorderDelayMs without traffic', async () => {
    const { received, trace, sender, receiver, clock, stop } = await pair({ seed: 1, reorder: 1, reorderDistance: 3, reorderDelayMs: 50 });
    // reorder = 1: every datagram is held; each waits for 3 later ones or 50 ms.
    sender.sendDatagram(receiver.localAddress(), payload(0));
    await clock.advance(49);
    expect(received).toEqual([]);
    await clock.advance(2);
    expect(trace).toEqual(['51.000:0']); // 50 ms held + 1 ms link
    await stop();
  });

  it('adds the configured delay and jitter, exactly, on the virtual clock', async () => {
    const { trace, sender, receiver, clock, stop } = await pair({ seed: 8, delayMs: 40 });
    sender.sendDatagram(receiver.localAddress(), payload(1));
    await clock.advance(40.5);
    expect(trace).toEqual([]);
    await clock.advance(1);
    expect(trace).toEqual(['41.000:1']); // 40 ms delay + 1 ms link
    await stop();

    const jittered = await pair({ seed: 8, delayMs: 10, jitterMs: 20 });
    for (let i = 0; i < 500; i++) jittered.sender.sendDatagram(jittered.receiver.localAddress(), payload(i));
    await jittered.clock.advance(100);
    const times = jittered.trace.map((t) => Number(t.split(':')[0]));
    expect(times).toHaveLength(500);
    expect(Math.min(...times)).toBeGreaterThanOrEqual(11);
    expect(Math.max(...times)).toBeLessThan(31);
    // Uniform jitter: the mean sits near the middle of [11, 31).
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    expect(mean).toBeGreaterThan(20);
    expect(mean).toBeLessThan(22);
    expect(jittered.sender.counters()['faulty']!['outgoing.delayed']).toBe(500);
    await jittered.stop();
  });

  it('replays the identical trace (what arrives, and when) for the same seed', async () => {
    const run = async (seed: number) => {
      const { trace, send, stop } = await pair({ seed, loss: 0.3, duplicate: 0.1, reorder: 0.1, jitterMs: 3 });
      await send(2000, 0.25);
      await stop();
      return trace;
    };
    const first = await run(99);
    expect(first.length).toBeGreaterThan(1000);
    expect(await run(99)).toEqual(first);
    expect(await run(100)).not.toEqual(first);
  });

  it('keeps outgoing faults independent of received traffic when seeded', async () => {
    const run = async (withIncoming: boolean) => {
      const clock = new VirtualClock();
      const network = new MemoryNetwork({ clock });
      const a = createNode({ clock, layers: [memoryTransport(network), faulty({ seed: 4, outgoing: { loss: 0.5 }, incoming: { loss: 0.5 } })] });
      const b = createNode({ clock, layers: [memoryTransport(network)] });
      await a.start();
      await b.start();
      const got: number[] = [];
      b.handle('datagram', (data) => void got.push(id(data)));
      a.handle('datagram', () => undefined);
      for (let i = 0; i < 200; i++) {
        a.sendDatagram(b.localAddress(), payload(i));
        if (withIncoming && i % 3 === 0) b.sendDatagram(a.localAddress(), payload(i));
        await clock.advance(1);
      }
      await clock.advance(10);
      await a.stop();
      await b.stop();
      return got;
    };
    expect(await run(true)).toEqual(await run(false));
  });

  it('is a pure pass-through with no faults: no bytes added, no timers, no counters, same tick', async () => {
    const { received, send, sender, receiver, clock, stop } = await pair({});
    expect(sender.maxDatagramSize()).toBe(1400); // the memory transport's own limit, unchanged
    sender.sendDatagram(receiver.localAddress(), payload(0));
    expect(clock.pendingTimers).toBe(1); // only the network's delivery
    await clock.advance(1);
    expect(received).toEqual([0]);
    await send(500);
    expect(received).toEqual([0, ...Array.from({ length: 500 }, (_, i) => i)]);
    expect(sender.counters()['faulty']).toEqual({});
    expect(receiver.counters()['memory']!['bytes-in']).toBe(501 * 4); // 3 bytes + the transport's frame byte
    await stop();
  });

  it('copies what it holds back, so the sender may reuse its buffer', async () => {
    const { received, sender, receiver, clock, stop } = await pair({ seed: 2, delayMs: 5 });
    const buffer = payload(7);
    sender.sendDatagram(receiver.localAddress(), buffer);
    buffer.fill(0);
    await clock.advance(10);
    expect(received).toEqual([7]);
    await stop();
  });

  it('raises the transport errors at once even when faults would delay the datagram', async () => {
    const { sender, receiver, stop } = await pair({ seed: 2, delayMs: 5, loss: 0.5 });
    expect(() => sender.sendDatagram(receiver.localAddress(), new Uint8Array(1401))).toThrow(InvalidArgumentError);
    await sender.stop();
    expect(() => sender.sendDatagram(receiver.localAddress(), payload(1))).toThrow(StateError);
    await stop();
  });

  it('counts, never throws, when a delayed send fails below', async () => {
    const clock = new VirtualClock();
    let calls = 0;
    const flaky = defineLayer({
      type: 'flaky',
      provides: ['sendDatagram', 'maxDatagramSize', 'localAddress'],
      offers: { datagram: 'exclusive' },
      create: () => ({
        provides: {
          sendDatagram: () => {
            calls++;
            throw new Error('network is down');
          },
          maxDatagramSize: () => 100,
          localAddress: (): Address => ({ host: '127.0.0.1', port: 1 }),
        },
      }),
    });
    const node = createNode({ clock, layers: [flaky, faulty({ seed: 1, delayMs: 5 })] });
    await node.start();
    node.sendDatagram({ host: '127.0.0.1', port: 2 }, payload(1));
    await clock.advance(10);
    expect(calls).toBe(1);
    expect(node.counters()['faulty']!['send-errors']).toBe(1);
    await node.stop();
  });

  it('forgets held datagrams on stop and leaves no timer', async () => {
    const { received, sender, receiver, clock, stop } = await pair({ seed: 3, reorder: 1, delayMs: 100 });
    for (let i = 0; i < 10; i++) sender.sendDatagram(receiver.localAddress(), payload(i));
    await clock.advance(100); // delayed, now held for reordering (10 ms more)
    expect(sender.describe().layers[1]!.status?.['held']).toBe(10);
    await sender.stop();
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(1000);
    expect(received).toEqual([]);
    expect(sender.counters()['faulty']!['outgoing.discarded-on-stop']).toBe(10);
    await stop();
  });

  it('rejects nonsense options with InvalidArgumentError', () => {
    expect(() => faulty({ loss: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => faulty({ incoming: { delayMs: -1 } })).toThrow(/non-negative/);
    expect(() => faulty({ reorderDistance: 0 })).toThrow(/reorderDistance/);
    expect(() => faulty({ maxHeld: 0 })).toThrow(/maxHeld/);
  });
});

describe('transport conformance: memory + faulty with no faults', () => {
  const harness = async (): Promise<TransportHarness> => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 1 } });
    const raw = network.allocateHost();
    const silent = network.allocateHost();
    return {
      createNode: () => createNode({ clock, layers: [memoryTransport(network), faulty()] }),
      injectRaw: (to, bytes) => network.send({ host: raw, port: 1 }, to, bytes),
      silentAddress: () => ({ host: silent, port: 9 }),
      settle: (ms) => clock.advance(ms),
      waitFor: async (predicate, maxMs) => {
        for (let waited = 0; waited <= maxMs; waited += 1) {
          if (predicate()) return true;
          await clock.advance(1);
        }
        return predicate();
      },
      cleanup: async () => undefined,
    };
  };
  for (const c of transportConformanceCases(harness)) it(c.name, c.run);
});
