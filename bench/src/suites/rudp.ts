/**
 * Suite `rudp`: reliable UDP against raw sockets, every end on 127.0.0.1.
 *
 * - One 100 MiB message with 1200-byte chunks at 0%, 1% and 5% loss (seeded faulty
 *   layers on both nodes, so acknowledgements are lost too), as MB/s of goodput and as a
 *   ratio to (a) raw node:dgram moving the same 100 MiB in datagrams of the same size as
 *   rudp's chunk datagrams (87,382 datagrams of 1,255 bytes), paced by a receive-count
 *   window so the receiver is never overrun and nothing is lost (the lossless ceiling), and
 *   (b) raw node:net moving the same bytes. Sender and receiver share this process, as do
 *   the raw baselines'. Each run measures every variant once, in a rotating order; a ratio
 *   is the median of the per-run ratios (each run's rudp figure against the same run's raw
 *   figure), so load from elsewhere on the machine hits both sides of a ratio alike.
 * - The time to deliver 10,000 messages of 1 KiB (all sent at once, resolved when each is
 *   acknowledged).
 * - Memory of a 100 MiB receive: the receiver runs in a child process; its peak RSS
 *   (getrusage maxRSS) over its RSS before the transfer.
 * - A flood: 100,000 well-formed CHUNK packets (valid checksums, random sender sessions,
 *   claimed lengths up to 64 MiB) from 200 sockets (source ports) into that child while a
 *   real 100 MiB message is sent to it; the child reports its peak RSS growth, its peak
 *   reassembly reservation (against its 256 MiB total budget), and whether the real message
 *   arrived intact.
 *
 * Smoke mode (BENCH_SMOKE=1): 1 run of a 1 MiB message, 200 small messages once, a flood
 * of 2,000 fragments from 10 sockets.
 */
import { createHash } from 'node:crypto';
import { fork, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createNode, seededRandom, type Address } from '@deccom/core';
import { udp } from '@deccom/udp';
import { faulty } from '@deccom/faulty';
import { rudp, encodeChunk, CHUNK_HEADER_LENGTH } from '@deccom/rudp';
import { accept, knob, median, printTable, SMOKE, writeResults } from '../report.js';

const MiB = 1024 * 1024;
const RUNS = knob('BENCH_RUNS', 5, 1);
const MESSAGE_BYTES = knob('BENCH_MESSAGE_MIB', 100, 1) * MiB;
const CHUNK = 1200;
/** rudp's chunk datagram on the wire: the chunk header, the payload, the udp frame byte. */
const DATAGRAM_BYTES = CHUNK_HEADER_LENGTH + CHUNK + 1;
const LOSSES = [0, 0.01, 0.05] as const;
const SMALL_MESSAGES = knob('BENCH_RUDP_SMALL_MESSAGES', 10_000, 200);
const SMALL_RUNS = SMOKE ? 1 : 3;
const FLOOD_FRAGMENTS = knob('BENCH_RUDP_FLOOD_FRAGMENTS', 100_000, 2_000);
const FLOOD_SOCKETS = knob('BENCH_RUDP_FLOOD_SOCKETS', 200, 10);
const RECEIVER_TOTAL_BUDGET = 256 * MiB;

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

function message(bytes: number, seed: number): Uint8Array {
  const out = new Uint8Array(bytes);
  const words = new Uint32Array(out.buffer, 0, bytes >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return out;
}

// ---------------------------------------------------------------- baselines

/** Raw node:dgram: the same number of datagrams of the same size, windowed on what arrived. */
async function rawDgram(): Promise<number> {
  const bind = (): Promise<UdpSocket> =>
    new Promise((resolve) => {
      const socket = createSocket('udp4');
      socket.bind(0, '127.0.0.1', () => {
        socket.setRecvBufferSize(4 * MiB);
        socket.setSendBufferSize(4 * MiB);
        resolve(socket);
      });
    });
  const sender = await bind();
  const receiver = await bind();
  let received = 0;
  receiver.on('message', () => void received++);
  const port = receiver.address().port;
  const datagram = new Uint8Array(DATAGRAM_BYTES).fill(7);
  const count = Math.ceil(MESSAGE_BYTES / CHUNK);
  const window = 256;
  const slack = 64;
  let sent = 0;
  const started = performance.now();
  while (sent < count) {
    const burst = Math.min(window, count - sent);
    for (let i = 0; i < burst; i++) sender.send(datagram, port, '127.0.0.1');
    sent += burst;
    const waitStart = performance.now();
    while (received < sent - slack && performance.now() - waitStart < 50) await tick();
  }
  const drainStart = performance.now();
  while (received < sent && performance.now() - drainStart < 200) await tick();
  const seconds = (performance.now() - started) / 1000;
  await new Promise<void>((resolve) => sender.close(() => resolve()));
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  // Goodput: payload bytes of the datagrams that arrived (a lost one would need a resend).
  return (Math.min(received, count) * CHUNK) / seconds / 1e6;
}

/** Raw node:net: the same bytes in 64 KiB writes, respecting backpressure. */
async function rawTcp(): Promise<number> {
  const server = createServer({ noDelay: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  let received = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  server.on('connection', (socket) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.byteLength;
      if (received >= MESSAGE_BYTES) done();
    });
  });
  const client = connect({ port, host: '127.0.0.1', noDelay: true });
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const piece = Buffer.alloc(64 * 1024, 7);
  const started = performance.now();
  for (let offset = 0; offset < MESSAGE_BYTES; offset += piece.byteLength) {
    if (!client.write(piece)) await new Promise<void>((resolve) => client.once('drain', resolve));
  }
  await finished;
  const seconds = (performance.now() - started) / 1000;
  client.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return MESSAGE_BYTES / seconds / 1e6;
}

// ---------------------------------------------------------------- rudp

function rudpPair(loss: number, seed: string) {
  const stack = (side: string) => [udp({ host: '127.0.0.1' }), faulty({ seed: `${seed}-${side}`, outgoing: { loss } }), rudp({ chunkBytes: CHUNK })] as const;
  return { a: createNode({ layers: stack('a') }), b: createNode({ layers: stack('b') }) };
}

async function rudpTransfer(loss: number, data: Uint8Array, digest: string, seed: string): Promise<{ megabytesPerSecond: number; intact: boolean; retransmissions: number }> {
  const { a, b } = rudpPair(loss, seed);
  await a.start();
  await b.start();
  let received: Uint8Array | undefined;
  b.handle('reliable-message', (message) => void (received = message));
  const started = performance.now();
  await a.sendReliable(b.localAddress(), data, { timeoutMs: 600_000 });
  const seconds = (performance.now() - started) / 1000;
  const retransmissions = a.counters()['rudp']?.['retransmissions'] ?? 0;
  await a.stop();
  await b.stop();
  return { megabytesPerSecond: data.byteLength / seconds / 1e6, intact: received !== undefined && sha256(received) === digest, retransmissions };
}

async function smallMessages(): Promise<{ ms: number; delivered: number }> {
  const { a, b } = rudpPair(0, 'small');
  await a.start();
  await b.start();
  let delivered = 0;
  b.handle('reliable-message', () => void delivered++);
  const payload = new Uint8Array(1024).fill(3);
  const to = b.localAddress();
  const started = performance.now();
  await Promise.all(Array.from({ length: SMALL_MESSAGES }, () => a.sendReliable(to, payload)));
  const ms = performance.now() - started;
  await a.stop();
  await b.stop();
  return { ms, delivered };
}

// ---------------------------------------------------------------- receiver child (memory, flood)

interface ReceiverReport {
  intact: boolean;
  rssBeforeMiB: number;
  maxRssMiB: number;
  peakGrowthMiB: number;
  peakReassemblyMiB: number;
  refused: number;
  droppedSessions: number;
}

/** The child: one udp + rudp node; reports its address, then its memory once a message arrived. */
async function receiverChild(): Promise<void> {
  const node = createNode({ layers: [udp({ host: '127.0.0.1' }), rudp({ chunkBytes: CHUNK, peerBudgetBytes: 128 * MiB, totalBudgetBytes: RECEIVER_TOTAL_BUDGET })] });
  await node.start();
  let expected = '';
  let peakReassembly = 0;
  const sample = setInterval(() => {
    const status = node.describe().layers.find((layer) => layer.name === 'rudp')?.status as { receiver?: { reassemblyBytes: number } } | undefined;
    peakReassembly = Math.max(peakReassembly, status?.receiver?.reassemblyBytes ?? 0);
  }, 5);
  (globalThis as { gc?: () => void }).gc?.();
  const rssBefore = process.memoryUsage().rss;
  node.handle('reliable-message', (data) => {
    if (data.byteLength !== MESSAGE_BYTES) return;
    const intact = sha256(data) === expected;
    clearInterval(sample);
    const status = node.describe().layers.find((layer) => layer.name === 'rudp')?.status as { receiver?: { peakReassemblyBytes: number } } | undefined;
    const counters = node.counters()['rudp'] ?? {};
    const maxRss = process.resourceUsage().maxRSS * 1024;
    const report: ReceiverReport = {
      intact,
      rssBeforeMiB: rssBefore / MiB,
      maxRssMiB: maxRss / MiB,
      peakGrowthMiB: (maxRss - rssBefore) / MiB,
      peakReassemblyMiB: Math.max(peakReassembly, status?.receiver?.peakReassemblyBytes ?? 0) / MiB,
      refused: Object.entries(counters)
        .filter(([name]) => name.startsWith('refused.'))
        .reduce((sum, [, value]) => sum + value, 0),
      droppedSessions: counters['dropped.too-many-sessions'] ?? 0,
    };
    process.send!({ report }, () => void node.stop().then(() => process.exit(0)));
  });
  process.on('message', (m: { expect?: string }) => {
    if (m.expect) expected = m.expect;
  });
  process.send!({ address: node.localAddress() });
}

async function withReceiverChild(run: (address: Address, child: ChildProcess) => Promise<void>): Promise<ReceiverReport> {
  const child = fork(fileURLToPath(import.meta.url), ['--rudp-receiver'], { execArgv: ['--expose-gc'], stdio: 'inherit' });
  const address = await new Promise<Address>((resolve) => child.once('message', (m: { address: Address }) => resolve(m.address)));
  const report = new Promise<ReceiverReport>((resolve) => child.on('message', (m: { report?: ReceiverReport }) => m.report && resolve(m.report)));
  await run(address, child);
  const result = await report;
  await new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve())));
  return result;
}

async function sendToChild(address: Address, child: ChildProcess, data: Uint8Array, digest: string, during?: () => Promise<void>): Promise<void> {
  child.send({ expect: digest });
  const node = createNode({ layers: [udp({ host: '127.0.0.1' }), rudp({ chunkBytes: CHUNK })] });
  await node.start();
  const sending = node.sendReliable(address, data, { timeoutMs: 600_000 });
  if (during) await during();
  await sending;
  await node.stop();
}

/** 100,000 well-formed CHUNK datagrams from FLOOD_SOCKETS sockets, sent in bursts while the real transfer runs. */
async function flood(address: Address): Promise<number> {
  const sockets = await Promise.all(
    Array.from(
      { length: FLOOD_SOCKETS },
      () =>
        new Promise<UdpSocket>((resolve) => {
          const socket = createSocket('udp4');
          socket.bind(0, '127.0.0.1', () => resolve(socket));
        }),
    ),
  );
  const random = seededRandom('rudp-bench-flood');
  const payload = new Uint8Array(CHUNK).fill(9);
  let sent = 0;
  for (let burst = 0; sent < FLOOD_FRAGMENTS; burst++) {
    for (let i = 0; i < 500 && sent < FLOOD_FRAGMENTS; i++, sent++) {
      const length = 2 * CHUNK + random.int(64 * MiB);
      const chunks = Math.ceil(length / CHUNK);
      const index = random.int(chunks - 1);
      const packet = encodeChunk(
        {
          source: { hi: random.int(2 ** 32), lo: random.int(2 ** 32) | 1 },
          destination: { hi: 0, lo: 0 },
          packetNumber: random.int(1000),
          counter: random.int(4),
          floor: 0,
          messageLength: length,
          chunkSize: CHUNK,
          chunkIndex: index,
        },
        payload,
      );
      // The udp layer's DATA frame byte, then the rudp packet.
      const datagram = new Uint8Array(packet.byteLength + 1);
      datagram.set(packet, 1);
      sockets[sent % FLOOD_SOCKETS]!.send(datagram, address.port, address.host);
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await Promise.all(sockets.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))));
  return sent;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const data = message(MESSAGE_BYTES, 42);
  const digest = sha256(data);
  type Variant = 'raw-dgram' | 'raw-tcp' | 'rudp-0' | 'rudp-1' | 'rudp-5';
  const variants: Variant[] = ['raw-dgram', 'raw-tcp', 'rudp-0', 'rudp-1', 'rudp-5'];
  const samples = Object.fromEntries(variants.map((v) => [v, [] as number[]])) as Record<Variant, number[]>;
  const retransmissions: Record<string, number[]> = { 'rudp-0': [], 'rudp-1': [], 'rudp-5': [] };
  let allIntact = true;
  // Warm-up (JIT, sockets), not counted.
  await rawDgram();
  await rudpTransfer(0, data.subarray(0, 16 * MiB), sha256(data.subarray(0, 16 * MiB)), 'warm');
  for (let run = 0; run < RUNS; run++) {
    for (let k = 0; k < variants.length; k++) {
      const variant = variants[(k + run) % variants.length]!;
      if (variant === 'raw-dgram') samples[variant].push(await rawDgram());
      else if (variant === 'raw-tcp') samples[variant].push(await rawTcp());
      else {
        const loss = LOSSES[['rudp-0', 'rudp-1', 'rudp-5'].indexOf(variant)]!;
        const result = await rudpTransfer(loss, data, digest, `run${run}`);
        allIntact &&= result.intact;
        samples[variant].push(result.megabytesPerSecond);
        retransmissions[variant]!.push(result.retransmissions);
      }
    }
    console.log(`run ${run + 1}/${RUNS}: ${variants.map((v) => `${v} ${samples[v].at(-1)!.toFixed(1)}`).join(', ')} MB/s`);
  }
  const perRunRatio = (variant: Variant, baseline: Variant): number => median(samples[variant].map((value, i) => value / samples[baseline][i]!));
  const rows = variants.map((variant) => ({
    variant,
    'MB/s (median)': median(samples[variant]),
    'x raw dgram (median of per-run ratios)': perRunRatio(variant, 'raw-dgram'),
    'x raw tcp (median of per-run ratios)': perRunRatio(variant, 'raw-tcp'),
    'retransmissions (median)': retransmissions[variant] ? median(retransmissions[variant]!) : '',
  }));
  printTable(`rudp: one ${MESSAGE_BYTES / MiB} MiB message on 127.0.0.1, ${CHUNK}-byte chunks (${DATAGRAM_BYTES}-byte datagrams), ${RUNS} runs`, rows);

  const small: number[] = [];
  let smallDelivered = true;
  for (let run = 0; run < SMALL_RUNS; run++) {
    const result = await smallMessages();
    small.push(result.ms);
    smallDelivered &&= result.delivered === SMALL_MESSAGES;
  }
  printTable(`rudp: ${SMALL_MESSAGES.toLocaleString('en-US')} messages of 1 KiB`, [{ [`ms (median of ${SMALL_RUNS})`]: median(small), 'messages/s': SMALL_MESSAGES / (median(small) / 1000), 'all delivered': smallDelivered }]);

  const memory = await withReceiverChild((address, child) => sendToChild(address, child, data, digest));
  let floodSent = 0;
  const flooded = await withReceiverChild((address, child) =>
    sendToChild(address, child, data, digest, async () => {
      floodSent = await flood(address);
    }),
  );
  printTable(`rudp: memory of the receiving process (child), ${MESSAGE_BYTES / MiB} MiB message`, [
    { case: 'clean receive', ...memory },
    { case: `receive during a flood of ${floodSent} bogus fragments from ${FLOOD_SOCKETS} ports`, ...flooded },
  ]);

  const messageMiB = MESSAGE_BYTES / MiB;
  const figures = {
    runs: RUNS,
    messageBytes: MESSAGE_BYTES,
    chunkBytes: CHUNK,
    datagramBytes: DATAGRAM_BYTES,
    lossBothDirections: true,
    megabytesPerSecond: Object.fromEntries(variants.map((v) => [v, { median: median(samples[v]), runs: samples[v] }])),
    ratioToRawDgram: Object.fromEntries(variants.map((v) => [v, perRunRatio(v, 'raw-dgram')])),
    ratioToRawTcp: Object.fromEntries(variants.map((v) => [v, perRunRatio(v, 'raw-tcp')])),
    ratioOfMediansToRawDgram: Object.fromEntries(variants.map((v) => [v, median(samples[v]) / median(samples['raw-dgram'])])),
    retransmissions,
    allTransfersIntact: allIntact,
    smallMessages: { count: SMALL_MESSAGES, bytes: 1024, msRuns: small, msMedian: median(small), messagesPerSecond: SMALL_MESSAGES / (median(small) / 1000), allDelivered: smallDelivered },
    memory: {
      clean: { ...memory, growthInMessageSizes: memory.peakGrowthMiB / messageMiB },
      flood: { ...flooded, growthInMessageSizes: flooded.peakGrowthMiB / messageMiB, fragments: floodSent, sockets: FLOOD_SOCKETS, totalBudgetMiB: RECEIVER_TOTAL_BUDGET / MiB },
    },
  };
  const acceptance = [
    accept('every transfer intact (hash checked), 1 = yes', allIntact ? 1 : 0, 1),
    accept('0% loss goodput / raw dgram (median of per-run ratios)', perRunRatio('rudp-0', 'raw-dgram'), 0.5),
    accept('5% loss goodput / raw dgram (median of per-run ratios)', perRunRatio('rudp-5', 'raw-dgram'), 0.25),
    accept(`peak RSS growth of a ${messageMiB} MiB receive, in message sizes`, memory.peakGrowthMiB / messageMiB, 2, '<='),
    accept(`${messageMiB} MiB message intact during the flood, 1 = yes`, flooded.intact ? 1 : 0, 1),
    // The bound the configuration promises: the message itself plus the receiver's total
    // reassembly budget (claims beyond it are refused). The growth in message sizes is in the figures.
    accept(
      `peak RSS growth during the flood, MiB (bound: message + total budget = ${messageMiB + RECEIVER_TOTAL_BUDGET / MiB})`,
      flooded.peakGrowthMiB,
      messageMiB + RECEIVER_TOTAL_BUDGET / MiB,
      '<=',
    ),
    accept(`peak reassembly reservation during the flood, MiB (total budget ${RECEIVER_TOTAL_BUDGET / MiB})`, flooded.peakReassemblyMiB, RECEIVER_TOTAL_BUDGET / MiB, '<='),
    accept(`${SMALL_MESSAGES.toLocaleString('en-US')} small messages all delivered, 1 = yes`, smallDelivered ? 1 : 0, 1),
  ];
  writeResults('rudp', figures, acceptance);
}

if (process.argv.includes('--rudp-receiver')) await receiverChild();
else await main();
