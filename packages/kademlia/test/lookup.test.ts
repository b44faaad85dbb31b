import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createPeerRecord, Identity, NodeId, seededRandom, type PeerRecord } from '@deccom/core';
import { compareDistance, Lookup, RoutingTable, type Candidate } from '../src/index.js';

const record = (name: string): PeerRecord => createPeerRecord(Identity.fromString(name).public, { host: '10.0.0.1', port: 1000 });
const POOL = Array.from({ length: 400 }, (_, i) => record(`node-${i}`));

interface Network {
  peers: PeerRecord[];
  tables: Map<string, RoutingTable>;
}

/** A network where every node's table was filled from every other node (bucket limits apply). */
function network(size: number, k: number, seed: number): Network {
  const random = seededRandom(seed);
  const peers = POOL.slice(0, size);
  const tables = new Map<string, RoutingTable>();
  for (const peer of peers) {
    const table = new RoutingTable(peer.id, { k });
    const order = peers.slice().sort(() => random.float() - 0.5);
    for (const other of order) table.add(other, 0);
    tables.set(peer.id.hex, table);
  }
  return { peers, tables };
}

interface RunResult {
  lookup: Lookup;
  queried: string[];
  maxInFlight: number;
  inFlightOverAlphaOutsideFinal: boolean;
}

/** Drives a lookup to the end; answers come back in a random order; `dead` peers never answer. */
function run(net: Network, from: PeerRecord, target: Uint8Array, k: number, alpha: number, seed: number, dead = new Set<string>()): RunResult {
  const random = seededRandom(seed);
  const lookup = new Lookup(target, { k, alpha, self: from.id });
  lookup.add(net.tables.get(from.id.hex)!.closest(target, k));
  const inFlight: Candidate[] = [];
  const queried: string[] = [];
  let maxInFlight = 0;
  let overAlpha = false;
  for (let steps = 0; steps < 10_000; steps++) {
    for (const candidate of lookup.next()) {
      inFlight.push(candidate);
      queried.push(candidate.peer.id.hex);
    }
    maxInFlight = Math.max(maxInFlight, inFlight.length);
    if (!lookup.final && inFlight.length > alpha) overAlpha = true;
    if (inFlight.length === 0) break;
    const [candidate] = inFlight.splice(random.int(inFlight.length), 1);
    if (dead.has(candidate!.peer.id.hex)) lookup.failed(candidate!);
    // As the engine answers FIND_NODE: the k closest it knows, never the requester itself.
    else lookup.answered(candidate!, net.tables.get(candidate!.peer.id.hex)!.closest(target, k, from.id, false));
  }
  return { lookup, queried, maxInFlight, inFlightOverAlphaOutsideFinal: overAlpha };
}

const trueClosest = (peers: PeerRecord[], target: Uint8Array, count: number, exclude: (p: PeerRecord) => boolean) =>
  peers
    .filter((p) => !exclude(p))
    .sort((a, b) => compareDistance(a.id.bytes, b.id.bytes, target))
    .slice(0, count)
    .map((p) => p.id.hex);

describe('lookup state machine', () => {
  it('queries alpha at a time, each peer once, and ends with the true k closest when tables are complete', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 30, max: 150 }),
        fc.integer({ min: 2, max: 8 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        (size, k, alpha, seed) => {
          const net = network(size, k, seed);
          const random = seededRandom(seed + 1);
          const from = net.peers[random.int(size)]!;
          const target = random.int(2) === 0 ? net.peers[random.int(size)]!.id.bytes : random.bytes(32);
          const result = run(net, from, target, k, alpha, seed + 2);
          expect(new Set(result.queried).size).toBe(result.queried.length);
          expect(result.inFlightOverAlphaOutsideFinal).toBe(false);
          expect(result.lookup.done).toBe(true);
          expect(result.lookup.pending).toBe(0);
          const expected = trueClosest(net.peers, target, k, (p) => p.id.equals(from.id));
          expect(result.lookup.closest().map((p) => p.id.hex)).toEqual(expected);
          expect(result.lookup.queries).toBe(result.queried.length);
          expect(result.lookup.answers).toBe(result.queried.length);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('routes around peers that never answer: ends, and keeps only live peers in its result', () => {
    fc.assert(
      fc.property(fc.integer({ min: 40, max: 150 }), fc.integer({ min: 0, max: 1_000_000 }), fc.double({ min: 0, max: 0.5, noNaN: true }), (size, seed, deadShare) => {
        const k = 6;
        const net = network(size, k, seed);
        const random = seededRandom(seed + 3);
        const from = net.peers[0]!;
        const dead = new Set(net.peers.slice(1).filter(() => random.float() < deadShare).map((p) => p.id.hex));
        const target = random.bytes(32);
        const result = run(net, from, target, k, 3, seed, dead);
        expect(result.lookup.done).toBe(true);
        for (const peer of result.lookup.closest()) expect(dead.has(peer.id.hex)).toBe(false);
        expect(result.lookup.answers + result.lookup.failures).toBe(result.lookup.queries);
      }),
      { numRuns: 60 },
    );
  });

  it('after a round that brings nothing closer, queries every unqueried one of the k closest at once', () => {
    const target = new Uint8Array(32);
    const peers = POOL.slice(0, 10).sort((a, b) => compareDistance(a.id.bytes, b.id.bytes, target));
    const lookup = new Lookup(target, { k: 8, alpha: 2 });
    lookup.add(peers.slice(0, 8));
    const first = lookup.next();
    expect(first.map((c) => c.peer)).toEqual(peers.slice(0, 2));
    expect(lookup.final).toBe(false);
    // Two answers (one round of alpha = 2) naming only farther peers: nothing closer.
    expect(lookup.answered(first[0]!, [peers[9]!])).toBe(false);
    expect(lookup.final).toBe(false);
    const second = lookup.next();
    expect(second).toHaveLength(1);
    lookup.answered(first[1]!, []);
    expect(lookup.final).toBe(true);
    // The rest of the 8 closest go out together (7 pending minus the one in flight).
    const rest = lookup.next();
    expect(rest).toHaveLength(5);
    for (const candidate of [...second, ...rest]) lookup.answered(candidate, []);
    expect(lookup.next()).toEqual([]);
    expect(lookup.done).toBe(true);
    expect(lookup.closest()).toHaveLength(8);
  });

  it('an answer with a closer peer keeps the alpha pace, and names the hop it came from', () => {
    const target = NodeId.ofString('t').bytes;
    const sorted = POOL.slice(0, 50).sort((a, b) => compareDistance(a.id.bytes, b.id.bytes, target));
    const lookup = new Lookup(target, { k: 4, alpha: 1 });
    lookup.add(sorted.slice(40, 44));
    const [a] = lookup.next();
    expect(lookup.answered(a!, [sorted[0]!])).toBe(true);
    const [b] = lookup.next();
    expect(b!.peer).toBe(sorted[0]);
    expect(b!.round).toBe(2);
    expect(lookup.final).toBe(false);
  });

  it('forgets a failed peer for good and bounds what it remembers', () => {
    const target = new Uint8Array(32).fill(7);
    const lookup = new Lookup(target, { k: 3, alpha: 3, maxCandidates: 5 });
    lookup.add(POOL.slice(0, 3));
    const asked = lookup.next();
    lookup.failed(asked[0]!);
    expect(lookup.add([asked[0]!.peer])).toBe(0);
    // One answer considers at most k peers; the list never exceeds maxCandidates.
    lookup.answered(asked[1]!, POOL.slice(10, 60));
    expect(lookup.size).toBeLessThanOrEqual(5);
    lookup.answered(asked[2]!, POOL.slice(60, 120));
    expect(lookup.size).toBeLessThanOrEqual(5);
    expect(lookup.failures).toBe(1);
    expect(() => new Lookup(target, { k: 0, alpha: 1 })).toThrow(RangeError);
    expect(() => new Lookup(target, { k: 1, alpha: 0 })).toThrow(RangeError);
  });

  it('ignores its own id and answers for queries it did not send', () => {
    const self = POOL[0]!;
    const lookup = new Lookup(new Uint8Array(32), { k: 4, alpha: 2, self: self.id });
    expect(lookup.add([self, POOL[1]!])).toBe(1);
    expect(lookup.has(self.id)).toBe(true);
    const [candidate] = lookup.next();
    lookup.answered(candidate!, []);
    expect(lookup.answered(candidate!, [POOL[2]!])).toBe(false);
    expect(lookup.has(POOL[2]!.id)).toBe(false);
    expect(lookup.done).toBe(true);
  });
});
