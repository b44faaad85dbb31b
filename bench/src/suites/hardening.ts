/**
 * Suite `hardening`: fuzzing of every wire decoder and floods over real sockets on
 * 127.0.0.1 (see bench/src/hardening/). Figures:
 *
 * - fuzz: per decoder, inputs run (DECCOM_FUZZ_INPUTS, default 250,000; the slow test
 *   suite runs 1,000,000), accepted / refused with WireError / crashes (anything else
 *   thrown), plus 1,000 fast-check round trips each;
 * - floods: per flood, medians over RUNS runs of the victim process's peak heap and RSS
 *   growth (MiB), process CPU (% of one core; attacker, victim and legitimate peers share
 *   the process), and legitimate exchanges that succeeded during the flood.
 *
 * Writes bench/results/hardening.json by merging: `figures.soak` and acceptance entries
 * named `soak...` (written by the soak suite) are kept as they are.
 *
 * Smoke mode (BENCH_SMOKE=1): 1,000 fuzz inputs and 100 round trips per decoder, each
 * flood once at a small size; acceptance is computed but does not set the exit code.
 */
import { existsSync, readFileSync } from 'node:fs';
import { accept, knob, median, printTable, resultsFile, resultsObject, round, SMOKE, writeJson, type Acceptance } from '../report.js';
import { CODECS, checkRoundTrip, fuzzDecoder, type FuzzResult } from '../hardening/fuzz.js';
import {
  FLOODS,
  floodKademliaFakePeers,
  floodNoiseHandshake,
  floodRudpFragments,
  floodTcpOversized,
  floodTcpSlowLoris,
  floodUdpSpoof,
  type FloodResult,
} from '../hardening/floods.js';

const RUNS = SMOKE ? 1 : 3;
const FUZZ_INPUTS = knob('DECCOM_FUZZ_INPUTS', 250_000, 1_000);
const ROUND_TRIPS = SMOKE ? 100 : 1000;
/** Smoke mode: every flood once, at a small size (the defaults are the floods' own). */
const SMOKE_FLOODS: Record<keyof typeof FLOODS, () => Promise<FloodResult>> = {
  'udp-spoof': () => floodUdpSpoof(2_000),
  'noise-handshake': () => floodNoiseHandshake(1_000),
  'rudp-fragments': () => floodRudpFragments(2_000),
  'tcp-oversized': () => floodTcpOversized(100),
  'tcp-slow-loris': () => floodTcpSlowLoris(50, 300),
  'kademlia-fake-peers': () => floodKademliaFakePeers(200, 3),
};
if (!Number.isInteger(FUZZ_INPUTS) || FUZZ_INPUTS < 1000 || FUZZ_INPUTS > 10_000_000) throw new Error(`hardening: DECCOM_FUZZ_INPUTS must be 1,000..10,000,000, got ${FUZZ_INPUTS}`);

const started = Date.now();

// Fuzzing ------------------------------------------------------------------
const fuzz: (FuzzResult & { roundTrips: number; roundTripFailure?: string; inputsPerSecond: number })[] = [];
for (const codec of CODECS) {
  let roundTripFailure: string | undefined;
  try {
    checkRoundTrip(codec, ROUND_TRIPS, 21);
  } catch (error) {
    roundTripFailure = String(error).slice(0, 500);
  }
  const result = fuzzDecoder(codec, FUZZ_INPUTS, 9);
  fuzz.push({ ...result, roundTrips: ROUND_TRIPS, ...(roundTripFailure ? { roundTripFailure } : {}), inputsPerSecond: Math.round(result.inputs / (result.ms / 1000)) });
}
printTable(
  'hardening: fuzzing',
  fuzz.map((r) => ({ decoder: r.name, inputs: r.inputs, accepted: r.accepted, refused: r.rejected, crashes: r.crashes, roundTrips: r.roundTripFailure ? 'FAIL' : r.roundTrips, 'inputs/s': r.inputsPerSecond })),
);
const totalCrashes = fuzz.reduce((n, r) => n + r.crashes, 0);
const roundTripFailures = fuzz.filter((r) => r.roundTripFailure !== undefined).length;

// Floods -------------------------------------------------------------------
const floods: Record<string, unknown> = {};
const floodRows: Record<string, unknown>[] = [];
const floodAcceptance: Acceptance[] = [];
for (const [name, run] of Object.entries(SMOKE ? SMOKE_FLOODS : FLOODS)) {
  const runs: FloodResult[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await (run as () => Promise<FloodResult>)());
  const last = runs[runs.length - 1]!;
  const figure = {
    attack: last.attack,
    attackCount: last.attackCount,
    boundMiB: last.boundMiB,
    peakHeapDeltaMiB: round(median(runs.map((r) => r.peakHeapDeltaMiB)), 2),
    maxPeakHeapDeltaMiB: round(Math.max(...runs.map((r) => r.peakHeapDeltaMiB)), 2),
    peakRssDeltaMiB: round(median(runs.map((r) => r.peakRssDeltaMiB)), 2),
    cpuPercent: round(median(runs.map((r) => r.cpuPercent)), 1),
    durationMs: round(median(runs.map((r) => r.durationMs)), 0),
    legitSuccess: round(median(runs.map((r) => r.legitOk / r.legitAttempts)), 3),
    legitOk: runs.map((r) => r.legitOk),
    legitAttempts: last.legitAttempts,
    legitRequired: last.legitRequired,
    counters: last.counters,
    runsPassed: runs.filter((r) => r.pass).length,
    runs: RUNS,
  };
  floods[name] = figure;
  floodRows.push({ flood: name, attack: `${last.attackCount} ${last.attack}`, heapMiB: figure.peakHeapDeltaMiB, rssMiB: figure.peakRssDeltaMiB, cpuPct: figure.cpuPercent, legit: `${figure.legitOk.join('/')} of ${last.legitAttempts}`, boundMiB: last.boundMiB, passed: `${figure.runsPassed}/${RUNS}` });
  floodAcceptance.push(accept(`flood ${name}: memory under ${last.boundMiB} MiB and legit traffic flowing`, figure.runsPassed, RUNS));
}
printTable(`hardening: floods (medians of ${RUNS} runs)`, floodRows);

const acceptance: Acceptance[] = [
  accept('zero crashes across fuzzing', totalCrashes, 0, '<='),
  accept('round trips: every codec decode(encode(v)) = v', roundTripFailures, 0, '<='),
  ...floodAcceptance,
];
printTable(
  `hardening: acceptance${SMOKE ? ' (smoke run: tiny sizes, computed but not asserted)' : ''}`,
  acceptance.map((a) => ({ name: a.name, value: a.value, target: `${a.comparison ?? '>='} ${a.target}`, pass: a.pass ? 'PASS' : 'FAIL' })),
);

// Merge into <results dir>/hardening.json (the soak suite owns figures.soak and the soak entries).
const file = resultsFile('hardening');
let previous: { figures?: Record<string, unknown>; acceptance?: Acceptance[] } = {};
if (existsSync(file)) {
  try {
    previous = JSON.parse(readFileSync(file, 'utf8')) as typeof previous;
  } catch {
    previous = {};
  }
}
const figures: Record<string, unknown> = {
  ...(previous.figures ?? {}),
  fuzz: {
    inputsPerDecoder: FUZZ_INPUTS,
    decoders: fuzz.length,
    totalInputs: fuzz.reduce((n, r) => n + r.inputs, 0),
    crashes: totalCrashes,
    perDecoder: Object.fromEntries(fuzz.map((r) => [r.name, { inputs: r.inputs, accepted: r.accepted, refused: r.rejected, crashes: r.crashes, examples: r.examples, roundTrips: r.roundTrips, roundTripFailure: r.roundTripFailure, inputsPerSecond: r.inputsPerSecond }])),
  },
  floods,
  wallSeconds: round((Date.now() - started) / 1000, 1),
};
const kept = (previous.acceptance ?? []).filter((entry) => entry.name.startsWith('soak'));
writeJson(file, resultsObject('hardening', figures, [...acceptance, ...kept]));
console.log(`\nwrote ${file} (${round((Date.now() - started) / 1000, 1)} s)`);
// A smoke run computes the acceptance but does not assert it (tiny sizes).
process.exitCode = SMOKE || acceptance.every((a) => a.pass) ? 0 : 1;
