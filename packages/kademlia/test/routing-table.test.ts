import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createPeerRecord, Identity, NodeId, seededRandom, type PeerRecord } from '@deccom/core';
import { commonPrefixLength, compareDistance, RoutingTable } from '../src/index.js';
import { inRange, randomIdIn } from '../src/routing-table.js';

const peer = (i: number): PeerRecord => createPeerRecord(Identity.fromString(`p${i}`).public, { host: '10.0.0.1', port: 1 + (i % 60000) });

describe('XOR distance', () => {
  it('orders by XOR with the target and counts shared prefix bits', () => {
    const target = new Uint8Array(32);
    const a = new Uint8Array(32);
    const b = new Uint8Array(32);
    a[0] = 0x01;
    b[0] = 0x80;
    expect(compareDistance(a, b, target)).toBeLessThan(0);
    expect(compareDistance(b, a, target)).toBeGreaterThan(0);
    expect(compareDistance(a, a, target)).toBe(0);
    expect(commonPrefixLength(a, target)).toBe(7);
    expect(commonPrefixLength(b, target)).toBe(0);
    expect(commonPrefixLength(target, target)).toBe(256);
  });

  it('is a metric: d(x,x) = 0, symmetric, and the triangle inequality holds', () => {
    const bytes = fc.uint8Array({ minLength: 32, maxLength: 32 });
    const xor = (x: Uint8Array, y: Uint8Array) => x.map((v, i) => v ^ y[i]!);
    const asBig = (d: Uint8Array) => BigInt(`0x${Buffer.from(d).toString('hex')}`);
    fc.assert(
      fc.property(bytes, bytes, bytes, (x, y, z) => {
        expect(asBig(xor(x, x))).toBe(0n);
        expect(asBig(xor(x, y))).toBe(asBig(xor(y, x)));
        expect(asBig(xor(x, z)) <= asBig(xor(x, y)) + asBig(xor(y, z))).toBe(true);
        // compareDistance agrees with the numeric distance.
        const order = Math.sign(compareDistance(x, y, z));
        const numeric = asBig(xor(x, z)) < asBig(xor(y, z)) ? -1 : asBig(xor(x, z)) > asBig(xor(y, z)) ? 1 : 0;
        expect(order).toBe(numeric);
      }),
      { numRuns: 300 },
    );
  });
});

describe('routing table', () => {
  it('keeps its invariants and answers closest() like a full sort, under random operations', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 400 })), { minLength: 1, maxLength: 600 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 12 }),
        (operations, targetSeed, splitAlways, count) => {
          const self = NodeId.ofString('self');
          const table = new RoutingTable(self, { k: 8, splitAlways, replacementCacheSize: 3 });
          operations.forEach(([add, i], step) => {
            if (add) table.add(peer(i), step);
            else table.remove(peer(i).id);
          });
          table.checkInvariants();
          const target = NodeId.ofString(`t${targetSeed}`).bytes;
          const expected = table
            .all()
            .sort((a, b) => compareDistance(a.id.bytes, b.id.bytes, target))
            .slice(0, count)
            .map((p) => p.id.hex);
          expect(table.closest(target, count).map((p) => p.id.hex)).toEqual(expected);
          // Unsorted: the same set.
          expect(
            table
              .closest(target, count, undefined, false)
              .map((p) => p.id.hex)
              .sort(),
          ).toEqual([...expected].sort());
          // Excluding one id leaves it out.
          if (expected.length > 0) {
            const excluded = NodeId.fromHex(expected[0]!);
            expect(table.closest(target, count, excluded).some((p) => p.id.equals(excluded))).toBe(false);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('splits only around its own id by default, any full bucket with splitAlways', () => {
    const self = NodeId.ofString('self');
    const plain = new RoutingTable(self, { k: 4 });
    const always = new RoutingTable(self, { k: 4, splitAlways: true });
    let fullReports = 0;
    for (let i = 0; i < 300; i++) {
      if (plain.add(peer(i), i).kind === 'full') fullReports++;
      always.add(peer(i), i);
    }
    expect(fullReports).toBeGreaterThan(0);
    expect(always.size).toBeGreaterThan(plain.size);
    expect(always.buckets).toBeGreaterThan(plain.buckets);
    plain.checkInvariants();
    always.checkInvariants();
    // Every bucket of the plain table is either the own-id one or a sibling on its path.
    for (const bucket of plain.allBuckets()) {
      if (!plain.inOwnBucket(bucket)) expect(commonPrefixLength(bucket.prefix, self.bytes)).toBe(bucket.depth - 1);
    }
  });

  it('reports a full bucket with its least recently seen contact, and promotes the freshest replacement on removal', () => {
    const self = NodeId.ofString('self');
    const table = new RoutingTable(self, { k: 2, replacementCacheSize: 2 });
    // One far bucket: ids whose first bit differs from ours.
    const far = Array.from({ length: 400 }, (_, i) => peer(i)).filter((p) => commonPrefixLength(p.id.bytes, self.bytes) === 0);
    const [a, b, c, d, e] = far as [PeerRecord, PeerRecord, PeerRecord, PeerRecord, PeerRecord];
    expect(table.add(a, 1).kind).toBe('added');
    expect(table.add(b, 2).kind).toBe('added');
    const full = table.add(c, 3);
    expect(full.kind).toBe('full');
    if (full.kind === 'full') expect(full.oldest.peer.id.equals(a.id)).toBe(true);
    // a answered a ping: now b is the least recently seen.
    table.touch(a.id, 4);
    const again = table.add(d, 5);
    if (again.kind === 'full') expect(again.oldest.peer.id.equals(b.id)).toBe(true);
    table.add(e, 6); // the cache holds 2: c falls out
    expect(table.remove(b.id)?.id.equals(e.id)).toBe(true);
    expect(table.has(e.id)).toBe(true);
    expect(table.remove(a.id)?.id.equals(d.id)).toBe(true);
    expect(table.remove(e.id)).toBeUndefined();
    table.checkInvariants();
  });

  it('counts unanswered requests per contact until it is heard from again', () => {
    const table = new RoutingTable(NodeId.ofString('self'));
    const p = peer(1);
    table.add(p, 0);
    expect(table.failed(p.id)).toBe(1);
    expect(table.failed(p.id)).toBe(2);
    table.touch(p.id, 10);
    expect(table.failed(p.id)).toBe(1);
    table.add(p, 11);
    expect(table.contact(p.id)?.failures).toBe(0);
    expect(table.failed(peer(2).id)).toBe(0);
  });

  it('tracks lookups per bucket for refresh, and random ids stay in their bucket', () => {
    const self = NodeId.ofString('self');
    const table = new RoutingTable(self, { k: 2, now: 0 });
    for (let i = 0; i < 100; i++) table.add(peer(i), 0);
    expect(table.staleBuckets(1).length).toBe(table.buckets);
    const bucket = table.allBuckets()[0]!;
    const random = seededRandom(4);
    for (let i = 0; i < 50; i++) {
      const id = randomIdIn(bucket, random.bytes(32));
      expect(inRange(bucket, id)).toBe(true);
      expect(table.bucketFor(id)).toBe(bucket);
    }
    table.markLookup(randomIdIn(bucket, random.bytes(32)), 100);
    expect(table.staleBuckets(50)).not.toContain(bucket);
    expect(table.staleBuckets(50).length).toBe(table.buckets - 1);
  });

  it('never stores its own id', () => {
    const self = Identity.fromString('me');
    const table = new RoutingTable(self.id);
    expect(table.add(createPeerRecord(self.public, { host: '10.0.0.9', port: 9 }), 0).kind).toBe('updated');
    expect(table.size).toBe(0);
    expect(table.hasRoomFor(self.id)).toBe(false);
  });
});
