/**
 * Suite `udp`: datagrams/s and MB/s for 64 B and 1200 B datagrams between two endpoints
 * on 127.0.0.1 through (a) raw node:dgram, (b) the udp layer alone, (c) udp + faulty (no
 * faults) + delay (zero). All three use the same windowed sending pattern so the receiver
 * is never overrun, runs are interleaved so machine noise hits all three alike, and the
 * figure is the median of RUNS runs.
 */
import { createSocket, type Socket } from 'node:dgram';
import { createNode } from '@deccom/core';
import { udp } from '@deccom/udp';
import { faulty } from '@deccom/faulty';
import { delay } from '@deccom/delay';
import { accept, median, printTable, writeResults } from '../report.js';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 9);
const DATAGRAMS = Number(process.env['BENCH_DATAGRAMS'] ?? 80_000);
const WINDOW = 256;
const SLACK = 64;
const SIZES = [64, 1200] as const;
type Variant = 'raw' | 'layer' | 'stack';

interface Endpoints {
  send(payload: Uint8Array): void;
  received(): number;
  close(): Promise<void>;
}

const bindSocket = (): Promise<Socket> =>
  new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1', () => {
      socket.setRecvBufferSize(4 * 1024 * 1024);
      socket.setSendBufferSize(4 * 1024 * 1024);
      resolve(socket);
    });
  });

async function rawEndpoints(): Promise<Endpoints> {
  const sender = await bindSocket();
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

async function run(variant: Variant, size: number): Promise<{ datagramsPerSecond: number; megabytesPerSecond: number; lossRate: number }> {
  const endpoints = variant === 'raw' ? await rawEndpoints() : await layerEndpoints(variant);
  const payload = new Uint8Array(size).fill(7);
  // Warm-up.
  for (let i = 0; i < 2000; i++) endpoints.send(payload);
  for (let spins = 0; spins < 200 && endpoints.received() < 1900; spins++) await tick();
  const base = endpoints.received();
  const started = performance.now();
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
  const received = endpoints.received() - base;
  await endpoints.close();
  return { datagramsPerSecond: received / elapsed, megabytesPerSecond: (received * size) / elapsed / 1e6, lossRate: 1 - received / sent };
}

const figures: Record<string, unknown> = { runs: RUNS, datagramsPerRun: DATAGRAMS, window: WINDOW };
const rows: Record<string, unknown>[] = [];
const medians: Record<string, number> = {};
for (const size of SIZES) {
  const samples: Record<Variant, { dps: number[]; mbps: number[]; loss: number[] }> = {
    raw: { dps: [], mbps: [], loss: [] },
    layer: { dps: [], mbps: [], loss: [] },
    stack: { dps: [], mbps: [], loss: [] },
  };
  for (let r = 0; r < RUNS; r++) {
    // Rotate the order each run so no variant always goes first.
    const order: Variant[] = (['raw', 'layer', 'stack'] as Variant[]).map((_, i, all) => all[(i + r) % all.length]!);
    for (const variant of order) {
      const result = await run(variant, size);
      samples[variant].dps.push(result.datagramsPerSecond);
      samples[variant].mbps.push(result.megabytesPerSecond);
      samples[variant].loss.push(result.lossRate);
    }
  }
  for (const variant of ['raw', 'layer', 'stack'] as Variant[]) {
    const dps = median(samples[variant].dps);
    medians[`${variant}-${size}`] = dps;
    rows.push({
      size: `${size} B`,
      variant,
      'datagrams/s': Math.round(dps),
      'MB/s': median(samples[variant].mbps),
      'ratio to raw': dps / median(samples.raw.dps),
      'loss (median)': median(samples[variant].loss),
    });
  }
  figures[`size${size}`] = Object.fromEntries(
    (['raw', 'layer', 'stack'] as Variant[]).map((variant) => [
      variant,
      { datagramsPerSecondMedian: median(samples[variant].dps), megabytesPerSecondMedian: median(samples[variant].mbps), datagramsPerSecondRuns: samples[variant].dps.map(Math.round), lossRuns: samples[variant].loss },
    ]),
  );
}
printTable('udp: datagrams through raw node:dgram, the udp layer, and udp + faulty + delay (medians)', rows);
const acceptance = SIZES.flatMap((size) => [
  accept(`udp layer / raw dgram datagrams/s, ${size} B`, medians[`layer-${size}`]! / medians[`raw-${size}`]!, 0.9),
  accept(`udp + faulty + delay / raw dgram datagrams/s, ${size} B`, medians[`stack-${size}`]! / medians[`raw-${size}`]!, 0.85),
]);
writeResults('udp', figures, acceptance);
