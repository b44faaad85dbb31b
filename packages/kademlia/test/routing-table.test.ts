import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createPeerRecord, Identity, NodeId, type PeerRecord } from '@deccom/core';
import { compareDistance, commonPrefixLength, RoutingTable } from '../src/index.js';

const peer = (i: number): PeerRecord => createPeerRecord(Identity.fromString(`p${i}`).public, { host: '10.0.0.1', port: 1 + (i % 60000) });

describe('routing table', () => {
  it('keeps its invariants and answers closest() like a full sort, under random operations', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 400 })), { minLength: 1, maxLength: 600 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.boolean(),
        (operations, targetSeed, splitAlways) => {
          const self = NodeId.ofString('self');
          const table = new RoutingTable(self, { k: 8, splitAlways });
          const present = new Map<string, PeerRecord>();
          operations.forEach(([add, i], step) => {
            const p = peer(i);
            if (add) {
              const result = table.add(p, step);
              if (result.kind === 'added' || result.kind === 'updated') present.set(p.id.hex, p);
            } else {
              table.remove(p.id);
              present.delete(p.id.hex);
            }
          });
          table.checkInvariants();
          const inTable = table.all();
          const target = NodeId.ofString(`t${targetSeed}`).bytes;
          const expected = [...inTable].sort((a, b) => compareDistance(a.id.bytes, b.id.bytes, target)).slice(0, 8);
          expect(table.closest(target, 8).map((p) => p.id.hex)).toEqual(expected.map((p) => p.id.hex));
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
  });

  it('reports a full bucket with its least recently seen contact, and promotes a replacement on removal', () => {
    const self = NodeId.ofString('self');
    const table = new RoutingTable(self, { k: 2, replacementCacheSize: 2 });
    // Fill one far bucket: ids whose first bit differs from ours.
    const far = Array.from({ length: 400 }, (_, i) => peer(i)).filter((p) => commonPrefixLength(p.id.bytes, self.bytes) === 0);
    const [a, b, c] = far as [PeerRecord, PeerRecord, PeerRecord];
    expect(table.add(a, 1).kind).toBe('added');
    expect(table.add(b, 2).kind).toBe('added');
    const full = table.add(c, 3);
    expect(full.kind).toBe('full');
    if (full.kind === 'full') expect(full.oldest.peer.id.equals(a.id)).toBe(true);
    table.touch(a.id, 4);
    expect(table.remove(b.id)?.id.equals(c.id)).toBe(true);
    expect(table.has(c.id)).toBe(true);
  });
});
