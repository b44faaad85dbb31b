import { describe, expect, it } from 'vitest';
import { simulatedNetwork } from '../src/scenario.js';

describe('example: simulated network', () => {
  it('builds 1,000 nodes on the virtual clock and reports lookup statistics', async () => {
    const lines: string[] = [];
    const report = await simulatedNetwork((line) => lines.push(line), { size: 1_000, lookups: 200 });
    expect(report.lookups).toBe(200);
    expect(report.found).toBe(200);
    expect(report.successRate).toBe(1);
    // log2(1000) is about 10: Kademlia should need a handful of hops, never dozens.
    expect(report.roundsMedian).toBeGreaterThanOrEqual(1);
    expect(report.roundsP99).toBeLessThanOrEqual(5);
    expect(report.messagesPerNetworkLookup).toBeGreaterThanOrEqual(1);
    expect(report.messagesPerNetworkLookup).toBeLessThan(40);
    expect(report.fromTable).toBeLessThan(200);
    expect(lines).toContain('lookups: 200 of 200 found (100.0%)');
    expect(lines.some((line) => /^  rounds \(hops\) of the others: median \d+, p99 \d+$/.test(line))).toBe(true);
    expect(lines.some((line) => /^  messages per lookup: \d+\.\d\d \(\d+\.\d\d for those that went to the network\)$/.test(line))).toBe(true);
  }, 120_000);
});
