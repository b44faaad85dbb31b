/**
 * A short soak in the normal suite: 30 full nodes on 127.0.0.1 for 20 s under 5% loss,
 * latency, churn (same-identity restarts) and a mix of lookups, datagrams, reliable
 * messages and TCP streams. The full 10-minute, 200-node run is `pnpm bench soak`.
 * Correctness only here (no timing or memory figures).
 */
import { describe, expect, it } from 'vitest';
import { defaultSoakOptions, runSoak } from '../src/soak/engine.js';

describe('short soak on loopback', () => {
  it('no uncaught errors, every owed reliable message delivered exactly once, streams intact', async () => {
    const figures = await runSoak({
      ...defaultSoakOptions(20_000),
      drainMs: 17_000,
      nodes: 30,
      churnIntervalMs: 2000,
      downMinMs: 1000,
      downMaxMs: 5000,
      settleMs: 8000,
      lookupsPerSecond: 4,
      datagramsPerSecond: 30,
      reliablePerSecond: 8,
      streamsPerSecond: 1,
      heapSampleMs: 5000,
      seed: 7,
    });
    expect(figures.uncaught).toEqual([]);
    expect(figures.untypedErrors).toBe(0);
    expect(figures.churn.stops).toBeGreaterThan(30); // every node stopped at the end, plus the churned ones
    const reliable = figures.reliable;
    expect(reliable.owed).toBeGreaterThan(100);
    expect(reliable.owedFailures).toEqual([]);
    expect(reliable.owedExactlyOnce).toBe(reliable.owed);
    // Exactly once per receiver instance. A message may be delivered again by a restarted
    // receiver whose previous instance delivered it but whose acknowledgement was lost
    // (counted apart; such a message is never owed, so owedExactlyOnce is unaffected).
    expect(reliable.duplicatesSameIncarnation).toBe(0);
    expect(reliable.corrupt).toBe(0);
    expect(figures.streams.hashMismatches).toBe(0);
    expect(figures.streams.duplicates).toBe(0);
    expect(figures.streams.verified).toBeGreaterThan(0);
    expect(figures.datagrams.duplicates).toBe(0);
    expect(figures.datagrams.received).toBeGreaterThan(0);
  }, 60_000);
});
