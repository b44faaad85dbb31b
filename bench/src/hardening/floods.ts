/**
 * Floods and abuse over real sockets on 127.0.0.1 (127.0.0.2 and up stand for other
 * hosts; Linux routes all of 127/8 to loopback). Each flood runs attack traffic against
 * a victim node while legitimate peers keep using it, and reports the victim process's
 * peak memory growth and CPU and how much legitimate traffic got through. Attacker,
 * victim and legitimate peers share one process, so CPU is the whole process's.
 * Shared by bench/test/floods.test.ts and `pnpm bench hardening`.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { createNode, createPeerRecord, defineLayer, Identity, type Address, type PeerRecord } from '@deccom/core';
import { udp, encodePing, MESSAGE_PING } from '@deccom/udp';
import { noise, encodeInitiation } from '@deccom/noise';
import { rudp, encodeChunk } from '@deccom/rudp';
import { tcp, encodeHello } from '@deccom/tcp';
import { kademlia, encodeMessage as encodeKademlia, MESSAGE as KADEMLIA } from '@deccom/kademlia';

const MiB = 1024 * 1024;

export interface FloodResult {
  readonly name: string;
  /** What the attacker sent (datagrams, connections, identities). */
  readonly attack: string;
  readonly attackCount: number;
  readonly durationMs: number;
  readonly peakHeapDeltaMiB: number;
  readonly peakRssDeltaMiB: number;
  /** Process CPU time / wall time, percent of one core. */
  readonly cpuPercent: number;
  readonly legitAttempts: number;
  readonly legitOk: number;
  /** Stated memory bound (peak heap growth), MiB. */
  readonly boundMiB: number;
  /** Share of legitimate exchanges that must succeed (UDP pings may be lost in a full socket buffer, with nothing to retry them). */
  readonly legitRequired: number;
  /** Victim counters of interest after the flood. */
  readonly counters: Record<string, number>;
  readonly pass: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function waitFor(predicate: () => boolean, maxMs: number): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** Samples heap and RSS every 20 ms while `body` runs; deltas against a baseline after GC. */
async function measured(
  name: string,
  boundMiB: number,
  legitRequired: number,
  body: () => Promise<{ attack: string; attackCount: number; legitAttempts: number; legitOk: number; counters: Record<string, number> }>,
): Promise<FloodResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const base = process.memoryUsage();
  let peakHeap = base.heapUsed;
  let peakRss = base.rss;
  const sampler = setInterval(() => {
    const now = process.memoryUsage();
    peakHeap = Math.max(peakHeap, now.heapUsed);
    peakRss = Math.max(peakRss, now.rss);
  }, 20);
  const cpu = process.cpuUsage();
  const started = performance.now();
  try {
    const out = await body();
    const durationMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    const now = process.memoryUsage();
    peakHeap = Math.max(peakHeap, now.heapUsed);
    peakRss = Math.max(peakRss, now.rss);
    const peakHeapDeltaMiB = (peakHeap - base.heapUsed) / MiB;
    const result = {
      name,
      ...out,
      durationMs,
      peakHeapDeltaMiB,
      peakRssDeltaMiB: (peakRss - base.rss) / MiB,
      cpuPercent: ((used.user + used.system) / 1000 / durationMs) * 100,
      boundMiB,
      legitRequired,
    };
    return { ...result, pass: peakHeapDeltaMiB < boundMiB && out.legitOk >= Math.ceil(out.legitAttempts * legitRequired) };
  } finally {
    clearInterval(sampler);
  }
}

async function udpSockets(count: number, host = '127.0.0.1'): Promise<UdpSocket[]> {
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<UdpSocket>((resolve) => {
          const socket = createSocket('udp4');
          socket.on('error', () => undefined);
          socket.bind(0, host, () => resolve(socket));
        }),
    ),
  );
}

function closeAll(sockets: UdpSocket[]): void {
  for (const socket of sockets) socket.close();
}

function pick<T>(items: readonly T[], i: number): T {
  return items[i % items.length]!;
}

/** Sends `total` datagrams made by `make` from `sockets` to `to`, in bursts, yielding between them. */
async function spray(sockets: UdpSocket[], to: Address, total: number, make: (i: number, from: UdpSocket) => Uint8Array, burst = 256): Promise<void> {
  for (let i = 0; i < total; ) {
    for (let j = 0; j < burst && i < total; j++, i++) {
      const from = pick(sockets, i);
      from.send(make(i, from), to.port, to.host);
    }
    await tick();
  }
}

// ---------------------------------------------------------------------------

/** Spoofed-looking datagrams (garbage, pings, data) from 128 source ports; a legitimate peer keeps pinging. */
export async function floodUdpSpoof(total = 100_000): Promise<FloodResult> {
  const victim = createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' })] });
  const legit = createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' })] });
  await victim.start();
  await legit.start();
  const sockets = await udpSockets(128);
  try {
    return await measured('udp-spoof', 64, 1, async () => {
      const to = victim.localAddress();
      const garbage = new Uint8Array(randomBytes(1200));
      const attacking = spray(sockets, to, total, (i) => {
        switch (i % 3) {
          case 0:
            return garbage.subarray(0, i % 1200);
          case 1:
            return encodePing(MESSAGE_PING, i);
          default:
            return Uint8Array.of(0, ...garbage.subarray(0, 64));
        }
      });
      let legitOk = 0;
      const legitAttempts = 40;
      const pinging = (async () => {
        // A legitimate exchange: a ping answered within three tries (a full socket buffer
        // drops datagrams of everyone alike; a real peer retries).
        for (let i = 0; i < legitAttempts; i++) {
          for (let attempt = 0; attempt < 3; attempt++) {
            const ok = await legit.sendPing(to).then(
              () => true,
              () => false,
            );
            if (ok) {
              legitOk++;
              break;
            }
          }
        }
      })();
      await Promise.all([attacking, pinging]);
      const c = victim.counters()['udp'] ?? {};
      return { attack: 'datagrams from 128 ports', attackCount: total, legitAttempts, legitOk, counters: pickCounters(c, ['datagrams-in', 'pings-in', 'dropped']) };
    });
  } finally {
    closeAll(sockets);
    await legit.stop();
    await victim.stop();
  }
}

/** Bogus Noise initiations from 64 ports; fresh legitimate peers complete handshakes and deliver datagrams. */
export async function floodNoiseHandshake(total = 30_000): Promise<FloodResult> {
  const victim = createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' }), noise()] });
  await victim.start();
  const sockets = await udpSockets(64);
  let received = 0;
  victim.handle('datagram', () => void received++);
  try {
    return await measured('noise-handshake', 64, 1, async () => {
      const to = victim.localAddress();
      const attacking = spray(sockets, to, total, (i) => encodeInitiation(i, undefined, new Uint8Array(randomBytes(32))), 128);
      const legitAttempts = 8;
      let legitOk = 0;
      const legit = (async () => {
        for (let i = 0; i < legitAttempts; i++) {
          const peer = createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' }), noise()] });
          await peer.start();
          try {
            // Two tries, as an application would retry a handshake that timed out.
            for (let attempt = 0; attempt < 2; attempt++) {
              const before = received;
              const connected = await peer.secureConnect(to, { expectedId: victim.id }).then(
                () => true,
                () => false,
              );
              if (!connected) continue;
              peer.sendDatagram(to, Uint8Array.of(1, 2, 3));
              if (await waitFor(() => received > before, 3000)) {
                legitOk++;
                break;
              }
            }
          } finally {
            await peer.stop();
          }
        }
      })();
      await Promise.all([attacking, legit]);
      const c = victim.counters()['noise'] ?? {};
      return { attack: 'initiations from 64 ports', attackCount: total, legitAttempts, legitOk, counters: pickCounters(c, ['handshakes-answered', 'handshakes-completed', 'cookies-sent', 'half-open-full', 'half-open-per-host']) };
    });
  } finally {
    closeAll(sockets);
    await victim.stop();
  }
}

/** Forged rudp chunks of huge messages from 64 ports; a legitimate 1 MiB reliable message still arrives (3 times). */
export async function floodRudpFragments(total = 40_000): Promise<FloodResult> {
  const victim = createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' }), rudp()] });
  const legit = createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' }), rudp()] });
  await victim.start();
  await legit.start();
  const sockets = await udpSockets(64);
  let delivered = 0;
  victim.handle('reliable-message', (data) => {
    if (data.byteLength === MiB) delivered++;
  });
  try {
    return await measured('rudp-fragments', 256, 1, async () => {
      const to = victim.localAddress();
      const payload = new Uint8Array(randomBytes(1150));
      const attacking = spray(
        sockets,
        to,
        total,
        (i) => {
          // Each source claims 16 messages of 1 GiB and sends scattered chunks of them.
          const port = i % 64;
          return encodeChunk(
            { source: { hi: 1 + port, lo: 7 }, destination: { hi: 0, lo: 0 }, packetNumber: i, counter: 1 + ((i >> 6) % 16), floor: 0, messageLength: 1024 * MiB, chunkSize: 1150, chunkIndex: (i * 7919) % 900_000 },
            payload,
          );
        },
        128,
      );
      const legitAttempts = 3;
      let legitOk = 0;
      const sending = (async () => {
        for (let i = 0; i < legitAttempts; i++) {
          await legit.sendReliable(to, new Uint8Array(MiB).fill(i), { timeoutMs: 20_000 }).then(
            () => void legitOk++,
            () => undefined,
          );
        }
      })();
      await Promise.all([attacking, sending]);
      await waitFor(() => delivered >= legitOk, 2000);
      const c = victim.counters()['rudp'] ?? {};
      return { attack: 'forged chunks of 1 GiB messages from 64 ports', attackCount: total, legitAttempts, legitOk: Math.min(legitOk, delivered), counters: pickCounters(c, ['chunks-in', 'refuses-out', 'evicted', 'expired']) };
    });
  } finally {
    closeAll(sockets);
    await legit.stop();
    await victim.stop();
  }
}

/** A discovery layer over a shared map (what tcp needs below it: localAddress, getPeer). */
function book(records: Map<string, PeerRecord>, host: string, port: number) {
  const address: Address = { host, port };
  return defineLayer({
    type: 'book',
    provides: ['localAddress', 'getPeer', 'getPeers', 'addPeer'],
    offers: { 'peer-connect': 'event' },
    create: (ctx) => ({
      provides: {
        localAddress: () => address,
        getPeer: (id) => records.get(id.hex),
        getPeers: () => [...records.values()],
        addPeer: (peer: PeerRecord) => {
          records.set(peer.id.hex, peer);
          ctx.emit('peer-connect', peer);
        },
      },
    }),
  });
}

async function tcpPair(victimOptions: Parameters<typeof tcp>[0] = {}) {
  const records = new Map<string, PeerRecord>();
  const victim = createNode({ identity: Identity.generate(), layers: [book(records, '127.0.0.1', 41_001), tcp({ host: '127.0.0.1', ...victimOptions })] });
  await victim.start();
  records.set(victim.id.hex, victim.localPeer());
  const honest = async () => {
    const node = createNode({ identity: Identity.generate(), layers: [book(records, '127.0.0.1', 41_002), tcp({ host: '127.0.0.1', sendTimeoutMs: 5000, dialAttempts: 2 })] });
    await node.start();
    records.set(node.id.hex, node.localPeer());
    return node;
  };
  return { victim, honest };
}

function tcpConnections(count: number, port: number, localAddress: string, onConnect: (socket: Socket) => void): Socket[] {
  return Array.from({ length: count }, () => {
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    socket.on('error', () => undefined);
    socket.on('connect', () => onConnect(socket));
    return socket;
  });
}

/** Connections that introduce themselves and then announce 4 GiB frames (and send a little of them). */
export async function floodTcpOversized(count = 300): Promise<FloodResult> {
  const { victim, honest } = await tcpPair();
  const port = victim.localPeer().tcpPort!;
  let received = 0;
  victim.handle('message', () => void received++);
  const sockets: Socket[] = [];
  try {
    return await measured('tcp-oversized', 64, 1, async () => {
      const attacker = Identity.generate();
      const hello = encodeHello({ streamWindow: 1 << 20, maxMessageBytes: 1 << 24, peer: createPeerRecord(attacker.public, { host: '127.0.0.3', port: 9 }, 9) });
      const lie = Uint8Array.of(0x02, 0xff, 0xff, 0xff, 0xff);
      const junk = new Uint8Array(randomBytes(16 * 1024));
      for (let round = 0; round < count / 100; round++) {
        sockets.push(
          ...tcpConnections(100, port, '127.0.0.3', (socket) => {
            socket.write(round % 2 === 0 ? hello : new Uint8Array(0));
            socket.write(lie);
            socket.write(junk);
          }),
        );
        await sleep(50);
      }
      const legitAttempts = 20;
      let legitOk = 0;
      const node = await honest();
      for (let i = 0; i < legitAttempts; i++) {
        const before = received;
        await node.sendMessage(victim.id, new Uint8Array(64 * 1024).fill(i)).catch(() => undefined);
        if (await waitFor(() => received > before, 3000)) legitOk++;
      }
      await node.stop();
      const c = victim.counters()['tcp'] ?? {};
      return { attack: 'connections announcing 4 GiB frames', attackCount: count, legitAttempts, legitOk, counters: pickCounters(c, ['connections-in', 'refused.connection-limit', 'refused.introducing-per-host', 'dropped', 'protocol-errors']) };
    });
  } finally {
    for (const socket of sockets) socket.destroy();
    await victim.stop();
  }
}

/** Slow-loris: 500 connections from one host dribbling a byte a second; legitimate peers from another host still connect. */
export async function floodTcpSlowLoris(count = 500, holdMs = 3000): Promise<FloodResult> {
  const { victim, honest } = await tcpPair({ connectTimeoutMs: 30_000 });
  const port = victim.localPeer().tcpPort!;
  let received = 0;
  victim.handle('message', () => void received++);
  const sockets: Socket[] = [];
  let dribble: NodeJS.Timeout | undefined;
  try {
    return await measured('tcp-slow-loris', 64, 1, async () => {
      sockets.push(...tcpConnections(count, port, '127.0.0.2', (socket) => socket.write(Uint8Array.of(0x01))));
      dribble = setInterval(() => {
        for (const socket of sockets) if (!socket.destroyed) socket.write(Uint8Array.of(0x00));
      }, 1000);
      await sleep(holdMs / 2);
      const legitAttempts = 5;
      let legitOk = 0;
      for (let i = 0; i < legitAttempts; i++) {
        const node = await honest();
        const before = received;
        await node.sendMessage(victim.id, Uint8Array.of(i)).catch(() => undefined);
        if (await waitFor(() => received > before, 3000)) legitOk++;
        await node.stop();
      }
      await sleep(holdMs / 2);
      const c = victim.counters()['tcp'] ?? {};
      return { attack: 'slow connections from 127.0.0.2', attackCount: count, legitAttempts, legitOk, counters: pickCounters(c, ['connections-in', 'refused.connection-limit', 'refused.introducing-per-host']) };
    });
  } finally {
    if (dribble) clearInterval(dribble);
    for (const socket of sockets) socket.destroy();
    await victim.stop();
  }
}

/**
 * One host (127.0.0.2, 64 ports) introduces thousands of fresh identities to a Kademlia
 * node; honest nodes on 127.0.0.3.. are still found. The victim applies the diversity
 * rule to loopback (`prefixRuleExempt: 'none'`, per-host prefixes `ipv4: 32`), which is
 * how a public node sees one attacker host.
 */
export async function floodKademliaFakePeers(identities = 3000, honestCount = 8): Promise<FloodResult> {
  const options = { prefixRuleExempt: 'none' as const, prefixBits: { ipv4: 32 }, requestTimeoutMs: 500 };
  const victim = createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' }), kademlia(options)] });
  await victim.start();
  const honest: (typeof victim)[] = [];
  for (let i = 0; i < honestCount; i++) {
    const node = createNode({ identity: Identity.generate(), layers: [udp({ host: `127.0.0.${3 + i}` }), kademlia({ ...options, bootstrap: [victim.localAddress()] })] });
    await node.start();
    honest.push(node);
  }
  const sockets = await udpSockets(64, '127.0.0.2');
  const fakes = Array.from({ length: identities }, () => Identity.generate());
  try {
    return await measured('kademlia-fake-peers', 64, 1, async () => {
      const to = victim.localAddress();
      await spray(
        sockets,
        to,
        identities,
        (i, from) => {
          const address = from.address();
          const record = createPeerRecord(fakes[i]!.public, { host: address.address, port: address.port });
          return Uint8Array.of(0, ...encodeKademlia({ type: KADEMLIA.introduce, peer: record }));
        },
        64,
      );
      await sleep(500);
      let legitOk = 0;
      for (const node of honest) {
        const found = await victim.findPeer(node.id, { timeoutMs: 5000 }).catch(() => undefined);
        if (found?.id.equals(node.id)) legitOk++;
      }
      const peers = victim.getPeers();
      const attackerContacts = peers.filter((p) => p.address.host === '127.0.0.2').length;
      const c = victim.counters()['kademlia'] ?? {};
      return {
        attack: 'fresh identities introduced from one host',
        attackCount: identities,
        legitAttempts: honest.length,
        legitOk,
        counters: { ...pickCounters(c, ['dropped.prefix-limit', 'peers']), 'attacker-contacts': attackerContacts, 'honest-contacts': peers.length - attackerContacts },
      };
    });
  } finally {
    closeAll(sockets);
    for (const node of honest) await node.stop();
    await victim.stop();
  }
}

function pickCounters(all: Record<string, number>, names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of names) out[name] = all[name] ?? 0;
  for (const [name, value] of Object.entries(all)) if (name.startsWith('dropped.') || name.startsWith('refused.')) out[name] = value;
  return out;
}

export const FLOODS = {
  'udp-spoof': floodUdpSpoof,
  'noise-handshake': floodNoiseHandshake,
  'rudp-fragments': floodRudpFragments,
  'tcp-oversized': floodTcpOversized,
  'tcp-slow-loris': floodTcpSlowLoris,
  'kademlia-fake-peers': floodKademliaFakePeers,
} as const;
