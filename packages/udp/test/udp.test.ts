import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { createNode, InvalidArgumentError, seededRandom, WireError } from '@deccom/core';
import { faulty } from '@deccom/faulty';
import { delay } from '@deccom/delay';
import { decodePingBody, encodePing, MESSAGE_PING, MESSAGE_PONG, udp } from '../src/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Handles Node keeps for sockets and timers, by kind. */
function activeHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

describe('udp wire', () => {
  it('has golden bytes for ping and pong', () => {
    expect(Buffer.from(encodePing(MESSAGE_PING, 0x01020304)).toString('hex')).toBe('0101010101020304');
    expect(Buffer.from(encodePing(MESSAGE_PONG, 0xffffffff)).toString('hex')).toBe('01010102ffffffff');
  });

  it('survives 100,000 random and mutated control bodies with only WireErrors', () => {
    const random = seededRandom(42);
    let rejected = 0;
    for (let i = 0; i < 100_000; i++) {
      const type = random.int(4);
      const body = random.int(3) === 0 ? random.bytes(4) : random.bytes(random.int(12));
      try {
        const decoded = decodePingBody(type, body);
        expect(body.length).toBe(4);
        expect([MESSAGE_PING, MESSAGE_PONG]).toContain(decoded.type);
      } catch (error) {
        if (!(error instanceof WireError)) throw error;
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(50_000);
  });

  it('keeps serving after 100,000 hostile datagrams through a real socket and its receive path', async () => {
    const node = createNode({ layers: [udp({ host: '127.0.0.1' })] });
    await node.start();
    const got: number[] = [];
    node.handle('datagram', (data) => void got.push(data.length));
    const attacker = createSocket('udp4');
    await new Promise<void>((r) => attacker.bind(0, '127.0.0.1', () => r()));
    const random = seededRandom(9);
    const target = node.localAddress();
    const valid = [encodePing(MESSAGE_PING, 1), encodePing(MESSAGE_PONG, 2), Uint8Array.of(0, 1, 2)];
    let dataFrames = 0;
    for (let i = 0; i < 100_000; i++) {
      let bytes: Uint8Array;
      if (random.int(2) === 0) bytes = random.bytes(random.int(16));
      else {
        bytes = valid[random.int(valid.length)]!.slice();
        const at = random.int(bytes.length);
        bytes[at] = bytes[at]! ^ (1 << random.int(8));
        if (random.int(4) === 0) bytes = bytes.subarray(0, random.int(bytes.length));
      }
      if (bytes.length > 0 && bytes[0] === 0) dataFrames++;
      attacker.send(bytes, target.port, target.host);
      // A windowed flood: the kernel's receive buffer (capped by rmem_max) must not be
      // what drops them, so the test measures the layer, not the kernel.
      if (i % 100 === 99) {
        const windowStart = Date.now();
        while ((node.counters()['udp']!['datagrams-in'] ?? 0) < i - 200 && Date.now() - windowStart < 100) await new Promise((r) => setImmediate(r));
      }
    }
    // Every datagram was handled somehow: delivered as DATA, answered, or dropped and counted.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (node.counters()['udp']!['datagrams-in'] ?? 0) < 100_000) await sleep(20);
    const counters = node.counters()['udp']!;
    expect(counters['datagrams-in']).toBeGreaterThan(95_000); // loopback may drop a few under a burst
    expect(counters['dropped']).toBeGreaterThan(10_000);
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
  it('rejects a host that is not an IP literal, and bad ports, with typed errors', () => {
    expect(() => udp({ host: 'localhost' })).toThrow(InvalidArgumentError);
    expect(() => udp({ port: 70000 })).toThrow(/0\.\.65535/);
  });

  it('reports the bound address and the socket buffer sizes it got', async () => {
    const node = createNode({ layers: [udp({ host: '127.0.0.1', receiveBufferBytes: 1 << 20 })] });
    await node.start();
    const status = node.describe().layers[0]!.status as { address: { port: number }; receiveBufferBytes: number };
    expect(status.address.port).toBe(node.localAddress().port);
    expect(status.receiveBufferBytes).toBeGreaterThan(0);
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

  it('starting and stopping a stack 100 times leaves no socket, timer or listener behind', async () => {
    await sleep(50);
    const baseline = activeHandles();
    const listenersBefore = process.listenerCount('warning');
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
    }
    await sleep(50);
    const after = activeHandles();
    expect(after['UDPWrap'] ?? 0).toBe(baseline['UDPWrap'] ?? 0);
    expect(after['Timeout'] ?? 0).toBeLessThanOrEqual(baseline['Timeout'] ?? 0);
    for (const kind of Object.keys(after)) expect(after[kind], kind).toBeLessThanOrEqual(baseline[kind] ?? 0);
    expect(process.listenerCount('warning')).toBe(listenersBefore);
  }, 60_000);
});
