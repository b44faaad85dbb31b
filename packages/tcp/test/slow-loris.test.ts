/**
 * Slow-loris peers over real sockets: one host opens many connections and dribbles a
 * byte now and then, never finishing the introduction. `maxIntroducingPerHost` (64)
 * keeps it from holding every connection slot; without the cap a legitimate peer from
 * another host is refused while the attack lasts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { Book, makeNode, sleep, startIn, tcpCounters, waitFor, type TestNode } from './helpers.js';
import { DEFAULT_MAX_INTRODUCING_PER_HOST, type TcpOptions } from '../src/index.js';

const sockets: Socket[] = [];
const nodes: TestNode[] = [];
let dribble: NodeJS.Timeout | undefined;
afterEach(async () => {
  if (dribble) clearInterval(dribble);
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const node of nodes.splice(0)) await node.stop();
});

async function attack(options: TcpOptions): Promise<{ delivered: boolean; counters: Record<string, number>; open: number }> {
  const book = new Book();
  const victim = makeNode(book, '127.0.0.1', { maxConnections: 128, connectTimeoutMs: 20_000, ...options });
  const honest = makeNode(book, '127.0.0.1', { sendTimeoutMs: 3000, dialAttempts: 1 });
  nodes.push(victim, honest);
  await startIn(book, victim);
  await startIn(book, honest);
  const port = victim.localPeer().tcpPort!;
  // 200 connections from 127.0.0.2 that send the first bytes of a HELLO, one per second.
  let open = 0;
  for (let i = 0; i < 200; i++) {
    const socket = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
    socket.on('error', () => undefined);
    socket.on('connect', () => void open++);
    socket.on('close', () => void open--);
    sockets.push(socket);
  }
  await waitFor(() => open + (tcpCounters(victim)['refused.connection-limit'] ?? 0) + (tcpCounters(victim)['refused.introducing-per-host'] ?? 0) >= 200, 5000);
  dribble = setInterval(() => {
    for (const socket of sockets) if (!socket.destroyed) socket.write(Uint8Array.of(0x01));
  }, 1000);
  await sleep(300);
  let delivered = false;
  victim.handle('message', () => void (delivered = true));
  await honest.sendMessage(victim.id, Uint8Array.of(1, 2, 3)).catch(() => undefined);
  await waitFor(() => delivered, 2000);
  return { delivered, counters: tcpCounters(victim), open };
}

describe('slow-loris', () => {
  it('one host holds at most maxIntroducingPerHost slots; a peer from another host still gets through', { timeout: 30_000 }, async () => {
    const result = await attack({});
    expect(result.counters['refused.introducing-per-host']).toBeGreaterThanOrEqual(200 - DEFAULT_MAX_INTRODUCING_PER_HOST);
    expect(result.delivered).toBe(true);
  });

  it('without the cap the host takes every slot and the legitimate peer is refused', { timeout: 30_000 }, async () => {
    const result = await attack({ maxIntroducingPerHost: 1_000_000 });
    expect(result.counters['refused.connection-limit']).toBeGreaterThan(0);
    expect(result.delivered).toBe(false);
  });

  it('rejects a bad maxIntroducingPerHost', async () => {
    const { tcp } = await import('../src/index.js');
    expect(() => tcp({ maxIntroducingPerHost: 0 })).toThrow(/maxIntroducingPerHost/);
  });
});
