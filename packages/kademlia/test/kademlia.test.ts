import { describe, expect, it } from 'vitest';
import {
  createNode,
  createPeerRecord,
  defineLayer,
  Identity,
  InvalidArgumentError,
  NodeId,
  NotFoundError,
  seededRandom,
  sha256,
  signPeerRecord,
  StateError,
  TimeoutError,
  utf8Encode,
  type Address,
  type Clock,
  type PeerRecord,
} from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport } from '@deccom/core/testing';
import { commonPrefixLength, encodeMessage, kademlia, KademliaError, MESSAGE, type KademliaOptions, type LookupStats } from '../src/index.js';
import { buildNetwork, churn, runLookups, stopAll } from '../src/simulation.js';

/** Settles a promise while the virtual clock runs (at most `maxMs`). */
async function settle<T>(clock: VirtualClock, promise: Promise<T>, maxMs = 30_000): Promise<T> {
  let done = false;
  const observed = promise.then(
    (value) => {
      done = true;
      return value;
    },
    (error: unknown) => {
      done = true;
      throw error;
    },
  );
  observed.catch(() => undefined);
  await clock.runUntil(() => done, { maxMs, stepMs: 10 });
  return observed;
}

function small(options: { latencyMs?: number; maxDatagramSize?: number } = {}) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: options.latencyMs ?? 10 } });
  const nodes: { stop(): Promise<void> }[] = [];
  const make = (identity: Identity, kad: KademliaOptions = {}, transport: { host?: string; port?: number } = {}) => {
    const node = createNode({
      clock,
      identity,
      random: identity.id.hex,
      layers: [memoryTransport(network, { ...transport, ...(options.maxDatagramSize ? { maxDatagramSize: options.maxDatagramSize } : {}) }), kademlia(kad)],
    });
    nodes.push(node);
    return node;
  };
  const stopEverything = async () => {
    for (const node of nodes) await node.stop();
  };
  return { clock, network, make, stopEverything };
}

describe('kademlia on the in-memory network', () => {
  it('100 nodes joined through 5 seeds: every lookup succeeds in few rounds; stop leaves no timer', async () => {
    const sim = await buildNetwork(100);
    const sizes = sim.alive.map((n) => n.getPeers().length);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(20);
    const results = await runLookups(sim, 200);
    expect(results.filter((r) => r.ok)).toHaveLength(200);
    const rounds = results.flatMap((r) => (r.stats ? [r.stats.rounds] : []));
    expect(Math.max(...rounds)).toBeLessThanOrEqual(4);
    await stopAll(sim);
    // Only datagrams still in flight on the simulated wire remain; no node keeps a timer.
    await sim.clock.advance(1000);
    expect(sim.clock.pendingTimers).toBe(0);
  }, 60_000);

  it('finds peers after 25% of the network left without a word and as many joined', async () => {
    const sim = await buildNetwork(300, { seed: 2 });
    const { left, joined } = await churn(sim, 0.25, 3);
    expect([left, joined]).toEqual([75, 75]);
    const results = await runLookups(sim, 300, 9);
    expect(results.filter((r) => r.ok).length / results.length).toBeGreaterThanOrEqual(0.99);
    // Dead contacts that were queried got evicted.
    const evicted = sim.alive.reduce((sum, n) => sum + (n.counters()['kademlia']!['evicted.timeout'] ?? 0), 0);
    expect(evicted).toBeGreaterThan(0);
    await stopAll(sim);
  }, 60_000);

  it('keeps finding peers on lossy links (10% of datagrams lost)', async () => {
    const sim = await buildNetwork(200, { seed: 4, link: { latencyMs: 40, jitterMs: 20, loss: 0.1 } });
    const results = await runLookups(sim, 200, 6);
    expect(results.filter((r) => r.ok).length / results.length).toBeGreaterThanOrEqual(0.99);
    expect(sim.network.stats.dropped['loss']).toBeGreaterThan(1000);
    await stopAll(sim);
  }, 60_000);

  it('rejects a lookup for an absent id with NotFoundError; a stopped node with StateError; a non-id with InvalidArgumentError', async () => {
    const sim = await buildNetwork(30);
    const missing = NodeId.ofString('nobody');
    await expect(settle(sim.clock, sim.alive[5]!.findPeer(missing))).rejects.toBeInstanceOf(NotFoundError);
    await expect(sim.alive[5]!.findPeer('x' as unknown as NodeId)).rejects.toBeInstanceOf(InvalidArgumentError);
    for (const timeoutMs of [Number.NaN, -1, 2 ** 31]) {
      await expect(sim.alive[5]!.findPeer(missing, { timeoutMs })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(sim.alive[5]!.lookupTopic(new Uint8Array(32), { timeoutMs })).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    // Its own id is itself.
    expect((await sim.alive[5]!.findPeer(sim.alive[5]!.id)).id.equals(sim.alive[5]!.id)).toBe(true);
    const pending = sim.alive[6]!.findPeer(missing);
    await stopAll(sim);
    await expect(pending).rejects.toMatchObject({ code: 'STOPPED' });
    await expect(sim.nodes[5]!.findPeer(missing)).rejects.toBeInstanceOf(StateError);
    await expect(sim.nodes[5]!.findPeer(missing)).rejects.toMatchObject({ code: 'STOPPED' });
  }, 30_000);

  it('shares one search between concurrent lookups of one id; aborts and deadlines reject per caller', async () => {
    const stats: LookupStats[] = [];
    const sim = await buildNetwork(60, { kademlia: { onLookup: (s) => void stats.push(s) } });
    const from = sim.alive[7]!;
    const target = sim.alive.find((n) => n !== from && !from.getPeer(n.id))!;
    expect(target).toBeDefined();
    const before = stats.length;
    const [a, b] = await settle(sim.clock, Promise.all([from.findPeer(target.id), from.findPeer(target.id)]));
    expect(a.id.equals(target.id) && b.id.equals(target.id)).toBe(true);
    expect(stats.slice(before).filter((s) => s.kind === 'node' && s.target === target.id.hex)).toHaveLength(1);

    const controller = new AbortController();
    const aborted = sim.alive[9]!.findPeer(NodeId.ofString('x'), { signal: controller.signal });
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(sim.alive[9]!.findPeer(NodeId.ofString('y'), { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' });
    // A deadline shorter than one round trip: TimeoutError, and the abandoned search stops.
    await expect(settle(sim.clock, sim.alive[9]!.findPeer(NodeId.ofString('z'), { timeoutMs: 5 }))).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(sim.alive[9]!.counters()['kademlia']!['lookups-abandoned']).toBe(2);
    expect(sim.alive[9]!.describe().layers[1]!.status).toMatchObject({ lookups: 0 });
    await stopAll(sim);
  }, 30_000);

  it('bounds concurrent lookups (LOOKUP_LIMIT)', async () => {
    const sim = await buildNetwork(20, { kademlia: { maxConcurrentLookups: 2 } });
    const node = sim.alive[3]!;
    const first = node.findPeer(NodeId.ofString('a'));
    const second = node.findPeer(NodeId.ofString('b'));
    const third = node.findPeer(NodeId.ofString('c'));
    await expect(third).rejects.toBeInstanceOf(KademliaError);
    await expect(third).rejects.toMatchObject({ code: 'LOOKUP_LIMIT' });
    await expect(settle(sim.clock, Promise.allSettled([first, second]))).resolves.toHaveLength(2);
    await stopAll(sim);
  }, 30_000);

  it('announces topics on the closest nodes and finds the providers; limits, renewals and expiry', async () => {
    const sim = await buildNetwork(80, { kademlia: { announceTtlSeconds: 60 } });
    const topic = sha256(utf8Encode('chat room 1'));
    const providers = [sim.alive[3]!, sim.alive[40]!, sim.alive[77]!];
    const stored = await settle(sim.clock, Promise.all(providers.map((p) => p.announce(topic))));
    for (const count of stored) expect(count).toBeGreaterThanOrEqual(15);
    const found = await settle(sim.clock, sim.alive[20]!.lookupTopic(topic));
    expect(new Set(found.map((p) => p.id.hex))).toEqual(new Set(providers.map((p) => p.id.hex)));
    const one = await settle(sim.clock, sim.alive[21]!.lookupTopic(topic, { limit: 1 }));
    expect(one).toHaveLength(1);
    // Renewed at half the TTL: still found after several lifetimes.
    await sim.clock.advance(200_000);
    expect(await settle(sim.clock, sim.alive[22]!.lookupTopic(topic))).toHaveLength(3);
    // Unannounce withdraws the stored copies at once (not at their TTL): one provider
    // unannounces, another stops; only the third is found a second later.
    providers[0]!.unannounce(topic);
    await providers[1]!.stop();
    await sim.clock.advance(1_000);
    const left = await settle(sim.clock, sim.alive[23]!.lookupTopic(topic));
    expect(left.map((p) => p.id.hex)).toEqual([providers[2]!.id.hex]);
    const withdrawalsIn = sim.alive.reduce((sum, n) => sum + (n.counters()['kademlia']?.['withdrawals-in'] ?? 0), 0);
    expect(withdrawalsIn).toBeGreaterThanOrEqual(2 * 15);
    // A withdrawal from another address than the announcement's is refused.
    const storer = sim.alive.find((n) => n !== providers[2] && n.counters()['kademlia']?.['announcements'] === 1)!;
    expect(storer).toBeDefined();
    const forged = encodeMessage({ type: MESSAGE.withdraw, topic, peer: providers[2]!.localPeer() });
    sim.network.send(sim.alive[30]!.localAddress(), storer.localAddress(), new Uint8Array([0, ...forged]));
    await sim.clock.advance(100);
    expect(storer.counters()['kademlia']!['dropped.withdraw-unknown']).toBe(1);
    expect((await settle(sim.clock, sim.alive[24]!.lookupTopic(topic))).map((p) => p.id.hex)).toEqual([providers[2]!.id.hex]);
    // The last one unannounces as well: nothing is found.
    providers[2]!.unannounce(topic);
    await sim.clock.advance(1_000);
    expect(await settle(sim.clock, sim.alive[25]!.lookupTopic(topic))).toEqual([]);
    await expect(sim.alive[1]!.announce(new Uint8Array(5))).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(sim.alive[1]!.lookupTopic(topic, { limit: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await stopAll(sim);
  }, 30_000);

  it('bounds the announcements it stores', async () => {
    const sim = await buildNetwork(12, { kademlia: { maxAnnouncements: 3, maxProvidersPerTopic: 2 } });
    const topics = Array.from({ length: 6 }, (_, i) => sha256(utf8Encode(`topic ${i}`)));
    await settle(sim.clock, Promise.all(topics.map((t, i) => sim.alive[i]!.announce(t))));
    await settle(sim.clock, Promise.all(sim.alive.slice(6).map((n) => n.announce(topics[0]!))));
    for (const node of sim.alive) expect((node.describe().layers[1]!.status as { announcements: number }).announcements).toBeLessThanOrEqual(3);
    const full = sim.alive.reduce((sum, n) => sum + (n.counters()['kademlia']!['dropped.announcements-full'] ?? 0), 0);
    expect(full).toBeGreaterThan(0);
    await stopAll(sim);
  }, 30_000);

  it('asks the approval hook before a peer joins, and reports joins as events', async () => {
    const { clock, network } = small();
    const gate = defineLayer({
      type: 'gate',
      takes: ['approve'],
      create: () => ({ takes: { approve: async (peer: PeerRecord) => peer.identity.toString() !== 'mallory' } }),
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
    // Mallory keeps talking: asked once, then remembered as rejected for a while.
    expect(seed.counters()['kademlia']!['rejected-peers']).toBe(1);
    for (const n of [seed, ...others]) await n.stop();
  });

  it('a stall of this process is not counted as its contacts\' silence (request deadlines wait a grace when late)', async () => {
    // A blocked process sees its request timers fire late, all at once, with answers
    // unread in the socket. The virtual network cannot hold an answer unread; here the
    // answer lands just after the deadline (round trip 440 ms, timeout 400 ms) while the
    // node's clock jumped 5 s (the stall): the deadline sees it is late and gives the
    // answer its grace. Without it the seed would be evicted (maxFailures 1).
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 10 } });
    let stall = 0;
    const stalled: Clock = { now: () => clock.now() + stall, setTimeout: (callback, ms) => clock.setTimeout(callback, ms), clearTimeout: (handle) => clock.clearTimeout(handle) };
    const seed = createNode({ clock, identity: Identity.fromString('seed'), layers: [memoryTransport(network), kademlia()] });
    await seed.start();
    const busy = createNode({ clock: stalled, identity: Identity.fromString('busy'), layers: [memoryTransport(network), kademlia({ bootstrap: [seed.localAddress()], requestTimeoutMs: 400, maxFailures: 1 })] });
    await busy.start();
    await clock.advance(3_000);
    expect(busy.getPeer(seed.id)).toBeDefined();
    const before = busy.counters()['kademlia']!['request-timeouts'] ?? 0;
    network.setDefaultLink({ latencyMs: 220 });
    const lookup = busy.findPeer(NodeId.ofString('nobody'), { timeoutMs: 5_000 }).catch(() => undefined);
    await clock.advance(1);
    stall += 5_000;
    // The seed answered at 220 ms on the slow link; later requests go at the usual speed.
    await clock.advance(299);
    network.setDefaultLink({ latencyMs: 10 });
    await clock.advance(3_000);
    await lookup;
    expect((busy.counters()['kademlia']!['request-timeouts'] ?? 0) - before).toBe(0);
    expect(busy.counters()['kademlia']!['evicted.timeout'] ?? 0).toBe(0);
    expect(busy.getPeer(seed.id)).toBeDefined();
    await busy.stop();
    await seed.stop();
  });

  it('findPeer({ fresh: true }) asks a known peer itself; a silent one is looked up after requestTimeoutMs; stop settles it', async () => {
    const sim = await buildNetwork(20, { link: { latencyMs: 5 } });
    const from = sim.alive[3]!;
    const known = sim.alive.find((n) => n !== from && from.getPeer(n.id) !== undefined)!;
    const asked = () => from.counters()['kademlia']!['fresh-confirmations'] ?? 0;
    const lookups = () => from.counters()['kademlia']!['lookups'] ?? 0;
    const before = lookups();
    // Known and answering: one question to the peer, no lookup.
    const fresh = await settle(sim.clock, from.findPeer(known.id, { fresh: true }));
    expect(fresh.id.equals(known.id)).toBe(true);
    expect(asked()).toBe(1);
    expect(lookups()).toBe(before);
    // Known but silent: the question times out, then a lookup runs (others may hold a newer
    // record). Here they only know the same silent address: not found, never the stale record.
    sim.network.unbind(known.localAddress());
    const startedAt = sim.clock.now();
    await expect(settle(sim.clock, from.findPeer(known.id, { fresh: true }))).rejects.toBeInstanceOf(NotFoundError);
    expect(sim.clock.now() - startedAt).toBeGreaterThanOrEqual(1_000);
    expect(asked()).toBe(2);
    expect(lookups()).toBeGreaterThan(before);
    // Without fresh: the table answers at once.
    const other = sim.alive.find((n) => n !== from && n !== known && from.getPeer(n.id) !== undefined)!;
    expect((await from.findPeer(other.id)).id.equals(other.id)).toBe(true);
    expect(asked()).toBe(2);
    // A question pending at stop settles: STOPPED.
    const pending = from.findPeer(other.id, { fresh: true });
    await stopAll(sim);
    await expect(pending).rejects.toMatchObject({ code: 'STOPPED' });
  });

  it('findPeer({ fresh: true }) finds a peer that restarted at another address, and keeps to timeoutMs', async () => {
    const sim = await buildNetwork(30, { link: { latencyMs: 5 } });
    const from = sim.alive[3]!;
    const index = sim.nodes.findIndex((n) => n !== from && !sim.seeds.includes(n) && from.getPeer(n.id) !== undefined);
    const known = sim.nodes[index]!;
    const where = (address: Address | undefined) => (address === undefined ? undefined : `${address.host}:${address.port}`);
    const oldAddress = where(known.localAddress());
    // The same identity comes back on a new port and joins through a seed; `from` still
    // holds the old address.
    await known.stop();
    sim.alive = sim.alive.filter((n) => n !== known);
    // While it joins, `from` cannot hear it (else `from` would learn the new address first hand).
    const host = sim.network.allocateHost();
    sim.network.partition([from.localAddress().host], [host]);
    const back = createNode({
      clock: sim.clock,
      random: 99,
      identity: Identity.fromString(`node-${index}`),
      layers: [memoryTransport(sim.network, { host }), kademlia({ bootstrap: [sim.seeds[0]!.localAddress()] })],
    });
    expect(back.id.equals(known.id)).toBe(true);
    await back.start();
    await sim.clock.advance(3_000);
    sim.network.heal();
    expect(where(back.localAddress())).not.toBe(oldAddress);
    expect(where(from.getPeer(known.id)?.address)).toBe(oldAddress);
    // Without fresh: the stale record. With fresh: the peer where it answers now.
    expect(where((await from.findPeer(known.id)).address)).toBe(oldAddress);
    const found = await settle(sim.clock, from.findPeer(known.id, { fresh: true }));
    expect(where(found.address)).toBe(where(back.localAddress()));
    expect(where(from.getPeer(known.id)?.address)).toBe(where(back.localAddress()));
    // A silent peer and a budget shorter than requestTimeoutMs (1,000 ms): TimeoutError at the budget.
    await back.stop();
    const startedAt = sim.clock.now();
    await expect(settle(sim.clock, from.findPeer(known.id, { fresh: true, timeoutMs: 600 }))).rejects.toBeInstanceOf(TimeoutError);
    expect(sim.clock.now() - startedAt).toBeLessThanOrEqual(700);
    await stopAll(sim);
  });

  it('passes application datagrams through, framed apart from its own messages', async () => {
    const sim = await buildNetwork(3, { link: { latencyMs: 5 } });
    const [a, b] = sim.alive as [(typeof sim.alive)[0], (typeof sim.alive)[0]];
    const got: number[][] = [];
    b.handle('datagram', (data) => void got.push([...data]));
    // Bytes that look exactly like a Kademlia control message are still application data.
    a.sendDatagram(b.localAddress(), Uint8Array.of(0x01, 0x08, 0x01, 0x03, 0, 0));
    await sim.clock.advance(100);
    expect(got).toEqual([[0x01, 0x08, 0x01, 0x03, 0, 0]]);
    expect(b.maxDatagramSize()).toBe(1400 - 1);
    await stopAll(sim);
  });

  it('works with signed Ed25519 records split over small datagrams, and drops forged ones', async () => {
    const { clock, make, stopEverything, network } = small({ maxDatagramSize: 400 });
    const identities = Array.from({ length: 40 }, (_, i) => Identity.fromSeed(new Uint8Array(32).fill(i + 1)));
    const seed = make(identities[0]!, { requireSignedRecords: true });
    await seed.start();
    const nodes = [seed];
    for (const identity of identities.slice(1)) {
      const node = make(identity, { bootstrap: [seed.localAddress()], requireSignedRecords: true });
      await node.start();
      nodes.push(node);
    }
    await clock.advance(5000);
    for (const node of nodes) for (const peer of node.getPeers()) expect(peer.signature).toBeDefined();
    const finds = nodes.slice(1, 11).map((node, i) => node.findPeer(nodes[39 - i]!.id));
    const found = await settle(clock, Promise.all(finds));
    found.forEach((peer, i) => expect(peer.id.equals(nodes[39 - i]!.id)).toBe(true));

    // An introduction whose signature does not match its address is dropped, never added.
    const mallory = Identity.fromSeed(new Uint8Array(32).fill(99));
    const good = signPeerRecord(createPeerRecord(mallory.public, { host: '10.200.0.1', port: 5 }), mallory);
    const forged: PeerRecord = { ...good, address: { host: '10.200.0.2', port: 5 } };
    nodes[5]!.addPeer(forged);
    expect(nodes[5]!.getPeer(mallory.id)).toBeUndefined();
    expect(nodes[5]!.counters()['kademlia']!['dropped.bad-signature']).toBe(1);
    // Unsigned Ed25519 records are refused when signatures are required.
    nodes[5]!.addPeer(createPeerRecord(mallory.public, { host: '10.200.0.1', port: 5 }));
    expect(nodes[5]!.counters()['kademlia']!['dropped.unsigned-record']).toBe(1);
    expect(network.stats.sent).toBeGreaterThan(0);
    await stopEverything();
  }, 30_000);

  it('keeps a signed record when someone else sends it from another address', async () => {
    const { clock, make, network, stopEverything } = small();
    const alice = make(Identity.fromSeed(new Uint8Array(32).fill(1)));
    const bob = make(Identity.fromSeed(new Uint8Array(32).fill(2)));
    await alice.start();
    await bob.start();
    bob.addPeer(alice.localPeer());
    expect(bob.getPeer(alice.id)?.address).toEqual(alice.localAddress());
    // Mallory replays Alice's signed introduction from her own address.
    const mallory = network.bind(network.allocateHost(), 0, { deliver: () => {} });
    const replay = encodeMessage({ type: MESSAGE.introduce, peer: alice.localPeer() });
    network.send(mallory, bob.localAddress(), new Uint8Array([0, ...replay]));
    await clock.advance(100);
    expect(bob.getPeer(alice.id)?.address).toEqual(alice.localAddress());
    expect(bob.getPeer(alice.id)?.signature).toBeDefined();
    // A node not yet known that writes from another address than it signed is recorded where it writes from, unsigned.
    const carol = Identity.fromSeed(new Uint8Array(32).fill(3));
    const carolRecord = signPeerRecord(createPeerRecord(carol.public, { host: '192.168.1.10', port: 4000 }), carol);
    network.send(mallory, bob.localAddress(), new Uint8Array([0, ...encodeMessage({ type: MESSAGE.introduce, peer: carolRecord })]));
    await clock.advance(100);
    expect(bob.getPeer(carol.id)?.address).toEqual(mallory);
    expect(bob.getPeer(carol.id)?.signature).toBeUndefined();
    await stopEverything();
  });

  it('calls heardFrom below for peers an answer introduces', async () => {
    const { clock, network } = small();
    const heard: [string, string][] = [];
    const spy = defineLayer({
      type: 'spy',
      needs: ['sendDatagram', 'maxDatagramSize'],
      takes: ['datagram'],
      provides: ['heardFrom', 'sendDatagram', 'maxDatagramSize'],
      offers: { datagram: 'exclusive' },
      create: (ctx) => ({
        provides: {
          heardFrom: (address: Address, introducer: PeerRecord) => void heard.push([`${address.host}:${address.port}`, introducer.identity.toString()]),
          sendDatagram: (to: Address, data: Uint8Array) => ctx.below.sendDatagram(to, data),
          maxDatagramSize: () => ctx.below.maxDatagramSize(),
        },
        takes: { datagram: (data: Uint8Array, from: Address) => ctx.slots.datagram?.(data, from) },
      }),
    });
    const seed = createNode({ clock, identity: Identity.fromString('s'), layers: [memoryTransport(network), kademlia()] });
    await seed.start();
    const members = ['m1', 'm2', 'm3'].map((name) => createNode({ clock, identity: Identity.fromString(name), layers: [memoryTransport(network), kademlia({ bootstrap: [seed.localAddress()] })] }));
    for (const m of members) await m.start();
    await clock.advance(2000);
    const watcher = createNode({ clock, identity: Identity.fromString('w'), layers: [memoryTransport(network), spy, kademlia({ bootstrap: [seed.localAddress()] })] });
    await watcher.start();
    await clock.advance(2000);
    expect(heard.some(([, introducer]) => introducer === 's')).toBe(true);
    expect(new Set(heard.map(([address]) => address))).toEqual(new Set(members.map((m) => `${m.localAddress().host}:${m.localAddress().port}`)));
    for (const n of [seed, ...members, watcher]) await n.stop();
  });

  it('bootstraps again while its table is empty, and refreshes buckets with no lookup for refreshIntervalMs', async () => {
    const { clock, make, stopEverything } = small();
    const seedAddress = { host: '10.50.0.1', port: 7000 };
    const early = make(Identity.fromString('early'), { bootstrap: [seedAddress], bootstrapRetryMs: 2000, refreshIntervalMs: 60_000 });
    await early.start();
    await clock.advance(5000);
    expect(early.getPeers()).toEqual([]);
    expect(early.counters()['kademlia']!['rebootstraps']).toBeGreaterThanOrEqual(1);
    const seed = make(Identity.fromString('seed'), {}, seedAddress);
    await seed.start();
    const others = Array.from({ length: 5 }, (_, i) => make(Identity.fromString(`o${i}`), { bootstrap: [seedAddress] }));
    for (const o of others) await o.start();
    await clock.advance(2500);
    expect(early.getPeers().length).toBeGreaterThanOrEqual(5);
    const refreshesBefore = early.counters()['kademlia']!['refreshes'] ?? 0;
    await clock.advance(120_000);
    expect(early.counters()['kademlia']!['refreshes']).toBeGreaterThan(refreshesBefore);
    await stopEverything();
  });

  it('pings the least-recently-seen contact of a full bucket, and evicts it only if it does not answer', async () => {
    for (const aliveOldest of [false, true]) {
      const { clock, make, stopEverything, network } = small();
      const owner = make(Identity.fromString('owner'), { k: 1, evictionPingAfterMs: 1, requestTimeoutMs: 500 });
      await owner.start();
      // Two peers in the far half of the id space (first bit unlike the owner's): one bucket, k = 1.
      const far = Array.from({ length: 50 }, (_, i) => Identity.fromString(`far-${i}`)).filter((id) => commonPrefixLength(id.id.bytes, owner.id.bytes) === 0);
      const newcomer = make(far[1]!);
      await newcomer.start();
      let oldestAddress: Address;
      if (aliveOldest) {
        const oldest = make(far[0]!);
        await oldest.start();
        oldestAddress = oldest.localAddress();
      } else {
        oldestAddress = { host: network.allocateHost(), port: 4000 };
      }
      const events: string[] = [];
      owner.on('peer-connect', (p) => void events.push(`+${p.identity.toString()}`));
      owner.on('peer-disconnect', (p) => void events.push(`-${p.identity.toString()}`));
      owner.addPeer(createPeerRecord(far[0]!.public, oldestAddress));
      await clock.advance(10);
      owner.addPeer(newcomer.localPeer());
      await clock.advance(2000);
      expect(owner.counters()['kademlia']!['eviction-pings']).toBe(1);
      if (aliveOldest) {
        expect(events).toEqual([`+${far[0]!.toString()}`]);
        expect(owner.getPeer(far[0]!.id)).toBeDefined();
      } else {
        expect(events).toEqual([`+${far[0]!.toString()}`, `-${far[0]!.toString()}`, `+${far[1]!.toString()}`]);
        expect(owner.getPeer(newcomer.id)).toBeDefined();
        expect(owner.counters()['kademlia']!['evicted.unresponsive']).toBe(1);
      }
      await stopEverything();
    }
  });

  it('restarts after a stop and rejoins', async () => {
    const sim = await buildNetwork(20);
    const node = sim.alive[10]!;
    await node.stop();
    await node.start();
    await sim.clock.advance(3000);
    const target = sim.alive[15]!;
    expect((await settle(sim.clock, node.findPeer(target.id))).id.equals(target.id)).toBe(true);
    await stopAll(sim);
  });

  it('validates its options', () => {
    expect(() => kademlia({ k: 0 })).toThrow(InvalidArgumentError);
    expect(() => kademlia({ k: 256 })).toThrow(/k must be/);
    expect(() => kademlia({ alpha: 1.5 })).toThrow(/alpha/);
    expect(() => kademlia({ requestTimeoutMs: -1 })).toThrow(/requestTimeoutMs/);
    expect(() => kademlia({ bootstrap: [{ host: '10.0.0.1', port: 0 }] })).toThrow(/bootstrap/);
    expect(() => kademlia({ maxMessageBytes: 100 })).toThrow(/maxMessageBytes/);
    expect(() => kademlia({ announceTtlSeconds: 0 })).toThrow(/announceTtlSeconds/);
  });

  it('a node fed 100,000 garbage datagrams keeps serving lookups', async () => {
    const sim = await buildNetwork(40, { link: { latencyMs: 10 } });
    const victim = sim.alive[3]!;
    const random = seededRandom(77);
    const attacker = sim.network.bind(sim.network.allocateHost(), 0, { deliver: () => {} });
    const valid = [
      Uint8Array.of(0x01, 0x08, 0x01, 0x03, 0, 0, 0, 1, ...new Uint8Array(32), ...[1, 1, 3, 120, 121, 122, 10, 0, 0, 9, 0, 7]),
      Uint8Array.of(0x01, 0x08, 0x01, 0x05, 0, 0, 0, 1, 0, 1, 0, 1, ...[1, 1, 3, 120, 121, 122, 10, 0, 0, 9, 0, 7]),
      Uint8Array.of(0x01, 0x08, 0x01, 0x07, 0, 0, 0, 1),
      Uint8Array.of(0x01, 0x08, 0x01, 0x01, 1, 1, 3, 120, 121, 122, 10, 0, 0, 9, 0, 7),
    ];
    for (let i = 0; i < 100_000; i++) {
      let bytes: Uint8Array;
      if (random.int(4) === 0) bytes = random.bytes(random.int(80));
      else {
        bytes = valid[random.int(valid.length)]!.slice();
        const flips = 1 + random.int(3);
        for (let f = 0; f < flips; f++) {
          const at = 3 + random.int(bytes.length - 3);
          bytes[at] = bytes[at]! ^ (1 << random.int(8));
        }
        if (random.int(4) === 0) bytes = bytes.subarray(0, random.int(bytes.length));
      }
      // Framed as the memory transport's DATA so it reaches the Kademlia layer.
      sim.network.send(attacker, victim.localAddress(), new Uint8Array([0, ...bytes]));
      if (i % 10_000 === 9_999) await sim.clock.advance(20);
    }
    await sim.clock.advance(1000);
    const counters = victim.counters();
    expect(counters['kademlia']!['dropped']).toBeGreaterThan(10_000);
    expect(counters['kademlia']!['handler-errors'] ?? 0).toBe(0);
    expect(counters['kademlia']!['dropped.error'] ?? 0).toBe(0);
    const results = await runLookups({ ...sim, alive: [victim, ...sim.alive.slice(10, 20)] }, 40);
    expect(results.every((r) => r.ok)).toBe(true);
    const fromOthers = await settle(sim.clock, Promise.all(sim.alive.slice(20, 30).map((n) => n.findPeer(victim.id))));
    expect(fromOthers.every((p) => p.id.equals(victim.id))).toBe(true);
    await stopAll(sim);
  }, 60_000);
});
