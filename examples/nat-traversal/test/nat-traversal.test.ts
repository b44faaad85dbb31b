import { describe, expect, it } from 'vitest';
import { natTraversal } from '../src/scenario.js';

describe('example: NAT traversal (holepunch under kademlia, simulated NATs)', () => {
  it('punches between restricted NATs, relays between symmetric ones, and fails without holepunch', async () => {
    const lines: string[] = [];
    const [punched, oneSymmetric, control, bothSymmetric] = await natTraversal((line) => lines.push(line));
    // Every run found b at its NAT mapping, not at its private address.
    for (const result of [control, punched, oneSymmetric, bothSymmetric]) {
      expect(result?.foundAddress).toBeDefined();
      expect(result?.foundAddress).not.toEqual(result?.privateAddress);
    }
    expect(control?.delivered).toBe(false);
    expect(control?.answered).toBe(false);
    expect(punched?.outcome?.mechanism).toBe('punched-udp');
    expect(punched?.answered).toBe(true);
    // b's address-restricted NAT already lets a's host in (b contacted it while joining): direct or punched.
    expect(['direct', 'punched-udp']).toContain(oneSymmetric?.outcome?.mechanism);
    expect(oneSymmetric?.answered).toBe(true);
    expect(bothSymmetric?.outcome?.mechanism).toBe('relayed');
    expect(bothSymmetric?.answered).toBe(true);
    expect(lines).toContain('  no hole punching; datagram did not get through');
    expect(lines.filter((line) => /^  (punched-udp|direct) after \d+ attempt\(s\); answered in \d+ ms \(virtual\)$/.test(line))).toHaveLength(2);
    expect(lines.some((line) => /^  relayed after \d+ attempt\(s\); answered in \d+ ms \(virtual\)$/.test(line))).toBe(true);
  }, 60_000);
});
