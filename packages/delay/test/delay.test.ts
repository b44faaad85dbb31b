import { describe, expect, it } from 'vitest';
import { createNode, defineLayer, Identity, InvalidArgumentError, type ByteSource, type NodeId } from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport } from '@deccom/core/testing';
import { delay, streamDelay, type DelayOptions } from '../src/index.js';

async function pair(senderDelay: DelayOptions | undefined, receiverDelay?: DelayOptions) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock });
  const a = createNode({ clock, layers: [memoryTransport(network), delay(senderDelay)] });
  const b = createNode({ clock, layers: [memoryTransport(network), delay(receiverDelay)] });
  await a.start();
  await b.start();
  const arrivals: { at: number; size: number }[] = [];
  b.handle('datagram', (data) => void arrivals.push({ at: clock.now(), size: data.length }));
  return { clock, network, a, b, arrivals, stop: async () => (await a.stop(), await b.stop()) };
}

describe('delay (datagrams)', () => {
  it('adds latency + size / bandwidth, queuing datagrams to one destination', async () => {
    const { clock, a, b, arrivals, stop } = await pair({ latencyMs: 30, bandwidthBytesPerSecond: 10_000 });
    a.sendDatagram(b.localAddress(), new Uint8Array(1000)); // 100 ms on the wire
    a.sendDatagram(b.localAddress(), new Uint8Array(500)); // queued behind it: done at 150 ms
    await clock.advance(500);
    expect(arrivals).toEqual([
      { at: 130, size: 1000 },
      { at: 180, size: 500 },
    ]);
    await stop();
  });

  it('delays deliveries instead of sends in receive mode', async () => {
    const { clock, a, b, arrivals, stop } = await pair(undefined, { latencyMs: 25, mode: 'receive' });
    a.sendDatagram(b.localAddress(), Uint8Array.of(1));
    await clock.advance(24);
    expect(arrivals).toEqual([]);
    await clock.advance(1);
    expect(arrivals).toEqual([{ at: 25, size: 1 }]);
    await stop();
  });

  it('takes per-pair properties from the profile function', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const slowHost = network.allocateHost();
    const a = createNode({
      clock,
      layers: [memoryTransport(network), delay({ profile: ({ other }) => ({ latencyMs: other.host === slowHost ? 200 : 10 }) })],
    });
    const fast = createNode({ clock, layers: [memoryTransport(network)] });
    const slow = createNode({ clock, layers: [memoryTransport(network, { host: slowHost })] });
    for (const n of [a, fast, slow]) await n.start();
    const at: Record<string, number> = {};
    fast.handle('datagram', () => void (at['fast'] = clock.now()));
    slow.handle('datagram', () => void (at['slow'] = clock.now()));
    a.sendDatagram(fast.localAddress(), Uint8Array.of(1));
    a.sendDatagram(slow.localAddress(), Uint8Array.of(1));
    await clock.advance(300);
    expect(at).toEqual({ fast: 10, slow: 200 });
    for (const n of [a, fast, slow]) await n.stop();
  });

  it('is a free pass-through at zero delay: same tick, no timers', async () => {
    const { clock, a, b, arrivals, stop } = await pair({});
    a.sendDatagram(b.localAddress(), Uint8Array.of(1));
    expect(clock.pendingTimers).toBe(1); // only the network's own delivery
    await clock.advance(0);
    expect(arrivals).toEqual([{ at: 0, size: 1 }]);
    expect(a.counters()['delay']).toEqual({});
    await stop();
  });

  it('releases held datagrams on stop', async () => {
    const { clock, a, b, arrivals, stop } = await pair({ latencyMs: 1000 });
    a.sendDatagram(b.localAddress(), Uint8Array.of(1));
    await a.stop();
    await clock.advance(2000);
    expect(arrivals).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
    await stop();
  });

  it('rejects nonsense options', () => {
    expect(() => delay({ latencyMs: -1 })).toThrow(InvalidArgumentError);
    expect(() => delay({ bandwidthBytesPerSecond: 0 })).toThrow(/must be > 0/);
    // @ts-expect-error not a mode
    expect(() => delay({ mode: 'sideways' })).toThrow(/mode/);
  });
});

describe('streamDelay (messages and streams)', () => {
  function fakeMessageStack(clock: VirtualClock) {
    const log: { at: number; to: string; bytes: number; kind: string }[] = [];
    const other = Identity.fromString('other');
    const transport = defineLayer({
      type: 'fake-messages',
      provides: ['sendMessage', 'sendStream', 'getPeer', 'localAddress'],
      create: () => ({
        provides: {
          sendMessage: async (to: NodeId, data: Uint8Array) => void log.push({ at: clock.now(), to: to.short, bytes: data.length, kind: 'message' }),
          sendStream: async (to: NodeId, source: ByteSource) => {
            for await (const chunk of source) log.push({ at: clock.now(), to: to.short, bytes: chunk.length, kind: 'chunk' });
          },
          getPeer: () => undefined,
          localAddress: () => ({ host: '127.0.0.1', port: 1 }),
        },
      }),
    });
    return { log, transport, other };
  }

  it('delays messages by latency + size / bandwidth and paces streams chunk by chunk', async () => {
    const clock = new VirtualClock();
    const { log, transport, other } = fakeMessageStack(clock);
    const node = createNode({ clock, identity: Identity.fromString('me'), layers: [transport, streamDelay({ latencyMs: 50, bandwidthBytesPerSecond: 1000 })] });
    await node.start();
    void node.sendMessage(other.id, new Uint8Array(100)); // 50 + 100 ms
    void node.sendStream(other.id, [new Uint8Array(200), new Uint8Array(300)]); // start at 50, then 200 ms, then 300 ms
    await clock.advance(1000);
    expect(log).toEqual([
      { at: 150, to: other.id.short, bytes: 100, kind: 'message' },
      { at: 250, to: other.id.short, bytes: 200, kind: 'chunk' },
      { at: 550, to: other.id.short, bytes: 300, kind: 'chunk' },
    ]);
    await node.stop();
  });

  it('ends a waiting send when the node stops', async () => {
    const clock = new VirtualClock();
    const { transport, other } = fakeMessageStack(clock);
    const node = createNode({ clock, layers: [transport, streamDelay({ latencyMs: 10_000 })] });
    await node.start();
    const sending = node.sendMessage(other.id, Uint8Array.of(1));
    await node.stop();
    await expect(sending).rejects.toBeDefined();
    expect(clock.pendingTimers).toBe(0);
  });
});
