import { describe, expect, it } from 'vitest';
import { bytesEqual, createNode, encodeData, Identity, InvalidArgumentError, TimeoutError, seededRandom, utf8Decode, utf8Encode, type Address } from '@deccom/core';
import { MemoryNetwork, memoryTransport, VirtualClock, type NatType as MemoryNatType } from '@deccom/core/testing';
import { noise } from '@deccom/noise';
import {
  encodePunchMessage,
  encodeRelayMessage,
  holepunch,
  PUNCH_MESSAGE,
  RELAY_MESSAGE,
  RelayError,
  PunchError,
  type ConnectOutcome,
  type HolepunchOptions,
} from '../src/index.js';
import { punchMessages, relayMessages } from './fixtures.js';

type Choice = 'none' | MemoryNatType;

function world(seed = 1) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 10 } });
  const nodes: { stop(): Promise<void> }[] = [];
  const node = async (name: string, choice: Choice, options?: HolepunchOptions) => {
    const nat = choice === 'none' ? undefined : network.createNat({ type: choice });
    const n = createNode({ identity: Identity.fromString(name), clock, random: `${seed}-${name}`, layers: [memoryTransport(network, nat ? { nat } : {}), holepunch(options)] });
    await n.start();
    nodes.push(n);
    return n;
  };
  /** `a` and `b` say hello to `introducer`; returns how it saw them. */
  const introduce = async (introducer: Awaited<ReturnType<typeof node>>, ...peers: Awaited<ReturnType<typeof node>>[]): Promise<Address[]> => {
    const seen = new Map<string, Address>();
    const release = introducer.handle('datagram', (data, from) => seen.set(utf8Decode(data), from));
    peers.forEach((peer, i) => peer.sendDatagram(introducer.localAddress(), utf8Encode(`p${i}`)));
    await clock.advance(100);
    release();
    return peers.map((_, i) => seen.get(`p${i}`)!);
  };
  const settle = async <T>(promise: Promise<T>, maxMs = 30_000): Promise<T> => {
    let done = false;
    let value: T | undefined;
    promise.then((v) => {
      done = true;
      value = v;
    });
    await clock.runUntil(() => done, { maxMs, stepMs: 5 });
    if (!done) throw new Error('did not settle');
    return value as T;
  };
  const stopAll = async () => {
    for (const n of nodes) await n.stop();
    await clock.advance(1_000);
  };
  return { clock, network, node, introduce, settle, stopAll };
}

describe('holepunch layer', () => {
  it('connect() reports direct, punched-udp and relayed outcomes with attempt counts, and traffic flows both ways', async () => {
    const w = world();
    const relay = await w.node('relay', 'none');
    const a = await w.node('a', 'port-restricted');
    const b = await w.node('b', 'port-restricted');
    const c = await w.node('c', 'symmetric');
    const [, bAddress, cAddress] = await w.introduce(relay, a, b, c);
    a.heardFrom(bAddress!, relay.localPeer());
    a.heardFrom(cAddress!, relay.localPeer());
    const toB = await w.settle(a.connect(bAddress!));
    expect(toB).toMatchObject({ mechanism: 'punched-udp', address: bAddress, via: bAddress, attempts: 1 });
    expect(toB.elapsedMs).toBeGreaterThan(0);
    expect(await w.settle(a.connect(bAddress!))).toMatchObject({ mechanism: 'punched-udp' });
    const toC = await w.settle(a.connect(cAddress!));
    expect(toC.mechanism).toBe('relayed');
    expect(toC.via).toEqual(relay.localAddress());
    expect(toC.attempts).toBeGreaterThan(1);
    // The relay is also reachable directly: it was heard from.
    expect(await w.settle(a.connect(relay.localAddress()))).toMatchObject({ mechanism: 'direct', attempts: 0 });

    const got: string[] = [];
    c.handle('datagram', (data, from) => {
      got.push(utf8Decode(data));
      c.sendDatagram(from, utf8Encode(`echo ${utf8Decode(data)}`));
    });
    const echoes: { text: string; from: Address }[] = [];
    a.handle('datagram', (data, from) => echoes.push({ text: utf8Decode(data), from }));
    a.sendDatagram(cAddress!, utf8Encode('over the relay'));
    await w.clock.advance(200);
    expect(got).toEqual(['over the relay']);
    // The answer comes back as if from C's address (the relay is invisible above).
    expect(echoes).toEqual([{ text: 'echo over the relay', from: cAddress }]);
    expect(relay.counters()['holepunch']!['relay-forwarded']).toBe(2);

    // Pings go along the path: punched, or through the relay.
    const rttB = await w.settle(a.sendPing(bAddress!));
    expect(rttB).toBeGreaterThanOrEqual(20);
    const rttC = await w.settle(a.sendPing(cAddress!));
    expect(rttC).toBeGreaterThanOrEqual(40);
    expect(relay.counters()['holepunch']!['relay-forwarded']).toBe(4);
    // A timeoutMs no timer can wait is refused before anything is sent.
    await expect(a.sendPing(cAddress!, { timeoutMs: Number.NaN })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(relay.counters()['holepunch']!['relay-forwarded']).toBe(4);
    await w.stopAll();
    expect(w.clock.pendingTimers).toBe(0);
  });

  it('fails with typed reasons: no introducer, timeout without relay, abort', async () => {
    const w = world();
    const relay = await w.node('relay', 'none');
    const a = await w.node('a', 'port-restricted', { relayFallback: false });
    const b = await w.node('b', 'symmetric');
    const [, bAddress] = await w.introduce(relay, a, b);
    const nobody = await w.settle(a.connect({ host: '10.9.9.9', port: 9 }));
    expect(nobody.mechanism).toBe('failed');
    expect(nobody.error).toBeInstanceOf(PunchError);
    expect(nobody.reason).toBe('PUNCH_NO_INTRODUCER');
    a.heardFrom(bAddress!, relay.localPeer());
    const timeout = await w.settle(a.connect(bAddress!));
    expect(timeout).toMatchObject({ mechanism: 'failed', reason: 'PUNCH_TIMEOUT' });
    expect(timeout.attempts).toBeGreaterThanOrEqual(5);
    // The same call allowed to use a relay gets through.
    expect((await w.settle(a.connect(bAddress!, { relay: true }))).mechanism).toBe('relayed');

    const controller = new AbortController();
    const c = await w.node('c', 'symmetric');
    const [cAddress] = await w.introduce(relay, c);
    a.heardFrom(cAddress!, relay.localPeer());
    const pending = a.connect(cAddress!, { signal: controller.signal });
    await w.clock.advance(100);
    controller.abort();
    expect(await w.settle(pending)).toMatchObject({ mechanism: 'failed', reason: 'PUNCH_ABORTED' });
    expect(() => a.connect({ host: 'nope', port: 1 })).toThrow(InvalidArgumentError);
    const d = await w.node('d', 'port-restricted');
    const [dAddress] = await w.introduce(relay, d);
    await d.stop();
    a.heardFrom(dAddress!, relay.localPeer());
    const ping = a.sendPing(dAddress!).then(
      () => 'answered',
      (error: unknown) => error,
    );
    expect(await w.settle(ping)).toBeInstanceOf(TimeoutError);
    expect(() => a.sendDatagram(bAddress!, new Uint8Array(a.maxDatagramSize() + 1))).toThrow(InvalidArgumentError);
    await w.stopAll();
  });

  it('queues datagrams until the path opens, within its bound, and drops them (counted) when the punch fails', async () => {
    const w = world();
    const relay = await w.node('relay', 'none');
    const a = await w.node('a', 'port-restricted', { maxQueuedDatagrams: 5, relayFallback: false });
    const b = await w.node('b', 'port-restricted');
    const [, bAddress] = await w.introduce(relay, a, b);
    a.heardFrom(bAddress!, relay.localPeer());
    const got: number[] = [];
    b.handle('datagram', (data) => got.push(data[0]!));
    for (let i = 0; i < 8; i++) a.sendDatagram(bAddress!, Uint8Array.of(i));
    expect(a.counters()['holepunch']!['queued']).toBe(5);
    expect(a.counters()['holepunch']!['dropped.queue-full']).toBe(3);
    await w.clock.advance(500);
    expect(got).toEqual([0, 1, 2, 3, 4]);

    // B goes away: a punch to it fails and its queue is dropped.
    const c = await w.node('c', 'port-restricted');
    const [cAddress] = await w.introduce(relay, c);
    await c.stop();
    a.heardFrom(cAddress!, relay.localPeer());
    const outcomes: ConnectOutcome[] = [];
    a.on('punch-outcome', (o) => outcomes.push(o));
    a.sendDatagram(cAddress!, Uint8Array.of(1));
    a.sendDatagram(cAddress!, Uint8Array.of(2));
    await w.clock.advance(6_000);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ mechanism: 'failed', reason: 'PUNCH_TIMEOUT' });
    expect(a.counters()['holepunch']!['dropped.punch-failed']).toBe(2);
    // Within the cooldown, further sends are dropped at once.
    a.sendDatagram(cAddress!, Uint8Array.of(3));
    expect(a.counters()['holepunch']!['dropped.punch-failed']).toBe(3);
    await w.stopAll();
  });

  it('a relay refuses sessions beyond its connection budget with a typed error', async () => {
    const w = world();
    const relay = await w.node('relay', 'none', { relay: { maxSessions: 1 } });
    const a1 = await w.node('a1', 'symmetric');
    const b1 = await w.node('b1', 'symmetric');
    const a2 = await w.node('a2', 'symmetric');
    const b2 = await w.node('b2', 'symmetric');
    const [, b1Address, , b2Address] = await w.introduce(relay, a1, b1, a2, b2);
    a1.heardFrom(b1Address!, relay.localPeer());
    a2.heardFrom(b2Address!, relay.localPeer());
    expect((await w.settle(a1.connect(b1Address!))).mechanism).toBe('relayed');
    const refused = await w.settle(a2.connect(b2Address!));
    expect(refused.mechanism).toBe('failed');
    expect(refused.error).toBeInstanceOf(RelayError);
    expect(refused.reason).toBe('RELAY_SESSIONS');
    expect(relay.counters()['holepunch']!['relay-refused-out.sessions']).toBeGreaterThanOrEqual(1);
    await w.stopAll();
  });

  it('a relay refuses traffic beyond its bandwidth budget, tells the sender with a typed error, and a disabled relay refuses at once', async () => {
    const w = world();
    const relay = await w.node('relay', 'none', { relay: { sessionBytesPerSecond: 10_000, burstSeconds: 1 } });
    const a = await w.node('a', 'symmetric');
    const b = await w.node('b', 'symmetric');
    const [, bAddress] = await w.introduce(relay, a, b);
    a.heardFrom(bAddress!, relay.localPeer());
    expect((await w.settle(a.connect(bAddress!))).mechanism).toBe('relayed');
    let received = 0;
    b.handle('datagram', (data) => (received += data.length));
    const refusals: RelayError[] = [];
    a.on('relay-refused', (_address, error) => refusals.push(error));
    // 40 KB at once against a 10 KB/s budget with a one-second burst.
    for (let i = 0; i < 40; i++) a.sendDatagram(bAddress!, new Uint8Array(1000));
    await w.clock.advance(500);
    expect(received).toBeGreaterThan(5_000);
    expect(received).toBeLessThanOrEqual(10_000);
    expect(relay.counters()['holepunch']!['dropped.relay-bandwidth']).toBeGreaterThan(25);
    expect(refusals.length).toBeGreaterThanOrEqual(1);
    expect(refusals[0]).toBeInstanceOf(RelayError);
    expect(refusals[0]!.code).toBe('RELAY_BANDWIDTH');
    // The budget refills: a second later traffic flows again.
    await w.clock.advance(2_000);
    const before = received;
    a.sendDatagram(bAddress!, new Uint8Array(1000));
    await w.clock.advance(200);
    expect(received).toBe(before + 1000);

    const stingy = await w.node('stingy', 'none', { relay: false });
    const c = await w.node('c', 'symmetric');
    const d = await w.node('d', 'symmetric');
    const [, dAddress] = await w.introduce(stingy, c, d);
    c.heardFrom(dAddress!, stingy.localPeer());
    expect(await w.settle(c.connect(dAddress!))).toMatchObject({ mechanism: 'failed', reason: 'RELAY_DISABLED' });
    await w.stopAll();
  });

  it('a target may decline relayed sessions', async () => {
    const w = world();
    const relay = await w.node('relay', 'none');
    const a = await w.node('a', 'symmetric');
    const b = await w.node('b', 'symmetric', { acceptRelayed: false });
    const [, bAddress] = await w.introduce(relay, a, b);
    a.heardFrom(bAddress!, relay.localPeer());
    expect(await w.settle(a.connect(bAddress!))).toMatchObject({ mechanism: 'failed', reason: 'RELAY_DECLINED' });
    await w.stopAll();
  });

  it('the relay sees only ciphertext when noise sits above', async () => {
    const w = world();
    const seenByRelay: Uint8Array[] = [];
    const relay = createNode({ identity: Identity.generate(), clock: w.clock, random: 'r', layers: [memoryTransport(w.network), holepunch()] });
    await relay.start();
    relay.handle('datagram', () => undefined);
    const make = async (name: string) => {
      const nat = w.network.createNat({ type: 'symmetric' });
      const n = createNode({
        identity: Identity.generate(),
        clock: w.clock,
        random: name,
        layers: [memoryTransport(w.network, { nat }), holepunch(), noise({ verifyOnThreadPool: false })],
      });
      await n.start();
      return n;
    };
    const a = await make('a');
    const b = await make('b');
    // The relay hears from both (a noise handshake attempt it cannot answer); the trace
    // tells the test each node's public address as the relay saw it.
    const heardAtRelay = async (node: typeof a): Promise<Address> => {
      let from: Address | undefined;
      const stop = w.network.observe((event) => {
        if (event.kind === 'deliver' && event.to.host === relay.localAddress().host) from ??= event.from;
      });
      node.sendDatagram(relay.localAddress(), utf8Encode('hello'));
      await w.clock.advance(100);
      stop();
      return from!;
    };
    await heardAtRelay(a);
    const bAddress = await heardAtRelay(b);
    expect(bAddress).toBeDefined();
    a.heardFrom(bAddress, relay.localPeer());
    // Record what the relay forwards from now on.
    const original = w.network.send.bind(w.network);
    const relayHost = relay.localAddress().host;
    w.network.send = (from: Address, to: Address, data: Uint8Array) => {
      if (from.host === relayHost) seenByRelay.push(data.slice());
      return original(from, to, data);
    };
    const secret = utf8Encode('the quick brown fox jumps over the lazy relay');
    let got: Uint8Array | undefined;
    b.handle('datagram', (data) => (got = data));
    a.sendDatagram(bAddress!, secret);
    await w.clock.runUntil(() => got !== undefined, { maxMs: 30_000, stepMs: 10 });
    w.network.send = original;
    expect(got !== undefined && bytesEqual(got, secret)).toBe(true);
    expect(relay.counters()['holepunch']!['relay-forwarded']).toBeGreaterThan(0);
    const contains = (haystack: Uint8Array, needle: Uint8Array): boolean => {
      outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
        for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
        return true;
      }
      return false;
    };
    expect(seenByRelay.length).toBeGreaterThan(0);
    for (const datagram of seenByRelay) expect(contains(datagram, secret.subarray(0, 12))).toBe(false);
    for (const n of [relay, a, b]) await n.stop();
    await w.clock.advance(1_000);
  });

  it('the receive path survives 100,000 random and mutated datagrams without throwing', async () => {
    const w = world();
    const target = await w.node('target', 'none');
    target.handle('datagram', () => undefined);
    const attacker = createNode({ identity: Identity.fromString('attacker'), clock: w.clock, random: 5, layers: [memoryTransport(w.network)] });
    await attacker.start();
    const random = seededRandom(11);
    const valid = [
      ...punchMessages.map((m) => encodePunchMessage(m)),
      ...relayMessages.map((m) => encodeRelayMessage(m)),
      encodeData(utf8Encode('data')),
      encodeRelayMessage({ type: RELAY_MESSAGE.open, nonce: 1, target: attacker.localAddress() }),
      encodePunchMessage({ type: PUNCH_MESSAGE.punchRequest, nonce: 2, natType: 'cone', target: attacker.localAddress() }),
    ];
    const to = target.localAddress();
    for (let i = 0; i < 100_000; i++) {
      let input: Uint8Array;
      if (random.int(3) === 0) {
        input = new Uint8Array(random.int(40));
        for (let j = 0; j < input.length; j++) input[j] = random.int(256);
      } else {
        input = valid[random.int(valid.length)]!.slice();
        for (let e = 0, edits = random.int(4); e < edits; e++) {
          if (random.int(2) === 0 && input.length > 0) input[random.int(input.length)] = random.int(256);
          else input = input.subarray(0, random.int(input.length + 1));
        }
      }
      attacker.sendDatagram(to, input);
      if (i % 5_000 === 4_999) await w.clock.advance(50);
    }
    await w.clock.advance(10_000);
    const counters = target.counters();
    expect(counters['holepunch']!['handler-errors'] ?? 0).toBe(0);
    expect(counters['memory']!['datagrams-in']).toBe(100_000);
    expect(counters['holepunch']!['dropped']).toBeGreaterThan(10_000);
    await attacker.stop();
    await w.stopAll();
  });
});
