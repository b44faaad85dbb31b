/**
 * Idle connections closed after `idleTimeoutMs` (on a virtual clock, real sockets on
 * loopback), and a dial that fails on a stale peer record asking `findPeer` for a fresh one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, defineLayer, Identity, type Address, type PeerRecord } from '@deccom/core';
import { VirtualClock } from '@deccom/core/testing';
import { ConnectionError, tcp, type TcpOptions } from '../src/index.js';
import { Book, makeNode, startIn, tcpCounters, tcpStatus, waitFor, type TestNode } from './helpers.js';

const HOST = '127.0.0.1';
const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

function track<T extends { stop(): Promise<void> }>(node: T): T {
  nodes.push(node as unknown as TestNode);
  return node;
}

function clockedNode(book: Book, clock: VirtualClock, options: TcpOptions = {}): TestNode {
  return track(createNode({ clock, layers: [book.layer(HOST), tcp({ host: HOST, ...options })] }));
}

/** Two started nodes on one virtual clock, with these idle timeouts. */
async function startedPair(aIdleMs: number, bIdleMs: number): Promise<{ clock: VirtualClock; book: Book; a: TestNode; b: TestNode }> {
  const clock = new VirtualClock();
  const book = new Book();
  const a = clockedNode(book, clock, { idleTimeoutMs: aIdleMs });
  const b = clockedNode(book, clock, { idleTimeoutMs: bIdleMs });
  await startIn(book, a);
  await startIn(book, b);
  return { clock, book, a, b };
}

describe('idleTimeoutMs', () => {
  it('closes an idle connection gracefully; a later send dials again and is delivered', async () => {
    const { clock, a, b } = await startedPair(1000, 1000);
    const got: string[] = [];
    const closes: (Error | undefined)[] = [];
    b.handle('message', (data) => void got.push(new TextDecoder().decode(data)));
    a.on('connection-close', (_id, reason) => void closes.push(reason));
    await a.sendMessage(b.id, new TextEncoder().encode('first'));
    expect(await waitFor(() => got.length === 1)).toBe(true);
    expect(tcpStatus(a).connections).toBe(1);

    // Not yet: 900 ms of silence.
    await clock.advance(900);
    expect(tcpStatus(a).connections).toBe(1);
    // Past the timeout (plus one sweep interval at most): closed on both sides, gracefully.
    await clock.advance(600);
    expect(await waitFor(() => tcpStatus(a).connections === 0 && tcpStatus(b).connections === 0)).toBe(true);
    const idleClosed = (tcpCounters(a)['connections-idle-closed'] ?? 0) + (tcpCounters(b)['connections-idle-closed'] ?? 0);
    expect(idleClosed).toBeGreaterThanOrEqual(1);
    expect(closes).toEqual([undefined]); // connection-close without an error: a graceful close
    expect(tcpCounters(a)['connections-lost'] ?? 0).toBe(0);
    expect(tcpCounters(a)['close-timeouts'] ?? 0).toBe(0);

    await a.sendMessage(b.id, new TextEncoder().encode('second'));
    expect(await waitFor(() => got.length === 2)).toBe(true);
    expect(got).toEqual(['first', 'second']);
    expect(tcpCounters(a)['connections-out']).toBe(2);

    await Promise.all([a.stop(), b.stop()]);
    expect(clock.pendingTimers).toBe(0); // the sweep timer is released on stop
  });

  it('does not cut a stream open longer than the timeout, even a silent one', async () => {
    const { clock, a, b } = await startedPair(1000, 1000);
    const received: number[] = [];
    let ended = false;
    b.handle('stream', (source) => {
      void (async () => {
        for await (const chunk of source) received.push(chunk.byteLength);
        ended = true;
      })();
    });
    let release!: () => void;
    const paused = new Promise<void>((resolve) => (release = resolve));
    async function* source(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(1000);
      await paused; // no traffic at all while the clock runs far past the timeout
      yield new Uint8Array(2000);
    }
    const sending = a.sendStream(b.id, source());
    expect(await waitFor(() => received.length === 1)).toBe(true);
    for (let i = 0; i < 10; i++) await clock.advance(1000);
    expect(tcpStatus(a).connections).toBe(1);
    expect(tcpStatus(b).connections).toBe(1);
    release();
    await sending;
    expect(await waitFor(() => ended)).toBe(true);
    expect(received).toEqual([1000, 2000]);
    expect(tcpCounters(a)['connections-idle-closed'] ?? 0).toBe(0);
    expect(tcpCounters(b)['connections-idle-closed'] ?? 0).toBe(0);

    // Once the stream is over, the connection does go idle (the sweep was running all along).
    await clock.advance(2500);
    expect(await waitFor(() => tcpStatus(a).connections === 0 && tcpStatus(b).connections === 0)).toBe(true);
  });

  it('never closes a kept connection (openConnection)', async () => {
    const { clock, a, b } = await startedPair(1000, 0);
    await a.openConnection(b.id);
    await clock.advance(10_000);
    expect(tcpStatus(a).connections).toBe(1);
    expect(tcpCounters(a)['connections-idle-closed'] ?? 0).toBe(0);
  });

  it('0 disables it: no sweep timer, the connection stays', async () => {
    const { clock, a, b } = await startedPair(0, 0);
    expect(clock.pendingTimers).toBe(0);
    await a.sendMessage(b.id, new Uint8Array(10));
    expect(await waitFor(() => tcpStatus(b).connections === 1)).toBe(true);
    await clock.advance(3_600_000);
    expect(tcpStatus(a).connections).toBe(1);
    expect(tcpStatus(b).connections).toBe(1);
  });

  it('rejects bad values with a typed error', () => {
    for (const idleTimeoutMs of [-1, 1.5, Number.NaN, 2 ** 31, Number.POSITIVE_INFINITY]) {
      expect(() => makeNode(new Book(), HOST, { idleTimeoutMs })).toThrow(RangeError);
    }
    expect(() => makeNode(new Book(), HOST, { idleTimeoutMs: 1 })).not.toThrow();
  });
});

/**
 * A discovery layer whose table (`getPeer`) holds whatever the test put there, and,
 * with `withFindPeer`, whose `findPeer` answers from `current` (what a lookup would find).
 */
function staleBook(table: Map<string, PeerRecord>, current: Map<string, PeerRecord>, withFindPeer: boolean, port: number) {
  const address: Address = { host: HOST, port };
  const provides = {
    localAddress: () => address,
    getPeer: (id: { hex: string }) => table.get(id.hex),
    getPeers: () => [...table.values()],
  };
  if (!withFindPeer) {
    return defineLayer({ type: 'book', provides: ['localAddress', 'getPeer', 'getPeers'], create: () => ({ provides }) });
  }
  return defineLayer({
    type: 'book',
    provides: ['localAddress', 'getPeer', 'getPeers', 'findPeer'],
    create: () => ({
      provides: {
        ...provides,
        findPeer: async (id: { hex: string }) => {
          finds++;
          const record = current.get(id.hex);
          if (!record) throw new Error('not found');
          return record;
        },
      },
    }),
  });
}
let finds = 0;

describe('a stale TCP port after the peer restarted', () => {
  /** B starts, its record is noted, B stops and starts again on a new TCP port with the same identity. */
  async function restartedPeer(): Promise<{ identity: Identity; stale: PeerRecord; current: PeerRecord }> {
    const identity = Identity.generate();
    const book = new Book();
    const first = track(makeNode(book, HOST, {}, identity));
    await startIn(book, first);
    const stale = first.localPeer();
    await first.stop();
    const second = track(makeNode(book, HOST, {}, identity));
    await startIn(book, second);
    const current = second.localPeer();
    second.handle('message', (data) => void delivered.push(new TextDecoder().decode(data)));
    expect(current.tcpPort).not.toBe(stale.tcpPort);
    return { identity, stale, current };
  }
  let delivered: string[] = [];

  it('asks findPeer for a fresh record and delivers', async () => {
    delivered = [];
    finds = 0;
    const { stale, current } = await restartedPeer();
    const table = new Map([[stale.id.hex, stale]]);
    const a = track(createNode({ layers: [staleBook(table, new Map([[current.id.hex, current]]), true, 41_000), tcp({ host: HOST, reconnectDelayMs: 10 })] }));
    await a.start();
    await a.sendMessage(current.id, new TextEncoder().encode('after restart'));
    expect(await waitFor(() => delivered.length === 1)).toBe(true);
    expect(delivered).toEqual(['after restart']);
    const counters = a.counters()['tcp'] ?? {};
    expect(counters['redial-fresh-record']).toBe(1);
    expect(counters['dial-failures']).toBe(1);
    expect(finds).toBe(1);
    // The next connection starts at the address the refresh found, though discovery's
    // table still holds the stale one: no failed dial, no second lookup.
    await a.closeConnection(current.id);
    await a.sendMessage(current.id, new TextEncoder().encode('next connection'));
    expect(await waitFor(() => delivered.length === 2)).toBe(true);
    const after = a.counters()['tcp'] ?? {};
    expect(after['dial-failures']).toBe(1);
    expect(after['connections-out']).toBe(3); // the stale attempt, the fresh one, the next
    expect(finds).toBe(1);
  });

  it('without findPeer the send fails with CONNECT_FAILED, as before', async () => {
    delivered = [];
    const { stale } = await restartedPeer();
    const table = new Map([[stale.id.hex, stale]]);
    const a = track(createNode({ layers: [staleBook(table, new Map(), false, 41_001), tcp({ host: HOST, reconnectDelayMs: 10, dialAttempts: 3 })] }));
    await a.start();
    const error = await a.sendMessage(stale.id, new TextEncoder().encode('lost')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).code).toBe('CONNECT_FAILED');
    expect(delivered).toEqual([]);
    const counters = a.counters()['tcp'] ?? {};
    expect(counters['redial-fresh-record'] ?? 0).toBe(0);
    expect(counters['dial-failures']).toBe(3);
  });

  it('a findPeer that knows nothing newer changes nothing: CONNECT_FAILED after every attempt', async () => {
    delivered = [];
    finds = 0;
    const { stale } = await restartedPeer();
    const table = new Map([[stale.id.hex, stale]]);
    const a = track(createNode({ layers: [staleBook(table, new Map([[stale.id.hex, stale]]), true, 41_002), tcp({ host: HOST, reconnectDelayMs: 10, dialAttempts: 3 })] }));
    await a.start();
    const error = await a.sendMessage(stale.id, new TextEncoder().encode('lost')).catch((e: unknown) => e);
    expect((error as ConnectionError).code).toBe('CONNECT_FAILED');
    expect(finds).toBe(1); // asked once per dial, not once per attempt
    expect((a.counters()['tcp'] ?? {})['dial-failures']).toBe(3);
  });
});
