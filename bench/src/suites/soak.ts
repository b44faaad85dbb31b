/**
 * `pnpm bench soak [durationMs]`: 200 full nodes on 127.0.0.1 for 10 minutes (or
 * DECCOM_SOAK_MS / the first argument) under 5% loss, latency and jitter, with churn
 * (nodes stop and come back with the same identity, on the same or a new port) and a
 * steady mix of Kademlia lookups, datagrams, reliable messages (rudp) and TCP streams.
 * Node count: DECCOM_SOAK_NODES (default 200).
 *
 * Writes bench/results/soak.json and merges its figures into bench/results/hardening.json
 * under `figures.soak` (read-modify-write: other keys of that file are kept).
 *
 * Smoke mode (BENCH_SMOKE=1): 6 nodes for 4 s (churn, lookups, datagrams, reliable
 * messages and streams all happen), a drain of at most 5 s.
 */
import { existsSync, readFileSync } from 'node:fs';
import { accept, knob, machine, printTable, resultsFile, round, SMOKE, writeJson, writeResults, type Acceptance } from '../report.js';
import { defaultSoakOptions, runSoak, type SoakOptions } from '../soak/engine.js';

const argument = process.argv.slice(2).find((arg) => /^\d+$/.test(arg));
const durationMs = argument !== undefined ? Number(argument) : knob('DECCOM_SOAK_MS', 600_000, 4_000);
const nodes = knob('DECCOM_SOAK_NODES', 200, 6);
const minimumMs = SMOKE ? 1_000 : 10_000;
if (!(durationMs >= minimumMs) || !(durationMs <= 630_000)) throw new Error(`soak: duration must be ${minimumMs.toLocaleString('en-US')}..630,000 ms, got ${durationMs}`);
if (!Number.isInteger(nodes) || nodes < 4 || nodes > 400) throw new Error(`soak: DECCOM_SOAK_NODES must be 4..400, got ${nodes}`);

/** Smoke mode: short churn and settle times and a short drain, so every kind of traffic and a restart fit in seconds. */
const smokeOptions: Partial<SoakOptions> = SMOKE
  ? { churnIntervalMs: 1_000, downMinMs: 300, downMaxMs: 800, settleMs: 1_000, heapSampleMs: 500, drainMs: 5_000, lookupsPerSecond: 5, datagramsPerSecond: 20, reliablePerSecond: 5, streamsPerSecond: 2 }
  : {};
const options = { ...defaultSoakOptions(durationMs), ...smokeOptions, nodes, log: (line: string) => console.log(line) };
if ((globalThis as { gc?: unknown }).gc === undefined) console.log('soak: run through `pnpm bench soak` (node --expose-gc) for heap samples after forced GC');
const figures = await runSoak(options);

printTable('soak: run', [
  { nodes, durationS: durationMs / 1000, wallS: figures.wallMs / 1000, starts: figures.churn.starts, stops: figures.churn.stops, uncaught: figures.uncaughtErrors, untypedErrors: figures.untypedErrors },
]);
printTable('soak: memory and event loop', [
  {
    heapEarlyMiB: figures.heap.earlyMedianMiB,
    heapLateMiB: figures.heap.lateMedianMiB,
    heapGrowthPct: figures.heap.growth * 100,
    heapPeakMiB: figures.heap.peakMiB,
    rssEarlyMiB: figures.rss.earlyMedianMiB,
    rssLateMiB: figures.rss.lateMedianMiB,
    rssPeakMiB: figures.rss.peakMiB,
    lagP99MedianMs: figures.eventLoopLag.p99MedianMs,
    lagP99WorstMs: figures.eventLoopLag.p99WorstMs,
    lagMaxMs: figures.eventLoopLag.maxMs,
  },
]);
const r = figures.reliable;
printTable('soak: reliable messages (rudp)', [
  { sent: r.sent, owed: r.owed, exactlyOnce: r.owedExactlyOnce, missing: r.owedMissing, duplicated: r.owedDuplicated, owedRejected: r.owedRejected, duplicatesAll: r.duplicatesAll, sameInstanceDuplicates: r.duplicatesSameIncarnation, redeliveredAfterRestart: r.redeliveredAfterReceiverRestart, corrupt: r.corrupt, notOwed: r.notOwed, notOwedDelivered: r.notOwedDelivered, hung: r.hung.reliable },
]);
const l = figures.lookups;
printTable('soak: lookups (kademlia)', [
  { settled: l.settled, settledFound: l.settledFound, settledRate: l.settledSuccessRate, recent: l.recent, recentFound: l.recentFound, recentRate: l.recentSuccessRate, wrongAddress: l.settledWrongAddress + l.recentWrongAddress },
]);
const d = figures.datagrams;
const s = figures.streams;
printTable('soak: datagrams and streams', [
  { datagramsSent: d.sent, datagramsReceived: d.received, deliveryRate: d.deliveryRate, duplicates: d.duplicates, streams: s.started, streamsVerified: s.verified, streamMiB: s.bytesVerified / 2 ** 20, hashMismatches: s.hashMismatches, streamsOwed: s.owed, streamsOwedVerified: s.owedVerified },
]);
if (r.owedFailures.length > 0) console.log('owed reliable failures:', r.owedFailures);
if (figures.uncaught.length > 0) console.log('uncaught:', figures.uncaught);

const acceptance: Acceptance[] = [
  accept('soak: 0 uncaught errors', figures.uncaughtErrors, 0, '<='),
  accept('soak: heap growth after warm-up < 10%', figures.heap.growth, 0.1, '<=', 'ratio'),
  accept('soak: 100% reliable messages delivered exactly once', r.exactlyOnceRate, 1, '>=', 'ratio'),
  accept('soak: 0 duplicate reliable deliveries by one receiver instance (all messages)', r.duplicatesSameIncarnation, 0, '<='),
  accept('soak: 0 stream hash mismatches', s.hashMismatches, 0, '<='),
  accept('soak: lookups of settled nodes found', l.settledSuccessRate, 0.99, '>=', 'ratio'),
];
writeResults('soak', figures, acceptance);

// Merge into hardening.json (the hardening suite owns the rest of that file).
const file = resultsFile('hardening');
let hardening: { suite?: string; smoke?: boolean; machine?: unknown; figures?: Record<string, unknown>; acceptance?: Acceptance[] } = {};
if (existsSync(file)) {
  try {
    hardening = JSON.parse(readFileSync(file, 'utf8')) as typeof hardening;
  } catch (error) {
    console.log(`soak: ${file} is not JSON (${String(error)}); starting it afresh`);
  }
}
hardening.suite ??= 'hardening';
if (SMOKE) hardening.smoke = true;
hardening.machine ??= machine();
hardening.figures = { ...(hardening.figures ?? {}), soak: { ...figures, samples: undefined, measuredAt: new Date().toISOString() } };
hardening.acceptance = [...(hardening.acceptance ?? []).filter((entry) => !entry.name.startsWith('soak: ')), ...acceptance];
writeJson(file, hardening);
console.log(`merged soak figures into ${file} (heap growth ${round(figures.heap.growth * 100, 2)}%)`);
