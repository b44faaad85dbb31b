/**
 * Suite `kademlia`:
 *
 * 1. Simulated networks of 100, 1,000 and 10,000 nodes (in-memory network, virtual clock,
 *    links of 50 +/- 10 ms) bootstrapped from 5 seeds with the default options. After
 *    they settle: 1,000 lookups of random live ids from random live nodes (success,
 *    rounds, queries and datagrams per lookup, virtual latency); then churn (25% leave
 *    without a word, as many join) and 1,000 lookups again. Wall time, CPU time and peak
 *    RSS per scenario; each scenario runs in its own child process so its memory is its
 *    own. Runs per size: 3 (`BENCH_KADEMLIA_RUNS`), medians across runs, worst case for
 *    success and p99.
 * 2. A reference variant at 1,000 nodes: the paper's fuller join (2 bucket refreshes after
 *    the self-lookup), to show what the cheaper default join trades.
 * 3. Decoder fuzz (100,000 random and mutated inputs per message type) and a node fed
 *    100,000 garbage datagrams that must keep serving lookups.
 * 4. 200 real nodes over UDP on 127.0.0.1, bootstrapped from one node: every node is
 *    looked up from another, plus 200 random lookups.
 *
 * `BENCH_KADEMLIA_SIZES=100,1000` limits the sizes; `BENCH_KADEMLIA_LOOKUPS` sets the
 * lookups per phase (default 1,000).
 *
 * Smoke mode (BENCH_SMOKE=1): one run at 60 nodes (the reference variant and the
 * 10,000-node acceptance entries computed at that size too), 20 lookups per phase, 2,000
 * fuzz inputs per decoder, 2,000 garbage datagrams, 20 real nodes.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createNode, decodeFrame, Identity, seededRandom, WireError, type NodeId } from '@deccom/core';
import { udp } from '@deccom/udp';
import { decodeMessage, encodeMessage, KADEMLIA_PROTOCOL, kademlia, MESSAGE, type KademliaMessage, type KademliaOptions } from '@deccom/kademlia';
import { buildNetwork, churn, runLookups, stopAll, type LookupResult } from '@deccom/kademlia/simulation';
import { accept, knob, median, percentile, printTable, round, SMOKE, writeResults, type Acceptance } from '../report.js';

const LOOKUPS = knob('BENCH_KADEMLIA_LOOKUPS', 1000, 20);
/** Fuzzed inputs per message type (and random frames). */
const FUZZ_INPUTS = knob('BENCH_KADEMLIA_FUZZ_INPUTS', 100_000, 2_000);
/** Garbage datagrams fed to one node. */
const GARBAGE = knob('BENCH_KADEMLIA_GARBAGE', 100_000, 2_000);
/** Real nodes over UDP on 127.0.0.1, and how long they get to join. */
const REAL = knob('BENCH_KADEMLIA_REAL_NODES', 200, 20);
const REAL_JOIN_MS = SMOKE ? 500 : 3000;
const thousands = (n: number): string => n.toLocaleString('en-US');

interface PhaseSummary {
  lookups: number;
  successRate: number;
  answeredFromTable: number;
  /** Over lookups that went to the network. */
  roundsMedian: number;
  roundsP95: number;
  roundsP99: number;
  queriesMedian: number;
  queriesP95: number;
  queriesP99: number;
  /** Datagrams on the simulated wire during the phase, per lookup (queries and answers). */
  datagramsPerLookup: number;
  latencyMsMedian: number;
  latencyMsP95: number;
  latencyMsP99: number;
}

interface ScenarioResult {
  nodes: number;
  seed: number;
  joinWallSeconds: number;
  joinCpuSeconds: number;
  joinDatagramsPerNode: number;
  heapAfterJoinMiB: number;
  heapPerNodeKiB: number;
  peersPerNodeMedian: number;
  peersPerNodeMin: number;
  noChurn: PhaseSummary;
  afterChurn25: PhaseSummary;
  churnJoinDatagramsPerNode: number;
  wallSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
}

function summarise(results: readonly LookupResult[], datagrams: number): PhaseSummary {
  const network = results.flatMap((r) => (r.stats ? [r.stats] : []));
  const rounds = network.map((s) => s.rounds);
  const queries = network.map((s) => s.messages);
  const latency = network.map((s) => s.durationMs);
  const or0 = (values: number[]) => (values.length ? values : [0]);
  return {
    lookups: results.length,
    successRate: results.filter((r) => r.ok).length / results.length,
    answeredFromTable: results.filter((r) => r.fromTable).length,
    roundsMedian: median(or0(rounds)),
    roundsP95: percentile(or0(rounds), 95),
    roundsP99: percentile(or0(rounds), 99),
    queriesMedian: median(or0(queries)),
    queriesP95: percentile(or0(queries), 95),
    queriesP99: percentile(or0(queries), 99),
    datagramsPerLookup: datagrams / results.length,
    latencyMsMedian: round(median(or0(latency)), 1),
    latencyMsP95: round(percentile(or0(latency), 95), 1),
    latencyMsP99: round(percentile(or0(latency), 99), 1),
  };
}

/** One scenario, in this (child) process. */
async function scenario(size: number, seed: number, options: KademliaOptions): Promise<ScenarioResult> {
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  const sim = await buildNetwork(size, { seed, kademlia: options });
  const joinWallSeconds = (performance.now() - started) / 1000;
  const joinCpu = process.cpuUsage(cpuStart);
  const joinDatagrams = sim.network.stats.sent;
  global.gc?.();
  const heapAfterJoin = process.memoryUsage().heapUsed;
  const peers = sim.alive.map((n) => n.getPeers().length);
  let sent = sim.network.stats.sent;
  const before = await runLookups(sim, LOOKUPS, seed + 11);
  const noChurn = summarise(before, sim.network.stats.sent - sent);
  sent = sim.network.stats.sent;
  const { joined } = await churn(sim, 0.25, seed + 13);
  const churnJoinDatagrams = sim.network.stats.sent - sent;
  sent = sim.network.stats.sent;
  const after = await runLookups(sim, LOOKUPS, seed + 17);
  const afterChurn25 = summarise(after, sim.network.stats.sent - sent);
  const wallSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  await stopAll(sim);
  return {
    nodes: size,
    seed,
    joinWallSeconds,
    joinCpuSeconds: (joinCpu.user + joinCpu.system) / 1e6,
    joinDatagramsPerNode: joinDatagrams / size,
    heapAfterJoinMiB: heapAfterJoin / 2 ** 20,
    heapPerNodeKiB: (heapAfterJoin - heapBefore) / size / 1024,
    peersPerNodeMedian: median(peers),
    peersPerNodeMin: Math.min(...peers),
    noChurn,
    afterChurn25,
    churnJoinDatagramsPerNode: churnJoinDatagrams / Math.max(1, joined),
    wallSeconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

// Child mode: `kademlia.js scenario <size> <seed> <options json>` prints one JSON line.
if (process.argv[2] === 'scenario') {
  const result = await scenario(Number(process.argv[3]), Number(process.argv[4]), JSON.parse(process.argv[5] ?? '{}') as KademliaOptions);
  console.log(JSON.stringify(result));
  process.exit(0);
}

function runScenario(size: number, seed: number, options: KademliaOptions = {}): ScenarioResult {
  const child = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=4096', fileURLToPath(import.meta.url), 'scenario', String(size), String(seed), JSON.stringify(options)], {
    encoding: 'utf8',
    maxBuffer: 16 * 2 ** 20,
  });
  if (child.status !== 0) throw new Error(`scenario ${size}/${seed} failed (${child.status}): ${child.stderr}`);
  const lines = child.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as ScenarioResult;
}

/** Medians across runs; worst case for success rates and p99s. */
function combine(runs: readonly ScenarioResult[]) {
  const m = (pick: (r: ScenarioResult) => number) => round(median(runs.map(pick)), 3);
  const worst = (pick: (r: ScenarioResult) => number, max: boolean) => round(max ? Math.max(...runs.map(pick)) : Math.min(...runs.map(pick)), 4);
  const phase = (pick: (r: ScenarioResult) => PhaseSummary) => ({
    lookupsPerRun: pick(runs[0]!).lookups,
    successRateWorst: worst((r) => pick(r).successRate, false),
    answeredFromTableMedian: m((r) => pick(r).answeredFromTable),
    roundsMedian: m((r) => pick(r).roundsMedian),
    roundsP95: m((r) => pick(r).roundsP95),
    roundsP99Worst: worst((r) => pick(r).roundsP99, true),
    queriesMedian: m((r) => pick(r).queriesMedian),
    queriesP95: m((r) => pick(r).queriesP95),
    queriesP99: m((r) => pick(r).queriesP99),
    datagramsPerLookup: m((r) => pick(r).datagramsPerLookup),
    latencyMsMedian: m((r) => pick(r).latencyMsMedian),
    latencyMsP95: m((r) => pick(r).latencyMsP95),
    latencyMsP99: m((r) => pick(r).latencyMsP99),
  });
  return {
    nodes: runs[0]!.nodes,
    runs: runs.length,
    seeds: runs.map((r) => r.seed),
    wallSecondsMedian: m((r) => r.wallSeconds),
    wallSecondsMax: worst((r) => r.wallSeconds, true),
    cpuSecondsMedian: m((r) => r.cpuSeconds),
    joinWallSecondsMedian: m((r) => r.joinWallSeconds),
    joinCpuSecondsMedian: m((r) => r.joinCpuSeconds),
    joinDatagramsPerNode: m((r) => r.joinDatagramsPerNode),
    churnJoinDatagramsPerNode: m((r) => r.churnJoinDatagramsPerNode),
    peakRssMiBMax: worst((r) => r.peakRssMiB, true),
    heapAfterJoinMiBMedian: m((r) => r.heapAfterJoinMiB),
    heapPerNodeKiBMedian: m((r) => r.heapPerNodeKiB),
    peersPerNodeMedian: m((r) => r.peersPerNodeMedian),
    peersPerNodeMin: worst((r) => r.peersPerNodeMin, false),
    noChurn: phase((r) => r.noChurn),
    afterChurn25: phase((r) => r.afterChurn25),
  };
}

const SIZES = (process.env['BENCH_KADEMLIA_SIZES'] ?? (SMOKE ? '60' : '100,1000,10000')).split(',').map(Number);
const RUNS = knob('BENCH_KADEMLIA_RUNS', 3, 1);
/** Rounds, wall time and peak RSS are targets from this size up (smoke mode: computed at every size). */
const SCALE_TARGETS_FROM = SMOKE ? 0 : 10_000;
/** The size the reference variant (the paper's fuller join) runs at, when it is among SIZES. */
const REFERENCE_SIZE = SMOKE ? SIZES[0]! : 1000;
const figures: Record<string, unknown> = { link: '40 ms + uniform [0, 20) ms jitter (50 +/- 10 ms)', seeds: 5, lookupsPerPhase: LOOKUPS, options: 'defaults (k 20, alpha 3, join = self-lookup)' };
const acceptance: Acceptance[] = [];
const rows: Record<string, unknown>[] = [];

const row = (label: string, c: ReturnType<typeof combine>, phase: 'noChurn' | 'afterChurn25') => {
  const p = c[phase];
  return {
    scenario: label,
    phase: phase === 'noChurn' ? 'settled' : 'after 25% churn',
    success: p.successRateWorst,
    'rounds med': p.roundsMedian,
    'rounds p95': p.roundsP95,
    'rounds p99': p.roundsP99Worst,
    'queries med': p.queriesMedian,
    'queries p99': p.queriesP99,
    'datagrams/lookup': p.datagramsPerLookup,
    'latency ms med': p.latencyMsMedian,
    'latency ms p99': p.latencyMsP99,
    'join dgrams/node': phase === 'noChurn' ? c.joinDatagramsPerNode : c.churnJoinDatagramsPerNode,
    'wall s': phase === 'noChurn' ? c.wallSecondsMedian : '',
    'peak RSS MiB': phase === 'noChurn' ? c.peakRssMiBMax : '',
    'heap KiB/node': phase === 'noChurn' ? c.heapPerNodeKiBMedian : '',
  };
};

for (const size of SIZES) {
  const runs: ScenarioResult[] = [];
  for (let run = 0; run < RUNS; run++) {
    runs.push(runScenario(size, size + run));
    console.log(`kademlia ${size} nodes, run ${run + 1}/${RUNS}: ${round(runs[run]!.wallSeconds, 1)} s wall`);
  }
  const c = combine(runs);
  figures[`nodes${size}`] = c;
  rows.push(row(`${size} nodes`, c, 'noChurn'), row(`${size} nodes`, c, 'afterChurn25'));
  acceptance.push(accept(`${size} nodes: lookup success, no churn (worst of ${RUNS} runs)`, c.noChurn.successRateWorst, 1));
  acceptance.push(accept(`${size} nodes: lookup success after 25% churn (worst of ${RUNS} runs)`, c.afterChurn25.successRateWorst, 0.99));
  if (size >= SCALE_TARGETS_FROM) {
    acceptance.push(accept(`${size} nodes: median rounds (median of runs)`, c.noChurn.roundsMedian, 4, '<='));
    acceptance.push(accept(`${size} nodes: p99 rounds (worst of runs)`, c.noChurn.roundsP99Worst, 7, '<='));
    acceptance.push(accept(`${size} nodes: scenario wall time (median of runs)`, c.wallSecondsMedian, 180, '<=', 's'));
    acceptance.push(accept(`${size} nodes: scenario peak RSS (worst of runs)`, c.peakRssMiBMax, 4096, '<=', 'MiB'));
  }
}

if (SIZES.includes(REFERENCE_SIZE)) {
  // Reference: the paper's fuller join at 1,000 nodes.
  const runs: ScenarioResult[] = [];
  for (let run = 0; run < RUNS; run++) runs.push(runScenario(REFERENCE_SIZE, REFERENCE_SIZE + run, { joinRefreshes: 2 }));
  const c = combine(runs);
  figures[`nodes${REFERENCE_SIZE}JoinRefreshes2`] = c;
  rows.push(row(`${REFERENCE_SIZE} nodes, 2 join refreshes`, c, 'noChurn'), row(`${REFERENCE_SIZE} nodes, 2 join refreshes`, c, 'afterChurn25'));
}
printTable('kademlia: simulated networks (virtual clock, 50 +/- 10 ms links, 5 seeds)', rows);

// Decoder fuzz: 100,000 random and mutated inputs per message type; anything other than a WireError escaping counts.
{
  const alice = Identity.fromString('alice');
  const peer = { identity: alice.public, id: alice.id, address: { host: '10.0.0.1', port: 4000 } };
  const target = new Uint8Array(32).fill(3);
  const samples: KademliaMessage[] = [
    { type: MESSAGE.introduce, peer },
    { type: MESSAGE.askId, peer },
    { type: MESSAGE.findNode, requestId: 7, target, peer },
    { type: MESSAGE.findTopic, requestId: 8, target, peer },
    { type: MESSAGE.response, requestId: 9, part: 0, parts: 1, providers: [peer], nodes: [peer, peer] },
    { type: MESSAGE.announce, requestId: 10, topic: target, ttlSeconds: 600, peer },
    { type: MESSAGE.announceAck, requestId: 11 },
    { type: MESSAGE.withdraw, topic: target, peer },
  ];
  const random = seededRandom(2024);
  const started = performance.now();
  let escaped = 0;
  let inputs = 0;
  for (const type of Object.values(MESSAGE)) {
    const bodies = samples.filter((s) => s.type === type).map((s) => encodeMessage(s).subarray(4));
    for (let i = 0; i < FUZZ_INPUTS; i++) {
      let input: Uint8Array;
      if (random.int(3) === 0) input = random.bytes(random.int(160));
      else {
        input = bodies[random.int(bodies.length)]!.slice();
        for (let f = 1 + random.int(3); f > 0; f--) {
          const at = random.int(input.length);
          input[at] = input[at]! ^ (1 << random.int(8));
        }
        if (random.int(3) === 0) input = input.subarray(0, random.int(input.length + 1));
      }
      inputs++;
      try {
        decodeMessage(type, input);
      } catch (error) {
        if (!(error instanceof WireError)) escaped++;
      }
    }
  }
  // Frames too: the layer's first decode step.
  for (let i = 0; i < FUZZ_INPUTS; i++) {
    inputs++;
    try {
      decodeFrame(random.bytes(random.int(12)), KADEMLIA_PROTOCOL);
    } catch (error) {
      if (!(error instanceof WireError)) escaped++;
    }
  }
  figures['fuzz'] = { inputs, perDecoder: FUZZ_INPUTS, decoders: Object.values(MESSAGE).length + 1, escaped, seconds: round((performance.now() - started) / 1000, 2) };
  acceptance.push(accept(`decoders: exceptions other than WireError escaping ${thousands(FUZZ_INPUTS)} inputs each`, escaped, 0, '<='));
}

// A node fed 100,000 garbage datagrams keeps serving lookups (to it and from it).
{
  const sim = await buildNetwork(60, { seed: 99, link: { latencyMs: 10 } });
  const victim = sim.alive[3]!;
  const random = seededRandom(98);
  const attacker = sim.network.bind(sim.network.allocateHost(), 0, { deliver: () => {} });
  const valid = [
    encodeMessage({ type: MESSAGE.findNode, requestId: 1, target: new Uint8Array(32), peer: sim.alive[9]!.localPeer() }),
    encodeMessage({ type: MESSAGE.response, requestId: 1, part: 0, parts: 1, providers: [], nodes: [sim.alive[9]!.localPeer()] }),
    encodeMessage({ type: MESSAGE.introduce, peer: sim.alive[9]!.localPeer() }),
    encodeMessage({ type: MESSAGE.announceAck, requestId: 1 }),
  ];
  for (let i = 0; i < GARBAGE; i++) {
    let bytes: Uint8Array;
    if (random.int(4) === 0) bytes = random.bytes(random.int(80));
    else {
      bytes = valid[random.int(valid.length)]!.slice();
      for (let f = 1 + random.int(3); f > 0; f--) {
        const at = 3 + random.int(bytes.length - 3);
        bytes[at] = bytes[at]! ^ (1 << random.int(8));
      }
    }
    sim.network.send(attacker, victim.localAddress(), new Uint8Array([0, ...bytes]));
    if (i % 10_000 === 9_999 || i === GARBAGE - 1) await sim.clock.advance(20);
  }
  await sim.clock.advance(1000);
  const counters = victim.counters()['kademlia']!;
  const fromVictim = await runLookups({ ...sim, alive: [victim, ...sim.alive.slice(10, 30)] }, 100, 5);
  let toVictim = 0;
  for (const node of sim.alive.slice(30, 50)) {
    let found = false;
    const lookup = node.findPeer(victim.id as NodeId).then((p) => (found = p.id.equals(victim.id)), () => undefined);
    await sim.clock.runUntil(() => found, { maxMs: 20_000, stepMs: 20 });
    await lookup;
    if (found) toVictim++;
  }
  await stopAll(sim);
  const served = (fromVictim.filter((r) => r.ok).length + toVictim) / (fromVictim.length + 20);
  figures['garbageFed'] = { garbageDatagrams: GARBAGE, dropped: counters['dropped'] ?? 0, handlerErrors: counters['handler-errors'] ?? 0, lookupsAfter: fromVictim.length + 20, successRate: served };
  acceptance.push(accept(`node fed ${thousands(GARBAGE)} garbage datagrams: lookups from and to it succeed`, served, 1));
}

// 200 real nodes over UDP on 127.0.0.1, bootstrapped from one node.
{
  const started = performance.now();
  const options: KademliaOptions = { requestTimeoutMs: 2000 };
  const seed = createNode({ identity: Identity.fromString('real-0'), layers: [udp({ host: '127.0.0.1' }), kademlia(options)] });
  await seed.start();
  const nodes = [seed];
  for (let i = 1; i < REAL; i++) {
    const node = createNode({ identity: Identity.fromString(`real-${i}`), layers: [udp({ host: '127.0.0.1' }), kademlia({ ...options, bootstrap: [seed.localAddress()] })] });
    await node.start();
    nodes.push(node);
    if (i % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await new Promise((resolve) => setTimeout(resolve, REAL_JOIN_MS));
  const joinedSeconds = (performance.now() - started) / 1000;
  const random = seededRandom(99);
  const pairs: [number, number][] = [];
  for (let i = 0; i < REAL; i++) {
    let from = random.int(REAL);
    while (from === i) from = random.int(REAL);
    pairs.push([from, i]);
  }
  for (let i = 0; i < REAL; i++) {
    const from = random.int(REAL);
    let to = random.int(REAL);
    while (to === from) to = random.int(REAL);
    pairs.push([from, to]);
  }
  let ok = 0;
  const durations: number[] = [];
  for (let i = 0; i < pairs.length; i += 20) {
    await Promise.all(
      pairs.slice(i, i + 20).map(async ([from, to]) => {
        const t = performance.now();
        try {
          const peer = await nodes[from]!.findPeer(nodes[to]!.id);
          if (peer.id.equals(nodes[to]!.id)) ok++;
          durations.push(performance.now() - t);
        } catch {
          // counted as a failure
        }
      }),
    );
  }
  for (const node of nodes) await node.stop();
  const real = {
    nodes: REAL,
    lookups: pairs.length,
    successRate: ok / pairs.length,
    lookupMsMedian: round(median(durations), 2),
    lookupMsP99: round(percentile(durations, 99), 2),
    joinSeconds: round(joinedSeconds, 2),
    wallSeconds: round((performance.now() - started) / 1000, 2),
  };
  figures[`real${REAL}`] = real;
  printTable(`kademlia: ${REAL} real nodes over UDP on 127.0.0.1 (one process, one bootstrap node)`, [real]);
  acceptance.push(accept(`${REAL} real nodes on loopback: lookup success`, real.successRate, 1));
}

writeResults('kademlia', figures, acceptance);
