/**
 * Suite `udp`: datagrams/s and MB/s for 64 B and 1200 B datagrams between two endpoints
 * on 127.0.0.1 through (a) raw node:dgram, (b) the udp layer alone, (c) udp + faulty (no
 * faults) + delay (zero). All three use the same windowed sending pattern so the receiver
 * is never overrun, runs are interleaved so machine noise hits all three alike, and the
 * figure is the median of RUNS runs.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { createNode } from '@deccom/core';
import { udp } from '@deccom/udp';
import { faulty } from '@deccom/faulty';
import { delay } from '@deccom/delay';
import { accept, median, printTable, writeResults } from '../report.js';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 7);
const DATAGRAMS = Number(process.env['BENCH_DATAGRAMS'] ?? 80_000);
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

async function run(variant: Variant, size: number): Promise<{ datagramsPerSecond: number; megabytesPerSecond: number; lossRate: number; cpuMicrosPerDatagram: number }> {
  const endpoints = variant === 'raw' || variant === 'raw-sync' ? await rawEndpoints(variant === 'raw-sync') : await layerEndpoints(variant);
  const payload = new Uint8Array(size).fill(7);
  // Warm-up.
  for (let i = 0; i < 2000; i++) endpoints.send(payload);
  for (let spins = 0; spins < 200 && endpoints.received() < 1900; spins++) await tick();
  const base = endpoints.received();
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  let sent = 0;
  while (sent < DATAGRAMS) {
    const burst = Math.min(WINDOW, DATAGRAMS - sent);
    for (let i = 0; i < burst; i++) endpoints.send(payload);
    sent += burst;
    const windowStart = performance.now();
    while (endpoints.received() - base < sent - SLACK && performance.now() - windowStart < 50) await tick();
  }
  const drainStart = performance.now();
  while (endpoints.received() - base < sent && performance.now() - drainStart < 100) await tick();
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const received = endpoints.received() - base;
  await endpoints.close();
  return {
    datagramsPerSecond: received / elapsed,
    megabytesPerSecond: (received * size) / elapsed / 1e6,
    lossRate: 1 - received / sent,
    cpuMicrosPerDatagram: (cpu.user + cpu.system) / received,
  };
}

const figures: Record<string, unknown> = { runs: RUNS, datagramsPerRun: DATAGRAMS, window: WINDOW, slack: SLACK };
const rows: Record<string, unknown>[] = [];
const medians: Record<string, number> = {};
for (const size of SIZES) {
  const samples = Object.fromEntries(VARIANTS.map((variant) => [variant, { dps: [] as number[], mbps: [] as number[], loss: [] as number[], cpu: [] as number[] }])) as Record<
    Variant,
    { dps: number[]; mbps: number[]; loss: number[]; cpu: number[] }
  >;
  for (let r = 0; r < RUNS; r++) {
    // Interleaved, and rotated each round so no variant always runs first.
    const order = VARIANTS.map((_, i) => VARIANTS[(i + r) % VARIANTS.length]!);
    for (const variant of order) {
      const result = await run(variant, size);
      samples[variant].dps.push(result.datagramsPerSecond);
      samples[variant].mbps.push(result.megabytesPerSecond);
      samples[variant].loss.push(result.lossRate);
      samples[variant].cpu.push(result.cpuMicrosPerDatagram);
    }
  }
  const rawMedian = median(samples.raw.dps);
  for (const variant of VARIANTS) {
    const dps = median(samples[variant].dps);
    medians[`${variant}-${size}`] = dps;
    rows.push({
      size: `${size} B`,
      variant,
      'datagrams/s': Math.round(dps),
      'MB/s': median(samples[variant].mbps),
      'ratio to raw': dps / rawMedian,
      // Each round's variant against that round's raw run: noise shared by the round cancels.
      'paired ratio (median)': median(samples[variant].dps.map((value, i) => value / samples.raw.dps[i]!)),
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
const acceptance = SIZES.flatMap((size) => [
  accept(`udp layer / raw dgram datagrams/s, ${size} B`, medians[`layer-${size}`]! / medians[`raw-${size}`]!, 0.9),
  accept(`udp + faulty + delay / raw dgram datagrams/s, ${size} B`, medians[`stack-${size}`]! / medians[`raw-${size}`]!, 0.85),
]);
writeResults('udp', figures, acceptance);
