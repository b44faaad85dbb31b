/**
 * Suite `tcp`: the TCP transport against raw `node:net` moving the same bytes, both ends
 * in this process on 127.0.0.1, raw and DecCom runs interleaved so machine noise hits
 * both alike, figures are medians of RUNS runs. A ratio to raw is the median of the
 * per-run ratios (each DecCom run against the raw run just before it, so a change in
 * machine load between runs does not skew it); the ratio of the medians is reported too.
 *
 * - one 1 GiB message: DecCom `sendMessage` vs raw node:net with the same framing (a
 *   5-byte header, the receiver assembling the body into one buffer of the announced
 *   length); each received message is sha256-checked after its timed run;
 * - one 1 GiB stream: `sendStream` of 1 MiB chunks vs raw node:net writes respecting
 *   write() / 'drain'; byte counts checked in the timed runs, then one more run of each
 *   hashes every byte on the receiving side (sha256), and the peak memory of the stream
 *   path is sampled throughout;
 * - 1 KiB messages per second vs raw node:net with the same framing (plain writes, and
 *   writes corked per tick as the layer does);
 * - connections set up per second (introductions included), and 500 peers connected to
 *   one node at once, each sending it a message.
 *
 * Smoke mode (BENCH_SMOKE=1): 1 run of each, 1 MiB transfers, 2,000 small messages, 5
 * peers (the environment variables below still win).
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createNode, defineLayer, Identity, type Address, type PeerRecord } from '@deccom/core';
import { tcp, type TcpOptions } from '@deccom/tcp';
import { accept, knob, median, printTable, round, SMOKE, writeResults } from '../report.js';

const MIB = 1024 * 1024;
const HOST = '127.0.0.1';
const RUNS = Math.max(SMOKE ? 1 : 3, knob('BENCH_RUNS', 5, 1));
const BIG = knob('BENCH_TCP_BYTES', 1024 * MIB, MIB);
/** Stream runs are cheap (no 1 GiB buffers): more of them steady the median on a busy machine. */
const STREAM_RUNS = Math.max(RUNS, knob('BENCH_TCP_STREAM_RUNS', 15, 1));
const SMALL_COUNT = knob('BENCH_TCP_MESSAGES', 300_000, 2_000);
const SMALL_SIZE = 1024;
const CONNECT_PEERS = knob('BENCH_TCP_CONNECT_PEERS', 200, 5);
const MANY_PEERS = knob('BENCH_TCP_PEERS', 500, 5);
const BLOCK = randomBytes(MIB);
const BLOCKS = Math.ceil(BIG / MIB);
if (BIG % MIB !== 0) throw new RangeError('BENCH_TCP_BYTES must be a multiple of 1 MiB');

type GcOptions = { type?: 'major' | 'minor'; execution?: 'sync' | 'async' };
const gcFunction = (globalThis as { gc?: (options?: GcOptions) => void }).gc;
/** A full, forced collection (memory baselines). */
const gc = (): void => gcFunction?.();
/**
 * Between timed runs: a major collection that keeps optimised code. After a forced `gc()`
 * V8 optimises the hot functions all over again in the next run (--trace-opt: 25 to 30
 * recompilations in every DecCom stream run after `gc()`; 0 to 6 once warm after this), so
 * every run would be timed with a cold JIT: a cost that grows with how much JavaScript a
 * path runs, not with the bytes it moves, and that a long-lived node pays once.
 */
const collect = (): void => gcFunction?.({ type: 'major', execution: 'sync' });
const now = (): number => performance.now();
const mbps = (bytes: number, ms: number): number => bytes / MIB / (ms / 1000);

// ---------------------------------------------------------------- DecCom plumbing

/** A fixed address book: the smallest discovery layer, shared by every node of a run. */
function bookLayer(records: Map<string, PeerRecord>, port: number) {
  const address: Address = { host: HOST, port };
  return defineLayer({
    type: 'book',
    provides: ['localAddress', 'getPeer'],
    create: () => ({ provides: { localAddress: () => address, getPeer: (id) => records.get(id.hex) } }),
  });
}

let fakePort = 20_000;
function makeNode(records: Map<string, PeerRecord>, options: TcpOptions = {}) {
  return createNode({ identity: Identity.generate(), layers: [bookLayer(records, fakePort++), tcp({ host: HOST, ...options })] });
}
type DecComNode = ReturnType<typeof makeNode>;

async function startAll(records: Map<string, PeerRecord>, nodes: DecComNode[]): Promise<void> {
  for (const node of nodes) {
    await node.start();
    records.set(node.id.hex, node.localPeer());
  }
}

// ---------------------------------------------------------------- memory sampling

/**
 * Peak memory growth during runs, against a baseline taken once after a full collection.
 * Runs start after a collection that keeps optimised code ({@link collect}); anything it
 * leaves behind from earlier runs counts as growth, so the reported peak can only be too
 * high, never too low.
 */
class MemorySampler {
  private timer: ReturnType<typeof setInterval> | undefined;
  private base = { rss: 0, arrayBuffers: 0 };
  peak = { rss: 0, arrayBuffers: 0 };

  baseline(): void {
    gc();
    const usage = process.memoryUsage();
    this.base = { rss: usage.rss, arrayBuffers: usage.arrayBuffers };
  }

  start(): void {
    collect();
    this.peak = { rss: 0, arrayBuffers: 0 };
    this.timer = setInterval(() => this.sample(), 10);
  }

  private sample(): void {
    const usage = process.memoryUsage();
    this.peak.rss = Math.max(this.peak.rss, usage.rss - this.base.rss);
    this.peak.arrayBuffers = Math.max(this.peak.arrayBuffers, usage.arrayBuffers - this.base.arrayBuffers);
  }

  stop(): { rssMiB: number; arrayBuffersMiB: number } {
    this.sample();
    clearInterval(this.timer);
    return { rssMiB: this.peak.rss / MIB, arrayBuffersMiB: this.peak.arrayBuffers / MIB };
  }
}

// ---------------------------------------------------------------- raw node:net

interface RawPair {
  client: Socket;
  server: Server;
  accepted: Socket;
  close(): Promise<void>;
}

async function rawPair(): Promise<RawPair> {
  const server = createServer({ noDelay: true });
  server.listen(0, HOST);
  await once(server, 'listening');
  const acceptedPromise = once(server, 'connection') as Promise<[Socket]>;
  const client = connect({ host: HOST, port: (server.address() as { port: number }).port, noDelay: true });
  await once(client, 'connect');
  const [accepted] = await acceptedPromise;
  return {
    client,
    server,
    accepted,
    close: async () => {
      client.destroy();
      accepted.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Raw framing: a 5-byte header (type, u32 length) then the body, assembled by the receiver. */
function rawMessageReceiver(socket: Socket, onMessage: (body: Buffer) => void): void {
  const head = Buffer.alloc(5);
  let headFill = 0;
  let body: Buffer | undefined;
  let bodyFill = 0;
  socket.on('data', (data: Buffer) => {
    let offset = 0;
    while (offset < data.length) {
      if (!body) {
        const take = Math.min(5 - headFill, data.length - offset);
        data.copy(head, headFill, offset, offset + take);
        headFill += take;
        offset += take;
        if (headFill < 5) return;
        headFill = 0;
        body = Buffer.allocUnsafe(head.readUInt32BE(1));
        bodyFill = 0;
      }
      const take = Math.min(body.length - bodyFill, data.length - offset);
      data.copy(body, bodyFill, offset, offset + take);
      bodyFill += take;
      offset += take;
      if (bodyFill === body.length) {
        const done = body;
        body = undefined;
        onMessage(done);
      }
    }
  });
}

/** Counts frames of the raw framing without assembling them (the 1 KiB benchmark). */
function rawFrameCounter(socket: Socket, onFrame: () => void): void {
  let need = 5;
  let inHeader = true;
  const head = Buffer.alloc(5);
  let headFill = 0;
  socket.on('data', (data: Buffer) => {
    let offset = 0;
    while (offset < data.length) {
      if (inHeader) {
        const take = Math.min(5 - headFill, data.length - offset);
        data.copy(head, headFill, offset, offset + take);
        headFill += take;
        offset += take;
        if (headFill < 5) return;
        headFill = 0;
        need = head.readUInt32BE(1);
        inHeader = false;
      }
      const take = Math.min(need, data.length - offset);
      need -= take;
      offset += take;
      if (need === 0) {
        inHeader = true;
        onFrame();
      }
    }
  });
}

// ---------------------------------------------------------------- 1 GiB message

function bigPayload(): Buffer {
  const payload = Buffer.allocUnsafe(BIG);
  for (let i = 0; i < BLOCKS; i++) BLOCK.copy(payload, i * MIB);
  return payload;
}

async function rawMessage(payload: Buffer, expected: string): Promise<{ ms: number; intact: boolean }> {
  const pair = await rawPair();
  let received: Buffer | undefined;
  rawMessageReceiver(pair.accepted, (body) => void (received = body));
  const t0 = now();
  const header = Buffer.alloc(5);
  header[0] = 2;
  header.writeUInt32BE(payload.length, 1);
  pair.client.write(header);
  pair.client.write(payload);
  while (!received) await once(pair.accepted, 'data');
  const ms = now() - t0;
  const intact = createHash('sha256').update(received).digest('hex') === expected;
  received = undefined;
  await pair.close();
  return { ms, intact };
}

async function decomMessage(payload: Buffer, expected: string): Promise<{ ms: number; intact: boolean }> {
  const records = new Map<string, PeerRecord>();
  const options = { maxMessageBytes: BIG };
  const [a, b] = [makeNode(records, options), makeNode(records, options)];
  await startAll(records, [a, b]);
  let received: Uint8Array | undefined;
  b.handle('message', (data) => void (received = data));
  await a.openConnection(b.id);
  const t0 = now();
  await a.sendMessage(b.id, payload);
  while (!received) await new Promise((resolve) => setTimeout(resolve, 1));
  const ms = now() - t0;
  const intact = createHash('sha256').update(received).digest('hex') === expected;
  received = undefined;
  await a.stop();
  await b.stop();
  return { ms, intact };
}

// ---------------------------------------------------------------- 1 GiB stream

async function rawStream(hash: boolean): Promise<{ ms: number; bytes: number; digest: string | undefined }> {
  const pair = await rawPair();
  const hasher = hash ? createHash('sha256') : undefined;
  let bytes = 0;
  const done = new Promise<void>((resolve) => {
    pair.accepted.on('data', (data: Buffer) => {
      bytes += data.length;
      hasher?.update(data);
      if (bytes >= BIG) resolve();
    });
  });
  const t0 = now();
  for (let i = 0; i < BLOCKS; i++) {
    if (!pair.client.write(BLOCK)) await once(pair.client, 'drain');
  }
  await done;
  const ms = now() - t0;
  await pair.close();
  return { ms, bytes, digest: hasher?.digest('hex') };
}

async function decomStream(hash: boolean): Promise<{ ms: number; bytes: number; digest: string | undefined }> {
  const records = new Map<string, PeerRecord>();
  const [a, b] = [makeNode(records), makeNode(records)];
  await startAll(records, [a, b]);
  const hasher = hash ? createHash('sha256') : undefined;
  let bytes = 0;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  b.handle('stream', (source) => {
    void (async () => {
      for await (const chunk of source) {
        bytes += chunk.byteLength;
        hasher?.update(chunk);
      }
      finish();
    })();
  });
  await a.openConnection(b.id);
  const source = async function* (): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < BLOCKS; i++) yield BLOCK;
  };
  const t0 = now();
  await a.sendStream(b.id, source());
  await done;
  const ms = now() - t0;
  await a.stop();
  await b.stop();
  return { ms, bytes, digest: hasher?.digest('hex') };
}

// ---------------------------------------------------------------- 1 KiB messages

async function rawSmall(corked: boolean): Promise<number> {
  const pair = await rawPair();
  let count = 0;
  const done = new Promise<void>((resolve) => rawFrameCounter(pair.accepted, () => ++count === SMALL_COUNT && resolve()));
  const frame = Buffer.alloc(5 + SMALL_SIZE, 1);
  frame[0] = 2;
  frame.writeUInt32BE(SMALL_SIZE, 1);
  const socket = pair.client;
  const t0 = now();
  let isCorked = false;
  for (let i = 0; i < SMALL_COUNT; i++) {
    if (corked && !isCorked) {
      isCorked = true;
      socket.cork();
      process.nextTick(() => {
        isCorked = false;
        socket.uncork();
      });
    }
    // A fresh frame per message, as an application building messages would have.
    const message = Buffer.from(frame);
    if (!socket.write(message)) await once(socket, 'drain');
  }
  await done;
  const rate = SMALL_COUNT / ((now() - t0) / 1000);
  await pair.close();
  return rate;
}

async function decomSmall(): Promise<number> {
  const records = new Map<string, PeerRecord>();
  const [a, b] = [makeNode(records), makeNode(records)];
  await startAll(records, [a, b]);
  let count = 0;
  const done = new Promise<void>((resolve) => b.handle('message', () => void (++count === SMALL_COUNT && resolve())));
  await a.openConnection(b.id);
  const message = new Uint8Array(SMALL_SIZE).fill(1);
  const t0 = now();
  const batch: Promise<void>[] = [];
  for (let i = 0; i < SMALL_COUNT; i++) {
    batch.push(a.sendMessage(b.id, message));
    if (batch.length === 1000) {
      await Promise.all(batch);
      batch.length = 0;
    }
  }
  await Promise.all(batch);
  await done;
  const rate = SMALL_COUNT / ((now() - t0) / 1000);
  await a.stop();
  await b.stop();
  return rate;
}

// ---------------------------------------------------------------- connections

async function connectionsPerSecond(clients: DecComNode[], hub: DecComNode): Promise<number> {
  const t0 = now();
  await Promise.all(clients.map((c) => c.openConnection(hub.id)));
  const rate = clients.length / ((now() - t0) / 1000);
  await Promise.all(clients.map((c) => c.closeConnection(hub.id)));
  return rate;
}

async function rawConnectionsPerSecond(count: number): Promise<number> {
  const server = createServer((socket) => socket.destroy());
  server.listen(0, HOST);
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const t0 = now();
  const sockets = await Promise.all(
    Array.from({ length: count }, async () => {
      const socket = connect({ host: HOST, port, noDelay: true });
      socket.on('error', () => undefined);
      await once(socket, 'connect');
      return socket;
    }),
  );
  const rate = count / ((now() - t0) / 1000);
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return rate;
}

async function manyPeers(): Promise<{ connectMs: number[]; connected: number[]; messagesFromDistinctPeers: number[]; rssPerConnectionKiB: number }> {
  const records = new Map<string, PeerRecord>();
  const hub = makeNode(records, { maxConnections: MANY_PEERS + 10 });
  const peers = Array.from({ length: MANY_PEERS }, () => makeNode(records));
  await startAll(records, [hub, ...peers]);
  const senders = new Set<string>();
  hub.handle('message', (_data, from) => void senders.add(from.hex));
  const connectMs: number[] = [];
  const connected: number[] = [];
  const messagesFromDistinctPeers: number[] = [];
  let rssPerConnectionKiB = 0;
  for (let round = 0; round < RUNS; round++) {
    senders.clear();
    gc();
    const rssBefore = process.memoryUsage().rss;
    const t0 = now();
    await Promise.all(peers.map((p) => p.openConnection(hub.id)));
    connectMs.push(now() - t0);
    const status = hub.describe().layers.find((l) => l.type === 'tcp')!.status as { connections: number; peers: number };
    connected.push(status.peers);
    if (round === 0) rssPerConnectionKiB = (process.memoryUsage().rss - rssBefore) / 1024 / MANY_PEERS;
    const message = new Uint8Array(SMALL_SIZE);
    await Promise.all(peers.map((p) => p.sendMessage(hub.id, message)));
    for (let spin = 0; spin < 2000 && senders.size < MANY_PEERS; spin++) await new Promise((resolve) => setTimeout(resolve, 5));
    messagesFromDistinctPeers.push(senders.size);
    await Promise.all(peers.map((p) => p.closeConnection(hub.id)));
  }
  await Promise.all([hub, ...peers].map((n) => n.stop()));
  return { connectMs, connected, messagesFromDistinctPeers, rssPerConnectionKiB };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const started = now();
  console.log(`tcp suite: ${BIG / MIB} MiB transfers, ${RUNS} runs each, ${SMALL_COUNT} x ${SMALL_SIZE} B messages, ${MANY_PEERS} peers`);
  const expectedHash = (() => {
    const hash = createHash('sha256');
    for (let i = 0; i < BLOCKS; i++) hash.update(BLOCK);
    return hash.digest('hex');
  })();

  // Streams first, while the heap holds no 1 GiB buffers, so the memory figures are the stream path's.
  const sampler = new MemorySampler();
  sampler.baseline();
  const stream = { raw: [] as number[], decom: [] as number[], rawMemory: [] as number[], decomMemory: [] as number[], decomRss: [] as number[] };
  let streamBytesOk = true;
  const cpuMs = (since: NodeJS.CpuUsage): number => {
    const used = process.cpuUsage(since);
    return (used.user + used.system) / 1000;
  };
  const streamCpu = { raw: [] as number[], decom: [] as number[] };
  for (let run = 0; run < STREAM_RUNS; run++) {
    // Alternate which goes first, so neither always runs in the other's wake.
    const measure = async (variant: 'raw' | 'decom') => {
      sampler.start();
      const cpu = process.cpuUsage();
      const result = variant === 'raw' ? await rawStream(false) : await decomStream(false);
      streamCpu[variant].push(cpuMs(cpu));
      return { result, memory: sampler.stop() };
    };
    const first = run % 2 === 0 ? await measure('raw') : await measure('decom');
    const second = run % 2 === 0 ? await measure('decom') : await measure('raw');
    const [raw, decom] = run % 2 === 0 ? [first, second] : [second, first];
    stream.rawMemory.push(raw.memory.arrayBuffersMiB);
    stream.decomMemory.push(decom.memory.arrayBuffersMiB);
    stream.decomRss.push(decom.memory.rssMiB);
    streamBytesOk &&= raw.result.bytes === BIG && decom.result.bytes === BIG;
    stream.raw.push(mbps(BIG, raw.result.ms));
    stream.decom.push(mbps(BIG, decom.result.ms));
    console.log(
      `  stream run ${run + 1}: raw ${round(mbps(BIG, raw.result.ms), 1)} MiB/s, deccom ${round(mbps(BIG, decom.result.ms), 1)} MiB/s (cpu ${round(streamCpu.raw[run]!, 0)} / ${round(streamCpu.decom[run]!, 0)} ms), deccom peak buffers ${round(decom.memory.arrayBuffersMiB, 1)} MiB`,
    );
  }
  sampler.start();
  const rawHashed = await rawStream(true);
  sampler.stop();
  sampler.start();
  const decomHashed = await decomStream(true);
  const hashedMemory = sampler.stop();
  const streamIntact = streamBytesOk && rawHashed.digest === expectedHash && decomHashed.digest === expectedHash;
  console.log(`  stream hash-checked run: raw ${round(mbps(BIG, rawHashed.ms), 1)} MiB/s, deccom ${round(mbps(BIG, decomHashed.ms), 1)} MiB/s, intact ${streamIntact}`);

  // 1 KiB messages.
  const small = { raw: [] as number[], rawCorked: [] as number[], decom: [] as number[] };
  for (let run = 0; run < RUNS; run++) {
    small.raw.push(await rawSmall(false));
    small.rawCorked.push(await rawSmall(true));
    small.decom.push(await decomSmall());
    console.log(`  1 KiB run ${run + 1}: raw ${round(small.raw[run]!, 0)}/s, raw corked ${round(small.rawCorked[run]!, 0)}/s, deccom ${round(small.decom[run]!, 0)}/s`);
  }

  // Connection setup.
  const records = new Map<string, PeerRecord>();
  const hub = makeNode(records);
  const clients = Array.from({ length: CONNECT_PEERS }, () => makeNode(records));
  await startAll(records, [hub, ...clients]);
  const connect = { decom: [] as number[], raw: [] as number[] };
  for (let run = 0; run < RUNS; run++) {
    connect.raw.push(await rawConnectionsPerSecond(CONNECT_PEERS));
    connect.decom.push(await connectionsPerSecond(clients, hub));
    console.log(`  connections run ${run + 1}: raw connect ${round(connect.raw[run]!, 0)}/s, deccom (connect + introduction) ${round(connect.decom[run]!, 0)}/s`);
  }
  await Promise.all([hub, ...clients].map((n) => n.stop()));

  const many = await manyPeers();
  console.log(`  ${MANY_PEERS} peers: connected ${many.connected.join(', ')} in ${many.connectMs.map((ms) => round(ms, 0)).join(', ')} ms`);

  // 1 GiB message last (it holds two 1 GiB buffers).
  collect();
  const payload = bigPayload();
  const message = { raw: [] as number[], decom: [] as number[] };
  let messageIntact = true;
  for (let run = 0; run < RUNS; run++) {
    const raw = await rawMessage(payload, expectedHash);
    collect();
    const decom = await decomMessage(payload, expectedHash);
    collect();
    messageIntact &&= raw.intact && decom.intact;
    message.raw.push(mbps(BIG, raw.ms));
    message.decom.push(mbps(BIG, decom.ms));
    console.log(`  message run ${run + 1}: raw ${round(mbps(BIG, raw.ms), 1)} MiB/s, deccom ${round(mbps(BIG, decom.ms), 1)} MiB/s, intact ${raw.intact && decom.intact}`);
  }

  const pairedRatio = (decom: number[], raw: number[]): number => median(decom.map((value, i) => value / raw[i]!));
  const figures = {
    bytes: BIG,
    runs: RUNS,
    streamRuns: STREAM_RUNS,
    message: {
      rawMiBps: median(message.raw),
      deccomMiBps: median(message.decom),
      ratio: pairedRatio(message.decom, message.raw),
      ratioOfMedians: median(message.decom) / median(message.raw),
      runs: message,
    },
    stream: {
      rawMiBps: median(stream.raw),
      deccomMiBps: median(stream.decom),
      ratio: pairedRatio(stream.decom, stream.raw),
      ratioOfMedians: median(stream.decom) / median(stream.raw),
      /** CPU time (user + system, both ends) per transfer: less sensitive to other load than wall time. */
      cpuMsPerTransfer: { raw: median(streamCpu.raw), deccom: median(streamCpu.decom) },
      peakBufferMiB: { deccom: Math.max(...stream.decomMemory, hashedMemory.arrayBuffersMiB), raw: Math.max(...stream.rawMemory) },
      peakRssGrowthMiB: Math.max(...stream.decomRss, hashedMemory.rssMiB),
      hashed: { rawMiBps: mbps(BIG, rawHashed.ms), deccomMiBps: mbps(BIG, decomHashed.ms) },
      runs: stream,
    },
    smallMessages: {
      size: SMALL_SIZE,
      count: SMALL_COUNT,
      rawPerSecond: median(small.raw),
      rawCorkedPerSecond: median(small.rawCorked),
      deccomPerSecond: median(small.decom),
      ratioToBestRaw: pairedRatio(small.decom, small.raw.map((raw, i) => Math.max(raw, small.rawCorked[i]!))),
      runs: small,
    },
    connections: { peers: CONNECT_PEERS, deccomPerSecond: median(connect.decom), rawConnectPerSecond: median(connect.raw), runs: connect },
    manyPeers: { peers: MANY_PEERS, connectMs: median(many.connectMs), connected: Math.min(...many.connected), messagesFromDistinctPeers: Math.min(...many.messagesFromDistinctPeers), rssPerConnectionKiB: many.rssPerConnectionKiB, runs: many },
    suiteSeconds: (now() - started) / 1000,
  };

  printTable('tcp: throughput (median MiB/s)', [
    { transfer: `${BIG / MIB} MiB message`, raw: figures.message.rawMiBps, deccom: figures.message.deccomMiBps, 'median per-run ratio': figures.message.ratio, 'ratio of medians': figures.message.ratioOfMedians },
    { transfer: `${BIG / MIB} MiB stream`, raw: figures.stream.rawMiBps, deccom: figures.stream.deccomMiBps, 'median per-run ratio': figures.stream.ratio, 'ratio of medians': figures.stream.ratioOfMedians },
  ]);
  printTable('tcp: 1 KiB messages per second (median)', [
    { raw: figures.smallMessages.rawPerSecond, 'raw corked': figures.smallMessages.rawCorkedPerSecond, deccom: figures.smallMessages.deccomPerSecond, 'ratio to best raw': figures.smallMessages.ratioToBestRaw },
  ]);
  printTable('tcp: connections', [
    { figure: `set up per second (${CONNECT_PEERS} at once)`, deccom: figures.connections.deccomPerSecond, 'raw connect only': figures.connections.rawConnectPerSecond },
    { figure: `${MANY_PEERS} peers connected to one node (ms)`, deccom: figures.manyPeers.connectMs, 'raw connect only': '' },
  ]);
  printTable('tcp: stream CPU time per transfer (median ms, both ends)', [{ raw: figures.stream.cpuMsPerTransfer.raw, deccom: figures.stream.cpuMsPerTransfer.deccom }]);
  printTable('tcp: stream path memory (peak growth during the run, both ends)', [
    { path: 'deccom', 'array buffers MiB': figures.stream.peakBufferMiB.deccom, 'rss MiB': figures.stream.peakRssGrowthMiB },
    { path: 'raw', 'array buffers MiB': figures.stream.peakBufferMiB.raw, 'rss MiB': '' },
  ]);

  writeResults('tcp', figures, [
    accept(`${BIG / MIB} MiB message throughput / raw node:net (median per-run ratio)`, figures.message.ratio, 0.9),
    accept(`${BIG / MIB} MiB stream throughput / raw node:net (median per-run ratio)`, figures.stream.ratio, 0.9),
    accept(`${BIG / MIB} MiB message and stream intact (sha256; 1 = yes)`, messageIntact && streamIntact ? 1 : 0, 1),
    accept('stream path peak buffer memory, both ends (MiB)', figures.stream.peakBufferMiB.deccom, 64, '<=', 'MiB'),
    accept('1 KiB messages per second / best raw node:net (our target)', figures.smallMessages.ratioToBestRaw, 0.5),
    accept('connections set up per second, introduction included (our target)', figures.connections.deccomPerSecond, 500, '>=', 'connections/s'),
    accept(`peers connected to one node at once, each heard from`, Math.min(figures.manyPeers.connected, figures.manyPeers.messagesFromDistinctPeers), MANY_PEERS, '>=', 'peers'),
    accept('suite duration (s)', figures.suiteSeconds, 600, '<=', 's'),
  ]);
}

await main();
