/**
 * Suite `holepunch`: how often two nodes behind NATs end up connected, and by which
 * mechanism, and how long the first datagram takes.
 *
 * 1. Simulator (in-memory network, virtual clock, 20 ms one-way latency plus up to 10 ms
 *    jitter): every pair of
 *    NAT types (none, full cone, address-restricted, port-restricted, symmetric), RUNS
 *    seeds each, twice: punching only (relay fallback off), and punching with relay
 *    fallback. Per pair: the mechanism, success, and the time from the first datagram
 *    sent (the first attempt) to its delivery, in virtual ms.
 * 2. Real Linux NATs (scripts/netns/holepunch-nat.sh, root only): two private networks
 *    behind iptables MASQUERADE routers; UDP punching, TCP punching, and relay through
 *    `--random-fully` (symmetric) NATs, NETNS_RUNS times each, with the elapsed times
 *    the nodes report. Skipped (and said so) where namespaces are unavailable.
 *
 * Smoke mode (BENCH_SMOKE=1): 1 simulator run per pair; the real-NAT scenarios are
 * skipped (they need root, network namespaces and iptables, and take minutes).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NAT_CHOICES, punchable, runPair, type NatChoice } from '@deccom/holepunch/simulation';
import { accept, knob, median, printTable, SMOKE, smokeSkip, writeResults, type Acceptance } from '../report.js';

const RUNS = knob('BENCH_RUNS', 5, 1);
const NETNS_RUNS = knob('BENCH_NETNS_RUNS', 3, 1);

interface PairFigures {
  a: NatChoice;
  b: NatChoice;
  punchOnly: { successes: number; mechanisms: Record<string, number>; firstByteMs: number };
  withRelay: { successes: number; mechanisms: Record<string, number>; firstByteMs: number };
}

const short: Record<NatChoice, string> = { none: 'none', 'full-cone': 'full', 'address-restricted': 'addr', 'port-restricted': 'port', symmetric: 'sym' };

async function simulator(): Promise<PairFigures[]> {
  const out: PairFigures[] = [];
  for (const a of NAT_CHOICES) {
    for (const b of NAT_CHOICES) {
      const figures: PairFigures = {
        a,
        b,
        punchOnly: { successes: 0, mechanisms: {}, firstByteMs: Number.NaN },
        withRelay: { successes: 0, mechanisms: {}, firstByteMs: Number.NaN },
      };
      for (const [mode, relayFallback] of [
        ['punchOnly', false],
        ['withRelay', true],
      ] as const) {
        const times: number[] = [];
        for (let run = 0; run < RUNS; run++) {
          const result = await runPair({ a, b, seed: run + 1, jitterMs: 10, options: { relayFallback } });
          const mechanism = result.outcome?.mechanism ?? 'none';
          const target = figures[mode];
          target.mechanisms[mechanism] = (target.mechanisms[mechanism] ?? 0) + 1;
          if (result.exchanged && mechanism !== 'failed') target.successes++;
          if (result.firstByteMs !== undefined) times.push(result.firstByteMs);
        }
        figures[mode].firstByteMs = median(times);
      }
      out.push(figures);
    }
  }
  return out;
}

interface NetnsRun {
  punch?: { udp?: string; udpMs?: number; udpEcho?: boolean; tcp?: string; tcpMs?: number; tcpEcho?: boolean; ok?: boolean };
  relay?: { udp?: string; udpMs?: number; udpEcho?: boolean; ok?: boolean };
}

function realNats(): { runs: NetnsRun[]; skipped?: string } {
  const repo = join(fileURLToPath(new URL('.', import.meta.url)), '../../..');
  const script = join(repo, 'scripts/netns/holepunch-nat.sh');
  if (SMOKE) return { runs: [], skipped: smokeSkip('real-NAT scenarios', 'they need root, Linux network namespaces and iptables, and take minutes') };
  if (!existsSync(script)) return { runs: [], skipped: 'scripts/netns/holepunch-nat.sh not found' };
  if (process.platform !== 'linux' || (typeof process.getuid === 'function' && process.getuid() !== 0)) return { runs: [], skipped: 'needs root on Linux' };
  const runs: NetnsRun[] = [];
  for (let i = 0; i < NETNS_RUNS; i++) {
    const result = spawnSync('bash', [script, 'all'], { encoding: 'utf8', timeout: 240_000 });
    if (result.status === 77) return { runs, skipped: result.stderr.trim() };
    const run: NetnsRun = {};
    for (const line of result.stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      const parsed = JSON.parse(line) as { scenario: string; result?: Record<string, any> };
      const r = parsed.result ?? {};
      if (parsed.scenario === 'punch') {
        run.punch = { udp: r['udp']?.mechanism, udpMs: r['udp']?.elapsedMs, udpEcho: r['udpEcho'], tcp: r['tcp']?.mechanism, tcpMs: r['tcp']?.elapsedMs, tcpEcho: r['tcpEcho'], ok: r['ok'] };
      } else if (parsed.scenario === 'relay') {
        run.relay = { udp: r['udp']?.mechanism, udpMs: r['udp']?.elapsedMs, udpEcho: r['udpEcho'], ok: r['ok'] };
      }
    }
    runs.push(run);
  }
  return { runs };
}

async function main(): Promise<void> {
  const started = performance.now();
  const pairs = await simulator();
  printTable(
    `holepunch simulator: ${RUNS} runs per pair, 20 ms one-way latency (first byte in virtual ms)`,
    pairs.map((p) => ({
      a: short[p.a],
      b: short[p.b],
      'punch only ok': `${p.punchOnly.successes}/${RUNS}`,
      'punch only by': Object.entries(p.punchOnly.mechanisms).map(([m, n]) => `${m}:${n}`).join(' '),
      'punch ttfb': p.punchOnly.firstByteMs,
      'with relay ok': `${p.withRelay.successes}/${RUNS}`,
      'with relay by': Object.entries(p.withRelay.mechanisms).map(([m, n]) => `${m}:${n}`).join(' '),
      'relay ttfb': p.withRelay.firstByteMs,
    })),
  );
  const neither = pairs.filter((p) => p.a !== 'symmetric' && p.b !== 'symmetric');
  const punchRate = neither.reduce((sum, p) => sum + p.punchOnly.successes, 0) / (neither.length * RUNS);
  const connectedRate = pairs.reduce((sum, p) => sum + p.withRelay.successes, 0) / (pairs.length * RUNS);
  const mustRelay = pairs.filter((p) => !punchable(p.a, p.b));
  const relayRate = mustRelay.reduce((sum, p) => sum + (p.withRelay.mechanisms['relayed'] ?? 0), 0) / (mustRelay.length * RUNS);
  const punchedTtfb = median(pairs.filter((p) => punchable(p.a, p.b)).map((p) => p.withRelay.firstByteMs));
  const relayedTtfb = median(mustRelay.map((p) => p.withRelay.firstByteMs));

  // NAT classification picks the strategy: with two more public peers to observe them,
  // two symmetric NATs know they are symmetric and go to the relay without punching.
  const informedTimes: number[] = [];
  let informedRelayed = 0;
  for (let run = 0; run < RUNS; run++) {
    const result = await runPair({ a: 'symmetric', b: 'symmetric', seed: run + 1, jitterMs: 10, observers: 2 });
    if (result.outcome?.mechanism === 'relayed' && result.exchanged) informedRelayed++;
    if (result.firstByteMs !== undefined) informedTimes.push(result.firstByteMs);
  }
  const informedTtfb = median(informedTimes);
  printTable('symmetric <-> symmetric when both sides classified their NAT (2 extra observers)', [
    { relayed: `${informedRelayed}/${RUNS}`, 'ttfb ms': informedTtfb, 'uninformed ttfb ms': pairs.find((p) => p.a === 'symmetric' && p.b === 'symmetric')?.withRelay.firstByteMs },
  ]);

  const real = realNats();
  if (real.skipped) console.log(`\nreal-NAT scenarios SKIPPED: ${real.skipped}`);
  printTable(
    `holepunch on real Linux NATs (network namespaces, iptables MASQUERADE), ${real.runs.length} runs`,
    real.runs.map((run, i) => ({
      run: i + 1,
      'udp punch': run.punch?.udp,
      'udp ms': run.punch?.udpMs,
      'udp echo': run.punch?.udpEcho,
      'tcp punch': run.punch?.tcp,
      'tcp ms (incl. 1.5 s direct try)': run.punch?.tcpMs,
      'tcp echo': run.punch?.tcpEcho,
      'symmetric NATs': run.relay?.udp,
      'relay ms': run.relay?.udpMs,
      'relay echo': run.relay?.udpEcho,
    })),
  );

  const acceptance: Acceptance[] = [
    accept('simulator: UDP punching success, pairs where neither side is symmetric (punch only)', punchRate, 1, '>=', 'fraction'),
    accept('simulator: every pair ends connected (punch or relay)', connectedRate, 1, '>=', 'fraction'),
    accept('simulator: pairs that cannot punch end relayed', relayRate, 1, '>=', 'fraction'),
    accept('simulator: median time to first byte, punchable pairs (40 ms RTT)', punchedTtfb, 200, '<=', 'ms'),
    accept('simulator: median time to first byte, relayed pairs (punch deadline 4 s + relay)', relayedTtfb, 5_000, '<=', 'ms'),
    accept('simulator: median time to first byte, symmetric pair that classified its NATs (relay at once)', informedTtfb, 500, '<=', 'ms'),
  ];
  if (real.runs.length > 0) {
    const n = real.runs.length;
    acceptance.push(
      accept('real NATs: UDP hole punching success', real.runs.filter((r) => r.punch?.udp === 'punched-udp' && r.punch.udpEcho).length / n, 1, '>=', 'fraction'),
      accept('real NATs: TCP hole punching success', real.runs.filter((r) => r.punch?.tcp === 'punched-tcp' && r.punch.tcpEcho).length / n, 1, '>=', 'fraction'),
      accept('real NATs: relay when punching is impossible (symmetric NATs)', real.runs.filter((r) => r.relay?.udp === 'relayed' && r.relay.udpEcho).length / n, 1, '>=', 'fraction'),
      accept('real NATs: median time to first byte, punched UDP', median(real.runs.map((r) => r.punch?.udpMs ?? Number.NaN)), 1_000, '<=', 'ms'),
    );
  }
  writeResults(
    'holepunch',
    {
      runsPerPair: RUNS,
      latencyMs: 20,
      pairs,
      punchRate,
      connectedRate,
      relayRate,
      punchedTtfbMs: punchedTtfb,
      relayedTtfbMs: relayedTtfb,
      informedSymmetricTtfbMs: informedTtfb,
      informedSymmetricRelayed: informedRelayed,
      realNats: real,
      elapsedSeconds: (performance.now() - started) / 1000,
    },
    acceptance,
  );
}

await main();
