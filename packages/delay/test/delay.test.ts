import { describe, expect, it } from 'vitest';
import {
  createNode,
  createPeerRecord,
  defineLayer,
  Identity,
  InvalidArgumentError,
  StateError,
  type Address,
  type ByteSource,
  type HookHandler,
  type NodeId,
  type PeerRecord,
} from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport, transportConformanceCases, type TransportHarness } from '@deccom/core/testing';
import { delay, PEER_INDEX_REFRESH_MS, streamDelay, type DelayOptions } from '../src/index.js';

async function pair(senderDelay: DelayOptions | undefined, receiverDelay?: DelayOptions) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock });
  const a = createNode({ clock, layers: [memoryTransport(network), delay(senderDelay)] });
  const b = createNode({ clock, layers: [memoryTransport(network), delay(receiverDelay)] });
  await a.start();
  await b.start();
  const arrivals: { at: number; size: number }[] = [];
  const payloads: number[][] = [];
  b.handle('datagram', (data) => {
    arrivals.push({ at: clock.now(), size: data.length });
    payloads.push([...data]);
  });
  return { clock, network, a, b, arrivals, payloads, stop: async () => (await a.stop(), await b.stop()) };
}

describe('delay (datagrams)', () => {
  it('adds latency + size / bandwidth, queuing datagrams to one destination behind each other', async () => {
    const { clock, a, b, arrivals, stop } = await pair({ latencyMs: 30, bandwidthBytesPerSecond: 10_000 });
    a.sendDatagram(b.localAddress(), new Uint8Array(1000)); // on the wire 0..100 ms, arrives at 130
    a.sendDatagram(b.localAddress(), new Uint8Array(500)); // queued: 100..150, arrives at 180
    await clock.advance(120);
    a.sendDatagram(b.localAddress(), new Uint8Array(100)); // link busy until 150: 150..160, arrives at 190
    await clock.advance(500);
    await clock.advance(500); // the link is idle again: 1120..1130, arrives at 1160
    a.sendDatagram(b.localAddress(), new Uint8Array(100));
    await clock.advance(100);
    expect(arrivals).toEqual([
      { at: 130, size: 1000 },
      { at: 180, size: 500 },
      { at: 190, size: 100 },
      { at: 1160, size: 100 },
    ]);
    expect(a.counters()['delay']!['delayed']).toBe(4);
    await stop();
  });

  it('gives each destination its own link', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const a = createNode({ clock, layers: [memoryTransport(network), delay({ latencyMs: 10, bandwidthBytesPerSecond: 1000 })] });
    const b = createNode({ clock, layers: [memoryTransport(network)] });
    const c = createNode({ clock, layers: [memoryTransport(network)] });
    for (const n of [a, b, c]) await n.start();
    const at: string[] = [];
    b.handle('datagram', () => void at.push(`b@${clock.now()}`));
    c.handle('datagram', () => void at.push(`c@${clock.now()}`));
    a.sendDatagram(b.localAddress(), new Uint8Array(100)); // 100 ms + 10
    a.sendDatagram(c.localAddress(), new Uint8Array(100)); // in parallel: 100 ms + 10
    await clock.advance(200);
    expect(at).toEqual(['b@110', 'c@110']);
    for (const n of [a, b, c]) await n.stop();
  });

  it('delays deliveries instead of sends in receive mode, per source link', async () => {
    const { clock, a, b, arrivals, stop } = await pair(undefined, { latencyMs: 25, bandwidthBytesPerSecond: 1000, mode: 'receive' });
    a.sendDatagram(b.localAddress(), new Uint8Array(10)); // 10 ms on the link + 25
    a.sendDatagram(b.localAddress(), new Uint8Array(20)); // 10..30, + 25
    await clock.advance(34);
    expect(arrivals).toEqual([]);
    await clock.advance(1);
    expect(arrivals).toEqual([{ at: 35, size: 10 }]);
    await clock.advance(100);
    expect(arrivals).toEqual([
      { at: 35, size: 10 },
      { at: 55, size: 20 },
    ]);
    expect(b.counters()['delay']!['delayed']).toBe(2);
    await stop();
  });

  it('takes per-link properties from the profile, by address', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const slowHost = network.allocateHost();
    const a = createNode({
      clock,
      layers: [memoryTransport(network), delay({ profile: ({ address }) => ({ latencyMs: address.host === slowHost ? 200 : 10 }) })],
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

  it("resolves the other end's peer through getPeers below (indexed, only when read), or through peerOf", async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const far = Identity.fromString('far');
    let getPeersCalls = 0;
    let known: PeerRecord[] = [];
    const discovery = defineLayer({
      type: 'fake-discovery',
      provides: ['getPeers'],
      create: () => ({ provides: { getPeers: () => (getPeersCalls++, known) } }),
    });
    const seen: (string | undefined)[] = [];
    const a = createNode({
      clock,
      identity: Identity.fromString('me'),
      layers: [
        memoryTransport(network),
        discovery,
        delay({
          profile: (ends) => {
            seen.push(ends.address.port === 1 ? 'no-peer-read' : ends.peer?.identity.toString());
            return { latencyMs: ends.self.identity.toString() === Identity.fromString('me').public.toString() ? 5 : 99 };
          },
        }),
      ],
    });
    const b = createNode({ clock, layers: [memoryTransport(network)] });
    await a.start();
    await b.start();
    known = [createPeerRecord(far.public, b.localAddress())];
    a.sendDatagram({ host: b.localAddress().host, port: 1 }, Uint8Array.of(1)); // profile does not read peer
    expect(getPeersCalls).toBe(0);
    for (let i = 0; i < 5; i++) a.sendDatagram(b.localAddress(), Uint8Array.of(1));
    expect(getPeersCalls).toBe(1); // one index for the five lookups
    expect(seen).toEqual(['no-peer-read', ...Array<string>(5).fill(far.public.toString())]);
    await clock.advance(PEER_INDEX_REFRESH_MS);
    a.sendDatagram(b.localAddress(), Uint8Array.of(1));
    expect(getPeersCalls).toBe(2); // refreshed after a second
    let arrived = 0;
    b.handle('datagram', () => void arrived++);
    await clock.advance(10);
    expect(arrived).toBe(1);
    await a.stop();
    await b.stop();

    const viaOption = createNode({
      clock,
      layers: [memoryTransport(network), delay({ peerOf: (address) => (address.port === 7 ? createPeerRecord(far.public, address) : undefined), profile: ({ peer }) => ({ latencyMs: peer ? 1 : 2 }) })],
    });
    await viaOption.start();
    expect(() => viaOption.sendDatagram({ host: '10.9.9.9', port: 7 }, Uint8Array.of(1))).not.toThrow();
    await viaOption.stop();
  });

  it('is a free pass-through at zero delay: same tick, no timers, no counters', async () => {
    const { clock, a, b, arrivals, stop } = await pair({});
    a.sendDatagram(b.localAddress(), Uint8Array.of(1));
    expect(clock.pendingTimers).toBe(1); // only the network's own delivery
    await clock.advance(0);
    expect(arrivals).toEqual([{ at: 0, size: 1 }]);
    expect(a.counters()['delay']).toEqual({});
    expect(a.maxDatagramSize()).toBe(1400); // no framing
    await stop();

    // A profile that answers zero also costs no timer.
    const profiled = await pair({ profile: () => ({ latencyMs: 0 }) });
    profiled.a.sendDatagram(profiled.b.localAddress(), Uint8Array.of(1));
    expect(profiled.clock.pendingTimers).toBe(1);
    await profiled.stop();
  });

  it('copies what it holds, and raises transport and profile errors at once', async () => {
    const { clock, a, b, payloads, stop } = await pair({ latencyMs: 5 });
    const buffer = Uint8Array.of(1, 2, 3);
    a.sendDatagram(b.localAddress(), buffer);
    buffer.fill(0);
    await clock.advance(10);
    expect(payloads).toEqual([[1, 2, 3]]);
    expect(() => a.sendDatagram(b.localAddress(), new Uint8Array(1401))).toThrow(InvalidArgumentError);
    await a.stop();
    expect(() => a.sendDatagram(b.localAddress(), Uint8Array.of(1))).toThrow(StateError);
    await stop();

    const broken = await pair({ profile: () => ({ latencyMs: -5 }) }, { profile: () => ({ latencyMs: Number.NaN }), mode: 'receive' });
    expect(() => broken.a.sendDatagram(broken.b.localAddress(), Uint8Array.of(1))).toThrow(InvalidArgumentError);
    // In receive mode a broken profile drops (counted, logged), never throws out of the receive path.
    const plain = createNode({ clock: broken.clock, layers: [memoryTransport(broken.network)] });
    await plain.start();
    plain.sendDatagram(broken.b.localAddress(), Uint8Array.of(1));
    await broken.clock.advance(5);
    expect(broken.arrivals).toEqual([]);
    expect(broken.b.counters()['delay']!['dropped.profile-error']).toBe(1);
    await plain.stop();
    await broken.stop();
  });

  it('releases held datagrams on stop, leaving no timer', async () => {
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
    expect(() => streamDelay({ maxBufferedBytes: -1 })).toThrow(/maxBufferedBytes/);
  });
});

for (const options of [{}, { latencyMs: 5, bandwidthBytesPerSecond: 1e6 }, { latencyMs: 3, mode: 'receive' as const }]) {
  describe(`transport conformance: memory + delay(${JSON.stringify(options)})`, () => {
    const harness = async (): Promise<TransportHarness> => {
      const clock = new VirtualClock();
      const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 1 } });
      const raw = network.allocateHost();
      const silent = network.allocateHost();
      return {
        createNode: () => createNode({ clock, layers: [memoryTransport(network), delay(options)] }),
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
}

/** A message transport stand-in: logs what reaches it, and can inject incoming messages and streams. */
function fakeMessageTransport(clock: VirtualClock, options: { chunkCostMs?: number } = {}) {
  const log: { at: number; to: string; bytes: number; kind: string }[] = [];
  const other = Identity.fromString('other');
  const slots: { message?: HookHandler<'message'>; stream?: HookHandler<'stream'> } = {};
  const transport = defineLayer({
    type: 'fake-messages',
    provides: ['sendMessage', 'sendStream', 'getPeer', 'localAddress'],
    offers: { message: 'exclusive', stream: 'exclusive' },
    create: (ctx) => {
      Object.defineProperty(slots, 'message', { get: () => ctx.slots.message });
      Object.defineProperty(slots, 'stream', { get: () => ctx.slots.stream });
      return {
        provides: {
          sendMessage: async (to: NodeId, data: Uint8Array) => void log.push({ at: clock.now(), to: to.short, bytes: data.length, kind: 'message' }),
          sendStream: async (to: NodeId, source: ByteSource) => {
            for await (const chunk of source) {
              log.push({ at: clock.now(), to: to.short, bytes: chunk.length, kind: 'chunk' });
              if (options.chunkCostMs) await ctx.clock.sleep(options.chunkCostMs);
            }
          },
          getPeer: (id: NodeId) => (id.equals(other.id) ? createPeerRecord(other.public, { host: '10.0.0.2', port: 2 }) : undefined),
          localAddress: (): Address => ({ host: '10.0.0.1', port: 1 }),
        },
      };
    },
  });
  return { log, transport, other, slots };
}

describe('streamDelay (messages and streams)', () => {
  it('delays messages by latency + size / bandwidth, queued per destination', async () => {
    const clock = new VirtualClock();
    const { log, transport, other } = fakeMessageTransport(clock);
    const node = createNode({ clock, identity: Identity.fromString('me'), layers: [transport, streamDelay({ latencyMs: 50, bandwidthBytesPerSecond: 1000 })] });
    await node.start();
    const first = node.sendMessage(other.id, new Uint8Array(100)); // 0..100, + 50
    const second = node.sendMessage(other.id, new Uint8Array(200)); // 100..300, + 50
    await clock.advance(1000);
    await Promise.all([first, second]);
    expect(log).toEqual([
      { at: 150, to: other.id.short, bytes: 100, kind: 'message' },
      { at: 350, to: other.id.short, bytes: 200, kind: 'message' },
    ]);
    expect(node.counters()['stream-delay']!['delayed-messages']).toBe(2);
    await node.stop();
  });

  it('pipelines a stream: chunks paced to the bandwidth, each arriving one latency after its transmission', async () => {
    const clock = new VirtualClock();
    const { log, transport, other } = fakeMessageTransport(clock);
    const node = createNode({ clock, layers: [transport, streamDelay({ latencyMs: 100, bandwidthBytesPerSecond: 10_000 })] });
    await node.start();
    const chunks = Array.from({ length: 100 }, () => new Uint8Array(1000)); // 100 ms each on the wire
    const sending = node.sendStream(other.id, chunks);
    await clock.advance(20_000);
    await sending;
    // Not 100 x (100 + 100) ms: the link stays busy across the latency, like a real pipe.
    expect(log.map((entry) => entry.at)).toEqual(Array.from({ length: 100 }, (_, i) => (i + 1) * 100 + 100));
    await node.stop();
  });

  it('shares one link between the messages and streams to a node', async () => {
    const clock = new VirtualClock();
    const { log, transport, other } = fakeMessageTransport(clock);
    const node = createNode({ clock, layers: [transport, streamDelay({ latencyMs: 50, bandwidthBytesPerSecond: 1000 })] });
    await node.start();
    void node.sendMessage(other.id, new Uint8Array(100)); // link 0..100, arrives 150
    void node.sendStream(other.id, [new Uint8Array(200), new Uint8Array(300)]); // link 100..300, 300..600: arrive 350, 650
    await clock.advance(1000);
    expect(log.map(({ at, bytes, kind }) => `${kind}:${bytes}@${at}`)).toEqual(['message:100@150', 'chunk:200@350', 'chunk:300@650']);
    await node.stop();
  });

  it('keeps backpressure: the producer runs ahead of a slow consumer by at most bandwidth x latency (capped)', async () => {
    const run = async (options: { latencyMs: number; bandwidthBytesPerSecond?: number; maxBufferedBytes?: number }) => {
      const clock = new VirtualClock();
      const { log, transport, other } = fakeMessageTransport(clock, { chunkCostMs: 1000 });
      const node = createNode({ clock, layers: [transport, streamDelay(options)] });
      await node.start();
      let pulled = 0;
      let maxAhead = 0;
      const source = (function* () {
        for (let i = 0; i < 40; i++) {
          pulled++;
          maxAhead = Math.max(maxAhead, pulled - log.length);
          yield new Uint8Array(100);
        }
      })();
      const sending = node.sendStream(other.id, source);
      await clock.advance(10_500);
      const consumedEarly = log.length;
      await clock.advance(60_000);
      await sending;
      expect(log).toHaveLength(40);
      await node.stop();
      return { consumedEarly, maxAhead };
    };
    // 10 chunks consumed in 10.5 s at 1 s each. Link capacity 1000 B/s x 0.5 s = 500 B:
    // five chunks in flight, plus one in the consumer's hands and one in the producer's.
    expect(await run({ latencyMs: 500, bandwidthBytesPerSecond: 1000 })).toEqual({ consumedEarly: 10, maxAhead: 7 });
    // The cap bounds it: 200 B = two chunks in flight.
    expect(await run({ latencyMs: 500, bandwidthBytesPerSecond: 1000, maxBufferedBytes: 200 })).toEqual({ consumedEarly: 10, maxAhead: 4 });
    // No latency, no pipe: one chunk in the consumer's hands, one in the producer's.
    expect((await run({ latencyMs: 0, bandwidthBytesPerSecond: 1e6 })).maxAhead).toBe(2);
  });

  it('hands messages to one node down in the order they were sent, on the real clock too', async () => {
    const log: number[] = [];
    const other = Identity.fromString('other');
    const transport = defineLayer({
      type: 'fake-messages',
      provides: ['sendMessage', 'sendStream', 'localAddress'],
      create: () => ({
        provides: {
          sendMessage: async (_to: NodeId, data: Uint8Array) => void log.push(data.length),
          sendStream: async () => undefined,
          localAddress: (): Address => ({ host: '127.0.0.1', port: 1 }),
        },
      }),
    });
    const node = createNode({ layers: [transport, streamDelay({ latencyMs: 3, bandwidthBytesPerSecond: 50e6 })] });
    await node.start();
    // Sizes that make arrival times land within a millisecond of each other.
    const sizes = Array.from({ length: 200 }, (_, i) => (i * 7919) % 40_000);
    await Promise.all(sizes.map((size) => node.sendMessage(other.id, new Uint8Array(size))));
    expect(log).toEqual(sizes);
    await node.stop();
  });

  it('delays incoming messages and streams in receive mode, and passes them through otherwise', async () => {
    const clock = new VirtualClock();
    const { transport, other, slots } = fakeMessageTransport(clock);
    const node = createNode({ clock, layers: [transport, streamDelay({ latencyMs: 20, bandwidthBytesPerSecond: 1000, mode: 'receive' })] });
    await node.start();
    const got: string[] = [];
    node.handle('message', (data) => void got.push(`message:${data.length}@${clock.now()}`));
    node.handle('stream', (source) => {
      void (async () => {
        for await (const chunk of source) got.push(`chunk:${chunk.length}@${clock.now()}`);
      })();
    });
    const address = { host: '10.0.0.2', port: 2 };
    slots.message!(new Uint8Array(100), other.id, address); // 0..100 + 20
    slots.stream!(
      (async function* () {
        yield new Uint8Array(50); // 100..150 + 20
        yield new Uint8Array(50); // 150..200 + 20
      })(),
      other.id,
      address,
    );
    await clock.advance(1000);
    expect(got).toEqual(['message:100@120', 'chunk:50@170', 'chunk:50@220']);
    await node.stop();

    const passThrough = fakeMessageTransport(clock);
    const plain = createNode({ clock, layers: [passThrough.transport, streamDelay({ latencyMs: 20 })] });
    await plain.start();
    const plainGot: number[] = [];
    plain.handle('message', () => void plainGot.push(clock.now()));
    passThrough.slots.message!(new Uint8Array(1), other.id, address);
    expect(plainGot).toEqual([clock.now()]);
    await plain.stop();
  });

  it('leaves incoming traffic to the transport in send mode, so a stream nobody takes is still refused there', async () => {
    const clock = new VirtualClock();
    const { transport, slots } = fakeMessageTransport(clock);
    const node = createNode({ clock, layers: [transport, streamDelay({ latencyMs: 20 })] });
    await node.start();
    // The transport sees no taker (as tcp does before refusing with STREAM_REFUSED).
    expect(slots.stream).toBeUndefined();
    expect(slots.message).toBeUndefined();
    node.handle('stream', () => undefined);
    expect(slots.stream).toBeDefined();
    expect(node.describe().layers[1]!.offers).toEqual({});
    expect(node.describe().bindings.filter((b) => b.from === 'stream-delay' && b.kind !== 'call')).toEqual([]);
    await node.stop();
  });

  it('refuses an incoming stream nobody above takes in receive mode, leaving it unread for the transport to refuse', async () => {
    const clock = new VirtualClock();
    const { transport, other, slots } = fakeMessageTransport(clock);
    const node = createNode({ clock, layers: [transport, streamDelay({ latencyMs: 20, mode: 'receive' })] });
    await node.start();
    let pulled = 0;
    const source = (async function* () {
      pulled++;
      yield new Uint8Array(1);
    })();
    expect(slots.stream!(source, other.id, { host: '10.0.0.2', port: 2 })).toBe(false);
    await clock.advance(1);
    expect(pulled).toBe(0);
    expect(node.counters()['stream-delay']!['dropped.no-receiver']).toBe(1);
    await node.stop();
  });

  it('passes a refusal from the handler above down to the transport', async () => {
    const clock = new VirtualClock();
    const { transport, other, slots } = fakeMessageTransport(clock);
    const node = createNode({ clock, layers: [transport, streamDelay({ latencyMs: 20, mode: 'receive' })] });
    node.handle('stream', () => false);
    await node.start();
    expect(slots.stream!((async function* () {})(), other.id, { host: '10.0.0.2', port: 2 })).toBe(false);
    await node.stop();
  });

  it('hands waiting sends down at once when the node stops, in order, so stopping loses no message', async () => {
    const clock = new VirtualClock();
    const { log, transport, other } = fakeMessageTransport(clock);
    const node = createNode({ clock, layers: [transport, streamDelay({ latencyMs: 10_000, bandwidthBytesPerSecond: 100 })] });
    await node.start();
    const messages = [node.sendMessage(other.id, Uint8Array.of(1)), node.sendMessage(other.id, Uint8Array.of(1, 2))];
    const stream = node.sendStream(other.id, [new Uint8Array(10), new Uint8Array(10)]);
    await clock.advance(1);
    expect(log).toEqual([]);
    await node.stop();
    await Promise.all(messages);
    await stream;
    expect(log.map(({ at, bytes, kind }) => `${kind}:${bytes}@${at}`)).toEqual(['message:1@1', 'message:2@1', 'chunk:10@1', 'chunk:10@1']);
    expect(clock.pendingTimers).toBe(0);
  });

  it('delivers received messages still waiting when the node stops, in order', async () => {
    const clock = new VirtualClock();
    const { transport, other, slots } = fakeMessageTransport(clock);
    const node = createNode({ clock, layers: [transport, streamDelay({ latencyMs: 1000, mode: 'receive' })] });
    await node.start();
    const got: number[] = [];
    node.handle('message', (data) => void got.push(data.length));
    for (let i = 1; i <= 3; i++) slots.message!(new Uint8Array(i), other.id, { host: '10.0.0.2', port: 2 });
    await clock.advance(10);
    expect(got).toEqual([]);
    await node.stop();
    expect(got).toEqual([1, 2, 3]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('honours a per-send abort signal', async () => {
    const clock = new VirtualClock();
    const { transport, other } = fakeMessageTransport(clock);
    const node = createNode({ clock, layers: [transport, streamDelay({ latencyMs: 1000 })] });
    await node.start();
    const controller = new AbortController();
    const sending = node.sendMessage(other.id, Uint8Array.of(1), { signal: controller.signal });
    controller.abort(new Error('changed my mind'));
    await expect(sending).rejects.toThrow('changed my mind');
    await node.stop();
  });

  it('is a pass-through at zero delay, and takes the profile from the peer record', async () => {
    const clock = new VirtualClock();
    const { log, transport, other } = fakeMessageTransport(clock);
    const node = createNode({ clock, layers: [transport, streamDelay()] });
    await node.start();
    await node.sendMessage(other.id, Uint8Array.of(1));
    expect(log).toEqual([{ at: 0, to: other.id.short, bytes: 1, kind: 'message' }]);
    expect(clock.pendingTimers).toBe(0);
    await node.stop();

    const profiled = fakeMessageTransport(clock);
    const byPeer = createNode({
      clock,
      layers: [profiled.transport, streamDelay({ profile: ({ peer, id }) => ({ latencyMs: peer?.address.host === '10.0.0.2' ? 30 : 1, bandwidthBytesPerSecond: id.equals(other.id) ? undefined : 1 }) })],
    });
    await byPeer.start();
    const start = clock.now();
    const sent = byPeer.sendMessage(other.id, new Uint8Array(1000));
    await clock.advance(100);
    await sent;
    expect(profiled.log.map((entry) => entry.at - start)).toEqual([30]);
    await byPeer.stop();
  });

  it('composes only over a message transport (type-checked)', () => {
    const network = new MemoryNetwork({ clock: new VirtualClock() });
    // Datagram delay composes over any datagram transport.
    createNode({ layers: [memoryTransport(network), delay()] });
    // @ts-expect-error streamDelay needs sendMessage / sendStream, which a datagram transport does not provide
    expect(() => createNode({ layers: [memoryTransport(network), streamDelay()] })).toThrow(/sendMessage/);
  });
});
