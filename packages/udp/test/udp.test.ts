import { createSocket, Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Counters, createNode, InvalidArgumentError, seededRandom, WireError, type Address, type Random } from '@deccom/core';
import { faulty } from '@deccom/faulty';
import { delay } from '@deccom/delay';
import { createReceiver, type TrafficCounters } from '../src/receive.js';
import { decodeControlDatagram, decodePingBody, encodePing, MESSAGE_PING, MESSAGE_PONG, PING_LENGTH, udp, UDP_MAX_DATAGRAM } from '../src/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(predicate: () => boolean, maxMs = 5000): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** Handles Node keeps for sockets and timers, by kind. */
function activeHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

const VALID = [encodePing(MESSAGE_PING, 1), encodePing(MESSAGE_PONG, 0xdeadbeef), Uint8Array.of(0, 1, 2), Uint8Array.of(0)];

/** A random input: pure noise, or a valid datagram with flipped bits, cut, extended, or a changed header byte. */
function hostileDatagram(random: Random): Uint8Array {
  const choice = random.int(5);
  if (choice === 0) return random.bytes(random.int(24));
  let bytes = VALID[random.int(VALID.length)]!.slice();
  if (choice === 1) {
    const at = random.int(bytes.length);
    bytes[at] = bytes[at]! ^ (1 << random.int(8));
  } else if (choice === 2) {
    bytes = bytes.subarray(0, random.int(bytes.length + 1));
  } else if (choice === 3) {
    const longer = new Uint8Array(bytes.length + 1 + random.int(8));
    longer.set(bytes);
    longer.set(random.bytes(longer.length - bytes.length), bytes.length);
    bytes = longer;
  } else {
    bytes[random.int(Math.min(4, bytes.length))] = random.int(256);
  }
  return bytes;
}

describe('udp wire', () => {
  it('has golden bytes for ping and pong, and round-trips them', () => {
    expect(Buffer.from(encodePing(MESSAGE_PING, 0x01020304)).toString('hex')).toBe('0101010101020304');
    expect(Buffer.from(encodePing(MESSAGE_PONG, 0xffffffff)).toString('hex')).toBe('01010102ffffffff');
    expect(encodePing(MESSAGE_PING, 7)).toHaveLength(PING_LENGTH);
    expect(decodeControlDatagram(encodePing(MESSAGE_PONG, 0xfeedface))).toEqual({ type: MESSAGE_PONG, pingId: 0xfeedface });
  });

  it('rejects malformed control datagrams with typed WireErrors', () => {
    const codes = (bytes: number[]) => {
      try {
        decodeControlDatagram(Uint8Array.from(bytes));
        return 'accepted';
      } catch (error) {
        return (error as WireError).code;
      }
    };
    expect(codes([])).toBe('WIRE_TRUNCATED');
    expect(codes([0x02])).toBe('WIRE_UNKNOWN_TYPE');
    expect(codes([0x00, 1])).toBe('WIRE_MALFORMED'); // DATA is not control
    expect(codes([0x01, 0x01, 0x01])).toBe('WIRE_TRUNCATED');
    expect(codes([0x01, 0x02, 0x01, 0x01, 0, 0, 0, 0])).toBe('WIRE_MALFORMED'); // another protocol
    expect(codes([0x01, 0x01, 0x02, 0x01, 0, 0, 0, 0])).toBe('WIRE_UNSUPPORTED_VERSION');
    expect(codes([0x01, 0x01, 0x01, 0x03, 0, 0, 0, 0])).toBe('WIRE_UNKNOWN_TYPE');
    expect(codes([0x01, 0x01, 0x01, 0x01, 0, 0, 0])).toBe('WIRE_TRUNCATED');
    expect(codes([0x01, 0x01, 0x01, 0x01, 0, 0, 0, 0, 0])).toBe('WIRE_TRAILING_BYTES');
  });

  it('survives 100,000 random and mutated control bodies with only WireErrors', () => {
    const random = seededRandom(42);
    let rejected = 0;
    for (let i = 0; i < 100_000; i++) {
      const type = random.int(4);
      const body = random.int(3) === 0 ? random.bytes(4) : random.bytes(random.int(12));
      try {
        const decoded = decodePingBody(type, body);
        if (body.length !== 4 || (decoded.type !== MESSAGE_PING && decoded.type !== MESSAGE_PONG)) throw new Error('accepted a malformed body');
      } catch (error) {
        if (!(error instanceof WireError)) throw error;
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(50_000);
  });

  it('survives 300,000 random and mutated whole datagrams with only WireErrors', () => {
    const random = seededRandom(7);
    let accepted = 0;
    const escaped: unknown[] = [];
    const inexact: Uint8Array[] = [];
    for (let i = 0; i < 300_000; i++) {
      const bytes = hostileDatagram(random);
      try {
        const ping = decodeControlDatagram(bytes);
        // Only exact encodings pass.
        if (Buffer.compare(encodePing(ping.type, ping.pingId), bytes) !== 0) inexact.push(bytes);
        accepted++;
      } catch (error) {
        if (!(error instanceof WireError)) escaped.push(error);
      }
    }
    expect(escaped).toEqual([]);
    expect(inexact).toEqual([]);
    expect(accepted).toBeGreaterThan(10_000);
  });
});

describe('udp receive path', () => {
  it('never throws on 300,000 hostile datagrams and accounts for every one', () => {
    const random = seededRandom(1234);
    const counters = new Counters();
    const hot: TrafficCounters = { datagramsIn: 0, bytesIn: 0, datagramsOut: 0, bytesOut: 0 };
    let delivered = 0;
    let pings = 0;
    let traffic = 0;
    const slots: { datagram?: (data: Uint8Array, from: Address) => void } = {};
    const receive = createReceiver({
      counters,
      hot,
      slots,
      observed: () => true,
      emit: () => void traffic++,
      onPing: () => void pings++,
      // Half the pongs are "ours".
      onPong: (_from, pingId) => pingId % 2 === 0,
    });
    let bytes = 0;
    const escaped: unknown[] = [];
    for (let i = 0; i < 300_000; i++) {
      // Sometimes nobody has taken the datagram slot yet.
      if (i === 1000) slots.datagram = () => void delivered++;
      const message = hostileDatagram(random);
      bytes += message.length;
      try {
        receive(message, { address: '127.0.0.1', port: 1 + (i % 65535) });
      } catch (error) {
        escaped.push(error);
      }
    }
    expect(escaped).toEqual([]);
    const c = counters.snapshot();
    expect(hot.datagramsIn).toBe(300_000);
    expect(hot.bytesIn).toBe(bytes);
    expect(traffic).toBe(300_000);
    expect(delivered).toBeGreaterThan(50_000);
    expect(pings).toBe(c['pings-in']);
    // Every datagram is delivered, answered, matched, or dropped with a reason.
    expect(delivered + (c['pings-in'] ?? 0) + (c['pongs-in'] ?? 0) + (c['dropped'] ?? 0)).toBe(300_000);
    const reasons = Object.keys(c).filter((k) => k.startsWith('dropped.'));
    expect(reasons.sort()).toEqual(
      expect.arrayContaining(['dropped.malformed', 'dropped.no-receiver', 'dropped.trailing-bytes', 'dropped.truncated', 'dropped.unknown-type', 'dropped.unsolicited-pong', 'dropped.version']),
    );
    const reasonTotal = reasons.reduce((sum, k) => sum + c[k]!, 0);
    expect(reasonTotal).toBe(c['dropped']);
  });

  it('hands DATA payloads up as views without the frame byte', () => {
    const got: number[][] = [];
    const receive = createReceiver({
      counters: new Counters(),
      hot: { datagramsIn: 0, bytesIn: 0, datagramsOut: 0, bytesOut: 0 },
      slots: { datagram: (data) => void got.push([...data]) },
      observed: () => false,
      emit: () => undefined,
      onPing: () => undefined,
      onPong: () => false,
    });
    const pooled = Buffer.from([9, 9, 0, 5, 6, 9]).subarray(2, 5); // a view at an offset, like dgram's
    receive(pooled, { address: '::1', port: 5 });
    receive(Buffer.of(0), { address: '::1', port: 5 });
    expect(got).toEqual([[5, 6], []]);
  });

  it('keeps serving after a sample of 20,000 hostile datagrams through a real socket', async () => {
    const node = createNode({ layers: [udp({ host: '127.0.0.1' })] });
    await node.start();
    const got: number[] = [];
    node.handle('datagram', (data) => void got.push(data.length));
    const attacker = createSocket('udp4');
    await new Promise<void>((r) => attacker.bind(0, '127.0.0.1', () => r()));
    const random = seededRandom(9);
    const target = node.localAddress();
    let dataFrames = 0;
    const count = 20_000;
    for (let i = 0; i < count; i++) {
      const bytes = hostileDatagram(random);
      if (bytes.length > 0 && bytes[0] === 0) dataFrames++;
      attacker.send(bytes, target.port, target.host);
      // A windowed flood: the kernel's receive buffer must not be what drops them, so the
      // test measures the layer, not the kernel.
      if (i % 100 === 99) {
        const windowStart = Date.now();
        while ((node.counters()['udp']!['datagrams-in'] ?? 0) < i - 200 && Date.now() - windowStart < 100) await new Promise((r) => setImmediate(r));
      }
    }
    await until(() => (node.counters()['udp']!['datagrams-in'] ?? 0) >= count, 10_000);
    const counters = node.counters()['udp']!;
    expect(counters['datagrams-in']).toBeGreaterThan(count * 0.95); // loopback may drop a few under a burst
    expect(counters['dropped']).toBeGreaterThan(count * 0.2);
    expect(got.length).toBeGreaterThan(dataFrames * 0.9);
    // Still serving: a legitimate ping works.
    const peer = createNode({ layers: [udp({ host: '127.0.0.1' })] });
    await peer.start();
    expect(await peer.sendPing(target)).toBeGreaterThanOrEqual(0);
    await peer.stop();
    await new Promise<void>((r) => attacker.close(() => r()));
    await node.stop();
  }, 60_000);
});

describe('udp layer', () => {
  afterEach(() => void vi.restoreAllMocks());

  it('rejects a host that is not an IP literal, bad ports and sizes, with typed errors', () => {
    expect(() => udp({ host: 'localhost' })).toThrow(InvalidArgumentError);
    expect(() => udp({ port: 70000 })).toThrow(/0\.\.65535/);
    expect(() => udp({ receiveBufferBytes: 0 })).toThrow(InvalidArgumentError);
    expect(() => udp({ pingTimeoutMs: -1 })).toThrow(InvalidArgumentError);
  });

  it('reports the bound address and the socket buffer sizes it got', async () => {
    const node = createNode({ layers: [udp({ host: '127.0.0.1', receiveBufferBytes: 1 << 20 })] });
    await node.start();
    const status = node.describe().layers[0]!.status as { address: { port: number }; receiveBufferBytes: number };
    expect(status.address.port).toBe(node.localAddress().port);
    expect(status.receiveBufferBytes).toBeGreaterThan(0);
    expect(node.maxDatagramSize()).toBe(UDP_MAX_DATAGRAM);
    expect(UDP_MAX_DATAGRAM).toBe(65_506);
    await node.stop();
  });

  it('fails start with the socket error when the port is taken, leaving nothing open', async () => {
    const first = createNode({ layers: [udp({ host: '127.0.0.1' })] });
    await first.start();
    const second = createNode({ layers: [udp({ host: '127.0.0.1', port: first.localAddress().port })] });
    await expect(second.start()).rejects.toThrow(/EADDRINUSE/);
    expect(second.state).toBe('stopped');
    await first.stop();
  });

  it('refuses bad destinations: InvalidArgumentError for a name or port 0, a counted drop for the other IP family', async () => {
    const node = createNode({ layers: [udp({ host: '127.0.0.1' })] });
    await node.start();
    expect(() => node.sendDatagram({ host: 'localhost', port: 7 }, Uint8Array.of(1))).toThrow(InvalidArgumentError);
    expect(() => node.sendDatagram({ host: '127.0.0.1', port: 0 }, Uint8Array.of(1))).toThrow(InvalidArgumentError);
    expect(() => node.sendDatagram({ host: '::1', port: 7 }, Uint8Array.of(1))).not.toThrow();
    await expect(node.sendPing({ host: 'example.com', port: 7 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(node.sendPing({ host: '::1', port: 7 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await sleep(20);
    const counters = node.counters()['udp']!;
    expect(counters['dropped.address-family']).toBe(2);
    expect(counters['datagrams-out'] ?? 0).toBe(0);
    expect(counters['socket-errors'] ?? 0).toBe(0);
    expect(node.describe().layers[0]!.status?.['pendingPings']).toBe(0);
    await node.stop();
  });

  it('never sends to itself when bound to the wildcard address, whichever local address is used', async () => {
    const node = createNode({ layers: [udp({ host: '0.0.0.0' })] });
    await node.start();
    const got: Address[] = [];
    node.handle('datagram', (_data, from) => void got.push(from));
    const port = node.localAddress().port;
    const locals = ['127.0.0.1', '127.0.0.2', '0.0.0.0'];
    for (const list of Object.values(networkInterfaces())) for (const entry of list ?? []) if (entry.family === 'IPv4') locals.push(entry.address);
    for (const host of locals) node.sendDatagram({ host, port }, Uint8Array.of(1));
    await expect(node.sendPing({ host: '127.0.0.1', port })).rejects.toBeInstanceOf(InvalidArgumentError);
    await sleep(30);
    expect(got).toEqual([]);
    expect(node.counters()['udp']!['dropped.self']).toBe(locals.length);
    await node.stop();
  });

  it('copies the payload when sends are queued in libuv, so the caller may still reuse its buffer', async () => {
    const a = createNode({ layers: [udp({ host: '127.0.0.1' })] });
    const b = createNode({ layers: [udp({ host: '127.0.0.1' })] });
    await a.start();
    await b.start();
    const got: number[][] = [];
    b.handle('datagram', (data) => void got.push([...data]));
    const buffer = new Uint8Array(3);
    const send = (value: number) => {
      buffer.fill(value);
      a.sendDatagram(b.localAddress(), buffer);
      buffer.fill(0xee);
    };
    send(1); // the idle path: the scratch buffer
    // Pretend libuv holds queued sends (the kernel buffer was full): each send gets its own buffer.
    const spy = vi.spyOn(Socket.prototype, 'getSendQueueCount').mockReturnValue(3);
    send(2);
    send(3);
    spy.mockRestore();
    send(4);
    expect(await until(() => got.length === 4)).toBe(true);
    expect(got.map((g) => g.join(',')).sort()).toEqual(['1,1,1', '2,2,2', '3,3,3', '4,4,4']);
    await a.stop();
    await b.stop();
  });

  it('counts pings and pongs, and answers a ping even with no datagram receiver', async () => {
    const a = createNode({ layers: [udp({ host: '127.0.0.1' })] });
    const b = createNode({ layers: [udp({ host: '127.0.0.1' })] });
    await a.start();
    await b.start();
    for (let i = 0; i < 3; i++) await a.sendPing(b.localAddress());
    const ca = a.counters()['udp']!;
    const cb = b.counters()['udp']!;
    expect([ca['pings-out'], ca['pongs-in'], cb['pings-in']]).toEqual([3, 3, 3]);
    expect(ca['datagrams-out']).toBe(3);
    expect(ca['bytes-out']).toBe(3 * PING_LENGTH);
    expect(cb['datagrams-out']).toBe(3);
    await a.stop();
    await b.stop();
  });

  it('a pong that arrived while this process was blocked answers the ping; a silent peer still times out', async () => {
    const node = createNode({ layers: [udp({ host: '127.0.0.1' })] });
    await node.start();
    // The peer answers at once, then blocks this process (the test shares its event loop)
    // for longer than the ping's timeout: the pong waits in the socket while the timer
    // comes due. Its datagram leaves on the next tick, the block runs after that.
    const peer = createSocket('udp4');
    await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', resolve));
    let blocked = 0;
    peer.on('message', (data, from) => {
      const ping = decodeControlDatagram(data);
      peer.send(encodePing(MESSAGE_PONG, ping.pingId), from.port, from.address);
      setImmediate(() => {
        const start = Date.now();
        while (Date.now() - start < 400) blocked++;
      });
    });
    const target = { host: '127.0.0.1', port: peer.address().port };
    const rtt = await node.sendPing(target, { timeoutMs: 100 });
    expect(blocked).toBeGreaterThan(0);
    expect(rtt).toBeGreaterThanOrEqual(400);
    // A peer that never answers still times out, a grace after the deadline at most.
    peer.removeAllListeners('message');
    peer.on('message', () => undefined);
    const started = Date.now();
    await expect(node.sendPing(target, { timeoutMs: 100 })).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(Date.now() - started).toBeLessThan(1_000);
    await new Promise<void>((resolve) => peer.close(() => resolve()));
    await node.stop();
  });

  it('answers at most maxPongsPerSecond pings per address: a spoofed ping flood cannot make it a reflector, nor starve other peers', async () => {
    const node = createNode({ layers: [udp({ host: '127.0.0.1', maxPongsPerSecond: 100 })] });
    await node.start();
    const flooder = createSocket('udp4');
    await new Promise<void>((resolve) => flooder.bind(0, '127.0.0.1', () => resolve()));
    let pongs = 0;
    flooder.on('message', (message) => {
      if (decodeControlDatagram(message).type === MESSAGE_PONG) pongs++;
    });
    const started = Date.now();
    for (let i = 0; i < 1_000; i++) flooder.send(encodePing(MESSAGE_PING, i), node.localAddress().port, '127.0.0.1');
    const counters = () => node.counters()['udp']!;
    expect(await until(() => (counters()['pings-in'] ?? 0) === 1_000)).toBe(true);
    const elapsedMs = Date.now() - started;
    await sleep(50);
    // A burst of 100, plus what the elapsed time refilled.
    expect(pongs).toBeGreaterThanOrEqual(100);
    expect(pongs).toBeLessThanOrEqual(100 + Math.ceil((elapsedMs / 1000) * 100) + 1);
    expect(counters()['dropped.pong-rate']).toBe(1_000 - pongs);
    // The bucket refills: a second later, pings are answered again.
    await sleep(1_000);
    const before = pongs;
    for (let i = 0; i < 10; i++) flooder.send(encodePing(MESSAGE_PING, 5_000 + i), node.localAddress().port, '127.0.0.1');
    expect(await until(() => pongs === before + 10)).toBe(true);
    // Another address is answered at once whatever the first one does.
    for (let i = 0; i < 1_000; i++) flooder.send(encodePing(MESSAGE_PING, 9_000 + i), node.localAddress().port, '127.0.0.1');
    const other = createNode({ layers: [udp({ host: '127.0.0.1' })] });
    await other.start();
    for (let i = 0; i < 20; i++) await other.sendPing(node.localAddress());
    await other.stop();
    expect(() => udp({ maxPongsPerSecond: 0 })).toThrow(InvalidArgumentError);
    flooder.close();
    await node.stop();
  });

  it('restarts 100 times on one node and 100 fresh stacks leave no socket, timer or listener behind', async () => {
    await sleep(50);
    const baseline = activeHandles();
    const listenersBefore = process.listenerCount('warning');
    const peer = createNode({ random: 5, layers: [udp({ host: '127.0.0.1' })] });
    const restarted = createNode({ random: 6, layers: [udp({ host: '127.0.0.1' })] });
    await peer.start();
    // The probe sees sockets: with two nodes up, two more UDPWrap handles.
    await restarted.start();
    expect(activeHandles()['UDPWrap'] ?? 0).toBe((baseline['UDPWrap'] ?? 0) + 2);
    await restarted.stop();
    for (let i = 0; i < 100; i++) {
      await restarted.start();
      await restarted.sendPing(peer.localAddress(), { timeoutMs: 10_000 });
      const hanging = restarted.sendPing({ host: '127.0.0.1', port: 9 }, { timeoutMs: 60_000 }).catch((error: unknown) => error);
      await restarted.stop();
      expect(await hanging).toMatchObject({ code: 'STOPPED' });
    }
    const counters = restarted.counters()['udp']!;
    expect([counters['pings-out'], counters['pongs-in'], counters['datagrams-out']]).toEqual([200, 100, 200]);
    expect(peer.counters()['udp']!['pings-in']).toBe(100);
    await peer.stop();

    for (let i = 0; i < 100; i++) {
      const a = createNode({ random: i, layers: [udp({ host: '127.0.0.1' }), faulty({ seed: i, loss: 0.1, delayMs: 5 }), delay({ latencyMs: 1 })] });
      const b = createNode({ random: i + 1000, layers: [udp({ host: '127.0.0.1' })] });
      await a.start();
      await b.start();
      // Leave work in flight: a pending ping, delayed datagrams, a ping timeout timer.
      const ping = a.sendPing(b.localAddress(), { timeoutMs: 10_000 }).catch(() => undefined);
      a.sendDatagram(b.localAddress(), Uint8Array.of(1));
      const hanging = b.sendPing({ host: '127.0.0.1', port: 9 }, { timeoutMs: 60_000 }).catch((error: unknown) => error);
      if (i % 2 === 0) await a.stop();
      else await Promise.all([a.stop(), b.stop()]);
      await b.stop();
      await ping;
      expect(await hanging).toMatchObject({ code: 'STOPPED' });
      expect(a.describe().layers.map((l) => l.status?.['pendingPings'] ?? 0)).toEqual([0, 0, 0]);
      expect(b.counters()['udp']!['socket-errors'] ?? 0).toBe(0);
    }
    await sleep(50);
    const after = activeHandles();
    expect(after['UDPWrap'] ?? 0).toBe(baseline['UDPWrap'] ?? 0);
    expect(after['Timeout'] ?? 0).toBeLessThanOrEqual(baseline['Timeout'] ?? 0);
    for (const kind of Object.keys(after)) expect(after[kind], kind).toBeLessThanOrEqual(baseline[kind] ?? 0);
    expect(process.listenerCount('warning')).toBe(listenersBefore);
  }, 60_000);
});
