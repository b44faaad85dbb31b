import { describe, expect, it } from 'vitest';
import { createNode, InvalidArgumentError, seededRandom, type Address } from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport } from '@deccom/core/testing';
import { faulty, type FaultyOptions } from '../src/index.js';

async function pair(options: FaultyOptions) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, random: seededRandom(3), defaultLink: { latencyMs: 1 } });
  const sender = createNode({ clock, random: 1, layers: [memoryTransport(network), faulty(options)] });
  const receiver = createNode({ clock, random: 2, layers: [memoryTransport(network)] });
  await sender.start();
  await receiver.start();
  const received: number[] = [];
  receiver.handle('datagram', (data) => void received.push((data[0]! << 16) | (data[1]! << 8) | data[2]!));
  let next = 0;
  const send = async (count: number) => {
    for (let n = 0; n < count; n++, next++) {
      const i = next;
      sender.sendDatagram(receiver.localAddress(), Uint8Array.of(i >> 16, (i >> 8) & 0xff, i & 0xff));
    }
    await clock.advance(1000);
  };
  return { clock, sender, receiver, received, send, stop: async () => (await sender.stop(), await receiver.stop()) };
}

describe('faulty', () => {
  it('drops and duplicates at the configured rates (10,000 datagrams)', async () => {
    const { received, send, sender, stop } = await pair({ seed: 11, loss: 0.1, duplicate: 0.05 });
    await send(10_000);
    const counters = sender.counters()['faulty']!;
    const lost = counters['outgoing.lost']!;
    const duplicated = counters['outgoing.duplicated']!;
    // Binomial(10,000, 0.1): sd = 30; bounds are 5 sd.
    expect(lost).toBeGreaterThan(850);
    expect(lost).toBeLessThan(1150);
    expect(duplicated).toBeGreaterThan((10_000 - lost) * 0.05 - 120);
    expect(duplicated).toBeLessThan((10_000 - lost) * 0.05 + 120);
    expect(received.length).toBe(10_000 - lost + duplicated);
    await stop();
  });

  it('reorders: held-back datagrams arrive after later ones', async () => {
    const { received, send, sender, stop } = await pair({ seed: 5, reorder: 0.2, reorderDelayMs: 5 });
    for (let batch = 0; batch < 10; batch++) await send(100);
    expect(received.length).toBe(1000);
    // Datagrams overtaken by a later one: about 20% of them.
    let overtaken = 0;
    let highest = -1;
    for (const id of received) {
      if (id < highest) overtaken++;
      highest = Math.max(highest, id);
    }
    expect(overtaken).toBeGreaterThan(100);
    expect(overtaken).toBeLessThan(300);
    expect(sender.counters()['faulty']!['outgoing.reordered']).toBeGreaterThan(100);
    await stop();
  });

  it('replays the same faults for the same seed', async () => {
    const run = async (seed: number) => {
      const { received, send, stop } = await pair({ seed, loss: 0.3, duplicate: 0.1, reorder: 0.1, jitterMs: 3 });
      await send(2000);
      await stop();
      return received;
    };
    const first = await run(99);
    expect(await run(99)).toEqual(first);
    expect(await run(100)).not.toEqual(first);
  });

  it('adds the configured delay, and applies incoming faults separately', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const a = createNode({ clock, layers: [memoryTransport(network)] });
    const b = createNode({ clock, layers: [memoryTransport(network), faulty({ seed: 1, incoming: { delayMs: 40 } })] });
    await a.start();
    await b.start();
    const arrivals: number[] = [];
    b.handle('datagram', () => void arrivals.push(clock.now()));
    a.sendDatagram(b.localAddress(), Uint8Array.of(1));
    await clock.advance(39);
    expect(arrivals).toEqual([]);
    await clock.advance(2);
    expect(arrivals).toEqual([40]);
    // Outgoing traffic of b is untouched.
    const back: Address[] = [];
    a.handle('datagram', (_d, from) => void back.push(from));
    b.sendDatagram(a.localAddress(), Uint8Array.of(2));
    await clock.advance(0);
    expect(back).toHaveLength(1);
    await a.stop();
    await b.stop();
  });

  it('is a pure pass-through with no faults configured, and copies what it holds back', async () => {
    const { received, send, sender, stop } = await pair({});
    await send(500);
    expect(received).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(sender.counters()['faulty']).toEqual({});
    await stop();
  });

  it('rejects nonsense options with InvalidArgumentError', () => {
    expect(() => faulty({ loss: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => faulty({ incoming: { delayMs: -1 } })).toThrow(/non-negative/);
  });
});
