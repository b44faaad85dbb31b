/**
 * Suite `noise`: the cost of security on 127.0.0.1, with the baselines in the same run.
 * Every measurement runs in a fresh process of its own after an untimed warm-up of the
 * same kind (see main()); the suite repeats them RUNS times in the same order, so the
 * variants interleave. Figures are medians of the runs; a ratio is the median of the
 * per-run ratios.
 *
 * - crypto: ChaCha20-Poly1305 on 64 KiB and X25519, node:crypto path vs noble path; and,
 *   for orientation, sealing and opening stream-sized frames in bulk, node:crypto vs
 *   libsodium (sodium-native, into caller-owned buffers);
 * - handshakes per second, both sides in one process, PAIRS pairs each handshaking in
 *   a loop, identity-proof cache off (every handshake verifies its Ed25519 signature):
 *   the pure handshake core (no I/O); `noise()` over UDP (and, for orientation, with the
 *   library's default proof cache, as between peers that met before); `noiseStream()` over
 *   `@deccom/tcp` with a new TCP connection per handshake, closed with `abort` as the
 *   secret-stream loop destroys its socket (cache off and, for
 *   orientation, on: secret-stream's loop also reconnects the same two key pairs);
 *   `@hyperswarm/secret-stream`
 *   over node:net with a new connection per handshake; js-libp2p (tcp + noise + yamux),
 *   a first dial from each of LIBP2P_DIALERS fresh nodes to one listener;
 * - encrypted datagrams per second through udp + noise(encrypt) vs udp + noise(plaintext);
 * - stream throughput: BYTES through raw node:net, plain `@deccom/tcp` `sendStream`,
 *   `noiseStream()` over it, secret-stream over node:net; LIBP2P_BYTES through libp2p;
 *   and plain against encrypted `sendStream` with the application writing 1 KiB, 16 KiB
 *   and 64 KiB at a time (WRITE_SIZES; the main figures write 1 MiB at a time).
 *
 * Smoke mode (BENCH_SMOKE=1): 1 run of every task (each still in its own process), 2 MiB
 * streams after 1 MiB warm-ups, 150 ms handshake loops on 2 pairs, 8 libp2p dialers, 500
 * datagrams.
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { createNode, defineLayer, Identity, type Address, type PeerRecord } from '@deccom/core';
import { tcp } from '@deccom/tcp';
import { udp } from '@deccom/udp';
import {
  createIdentityProof,
  HandshakeState,
  nobleNoiseCrypto,
  nodeNoiseCrypto,
  noise,
  noiseStream,
  setIdentityProofCacheSize,
  STREAM_FRAME_PLAINTEXT,
  verifyIdentityProof,
  type NoiseCrypto,
} from '@deccom/noise';
import { accept, knob, median, printTable, round, SMOKE, writeResults } from '../report.js';

// libp2p 3.x calls Promise.withResolvers, which Node 20 lacks: polyfill before loading it.
const promiseStatics = Promise as unknown as { withResolvers?: () => unknown };
promiseStatics.withResolvers ??= () => {
  let resolve!: (value: unknown) => void;
  let reject!: (reason?: unknown) => void;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

const require = createRequire(import.meta.url);
// Loaded only in the processes that measure it (see main()).
let secretStreamModule: any;
const secretStream = (): any => (secretStreamModule ??= require('@hyperswarm/secret-stream'));

const MIB = 1024 * 1024;
const HOST = '127.0.0.1';
const RUNS = Math.max(SMOKE ? 1 : 3, knob('BENCH_RUNS', 5, 1));
const BYTES = knob('BENCH_NOISE_BYTES', 1024 * MIB, 2 * MIB);
const LIBP2P_BYTES = knob('BENCH_NOISE_LIBP2P_BYTES', 256 * MIB, 2 * MIB);
const HANDSHAKE_MS = knob('BENCH_NOISE_HANDSHAKE_MS', 3_000, 150);
/** The pure handshake core, per crypto back end. */
const CORE_HANDSHAKE_MS = knob('BENCH_NOISE_CORE_HANDSHAKE_MS', 1_000, 100);
const PAIRS = knob('BENCH_NOISE_PAIRS', 8, 2);
const DATAGRAMS = knob('BENCH_NOISE_DATAGRAMS', 100_000, 500);
const LIBP2P_DIALERS = knob('BENCH_NOISE_LIBP2P_DIALERS', 160, 8);
const CHUNK = randomBytes(MIB);
/** Bytes per round of the bulk AEAD comparison (node:crypto vs sodium-native). */
const AEAD_BULK_BYTES = knob('BENCH_NOISE_AEAD_BYTES', 256 * MIB, 4 * MIB);
/**
 * BENCH_NOISE_ONLY: comma-separated groups (`crypto`, `handshakes`, `datagrams`, `streams`)
 * or task names (e.g. `tcp-handshakes,secret-stream-handshakes`) to run alone. The table
 * and the acceptance of what ran are printed; no results file is written (a partial run
 * must not replace the record).
 */
const ONLY = (process.env['BENCH_NOISE_ONLY'] ?? '')
  .split(',')
  .map((name) => name.trim())
  .filter((name) => name.length > 0);
const runs = (...names: string[]): boolean => ONLY.length === 0 || names.some((name) => ONLY.includes(name));

const now = (): number => performance.now();
const mbps = (bytes: number, ms: number): number => bytes / MIB / (ms / 1000);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(predicate: () => boolean, maxMs: number): Promise<boolean> {
  const deadline = now() + maxMs;
  while (!predicate()) {
    if (now() > deadline) return false;
    await sleep(1);
  }
  return true;
}

/** Runs `loop` on PAIRS workers for `ms` and returns completed iterations per second. */
async function ratePerSecond(ms: number, loop: (worker: number, running: () => boolean) => Promise<number>): Promise<number> {
  const start = now();
  const deadline = start + ms;
  const counts = await Promise.all(Array.from({ length: PAIRS }, (_, worker) => loop(worker, () => now() < deadline)));
  const elapsed = now() - start;
  return (counts.reduce((a, b) => a + b, 0) * 1000) / elapsed;
}

// ---------------------------------------------------------------- crypto

function cryptoFigures(crypto: NoiseCrypto): { aeadMBps: number; dhPerSecond: number } {
  const aead = crypto.cipher('ChaChaPoly');
  const key = randomBytes(32);
  const nonce = new Uint8Array(12);
  const message = CHUNK.subarray(0, 64 * 1024);
  const aeadRounds = crypto.name === 'node' ? 2_000 : 100;
  let t = now();
  for (let i = 0; i < aeadRounds; i++) aead.seal(key, nonce, new Uint8Array(0), message);
  const aeadMBps = mbps(aeadRounds * message.length, now() - t);
  const dh = crypto.dh('25519');
  const pair = dh.generateKeyPair();
  const other = dh.generateKeyPair().publicKey;
  const dhRounds = crypto.name === 'node' ? 2_000 : 100;
  t = now();
  for (let i = 0; i < dhRounds; i++) dh.dh(pair, other);
  return { aeadMBps, dhPerSecond: (dhRounds * 1000) / (now() - t) };
}

/**
 * Bulk AEAD as the stream uses it: ChaCha20-Poly1305 over STREAM_FRAME_PLAINTEXT-byte
 * frames, node:crypto (our `sealParts` / `openParts`, an output allocated per call) against
 * libsodium through sodium-native (the native AEAD secret-stream builds on) writing into
 * caller-owned buffers. For orientation: it tells whether a native AEAD would lift the
 * stream. Medians of 3 interleaved rounds of AEAD_BULK_BYTES each, after a warm-up.
 */
function bulkAeadFigures(): Record<string, number> {
  type Detached = (out: Buffer, tag: Buffer | null, input: Buffer, ...rest: (Buffer | null)[]) => unknown;
  const sodium = require('sodium-native') as { crypto_aead_chacha20poly1305_ietf_encrypt_detached: Detached; crypto_aead_chacha20poly1305_ietf_decrypt_detached: Detached };
  const aead = nodeNoiseCrypto()!.cipher('ChaChaPoly');
  const key = randomBytes(32);
  const nonce = Buffer.alloc(12);
  const none = Buffer.alloc(0);
  const frame = CHUNK.subarray(0, STREAM_FRAME_PLAINTEXT);
  const frames = Math.max(1, Math.round(AEAD_BULK_BYTES / frame.length));
  const sealed = aead.sealParts!(key, nonce, none, frame);
  const ciphertext = Buffer.alloc(frame.length);
  const tag = Buffer.alloc(16);
  const plaintext = Buffer.alloc(frame.length);
  sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(ciphertext, tag, frame, none, null, nonce, key);
  const variants: Record<string, () => void> = {
    'aead-bulk-seal-MBps.node': () => aead.sealParts!(key, nonce, none, frame),
    'aead-bulk-open-MBps.node': () => {
      if (aead.openParts!(key, nonce, none, [sealed.ciphertext], sealed.tag) === undefined) throw new Error('node open failed');
    },
    'aead-bulk-seal-MBps.sodium-native': () => sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(ciphertext, tag, frame, none, null, nonce, key),
    // Throws when the tag does not verify.
    'aead-bulk-open-MBps.sodium-native': () => sodium.crypto_aead_chacha20poly1305_ietf_decrypt_detached(plaintext, null, ciphertext, tag, none, nonce, key),
  };
  const samples: Record<string, number[]> = {};
  for (let round = -1; round < 3; round++) {
    for (const [name, run] of Object.entries(variants)) {
      const start = now();
      for (let i = 0; i < frames; i++) run();
      // Round -1 is the warm-up.
      if (round >= 0) (samples[name] ??= []).push(mbps(frames * frame.length, now() - start));
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
}

// ---------------------------------------------------------------- handshakes

/** The pure core: XX with identity proofs, both sides, no I/O. */
function coreHandshakesPerSecond(crypto: NoiseCrypto, ms: number): number {
  const protocol = 'Noise_XX_25519_ChaChaPoly_SHA256';
  const nodes = Array.from({ length: 2 }, () => {
    const identity = Identity.generate();
    const staticKeyPair = crypto.dh('25519').generateKeyPair();
    return { identity, staticKeyPair, proof: createIdentityProof(identity, staticKeyPair.publicKey) };
  });
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  let count = 0;
  const start = now();
  while (now() - start < ms) {
    const i = new HandshakeState({ protocol, initiator: true, staticKeyPair: a.staticKeyPair, crypto });
    const r = new HandshakeState({ protocol, initiator: false, staticKeyPair: b.staticKeyPair, crypto });
    r.readMessage(i.writeMessage());
    verifyIdentityProof(i.readMessage(r.writeMessage(b.proof)), i.remoteStaticKey!, b.identity.id);
    verifyIdentityProof(r.readMessage(i.writeMessage(a.proof)), r.remoteStaticKey!, a.identity.id);
    i.split();
    r.split();
    count++;
  }
  return (count * 1000) / (now() - start);
}

async function udpHandshakesPerSecond(ms: number): Promise<number> {
  const pairs = await Promise.all(
    Array.from({ length: PAIRS }, async () => {
      const a = createNode({ layers: [udp({ host: HOST }), noise()] });
      const b = createNode({ layers: [udp({ host: HOST }), noise()] });
      await a.start();
      await b.start();
      return { a, b };
    }),
  );
  try {
    return await ratePerSecond(ms, async (worker, running) => {
      const { a, b } = pairs[worker]!;
      const target = b.localAddress();
      let n = 0;
      while (running()) {
        await a.secureConnect(target, { expectedId: b.id });
        a.secureDisconnect(target);
        n++;
      }
      return n;
    });
  } finally {
    for (const { a, b } of pairs) {
      await a.stop();
      await b.stop();
    }
  }
}

/** The smallest discovery for tcp: a shared address book. */
function bookLayer(records: Map<string, PeerRecord>, port: number) {
  const address: Address = { host: HOST, port };
  return defineLayer({
    type: 'book',
    provides: ['localAddress', 'getPeer'],
    create: () => ({ provides: { localAddress: () => address, getPeer: (id) => records.get(id.hex) } }),
  });
}

let fakePort = 30_000;
function tcpNode(records: Map<string, PeerRecord>, secure: boolean) {
  const base = [bookLayer(records, fakePort++), tcp({ host: HOST })] as const;
  return secure ? createNode({ layers: [...base, noiseStream()] }) : createNode({ layers: base });
}

async function streamHandshakesPerSecond(ms: number): Promise<number> {
  const records = new Map<string, PeerRecord>();
  const pairs = await Promise.all(
    Array.from({ length: PAIRS }, async () => {
      const a = createNode({ layers: [bookLayer(records, fakePort++), tcp({ host: HOST }), noiseStream()] });
      const b = createNode({ layers: [bookLayer(records, fakePort++), tcp({ host: HOST }), noiseStream()] });
      await a.start();
      await b.start();
      records.set(a.id.hex, a.localPeer());
      records.set(b.id.hex, b.localPeer());
      return { a, b };
    }),
  );
  try {
    return await ratePerSecond(ms, async (worker, running) => {
      const { a, b } = pairs[worker]!;
      let closed = 0;
      let onClose: (() => void) | undefined;
      a.on('noise-session-close', () => {
        closed++;
        onClose?.();
      });
      let n = 0;
      while (running()) {
        await a.secureStreamSession(b.id);
        const before = closed;
        // The next round must start from no session (a new connection, a new handshake):
        // wait for the session's end as an event (polling a timer would cost a wake-up a
        // millisecond per pair and add up to a millisecond per round).
        let timer: ReturnType<typeof setTimeout> | undefined;
        const ended = new Promise<void>((resolve) => {
          onClose = resolve;
          timer = setTimeout(resolve, 5_000);
        });
        // Torn down at once, as the secret-stream loop does with destroy(): the figure is
        // handshakes, not goodbyes (with the graceful close, rounds ran at 72-80% the rate).
        await a.closeConnection(b.id, { abort: true });
        if (closed === before) await ended;
        clearTimeout(timer);
        onClose = undefined;
        n++;
      }
      return n;
    });
  } finally {
    for (const { a, b } of pairs) {
      await a.stop();
      await b.stop();
    }
  }
}

async function listen(onConnection: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(onConnection);
  server.listen(0, HOST);
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

async function secretStreamHandshakesPerSecond(ms: number): Promise<number> {
  const serverKeys = secretStream().keyPair();
  const clientKeys = secretStream().keyPair();
  const { server, port } = await listen((socket) => {
    socket.on('error', () => undefined);
    const stream = new (secretStream())(false, socket, { keyPair: serverKeys });
    stream.on('error', () => undefined);
    stream.on('close', () => undefined);
  });
  try {
    return await ratePerSecond(ms, async (_worker, running) => {
      let n = 0;
      while (running()) {
        const socket = connect(port, HOST);
        socket.on('error', () => undefined);
        const stream = new (secretStream())(true, socket, { keyPair: clientKeys });
        stream.on('error', () => undefined);
        await once(stream, 'connect');
        stream.destroy();
        n++;
      }
      return n;
    });
  } finally {
    server.close();
  }
}

async function libp2pNode(): Promise<any> {
  const { createLibp2p } = await import('libp2p');
  const { tcp: libp2pTcp } = await import('@libp2p/tcp');
  const { noise: libp2pNoise } = await import('@chainsafe/libp2p-noise');
  const { yamux } = await import('@chainsafe/libp2p-yamux');
  return createLibp2p({
    addresses: { listen: [`/ip4/${HOST}/tcp/0`] },
    transports: [libp2pTcp()],
    connectionEncrypters: [libp2pNoise()],
    streamMuxers: [yamux()],
    // The defaults throttle inbound connections to 5 per second per host and 10 pending:
    // every dialer here is 127.0.0.1, so lift them (we measure the protocol, not a rate limit).
    connectionManager: { inboundConnectionThreshold: 1_000_000, maxIncomingPendingConnections: 10_000, maxConnections: 100_000 },
  } as any);
}

let libp2pTimeouts = 0;

/** Resolves true when `work` settles successfully within `ms`, false otherwise. */
function withTimeout(work: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    work.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(false);
      },
    );
  });
}

/**
 * libp2p connections set up per second. A dial / hangUp loop between two nodes hangs and
 * throws stray ECONNRESETs in libp2p 3.x at this pace, so each connection is a first dial
 * from one of LIBP2P_DIALERS fresh nodes (created before the clock starts) to one
 * listener, PAIRS dials in flight.
 */
async function libp2pConnectionsPerSecond(count: number): Promise<number> {
  const listener = await libp2pNode();
  const dialers = await Promise.all(Array.from({ length: count }, () => libp2pNode()));
  const target = listener.getMultiaddrs()[0];
  try {
    let next = 0;
    let done = 0;
    const start = now();
    await Promise.all(
      Array.from({ length: PAIRS }, async () => {
        while (next < dialers.length) {
          const dialer = dialers[next++];
          if (await withTimeout(dialer.dial(target), 5_000)) done++;
          else libp2pTimeouts++;
        }
      }),
    );
    return (done * 1000) / (now() - start);
  } finally {
    await Promise.all([listener, ...dialers].map((n) => n.stop().catch(() => undefined)));
  }
}

// ---------------------------------------------------------------- datagrams

/** Linux's count of UDP datagrams dropped for a full receive buffer (all sockets), or 0 where unreadable. */
function udpReceiveBufferErrors(): number {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((line) => line.startsWith('Udp:'));
    const names = lines[0]!.split(/\s+/);
    const values = lines[1]!.split(/\s+/);
    return Number(values[names.indexOf('RcvbufErrors')] ?? 0) || 0;
  } catch {
    return 0;
  }
}

/**
 * Datagrams per second through udp + noise, and where losses happened: `lost` in all,
 * `droppedByNoise` (counted by either node's noise layer) and `kernelDrops` (the kernel's
 * UDP receive-buffer drops over the run, machine-wide, so only meaningful on a quiet one).
 */
async function datagramRate(mode: 'encrypt' | 'plaintext'): Promise<{ perSecond: number; lost: number; droppedByNoise: number; kernelDrops: number }> {
  const a = createNode({ layers: [udp({ host: HOST }), noise({ mode, strict: mode !== 'plaintext' })] });
  const b = createNode({ layers: [udp({ host: HOST }), noise({ mode, strict: mode !== 'plaintext' })] });
  await a.start();
  await b.start();
  try {
    let received = 0;
    let last = 0;
    b.handle('datagram', () => {
      received++;
      last = now();
    });
    const target = b.localAddress();
    if (mode === 'encrypt') await a.secureConnect(target);
    const payload = CHUNK.subarray(0, 512);
    const kernelDropsBefore = udpReceiveBufferErrors();
    // A window of WINDOW datagrams in flight, so the rate is what the stack sustains rather
    // than what the kernel's socket buffer drops; a window stalled for 20 ms counts as lost.
    const WINDOW = 256;
    let lost = 0;
    let progressAt = now();
    let lastReceived = 0;
    const start = now();
    let sent = 0;
    while (sent < DATAGRAMS) {
      while (sent < DATAGRAMS && sent - received - lost < WINDOW) {
        a.sendDatagram(target, payload);
        sent++;
      }
      await new Promise((resolve) => setImmediate(resolve));
      if (received !== lastReceived) {
        lastReceived = received;
        progressAt = now();
      } else if (now() - progressAt > 20) {
        lost = sent - received;
        progressAt = now();
      }
    }
    await waitFor(() => received >= DATAGRAMS, 2_000);
    const droppedByNoise = (a.counters()['noise']?.['dropped'] ?? 0) + (b.counters()['noise']?.['dropped'] ?? 0);
    return { perSecond: (received * 1000) / ((last || now()) - start), lost: DATAGRAMS - received, droppedByNoise, kernelDrops: udpReceiveBufferErrors() - kernelDropsBefore };
  } finally {
    await a.stop();
    await b.stop();
  }
}

// ---------------------------------------------------------------- streams

async function rawStream(bytes: number): Promise<number> {
  let received = 0;
  let done: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const { server, port } = await listen((socket) => {
    socket.on('data', (data: Buffer) => {
      received += data.length;
      if (received >= bytes) done();
    });
  });
  const socket = connect(port, HOST);
  await once(socket, 'connect');
  const start = now();
  for (let sent = 0; sent < bytes; sent += MIB) {
    if (!socket.write(CHUNK)) await once(socket, 'drain');
  }
  await finished;
  const ms = now() - start;
  socket.destroy();
  server.close();
  return mbps(bytes, ms);
}

async function deccomStream(bytes: number, secure: boolean, chunkBytes = MIB): Promise<number> {
  const records = new Map<string, PeerRecord>();
  const a = tcpNode(records, secure);
  const b = tcpNode(records, secure);
  await a.start();
  await b.start();
  records.set(a.id.hex, a.localPeer());
  records.set(b.id.hex, b.localPeer());
  try {
    let received = 0;
    let done: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    b.handle('stream', (source) => {
      void (async () => {
        for await (const chunk of source) received += chunk.length;
        done();
      })();
    });
    // Connection and handshake before the clock starts (both sides measure transfer only).
    await a.sendMessage(b.id, new Uint8Array(1));
    const start = now();
    await a.sendStream(
      b.id,
      (function* () {
        const chunk = CHUNK.subarray(0, chunkBytes);
        for (let sent = 0; sent < bytes; sent += chunkBytes) yield chunk;
      })(),
    );
    await finished;
    const ms = now() - start;
    const expected = Math.ceil(bytes / chunkBytes) * chunkBytes;
    if (received !== expected) throw new Error(`deccom stream: received ${received} of ${expected}`);
    return mbps(expected, ms);
  } finally {
    await a.stop();
    await b.stop();
  }
}

async function secretStreamThroughput(bytes: number): Promise<number> {
  const keys = [secretStream().keyPair(), secretStream().keyPair()];
  let received = 0;
  let done: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const { server, port } = await listen((socket) => {
    socket.on('error', () => undefined);
    const stream = new (secretStream())(false, socket, { keyPair: keys[1] });
    stream.on('data', (data: Uint8Array) => {
      received += data.length;
      if (received >= bytes) done();
    });
    stream.on('error', () => undefined);
  });
  const socket = connect(port, HOST);
  const stream = new (secretStream())(true, socket, { keyPair: keys[0] });
  stream.on('error', () => undefined);
  await once(stream, 'connect');
  const start = now();
  for (let sent = 0; sent < bytes; sent += MIB) {
    if (!stream.write(CHUNK)) await once(stream, 'drain');
  }
  await finished;
  const ms = now() - start;
  stream.destroy();
  server.close();
  return mbps(bytes, ms);
}

async function libp2pThroughput(bytes: number): Promise<number> {
  const a = await libp2pNode();
  const b = await libp2pNode();
  try {
    let received = 0;
    let done: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    await b.handle('/deccom-bench/1.0.0', (stream: any) => {
      stream.addEventListener('message', (event: any) => {
        received += event.data.byteLength;
        if (received >= bytes) done();
      });
    });
    const stream = await a.dialProtocol(b.getMultiaddrs()[0], '/deccom-bench/1.0.0');
    const start = now();
    for (let sent = 0; sent < bytes; sent += MIB) {
      if (!stream.send(CHUNK)) await stream.onDrain();
    }
    await finished;
    const ms = now() - start;
    await stream.close().catch(() => undefined);
    return mbps(bytes, ms);
  } finally {
    await a.stop();
    await b.stop();
  }
}

// ---------------------------------------------------------------- main

/** Untimed warm-up bytes (or milliseconds) before each measurement, the same for every library. */
const WARMUP_BYTES = knob('BENCH_NOISE_WARMUP_BYTES', 128 * MIB, MIB);
/** The write-size sweep: label, bytes per write, bytes per measurement. */
const WRITE_SIZES: readonly (readonly [string, number, number])[] = [
  ['1k', 1024, knob('BENCH_NOISE_WRITES_1K_BYTES', 256 * MIB, MIB)],
  ['16k', 16 * 1024, knob('BENCH_NOISE_WRITES_16K_BYTES', 256 * MIB, 2 * MIB)],
  ['64k', 64 * 1024, knob('BENCH_NOISE_WRITES_64K_BYTES', 256 * MIB, 2 * MIB)],
];
const WARMUP_MS = knob('BENCH_NOISE_WARMUP_MS', 500, 50);

/** `measure(warmup)` untimed (code compiled, heap grown, as in a process that has been running), then `measure(amount)`. */
async function warm(measure: (amount: number) => Promise<number>, warmup: number, amount: number): Promise<number> {
  if (warmup > 0) await measure(warmup);
  return measure(amount);
}

/** One measurement, run in a process of its own: figure name -> value. */
type Task = () => Promise<Record<string, number>>;

const TASKS: Record<string, { group: string; run: Task }> = {
  crypto: {
    group: 'crypto',
    run: async () => {
      const out: Record<string, number> = {};
      for (const crypto of [nodeNoiseCrypto()!, nobleNoiseCrypto]) {
        const f = cryptoFigures(crypto);
        out[`aead-64k-MBps.${crypto.name}`] = f.aeadMBps;
        out[`x25519-per-s.${crypto.name}`] = f.dhPerSecond;
      }
      return out;
    },
  },
  'aead-bulk': { group: 'crypto', run: async () => bulkAeadFigures() },
  'core-handshakes': {
    group: 'handshakes',
    run: async () => ({
      'handshakes-per-s.core-node': coreHandshakesPerSecond(nodeNoiseCrypto()!, CORE_HANDSHAKE_MS),
      'handshakes-per-s.core-noble': coreHandshakesPerSecond(nobleNoiseCrypto, CORE_HANDSHAKE_MS),
    }),
  },
  'udp-handshakes': { group: 'handshakes', run: async () => ({ 'handshakes-per-s.deccom-udp': await warm(udpHandshakesPerSecond, WARMUP_MS, HANDSHAKE_MS) }) },
  // For orientation only: the library's default, where a peer's proof verified once is
  // remembered (reconnects and rekeys with known peers skip the Ed25519 verification).
  'udp-handshakes-known-peers': {
    group: 'handshakes',
    run: async () => {
      setIdentityProofCacheSize(4096);
      return { 'handshakes-per-s.deccom-udp-known-peers': await warm(udpHandshakesPerSecond, WARMUP_MS, HANDSHAKE_MS) };
    },
  },
  'tcp-handshakes': { group: 'handshakes', run: async () => ({ 'handshakes-per-s.deccom-tcp': await warm(streamHandshakesPerSecond, WARMUP_MS, HANDSHAKE_MS) }) },
  // For orientation only, as for UDP: the default, where reconnecting peers skip the
  // Ed25519 verification (secret-stream's loop also reconnects the same two key pairs).
  'tcp-handshakes-known-peers': {
    group: 'handshakes',
    run: async () => {
      setIdentityProofCacheSize(4096);
      return { 'handshakes-per-s.deccom-tcp-known-peers': await warm(streamHandshakesPerSecond, WARMUP_MS, HANDSHAKE_MS) };
    },
  },
  'secret-stream-handshakes': {
    group: 'handshakes',
    run: async () => ({ 'handshakes-per-s.secret-stream': await warm(secretStreamHandshakesPerSecond, WARMUP_MS, HANDSHAKE_MS) }),
  },
  'libp2p-handshakes': {
    group: 'handshakes',
    run: async () => {
      await libp2pConnectionsPerSecond(LIBP2P_DIALERS / 4);
      return { 'handshakes-per-s.libp2p': await libp2pConnectionsPerSecond(LIBP2P_DIALERS), libp2pDialTimeouts: libp2pTimeouts };
    },
  },
  datagrams: {
    group: 'datagrams',
    run: async () => {
      const encrypted = await datagramRate('encrypt');
      const plain = await datagramRate('plaintext');
      return {
        'datagrams-per-s.encrypt': encrypted.perSecond,
        'datagrams-per-s.plaintext': plain.perSecond,
        'datagrams-lost.encrypt': encrypted.lost,
        'datagrams-lost.plaintext': plain.lost,
        'datagrams-dropped-by-noise.encrypt': encrypted.droppedByNoise,
        'datagrams-dropped-by-noise.plaintext': plain.droppedByNoise,
        'datagrams-kernel-rcvbuf-drops.encrypt': encrypted.kernelDrops,
        'datagrams-kernel-rcvbuf-drops.plaintext': plain.kernelDrops,
      };
    },
  },
  'raw-stream': { group: 'streams', run: async () => ({ 'stream-MBps.raw-node-net': await warm(rawStream, WARMUP_BYTES, BYTES) }) },
  'deccom-plain-stream': { group: 'streams', run: async () => ({ 'stream-MBps.deccom-tcp-plain': await warm((n) => deccomStream(n, false), WARMUP_BYTES, BYTES) }) },
  'deccom-noise-stream': { group: 'streams', run: async () => ({ 'stream-MBps.deccom-noise': await warm((n) => deccomStream(n, true), WARMUP_BYTES, BYTES) }) },
  // How the cost grows as the application's writes shrink, plain against encrypted (tcp
  // gathers writes under 16 KiB into 64 KiB chunks; noiseStream gathers writes shorter
  // than a frame into 256 KiB frames).
  'stream-write-sizes': {
    group: 'streams',
    run: async () => {
      const out: Record<string, number> = {};
      for (const [label, chunkBytes, bytes] of WRITE_SIZES) {
        for (const secure of [false, true]) {
          out[`stream-MBps.${secure ? 'deccom-noise' : 'deccom-tcp-plain'}.writes-${label}`] = await warm((n) => deccomStream(n, secure, chunkBytes), Math.min(WARMUP_BYTES, bytes / 4), bytes);
        }
      }
      return out;
    },
  },
  'secret-stream-stream': { group: 'streams', run: async () => ({ 'stream-MBps.secret-stream': await warm(secretStreamThroughput, WARMUP_BYTES, BYTES) }) },
  'libp2p-stream': { group: 'streams', run: async () => ({ 'stream-MBps.libp2p': await warm(libp2pThroughput, WARMUP_BYTES, LIBP2P_BYTES) }) },
};

const RESULT_MARK = '@@noise-bench-result ';

/** Child mode: one task, its figures printed as one JSON line. */
async function runTask(name: string): Promise<void> {
  // Sockets of the baselines torn down mid-connect (secret-stream, libp2p) can raise
  // ECONNRESET with no listener; count them rather than abort the run.
  let stray = 0;
  process.on('uncaughtException', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') throw error;
    stray++;
  });
  setIdentityProofCacheSize(0);
  const figures = await TASKS[name]!.run();
  process.stdout.write(`${RESULT_MARK}${JSON.stringify({ ...figures, strayErrors: stray })}\n`);
}

/**
 * Each measurement runs in a fresh process of its own, in the order of TASKS, RUNS times
 * (so the variants interleave), after an untimed warm-up of the same kind. Measured in one shared process, loading secret-stream
 * and libp2p made our encrypted stream ~40% slower (2,100 -> 3,700 CPU ms per GiB, most
 * of it garbage collection over their larger heap), and each library's figure depended
 * on which others had run before it; an application loads one of them, not all three.
 */
async function main(): Promise<void> {
  const series: Record<string, number[]> = {};
  let stray = 0;
  let timeouts = 0;
  const self = new URL(import.meta.url).pathname;
  const selected = Object.entries(TASKS).filter(([name, task]) => runs(task.group, name));
  for (let run = 0; run < RUNS; run++) {
    console.log(`run ${run + 1}/${RUNS}`);
    for (const [name] of selected) {
      const child = spawnSync(process.execPath, ['--expose-gc', self, '--task', name], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, timeout: SMOKE ? 60_000 : 300_000 });
      const line = child.stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
      if (child.status !== 0 || line === undefined) {
        throw new Error(`noise bench task ${name} failed (exit ${child.status}, signal ${child.signal}): ${child.stderr.slice(-2000)}`);
      }
      const figures = JSON.parse(line.slice(RESULT_MARK.length)) as Record<string, number>;
      for (const [figure, value] of Object.entries(figures)) {
        if (figure === 'strayErrors') stray += value;
        else if (figure === 'libp2pDialTimeouts') timeouts += value;
        else {
          (series[figure] ??= []).push(value);
          console.log(`  ${figure}: ${round(value, 1)}`);
        }
      }
    }
  }
  const figures: Record<string, number> = {};
  for (const [name, values] of Object.entries(series)) figures[name] = round(median(values), 2);
  printTable(
    'noise: medians',
    Object.entries(series).map(([name, values]) => ({ figure: name, median: round(median(values), 1), runs: values.map((v) => round(v, 1)).join(' / ') })),
  );
  const f = (name: string): number => figures[name]!;
  const has = (...names: string[]): boolean => names.every((name) => figures[name] !== undefined);
  // A ratio is the median of the per-run ratios: the two figures of a run are measured
  // minutes apart at most, so a drift of the (shared) machine between runs cancels out.
  const ratio = (a: string, b: string): number => median(series[a]!.map((value, run) => value / series[b]![run]!));
  const acceptance = [
    ...(has('handshakes-per-s.deccom-udp') ? [accept('handshakes/s, noise() over UDP (>= 1,000)', f('handshakes-per-s.deccom-udp'), 1_000)] : []),
    ...(has('handshakes-per-s.deccom-tcp', 'handshakes-per-s.secret-stream')
      ? [accept('handshakes/s over TCP, new connection each: deccom / secret-stream', ratio('handshakes-per-s.deccom-tcp', 'handshakes-per-s.secret-stream'), 1)]
      : []),
    ...(has('handshakes-per-s.deccom-tcp', 'handshakes-per-s.libp2p')
      ? [accept('handshakes/s over TCP, new connection each: deccom / libp2p', ratio('handshakes-per-s.deccom-tcp', 'handshakes-per-s.libp2p'), 5)]
      : []),
    ...(has('handshakes-per-s.deccom-udp', 'handshakes-per-s.secret-stream')
      ? [accept('handshakes/s, noise() over UDP / secret-stream', ratio('handshakes-per-s.deccom-udp', 'handshakes-per-s.secret-stream'), 1)]
      : []),
    ...(has('stream-MBps.deccom-noise', 'stream-MBps.raw-node-net')
      ? [accept('encrypted stream / raw node:net', ratio('stream-MBps.deccom-noise', 'stream-MBps.raw-node-net'), 0.5)]
      : []),
    ...(has('stream-MBps.deccom-noise', 'stream-MBps.libp2p') ? [accept('encrypted stream / libp2p', ratio('stream-MBps.deccom-noise', 'stream-MBps.libp2p'), 2.5)] : []),
    ...(has('stream-MBps.deccom-noise', 'stream-MBps.secret-stream')
      ? [accept('encrypted stream / secret-stream', ratio('stream-MBps.deccom-noise', 'stream-MBps.secret-stream'), 1)]
      : []),
    ...(has('aead-64k-MBps.node', 'aead-64k-MBps.noble') ? [accept('node:crypto / noble, ChaCha20-Poly1305 64 KiB', ratio('aead-64k-MBps.node', 'aead-64k-MBps.noble'), 1)] : []),
    ...(has('x25519-per-s.node', 'x25519-per-s.noble') ? [accept('node:crypto / noble, X25519', ratio('x25519-per-s.node', 'x25519-per-s.noble'), 1)] : []),
  ];
  console.log(`stray socket errors ignored: ${stray}; libp2p dials that timed out: ${timeouts}`);
  if (ONLY.length > 0) {
    printTable(
      `noise: acceptance of a partial run (BENCH_NOISE_ONLY=${ONLY.join(',')}; no results file written)`,
      acceptance.map((a) => ({ name: a.name, value: a.value, target: `>= ${a.target}`, pass: a.pass ? 'PASS' : 'FAIL' })),
    );
    return;
  }
  writeResults(
    'noise',
    {
      ...figures,
      strayErrors: stray,
      libp2pDialTimeouts: timeouts,
      isolation: 'one process per measurement, after a warm-up of the same kind',
      runs: RUNS,
      bytes: BYTES,
      libp2pBytes: LIBP2P_BYTES,
      warmupBytes: WARMUP_BYTES,
      warmupMs: WARMUP_MS,
      pairs: PAIRS,
      handshakeMs: HANDSHAKE_MS,
      libp2pDialers: LIBP2P_DIALERS,
      datagrams: DATAGRAMS,
    },
    acceptance,
  );
}

const taskIndex = process.argv.indexOf('--task');
if (taskIndex >= 0) await runTask(process.argv[taskIndex + 1]!);
else await main();
process.exit(0);
