/**
 * Suite `kademlia`: lookups in simulated networks of 100, 1,000 and 10,000 nodes (virtual
 * clock, 50 ms +/- 10 ms links), before and after 25% churn, with rounds, messages per
 * lookup, wall time and heap; then 200 real nodes over UDP on 127.0.0.1.
 *
 * `BENCH_KADEMLIA_SIZES=100,1000` limits the sizes.
 */
import { createNode, Identity, seededRandom } from '@deccom/core';
import { udp } from '@deccom/udp';
import { kademlia, type LookupStats } from '@deccom/kademlia';
import { buildNetwork, runLookups, stopAll } from '@deccom/kademlia/simulation';
import { accept, median, percentile, printTable, writeResults, type Acceptance } from '../report.js';

const SIZES = (process.env['BENCH_KADEMLIA_SIZES'] ?? '100,1000,10000').split(',').map(Number);
const LOOKUPS = Number(process.env['BENCH_KADEMLIA_LOOKUPS'] ?? 1000);
const figures: Record<string, unknown> = {};
const rows: Record<string, unknown>[] = [];
const acceptance: Acceptance[] = [];

function summarise(results: { ok: boolean; stats?: LookupStats }[]) {
  const stats = results.flatMap((r) => (r.stats ? [r.stats] : []));
  const rounds = stats.map((s) => s.rounds);
  const messages = stats.map((s) => s.messages);
  return {
    lookups: results.length,
    successRate: results.filter((r) => r.ok).length / results.length,
    answeredFromTable: results.length - stats.length,
    roundsMedian: median(rounds.length ? rounds : [0]),
    roundsP99: percentile(rounds.length ? rounds : [0], 99),
    messagesMedian: median(messages.length ? messages : [0]),
    messagesP99: percentile(messages.length ? messages : [0], 99),
  };
}

for (const size of SIZES) {
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const started = performance.now();
  const sim = await buildNetwork(size, { joinBatch: 100, seed: size });
  const joinedAt = performance.now();
  const heapAfterJoin = process.memoryUsage().heapUsed;
  const peers = sim.nodes.map((n) => n.getPeers().length);
  const messagesOut = sim.nodes.reduce((sum, n) => sum + (n.counters()['kademlia']!['messages-out'] ?? 0), 0);
  const before = summarise(await runLookups(sim, LOOKUPS, 11));
  // Churn: a quarter of the nodes leave at once (not the seed), then lookups for live targets.
  const random = seededRandom(size + 1);
  const leaving = Math.floor(size / 4);
  for (let i = 0; i < leaving; i++) {
    const index = 1 + random.int(sim.alive.length - 1);
    const [gone] = sim.alive.splice(index, 1);
    await gone!.stop();
  }
  const after = summarise(await runLookups(sim, LOOKUPS, 12));
  const wallSeconds = (performance.now() - started) / 1000;
  const heapPeakMiB = Math.max(heapAfterJoin, process.memoryUsage().heapUsed) / 2 ** 20;
  const rssMiB = process.memoryUsage().rss / 2 ** 20;
  await stopAll(sim);
  const figure = {
    nodes: size,
    joinWallSeconds: (joinedAt - started) / 1000,
    totalWallSeconds: wallSeconds,
    heapMiB: heapPeakMiB,
    heapPerNodeKiB: (heapAfterJoin - heapBefore) / size / 1024,
    rssMiB,
    peersPerNodeMedian: median(peers),
    joinMessagesPerNode: messagesOut / size,
    noChurn: before,
    afterChurn25: after,
  };
  figures[`nodes${size}`] = figure;
  rows.push(
    { nodes: size, phase: 'no churn', success: before.successRate, 'rounds median': before.roundsMedian, 'rounds p99': before.roundsP99, 'msgs/lookup median': before.messagesMedian, 'wall s': figure.totalWallSeconds, 'heap MiB': heapPeakMiB },
    { nodes: size, phase: '25% churn', success: after.successRate, 'rounds median': after.roundsMedian, 'rounds p99': after.roundsP99, 'msgs/lookup median': after.messagesMedian, 'wall s': '', 'heap MiB': '' },
  );
  acceptance.push(accept(`${size} nodes: lookup success, no churn`, before.successRate, 1));
  acceptance.push(accept(`${size} nodes: lookup success after 25% churn`, after.successRate, 0.99));
  if (size >= 10_000) {
    acceptance.push(accept(`${size} nodes: median rounds`, before.roundsMedian, 4, '<='));
    acceptance.push(accept(`${size} nodes: p99 rounds`, before.roundsP99, 7, '<='));
    acceptance.push(accept(`${size} nodes: wall time of the scenario (s)`, wallSeconds, 180, '<='));
    acceptance.push(accept(`${size} nodes: memory (RSS MiB)`, rssMiB, 4096, '<='));
  }
}
printTable('kademlia: simulated networks (virtual clock, 50 +/- 10 ms links)', rows);

// 200 real nodes over UDP on loopback: every lookup succeeds.
{
  const REAL = 200;
  const started = performance.now();
  const seed = createNode({ identity: Identity.fromString('real-0'), layers: [udp({ host: '127.0.0.1' }), kademlia({ requestTimeoutMs: 2000 })] });
  await seed.start();
  const nodes = [seed];
  for (let i = 1; i < REAL; i++) {
    const node = createNode({ identity: Identity.fromString(`real-${i}`), layers: [udp({ host: '127.0.0.1' }), kademlia({ bootstrap: [seed.localAddress()], requestTimeoutMs: 2000 })] });
    await node.start();
    nodes.push(node);
    if (i % 20 === 0) await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 3000));
  const random = seededRandom(99);
  let ok = 0;
  const total = 400;
  const durations: number[] = [];
  for (let i = 0; i < total; i += 20) {
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        const from = nodes[random.int(REAL)]!;
        let to = from;
        while (to === from) to = nodes[random.int(REAL)]!;
        const t = performance.now();
        try {
          const peer = await from.findPeer(to.id);
          if (peer.id.equals(to.id)) ok++;
          durations.push(performance.now() - t);
        } catch {
          /* counted as a failure */
        }
      }),
    );
  }
  for (const node of nodes) await node.stop();
  figures['real200'] = { nodes: REAL, lookups: total, successRate: ok / total, lookupMsMedian: median(durations), lookupMsP99: percentile(durations, 99), wallSeconds: (performance.now() - started) / 1000 };
  printTable('kademlia: 200 real nodes over UDP on 127.0.0.1', [figures['real200'] as Record<string, unknown>]);
  acceptance.push(accept('200 real nodes on loopback: lookup success', ok / total, 1));
}

writeResults('kademlia', figures, acceptance);
