/**
 * The demo's NAT section: two nodes behind separate NATs connect through a public
 * introducer, on the in-memory network with emulated NATs and a virtual clock (so it
 * runs in milliseconds and the same way every time). `scripts/netns/holepunch-nat.sh`
 * does the same through real Linux NATs, as root.
 */
import { runPair, type NatChoice, type PairResult } from '@deccom/holepunch/simulation';

export const NAT_PAIRS: readonly (readonly [NatChoice, NatChoice])[] = [
  ['port-restricted', 'port-restricted'],
  ['symmetric', 'address-restricted'],
  ['symmetric', 'symmetric'],
];

/** Runs each pair and reports how the first datagram got through. */
export async function natScenarios(log: (line: string) => void): Promise<PairResult[]> {
  const results: PairResult[] = [];
  for (const [a, b] of NAT_PAIRS) {
    const result = await runPair({ a, b, observers: 2 });
    results.push(result);
    const outcome = result.outcome;
    const how = outcome === undefined ? 'no outcome' : `${outcome.mechanism} after ${outcome.attempts} attempt(s)`;
    const firstByte = result.firstByteMs === undefined ? 'never arrived' : `first byte after ${result.firstByteMs} ms (virtual)`;
    log(`  ${a.padEnd(16)} <-> ${b.padEnd(19)} ${how.padEnd(32)} ${firstByte}; 20 datagrams each way ${result.exchanged ? 'arrived' : 'did NOT arrive'}`);
  }
  return results;
}
