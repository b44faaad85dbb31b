import { describe, expect, it } from 'vitest';
import { createNode, Identity, seededRandom, WireError, createPeerRecord, NodeId, decodeFrame, toHex } from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport } from '@deccom/core/testing';
import { decodeMessage, encodeFind, encodeFound, encodeNotice, encodePull, encodePullResponse, encodeRecordMessage, biggossip, BIGGOSSIP_PROTOCOL, MESSAGE, type BigGossipOptions } from '../src/index.js';

async function network(size: number, options: BigGossipOptions = {}, seed = 1) {
  const clock = new VirtualClock(0, 1);
  const net = new MemoryNetwork({ clock, random: seededRandom(seed), defaultLink: { latencyMs: 50, jitterMs: 10 } });
  const make = (i: number, bootstrap: { host: string; port: number }[]) =>
    createNode({ clock, random: i, identity: Identity.fromString(`b-${i}`), layers: [memoryTransport(net), biggossip({ ...options, bootstrap })] });
  const first = make(0, []);
  await first.start();
  const nodes = [first];
  for (let i = 1; i < size; i++) {
    const node = make(i, [first.localAddress()]);
    await node.start();
    nodes.push(node);
  }
  return { clock, net, nodes };
}

function connected(nodes: { id: NodeId; getPeers(): { id: NodeId }[] }[]): boolean {
  const index = new Map(nodes.map((n, i) => [n.id.hex, i]));
  const adjacency = nodes.map(() => new Set<number>());
  nodes.forEach((n, i) =>
    n.getPeers().forEach((p) => {
      const j = index.get(p.id.hex);
      if (j !== undefined) {
        adjacency[i]!.add(j);
        adjacency[j]!.add(i);
      }
    }),
  );
  const seen = new Set([0]);
  const queue = [0];
  while (queue.length) {
    for (const j of adjacency[queue.pop()!]!) {
      if (!seen.has(j)) {
        seen.add(j);
        queue.push(j);
      }
    }
  }
  return seen.size === nodes.length;
}

describe('biggossip', () => {
  it('100 nodes from one seed: connected membership, every node knows at least 5, every FIND succeeds', async () => {
    const { clock, nodes } = await network(100);
    await clock.runUntil(() => connected(nodes) && nodes.every((n) => n.getPeers().length >= 5), { maxMs: 60_000, stepMs: 1000 });
    expect(connected(nodes)).toBe(true);
    expect(Math.min(...nodes.map((n) => n.getPeers().length))).toBeGreaterThanOrEqual(5);
    const random = seededRandom(4);
    let found = 0;
    for (let i = 0; i < 50; i++) {
      const from = nodes[random.int(100)]!;
      let to = nodes[random.int(100)]!;
      while (to === from) to = nodes[random.int(100)]!;
      const result = from.findPeer(to.id).then((p) => p.id.equals(to.id));
      await clock.advance(2000);
      if (await result) found++;
    }
    expect(found).toBe(50);
    for (const timeoutMs of [Number.NaN, -1, 2 ** 31]) {
      await expect(nodes[0]!.findPeer(nodes[1]!.id, { timeoutMs })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    for (const n of nodes) await n.stop();
  }, 60_000);

  it('concurrent finds of one peer share one flood; each caller keeps its deadline and signal; STOPPED after stop', async () => {
    const { clock, nodes } = await network(60, {}, 3);
    await clock.runUntil(() => connected(nodes), { maxMs: 60_000, stepMs: 1000 });
    const from = nodes[5]!;
    const to = nodes.find((n) => n !== from && from.getPeer(n.id) === undefined)!;
    expect(to).toBeDefined();
    const counter = (name: string) => from.counters()['biggossip']![name] ?? 0;
    // FIND datagrams received anywhere: taken, or dropped as a flood already seen.
    const findsReceived = () => nodes.reduce((sum, n) => sum + (n.counters()['biggossip']!['finds-in'] ?? 0) + (n.counters()['biggossip']!['dropped.duplicate-flood'] ?? 0), 0);
    const receivedBefore = findsReceived();
    const findsBefore = counter('finds');
    const controller = new AbortController();
    const aborted = from.findPeer(to.id, { signal: controller.signal });
    const short = from.findPeer(to.id, { timeoutMs: 1 });
    aborted.catch(() => undefined);
    short.catch(() => undefined);
    const callers = Array.from({ length: 20 }, () => from.findPeer(to.id));
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' });
    await clock.advance(5);
    await expect(short).rejects.toMatchObject({ code: 'PEER_NOT_FOUND' });
    await clock.advance(2_000);
    const found = await Promise.all(callers);
    expect(found.every((peer) => peer.id.equals(to.id))).toBe(true);
    expect(counter('finds') - findsBefore).toBe(1);
    expect(counter('finds-shared')).toBe(21);
    expect(findsReceived()).toBeGreaterThan(receivedBefore);
    // A peer nobody knows: the flood goes everywhere. 20 callers cost what one costs.
    const floodCost = async (callers: number, name: string) => {
      const before = findsReceived();
      const results = Array.from({ length: callers }, () => from.findPeer(NodeId.ofString(name), { timeoutMs: 3_000 }).catch((error: unknown) => error));
      await clock.advance(3_000);
      for (const result of await Promise.all(results)) expect(result).toMatchObject({ code: 'PEER_NOT_FOUND' });
      return findsReceived() - before;
    };
    const one = await floodCost(1, 'nobody-1');
    const twenty = await floodCost(20, 'nobody-2');
    expect(one).toBeGreaterThan(20);
    expect(twenty).toBeLessThan(one * 5);
    for (const n of nodes) await n.stop();
    await expect(from.findPeer(to.id)).rejects.toMatchObject({ code: 'STOPPED' });
  }, 60_000);

  it('a node that leaves is dropped by every node within 3 intervals; a crashed one too', async () => {
    const { clock, net, nodes } = await network(60, { intervalMs: 1000 }, 2);
    await clock.advance(20_000);
    const leaving = nodes[10]!;
    const knowers = () => nodes.filter((n) => n !== leaving && n.state === 'started' && n.getPeer(leaving.id));
    expect(knowers().length).toBeGreaterThan(3);
    await leaving.stop();
    await clock.advance(3000);
    expect(knowers()).toEqual([]);
    // A crash: the node vanishes from the network without a word.
    const crashed = nodes[20]!;
    const crashKnowers = () => nodes.filter((n) => n !== crashed && n.state === 'started' && n.getPeer(crashed.id));
    expect(crashKnowers().length).toBeGreaterThan(3);
    net.partition([crashed.localAddress().host], nodes.filter((n) => n !== crashed && n.state === 'started').map((n) => n.localAddress().host));
    // Detection needs one random ping to reach it first; after that SUSPECT checks take one interval.
    await clock.runUntil(() => crashKnowers().length === 0, { maxMs: 30_000, stepMs: 500 });
    expect(crashKnowers()).toEqual([]);
    for (const n of nodes) await n.stop();
  }, 60_000);

  it('does not let a relayed LEAVE evict a live node', async () => {
    const { clock, net, nodes } = await network(20, {}, 3);
    await clock.advance(15_000);
    const victim = nodes[5]!;
    const liar = net.bind(net.allocateHost(), 0, { deliver: () => {} });
    for (const n of nodes) net.send(liar, n.localAddress(), new Uint8Array([0, ...encodeNotice(MESSAGE.leave, seededRandom(1).bytes(8), 8, victim.id.bytes)]));
    await clock.advance(3000);
    expect(nodes.filter((n) => n !== victim && n.getPeer(victim.id)).length).toBeGreaterThan(3);
    for (const n of nodes) await n.stop();
  }, 30_000);

  it('PUSHes from an address nobody knows are taken once an interval: a flood of made-up records cannot fill the membership', async () => {
    const { clock, net, nodes } = await network(30, {}, 2);
    await clock.advance(20_000);
    const victim = nodes[5]!;
    const honest = new Set(nodes.map((n) => n.id.hex));
    const honestBefore = victim.getPeers().filter((p) => honest.has(p.id.hex)).length;
    const attacker = net.bind(net.allocateHost(), 0, { deliver: () => {} });
    for (let i = 0; i < 1_500; i++) {
      const record = createPeerRecord(Identity.fromString(`fake-${i}`).public, { host: `10.200.0.${1 + (i % 250)}`, port: 1_000 + i });
      net.send(attacker, victim.localAddress(), new Uint8Array([0, ...encodeRecordMessage(MESSAGE.push, record)]));
    }
    await clock.advance(100);
    const peers = victim.getPeers();
    expect(peers.filter((p) => !honest.has(p.id.hex)).length).toBeLessThanOrEqual(1);
    expect(peers.filter((p) => honest.has(p.id.hex)).length).toBeGreaterThanOrEqual(honestBefore);
    expect(victim.counters()['biggossip']!['dropped.unsolicited-push']).toBeGreaterThanOrEqual(1_499);
    for (const n of nodes) await n.stop();
  }, 30_000);

  it('wire: round trips, golden bytes, 100,000 fuzzed inputs per type', () => {
    const alice = createPeerRecord(Identity.fromString('alice').public, { host: '10.0.0.1', port: 1 });
    const id8 = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    const valid = [
      encodeRecordMessage(MESSAGE.introduce, alice),
      encodeRecordMessage(MESSAGE.push, alice),
      encodePull(5, alice),
      ...encodePullResponse(6, [alice, alice], 1400),
      encodeFind(id8, NodeId.ofString('t').bytes, 4, alice),
      encodeFound(id8, alice),
      encodeNotice(MESSAGE.leave, id8, 3, NodeId.ofString('t').bytes),
      encodeNotice(MESSAGE.suspect, id8, 3, NodeId.ofString('t').bytes),
    ].map((b) => decodeFrame(b, BIGGOSSIP_PROTOCOL) as { kind: 'control'; type: number; body: Uint8Array });
    expect(toHex(encodeNotice(MESSAGE.leave, id8, 3, new Uint8Array(32)))).toBe(`010a0107${toHex(id8)}03${'00'.repeat(32)}`);
    for (const v of valid) expect(decodeMessage(v.type, v.body).type).toBe(v.type);
    const random = seededRandom(8);
    for (const type of Object.values(MESSAGE)) {
      const samples = valid.filter((v) => v.type === type).map((v) => v.body);
      for (let i = 0; i < 100_000; i++) {
        let input = samples.length && random.int(2) ? samples[random.int(samples.length)]!.slice() : random.bytes(random.int(90));
        if (input.length) {
          const at = random.int(input.length);
          input[at] = input[at]! ^ (1 << random.int(8));
        }
        if (random.int(3) === 0) input = input.subarray(0, random.int(input.length + 1));
        try {
          decodeMessage(type, input);
        } catch (error) {
          if (!(error instanceof WireError)) throw error;
        }
      }
    }
  }, 60_000);
});
