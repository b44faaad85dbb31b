/**
 * A whole Kademlia network in one process: `size` nodes on core's in-memory network with a
 * virtual clock (links of 50 +/- 10 ms one way), built with `@deccom/kademlia/simulation`.
 * It joins every node, runs random lookups (a random node looks up another random node's
 * id), and reports what a lookup costs: how many succeed, how many hops (rounds) and
 * queries they take, and their virtual latency. Virtual time means a 1,000-node network
 * with minutes of protocol time runs in seconds, the same way every time for a given seed.
 */
import { buildNetwork, runLookups, stopAll } from '@deccom/kademlia/simulation';

export interface SimulatedNetworkOptions {
  /** Nodes in the network. Default 1,000. */
  size?: number;
  /** Lookups to run. Default 500. */
  lookups?: number;
  /** Seed of the network and of the lookups' choice of nodes. Default 1. */
  seed?: number;
}

export interface SimulatedNetworkReport {
  size: number;
  lookups: number;
  found: number;
  successRate: number;
  /** Lookups answered from the searcher's own table (no message sent). */
  fromTable: number;
  /** Rounds of the lookups that went to the network. */
  roundsMedian: number;
  roundsP99: number;
  /** Queries per lookup, all lookups (table hits count 0). */
  messagesPerLookup: number;
  /** Queries per lookup that went to the network. */
  messagesPerNetworkLookup: number;
  latencyMedianMs: number;
  latencyP99Ms: number;
  /** Virtual time the whole run took. */
  virtualSeconds: number;
  wallSeconds: number;
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export async function simulatedNetwork(log: (line: string) => void, options: SimulatedNetworkOptions = {}): Promise<SimulatedNetworkReport> {
  const size = options.size ?? 1_000;
  const lookups = options.lookups ?? 500;
  const seed = options.seed ?? 1;
  const wallStart = performance.now();
  log(`building a network of ${size} nodes (in memory, virtual clock, links 50 +/- 10 ms)...`);
  const sim = await buildNetwork(size, { seed });
  try {
    log(`  joined in ${(sim.clock.now() / 1000).toFixed(1)} s of virtual time`);
    const results = await runLookups(sim, lookups, seed + 4);
    const found = results.filter((result) => result.ok).length;
    const network = results.filter((result) => !result.fromTable && result.stats !== undefined).map((result) => result.stats!);
    const rounds = network.map((stats) => stats.rounds);
    const latencies = network.map((stats) => stats.durationMs);
    const messages = network.reduce((sum, stats) => sum + stats.messages, 0);
    const report: SimulatedNetworkReport = {
      size,
      lookups: results.length,
      found,
      successRate: found / results.length,
      fromTable: results.filter((result) => result.fromTable).length,
      roundsMedian: percentile(rounds, 50),
      roundsP99: percentile(rounds, 99),
      messagesPerLookup: messages / results.length,
      messagesPerNetworkLookup: network.length === 0 ? 0 : messages / network.length,
      latencyMedianMs: percentile(latencies, 50),
      latencyP99Ms: percentile(latencies, 99),
      virtualSeconds: sim.clock.now() / 1000,
      wallSeconds: (performance.now() - wallStart) / 1000,
    };
    log(`lookups: ${report.found} of ${report.lookups} found (${(report.successRate * 100).toFixed(1)}%)`);
    log(`  answered from the searcher's own table: ${report.fromTable}`);
    log(`  rounds (hops) of the others: median ${report.roundsMedian}, p99 ${report.roundsP99}`);
    log(`  messages per lookup: ${report.messagesPerLookup.toFixed(2)} (${report.messagesPerNetworkLookup.toFixed(2)} for those that went to the network)`);
    log(`  virtual latency: median ${report.latencyMedianMs} ms, p99 ${report.latencyP99Ms} ms`);
    log(`run: ${report.virtualSeconds.toFixed(1)} s of virtual time in ${report.wallSeconds.toFixed(1)} s of wall time`);
    return report;
  } finally {
    await stopAll(sim);
  }
}
