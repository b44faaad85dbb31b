/**
 * Suite `udp`: datagrams/s and MB/s for 64 B and 1200 B datagrams between two endpoints
 * on 127.0.0.1 through (a) raw node:dgram, (b) the udp layer alone, (c) udp + faulty (no
 * faults) + delay (zero), all in one process and one run. All use the same windowed
 * sending pattern so the receiver is never overrun (only datagrams that arrived count),
 * the variants take turns in small blocks within each run so machine noise hits all of
 * them alike, and each figure is the median of RUNS runs.
 *
 * Smoke mode (BENCH_SMOKE=1): 1 run of 2,000 datagrams in 2 blocks per variant and size.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { createNode } from '@deccom/core';
import { udp } from '@deccom/udp';
import { faulty } from '@deccom/faulty';
import { delay } from '@deccom/delay';
import { accept, knob, median, printTable, SMOKE, writeResults } from '../report.js';

const RUNS = knob('BENCH_RUNS', 7, 1);
const DATAGRAMS = knob('BENCH_DATAGRAMS', 80_000, 2_000);
const BLOCKS = knob('BENCH_BLOCKS', 20, 2);
/** Untimed datagrams per variant before each run's blocks. */
const WARMUP_DATAGRAMS = SMOKE ? 200 : 4000;
const WINDOW = 256;
const SLACK = 64;
const SIZES: readonly number[] = process.env['BENCH_SIZES'] ? process.env['BENCH_SIZES'].split(',').map(Number) : [64, 1200];
/**
 * `raw` is node:dgram as a user writes it (default address lookup) and is the baseline
 * of the acceptance ratios. `raw-sync` is node:dgram with the synchronous IP-literal
 * lookup the udp layer installs on its socket: shown so the table also says how much of
 * the layer's speed comes from that trick rather than from a lean hot path.
 */
const VARIANTS = ['raw', 'raw-sync', 'layer', 'stack'] as const;
type Variant = (typeof VARIANTS)[number];

interface Endpoints {
  send(payload: Uint8Array): void;
  received(): number;
  close(): Promise<void>;
}

/** Answers an IP literal at once, as the udp layer's socket does. */
const syncLookup = (address: string, _family: unknown, callback: (error: Error | null, address: string, family: number) => void): void => {
  if (isIP(address) === 4) callback(null, address, 4);
  else callback(new Error(`not an IPv4 literal: ${address}`), address, 4);
};

const bindSocket = (lookup?: typeof syncLookup): Promise<Socket> =>
  new Promise((resolve) => {
    const socket = createSocket(lookup ? { type: 'udp4', lookup } : { type: 'udp4' });
    socket.bind(0, '127.0.0.1', () => {
      socket.setRecvBufferSize(4 * 1024 * 1024);
      socket.setSendBufferSize(4 * 1024 * 1024);
      resolve(socket);
    });
  });

async function rawEndpoints(sync: boolean): Promise<Endpoints> {
  const sender = await bindSocket(sync ? syncLookup : undefined);
  const receiver = await bindSocket();
  let count = 0;
  receiver.on('message', () => void count++);
  const port = receiver.address().port;
  return {
    send: (payload) => sender.send(payload, port, '127.0.0.1'),
    received: () => count,
    close: async () => {
      await new Promise<void>((r) => sender.close(() => r()));
      await new Promise<void>((r) => receiver.close(() => r()));
    },
  };
}

async function layerEndpoints(variant: 'layer' | 'stack'): Promise<Endpoints> {
  const stack = () => (variant === 'layer' ? [udp({ host: '127.0.0.1' })] : [udp({ host: '127.0.0.1' }), faulty(), delay()]);
  const sender = createNode({ layers: stack() as [ReturnType<typeof udp>] });
  const receiver = createNode({ layers: stack() as [ReturnType<typeof udp>] });
  await sender.start();
  await receiver.start();
  let count = 0;
  receiver.handle('datagram', () => void count++);
  const to = receiver.localAddress();
  return {
    send: (payload) => sender.sendDatagram(to, payload),
    received: () => count,
    close: async () => {
      await sender.stop();
      await receiver.stop();
    },
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const createEndpoints = (variant: Variant): Promise<Endpoints> =>
  variant === 'raw' || variant === 'raw-sync' ? rawEndpoints(variant === 'raw-sync') : layerEndpoints(variant);

interface Tally {
  sent: number;
  received: number;
  seconds: number;
  cpuMicros: number;
}

/**
 * Sends `count` datagrams in windows of WINDOW (waiting until all but SLACK of them
 * arrived before the next window, so the receiver is never overrun), then drains.
 * Every variant is driven by this same function.
 */
async function block(endpoints: Endpoints, payload: Uint8Array, count: number, tally: Tally): Promise<void> {
  const base = endpoints.received();
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  let sent = 0;
  while (sent < count) {
    const burst = Math.min(WINDOW, count - sent);
    for (let i = 0; i < burst; i++) endpoints.send(payload);
    sent += burst;
    const windowStart = performance.now();
    while (endpoints.received() - base < sent - SLACK && performance.now() - windowStart < 50) await tick();
  }
  const drainStart = performance.now();
  while (endpoints.received() - base < sent && performance.now() - drainStart < 100) await tick();
  const cpu = process.cpuUsage(cpuBefore);
  tally.seconds += (performance.now() - started) / 1000;
  tally.cpuMicros += cpu.user + cpu.system;
  tally.sent += sent;
  tally.received += endpoints.received() - base;
}

/**
 * One run: every variant's endpoints are up at once, and the run's DATAGRAMS per variant
 * are sent in BLOCKS blocks, the variants taking turns block by block (in a rotating
 * order), so a burst of load from elsewhere on the machine lands on all of them alike.
 */
async function run(size: number, round: number): Promise<Record<Variant, { datagramsPerSecond: number; megabytesPerSecond: number; lossRate: number; cpuMicrosPerDatagram: number }>> {
  const endpoints = {} as Record<Variant, Endpoints>;
  for (const variant of VARIANTS) endpoints[variant] = await createEndpoints(variant);
  const payload = new Uint8Array(size).fill(7);
  const tallies = Object.fromEntries(VARIANTS.map((variant) => [variant, { sent: 0, received: 0, seconds: 0, cpuMicros: 0 }])) as Record<Variant, Tally>;
  // Warm-up (JIT, socket buffers), not counted.
  for (const variant of VARIANTS) await block(endpoints[variant], payload, WARMUP_DATAGRAMS, { sent: 0, received: 0, seconds: 0, cpuMicros: 0 });
  const perBlock = Math.ceil(DATAGRAMS / BLOCKS);
  for (let b = 0; b < BLOCKS; b++) {
    for (let i = 0; i < VARIANTS.length; i++) {
      const variant = VARIANTS[(i + b + round) % VARIANTS.length]!;
      await block(endpoints[variant], payload, perBlock, tallies[variant]);
    }
  }
  for (const variant of VARIANTS) await endpoints[variant].close();
  return Object.fromEntries(
    VARIANTS.map((variant) => {
      const t = tallies[variant];
      return [
        variant,
        {
          datagramsPerSecond: t.received / t.seconds,
          megabytesPerSecond: (t.received * size) / t.seconds / 1e6,
          lossRate: 1 - t.received / t.sent,
          cpuMicrosPerDatagram: t.cpuMicros / t.received,
        },
      ];
    }),
  ) as Record<Variant, { datagramsPerSecond: number; megabytesPerSecond: number; lossRate: number; cpuMicrosPerDatagram: number }>;
}

const figures: Record<string, unknown> = { runs: RUNS, datagramsPerVariantPerRun: DATAGRAMS, blocksPerRun: BLOCKS, window: WINDOW, slack: SLACK };
const rows: Record<string, unknown>[] = [];
const medians: Record<string, number> = {};
const runsBySize: Record<number, Record<Variant, number[]>> = {};
for (const size of SIZES) {
  const samples = Object.fromEntries(VARIANTS.map((variant) => [variant, { dps: [] as number[], mbps: [] as number[], loss: [] as number[], cpu: [] as number[] }])) as Record<
    Variant,
    { dps: number[]; mbps: number[]; loss: number[]; cpu: number[] }
  >;
  for (let r = 0; r < RUNS; r++) {
    const results = await run(size, r);
    for (const variant of VARIANTS) {
      samples[variant].dps.push(results[variant].datagramsPerSecond);
      samples[variant].mbps.push(results[variant].megabytesPerSecond);
      samples[variant].loss.push(results[variant].lossRate);
      samples[variant].cpu.push(results[variant].cpuMicrosPerDatagram);
    }
  }
  runsBySize[size] = Object.fromEntries(VARIANTS.map((variant) => [variant, samples[variant].dps])) as Record<Variant, number[]>;
  const rawMedian = median(samples.raw.dps);
  for (const variant of VARIANTS) {
    const dps = median(samples[variant].dps);
    medians[`${variant}-${size}`] = dps;
    rows.push({
      size: `${size} B`,
      variant,
      'datagrams/s': Math.round(dps),
      'MB/s': median(samples[variant].mbps),
      'ratio of medians': dps / rawMedian,
      // Each run's variant against that run's raw figure: noise shared by the run cancels.
      'per-run ratio (median)': median(samples[variant].dps.map((value, i) => value / samples.raw.dps[i]!)),
      'loss (median)': median(samples[variant].loss),
      // Process CPU (user + system, both ends of the link) per datagram received: less
      // sensitive than wall time to other load on the machine.
      'CPU µs/datagram': median(samples[variant].cpu),
    });
  }
  figures[`size${size}`] = Object.fromEntries(
    VARIANTS.map((variant) => [
      variant,
      {
        datagramsPerSecondMedian: median(samples[variant].dps),
        megabytesPerSecondMedian: median(samples[variant].mbps),
        ratioToRaw: median(samples[variant].dps) / rawMedian,
        datagramsPerSecondRuns: samples[variant].dps.map(Math.round),
        lossRuns: samples[variant].loss,
        cpuMicrosPerDatagramMedian: median(samples[variant].cpu),
      },
    ]),
  );
}
printTable('udp: datagrams through raw node:dgram, the udp layer, and udp + faulty + delay (medians)', rows);
// The acceptance ratios are the median over runs of each run's ratio: within a run the
// variants took turns block by block, so they saw the same machine; the ratio of the
// per-variant medians (also in the table and the results file) mixes runs made under
// different load and swings far more on a shared machine.
const pairedRatio = (variant: Variant, size: number): number => median(runsBySize[size]![variant].map((value, i) => value / runsBySize[size]!.raw[i]!));
const acceptance = SIZES.flatMap((size) => [
  accept(`udp layer / raw dgram datagrams/s, ${size} B (median of per-run ratios)`, pairedRatio('layer', size), 0.9),
  accept(`udp + faulty + delay / raw dgram datagrams/s, ${size} B (median of per-run ratios)`, pairedRatio('stack', size), 0.85),
]);
figures['ratioOfMedians'] = Object.fromEntries(SIZES.map((size) => [size, { layer: medians[`layer-${size}`]! / medians[`raw-${size}`]!, stack: medians[`stack-${size}`]! / medians[`raw-${size}`]! }]));
writeResults('udp', figures, acceptance);
