import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createPeerRecord, Identity, NotFoundError, TimeoutError, WireError, type NodeId } from '@deccom/core';
import { ConnectionError, encodeHello, FRAME_MESSAGE } from '../src/index.js';
import { Book, HOSTS, makeNode, pattern, sleep, startIn, tcpCounters, tcpStatus, waitFor, type TestNode } from './helpers.js';

const nodes: TestNode[] = [];
const sockets: Socket[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

function track(node: TestNode): TestNode {
  nodes.push(node);
  return node;
}

function rawConnect(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port }, () => resolve(socket));
    socket.on('error', reject);
    sockets.push(socket);
  });
}

const closed = (socket: Socket): Promise<void> => new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));

function rawHello(host: string, name = 'raw', maxMessageBytes = 1 << 20): Uint8Array {
  return encodeHello({ streamWindow: 1 << 20, maxMessageBytes, peer: createPeerRecord(Identity.fromString(name).public, { host, port: 1 }) });
}

for (const host of HOSTS) {
  describe(`connections over ${host}`, () => {
    it('connectionState: none, connecting while the dial runs, open, none again after the close on both sides', async () => {
      const book = new Book();
      const a = track(makeNode(book, host));
      const b = track(makeNode(book, host));
      await startIn(book, a);
      await startIn(book, b);
      expect(a.connectionState(b.id)).toBe('none');
      const sent = a.sendMessage(b.id, new Uint8Array(10));
      expect(a.connectionState(b.id)).toBe('connecting');
      await sent;
      expect(a.connectionState(b.id)).toBe('open');
      expect(await waitFor(() => b.connectionState(a.id) === 'open')).toBe(true);
      await a.closeConnection(b.id);
      expect(a.connectionState(b.id)).toBe('none');
      expect(await waitFor(() => b.connectionState(a.id) === 'none')).toBe(true);
      expect(() => a.connectionState('x' as unknown as NodeId)).toThrow(/'to' must be a NodeId/);
    });

    it('closeConnection({ abort: true }) closes at once: sends not yet written fail, nothing redials, the next send connects again', async () => {
      const book = new Book();
      const a = track(makeNode(book, host));
      const b = track(makeNode(book, host));
      await startIn(book, a);
      await startIn(book, b);
      const got: number[] = [];
      const closes: (Error | undefined)[] = [];
      b.handle('message', (data) => void got.push(data.length));
      b.on('connection-close', (_id, reason) => void closes.push(reason));
      await a.sendMessage(b.id, new Uint8Array(10));
      expect(await waitFor(() => got.length === 1)).toBe(true);
      await a.closeConnection(b.id, { abort: true });
      expect(a.connectionState(b.id)).toBe('none');
      expect(tcpCounters(a)['connections-aborted']).toBe(1);
      expect(tcpCounters(a)['connections-lost'] ?? 0).toBe(0);
      // The peer sees the connection end without the goodbye, as an error.
      expect(await waitFor(() => closes.length === 1)).toBe(true);
      expect(closes[0]).toBeInstanceOf(ConnectionError);
      // A send still waiting for its connection fails, and no dial follows.
      const pending = a.sendMessage(b.id, new Uint8Array(20));
      expect(a.connectionState(b.id)).toBe('connecting');
      await a.closeConnection(b.id, { abort: true });
      await expect(pending).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
      await sleep(50);
      expect(a.connectionState(b.id)).toBe('none');
      expect(got).toEqual([10]);
      // The pair still works.
      await a.sendMessage(b.id, new Uint8Array(30));
      expect(await waitFor(() => got.length === 2)).toBe(true);
      expect(got).toEqual([10, 30]);
      await expect(a.closeConnection(b.id, null as unknown as { abort: boolean })).rejects.toThrow(/options must be an object/);
    });

    it('simultaneous dials end with exactly one connection and lose no message', async () => {
      for (let round = 0; round < 8; round++) {
        const book = new Book();
        const a = track(makeNode(book, host));
        const b = track(makeNode(book, host));
        await startIn(book, a);
        await startIn(book, b);
        const atA: number[] = [];
        const atB: number[] = [];
        a.handle('message', (data) => void atA.push(new DataView(data.buffer, data.byteOffset).getUint32(0)));
        b.handle('message', (data) => void atB.push(new DataView(data.buffer, data.byteOffset).getUint32(0)));
        const frame = (i: number): Uint8Array => {
          const out = new Uint8Array(1000);
          new DataView(out.buffer).setUint32(0, i);
          return out;
        };
        // Both dial at the same moment, and keep sending through the switch.
        const sends: Promise<void>[] = [];
        for (let i = 0; i < 300; i++) {
          sends.push(a.sendMessage(b.id, frame(i)), b.sendMessage(a.id, frame(i)));
          if (i % 50 === 0) await sleep(1);
        }
        await Promise.all(sends);
        expect(await waitFor(() => atA.length === 300 && atB.length === 300)).toBe(true);
        expect(new Set(atA).size).toBe(300);
        expect(new Set(atB).size).toBe(300);
        expect(await waitFor(() => tcpStatus(a).connections === 1 && tcpStatus(b).connections === 1)).toBe(true);
        // Still exactly one after a while, and it works both ways.
        await sleep(50);
        expect(tcpStatus(a).connections).toBe(1);
        expect(tcpStatus(b).connections).toBe(1);
        await a.sendMessage(b.id, frame(1000));
        await b.sendMessage(a.id, frame(1000));
        expect(await waitFor(() => atA.length === 301 && atB.length === 301)).toBe(true);
        await Promise.all([a.stop(), b.stop()]);
      }
    });

    it('the lower node id keeps its own dial when both open at once', async () => {
      let duplicates = 0;
      for (let round = 0; round < 5; round++) {
        const book = new Book();
        const a = track(makeNode(book, host));
        const b = track(makeNode(book, host));
        await startIn(book, a);
        await startIn(book, b);
        await Promise.all([a.openConnection(b.id), b.openConnection(a.id)]);
        expect(await waitFor(() => tcpStatus(a).connections === 1 && tcpStatus(b).connections === 1)).toBe(true);
        duplicates += (tcpCounters(a)['duplicate-connections'] ?? 0) + (tcpCounters(b)['duplicate-connections'] ?? 0);
        // The surviving connection was dialed by the lower id: it shows as outbound there.
        const lower = a.id.hex < b.id.hex ? a : b;
        const higher = lower === a ? b : a;
        expect(tcpStatus(lower).outbound).toBe(1);
        expect(tcpStatus(higher).outbound).toBe(0);
        await Promise.all([a.stop(), b.stop()]);
      }
      // At least one round really raced (both sides saw two connections).
      expect(duplicates).toBeGreaterThan(0);
    });

    it('stop delivers every message already accepted', async () => {
      const book = new Book();
      const a = track(makeNode(book, host));
      const b = track(makeNode(book, host));
      await startIn(book, a);
      await startIn(book, b);
      const received = new Set<number>();
      b.handle('message', (data) => void received.add(new DataView(data.buffer, data.byteOffset).getUint32(0)));
      await a.openConnection(b.id);
      const accepted = new Set<number>();
      const sends: Promise<void>[] = [];
      for (let i = 0; i < 2000; i++) {
        const data = new Uint8Array(10_000);
        new DataView(data.buffer).setUint32(0, i);
        sends.push(a.sendMessage(b.id, data).then(() => void accepted.add(i)));
      }
      await a.stop();
      await Promise.allSettled(sends);
      expect(accepted.size).toBeGreaterThan(0);
      expect(await waitFor(() => received.size >= accepted.size)).toBe(true);
      for (const i of accepted) expect(received.has(i)).toBe(true);
    });

    it('closeConnection flushes, then both sides see connection-close without an error', async () => {
      const book = new Book();
      const a = track(makeNode(book, host));
      const b = track(makeNode(book, host));
      await startIn(book, a);
      await startIn(book, b);
      const events: string[] = [];
      a.on('connection-open', (id) => void events.push(`a open ${id.equals(b.id)}`));
      b.on('connection-open', (id) => void events.push(`b open ${id.equals(a.id)}`));
      a.on('connection-close', (id, reason) => void events.push(`a close ${id.equals(b.id)} ${reason === undefined}`));
      b.on('connection-close', (id, reason) => void events.push(`b close ${id.equals(a.id)} ${reason === undefined}`));
      let count = 0;
      b.handle('message', () => void count++);
      for (let i = 0; i < 100; i++) void a.sendMessage(b.id, pattern(50_000, i));
      await a.openConnection(b.id);
      await a.closeConnection(b.id);
      expect(count).toBe(100);
      expect(await waitFor(() => events.length === 4)).toBe(true);
      expect(events.sort()).toEqual(['a close true true', 'a open true', 'b close true true', 'b open true']);
      expect(tcpStatus(a).connections).toBe(0);
      // A later send opens a new connection.
      await a.sendMessage(b.id, Uint8Array.of(1));
      expect(await waitFor(() => count === 101)).toBe(true);
    });

    it('a peer sending garbage is disconnected with a typed error and counted; others are unaffected', async () => {
      const book = new Book();
      const a = track(makeNode(book, host));
      const b = track(makeNode(book, host));
      await startIn(book, a);
      await startIn(book, b);
      let count = 0;
      b.handle('message', () => void count++);
      await a.sendMessage(b.id, Uint8Array.of(1));
      const garbage = [
        pattern(4096, 99),
        Uint8Array.of(0x47, 0x45, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54, 0x54, 0x50), // "GET / HTTP"
        Uint8Array.of(0x02, 0, 0, 0, 1, 0), // a MESSAGE before any HELLO
        Uint8Array.of(0x01, 0xff, 0xff, 0xff, 0xff), // a HELLO claiming 4 GiB
      ];
      for (const bytes of garbage) {
        const raw = await rawConnect(host, b.localTcpPort()!);
        raw.on('error', () => undefined);
        raw.write(bytes);
        await closed(raw);
        await a.sendMessage(b.id, Uint8Array.of(2));
      }
      expect(await waitFor(() => (tcpCounters(b)['protocol-errors'] ?? 0) === garbage.length)).toBe(true);
      expect(tcpCounters(b)['dropped']).toBeGreaterThanOrEqual(garbage.length);
      expect(await waitFor(() => count === 1 + garbage.length)).toBe(true);
      expect(tcpStatus(b).connections).toBe(1);
    });

    it('a peer announcing an oversized message is disconnected with WIRE_OVERSIZED', async () => {
      const book = new Book();
      const b = track(makeNode(book, host, { maxMessageBytes: 4096 }));
      await startIn(book, b);
      const reasons: (Error | undefined)[] = [];
      b.on('connection-close', (_id, reason) => void reasons.push(reason));
      let count = 0;
      b.handle('message', () => void count++);
      const raw = await rawConnect(host, b.localTcpPort()!);
      raw.on('error', () => undefined);
      raw.write(rawHello(host));
      const ok = new Uint8Array(5 + 10);
      ok[0] = FRAME_MESSAGE;
      new DataView(ok.buffer).setUint32(1, 10);
      raw.write(ok);
      const oversized = Uint8Array.of(FRAME_MESSAGE, 0, 0, 0x10, 0x01); // 4097 bytes announced
      raw.write(oversized);
      await closed(raw);
      expect(count).toBe(1);
      expect(await waitFor(() => reasons.length === 1)).toBe(true);
      expect(reasons[0]).toBeInstanceOf(WireError);
      expect((reasons[0] as WireError).code).toBe('WIRE_OVERSIZED');
      expect(tcpCounters(b)['dropped.oversized']).toBe(1);
    });

    it('refuses connections beyond maxConnections, counted', async () => {
      const book = new Book();
      const b = track(makeNode(book, host, { maxConnections: 2 }));
      await startIn(book, b);
      const dialers = [0, 1, 2].map(() => track(makeNode(book, host, { dialAttempts: 1 })));
      for (const d of dialers) await startIn(book, d);
      await dialers[0]!.openConnection(b.id);
      await dialers[1]!.openConnection(b.id);
      const third = await dialers[2]!.openConnection(b.id).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(third).toBeInstanceOf(ConnectionError);
      expect((third as ConnectionError).code).toBe('CONNECT_FAILED');
      expect(tcpCounters(b)['refused.connection-limit']).toBeGreaterThanOrEqual(1);
      expect(tcpStatus(b).connections).toBe(2);
    });

    it('a connection that never introduces itself is closed after connectTimeoutMs', async () => {
      const book = new Book();
      const b = track(makeNode(book, host, { connectTimeoutMs: 200 }));
      await startIn(book, b);
      const raw = await rawConnect(host, b.localTcpPort()!);
      raw.on('error', () => undefined);
      await closed(raw);
      expect(tcpCounters(b)['handshake-timeouts']).toBe(1);
      expect(await waitFor(() => tcpStatus(b).connections === 0)).toBe(true);
    });

    it('refuses a peer that introduces itself as another node', async () => {
      const book = new Book();
      const a = track(makeNode(book, host));
      const b = track(makeNode(book, host));
      await startIn(book, a);
      await startIn(book, b);
      const ghost = Identity.generate();
      book.records.set(ghost.id.hex, createPeerRecord(ghost.public, b.localPeer().address, b.localTcpPort()));
      const error = await a.sendMessage(ghost.id, Uint8Array.of(1)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as ConnectionError).code).toBe('IDENTITY_MISMATCH');
      expect(tcpCounters(a)['identity-mismatches']).toBe(1);
    });

    it('an early message leaves with the HELLO, before the peer introduced itself, and resolves with the introduction', async () => {
      const book = new Book();
      const a = track(makeNode(book, host));
      await startIn(book, a);
      const peer = Identity.fromString('raw');
      const hello = rawHello(host, 'raw');
      const message = pattern(40, 7);
      let received = new Uint8Array(0);
      let server!: Socket;
      const gotData = new Promise<void>((resolve) => {
        const listener = createServer((socket) => {
          server = socket;
          sockets.push(socket);
          socket.on('data', (data: Buffer) => {
            const joined = new Uint8Array(received.length + data.length);
            joined.set(received);
            joined.set(data, received.length);
            received = joined;
            resolve();
          });
        });
        servers.push(listener);
        listener.listen(0, host, () => {
          book.records.set(peer.id.hex, createPeerRecord(peer.public, { host, port: 1 }, (listener.address() as { port: number }).port));
        });
      });
      await waitFor(() => book.records.has(peer.id.hex));
      let settled = false;
      const sent = a.sendMessage(peer.id, message, { early: true }).then(() => (settled = true));
      await gotData;
      // Our HELLO, then the message frame, with nothing from the peer yet.
      const helloIn = (): number => (received.length >= 5 ? 5 + new DataView(received.buffer).getUint32(1) : Infinity);
      expect(await waitFor(() => received.length >= helloIn() + 5 + message.length)).toBe(true);
      const helloLength = 5 + new DataView(received.buffer).getUint32(1);
      expect(received[0]).toBe(0x01);
      expect(received[helloLength]).toBe(FRAME_MESSAGE);
      expect(new DataView(received.buffer).getUint32(helloLength + 1)).toBe(message.length);
      expect(received.subarray(helloLength + 5, helloLength + 5 + message.length)).toEqual(message);
      await sleep(20);
      expect(settled).toBe(false); // settles with the introduction, not with the write
      server.write(hello);
      await sent;
      expect(settled).toBe(true);
      expect(tcpCounters(a)['connections-out']).toBe(1);
    });

    it('an early message to a node that introduces itself as another fails with IDENTITY_MISMATCH and is not sent again', async () => {
      const book = new Book();
      const a = track(makeNode(book, host));
      const b = track(makeNode(book, host));
      await startIn(book, a);
      await startIn(book, b);
      const seen: Uint8Array[] = [];
      b.handle('message', (data) => seen.push(data));
      const ghost = Identity.generate();
      book.records.set(ghost.id.hex, createPeerRecord(ghost.public, b.localPeer().address, b.localTcpPort()));
      const error = await a.sendMessage(ghost.id, Uint8Array.of(9), { early: true }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as ConnectionError).code).toBe('IDENTITY_MISMATCH');
      expect(tcpCounters(a)['connections-out']).toBe(1);
      // It left before the peer introduced itself: the node that answered got it (hence
      // `early` only for messages any node may see).
      expect(await waitFor(() => seen.length === 1)).toBe(true);
    });

    it('early messages keep their order with messages sent after them, and a large one waits for the introduction', async () => {
      const book = new Book();
      const a = track(makeNode(book, host));
      const b = track(makeNode(book, host));
      await startIn(book, a);
      await startIn(book, b);
      const seen: number[] = [];
      b.handle('message', (data) => seen.push(data[0]!));
      const large = new Uint8Array(4096).fill(3);
      await Promise.all([
        a.sendMessage(b.id, Uint8Array.of(1), { early: true }),
        a.sendMessage(b.id, Uint8Array.of(2), { early: true }),
        a.sendMessage(b.id, large, { early: true }),
        a.sendMessage(b.id, Uint8Array.of(4)),
        a.sendMessage(b.id, Uint8Array.of(5), { early: true }),
      ]);
      expect(await waitFor(() => seen.length === 5)).toBe(true);
      expect(seen).toEqual([1, 2, 3, 4, 5]);
      expect(tcpCounters(a)['connections-out']).toBe(1);
    });

    it('fails fast for unknown peers and peers without a TCP port', async () => {
      const book = new Book();
      const a = track(makeNode(book, host));
      await startIn(book, a);
      const stranger = Identity.generate();
      await expect(a.sendMessage(stranger.id, Uint8Array.of(1))).rejects.toBeInstanceOf(NotFoundError);
      book.records.set(stranger.id.hex, createPeerRecord(stranger.public, { host, port: 9 }));
      await expect(a.sendMessage(stranger.id, Uint8Array.of(1))).rejects.toMatchObject({ code: 'NO_TCP_PORT' });
    });

    it('reconnects with backoff when a kept connection is lost, once the peer returns', async () => {
      const book = new Book();
      const a = track(makeNode(book, host, { reconnectDelayMs: 20, maxReconnectDelayMs: 200 }));
      const identity = Identity.generate();
      const b1 = track(makeNode(book, host, {}, identity));
      await startIn(book, a);
      await startIn(book, b1);
      const port = b1.localTcpPort()!;
      const opened: NodeId[] = [];
      const lost: (Error | undefined)[] = [];
      a.on('connection-open', (id) => void opened.push(id));
      a.on('connection-close', (_id, reason) => void lost.push(reason));
      await a.openConnection(b1.id);
      await b1.stop();
      expect(await waitFor(() => lost.length === 1)).toBe(true);
      await sleep(300); // a few refused attempts with backoff
      expect(tcpCounters(a)['dial-failures'] ?? 0).toBeGreaterThanOrEqual(1);
      const b2 = track(makeNode(book, host, { port }, identity));
      let got = 0;
      b2.handle('message', () => void got++);
      await startIn(book, b2);
      expect(await waitFor(() => opened.length === 2)).toBe(true);
      await a.sendMessage(b2.id, Uint8Array.of(1));
      expect(await waitFor(() => got === 1)).toBe(true);
    });

    it('alwaysConnect connects to every peer discovery reports', async () => {
      const book = new Book();
      const a = track(makeNode(book, host, { alwaysConnect: true }));
      const b = track(makeNode(book, host));
      const c = track(makeNode(book, host));
      await startIn(book, a);
      await startIn(book, b);
      await startIn(book, c);
      const opened = new Set<string>();
      a.on('connection-open', (id) => void opened.add(id.hex));
      a.addPeer(b.localPeer());
      a.addPeer(c.localPeer());
      expect(await waitFor(() => opened.size === 2)).toBe(true);
      expect(opened.has(b.id.hex) && opened.has(c.id.hex)).toBe(true);
    });

    it('waits, then times out, when the peer does not read (pending-bytes limit)', async () => {
      const book = new Book();
      const a = track(makeNode(book, host, { maxPendingBytesPerPeer: 1 << 20 }));
      await startIn(book, a);
      // A peer that introduces itself and then never reads.
      const stuck = Identity.fromString('stuck');
      const server = createServer((socket) => {
        sockets.push(socket);
        socket.on('error', () => undefined);
        socket.write(encodeHello({ streamWindow: 1 << 20, maxMessageBytes: 1 << 30, peer: createPeerRecord(stuck.public, { host, port: 1 }) }));
        socket.pause();
      });
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
      const port = (server.address() as { port: number }).port;
      book.records.set(stuck.id.hex, createPeerRecord(stuck.public, { host, port: 1 }, port));
      const message = new Uint8Array(64 * 1024);
      let accepted = 0;
      let failure: unknown;
      for (let i = 0; i < 2000 && failure === undefined; i++) {
        await a.sendMessage(stuck.id, message, { timeoutMs: 300 }).then(
          () => void accepted++,
          (error: unknown) => void (failure = error),
        );
        expect(tcpStatus(a).pendingBytes).toBeLessThanOrEqual((1 << 20) + message.byteLength + 5);
      }
      expect(failure).toBeInstanceOf(TimeoutError);
      // The kernel buffers take some; the layer holds at most the limit.
      expect(accepted).toBeLessThan(2000);
    });

    it('a large message the peer never reads times out and closes the connection', async () => {
      const book = new Book();
      const a = track(makeNode(book, host));
      await startIn(book, a);
      const stuck = Identity.fromString('stuck-large');
      const server = createServer((socket) => {
        sockets.push(socket);
        socket.on('error', () => undefined);
        socket.write(encodeHello({ streamWindow: 1 << 20, maxMessageBytes: 1 << 30, peer: createPeerRecord(stuck.public, { host, port: 1 }) }));
        socket.pause();
      });
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
      book.records.set(stuck.id.hex, createPeerRecord(stuck.public, { host, port: 1 }, (server.address() as { port: number }).port));
      const lost: (Error | undefined)[] = [];
      a.on('connection-close', (_id, reason) => void lost.push(reason));
      const big = new Uint8Array(15 * 1024 * 1024);
      await expect(a.sendMessage(stuck.id, big, { timeoutMs: 500 })).rejects.toBeInstanceOf(TimeoutError);
      expect(await waitFor(() => lost.length === 1)).toBe(true);
      expect(tcpCounters(a)['send-timeouts']).toBe(1);
    });
  });
}

describe('adoptTcpSocket', () => {
  it('turns a socket connected elsewhere (e.g. a simultaneous open) into a connection like any other', async () => {
    const host = '127.0.0.1';
    const book = new Book();
    const a = track(makeNode(book, host));
    const b = track(makeNode(book, host));
    await startIn(book, a);
    await startIn(book, b);
    // Stand-in for a hole-punched socket pair: neither node's listener is involved.
    const server = createServer();
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    const outgoing = await rawConnect(host, (server.address() as { port: number }).port);
    const incoming = await accepted;
    const [idAtA, idAtB] = await Promise.all([a.adoptTcpSocket(outgoing, { expected: b.id }), b.adoptTcpSocket(incoming)]);
    expect(idAtA.equals(b.id)).toBe(true);
    expect(idAtB.equals(a.id)).toBe(true);
    let got = 0;
    b.handle('message', () => void got++);
    await a.sendMessage(b.id, Uint8Array.of(1));
    expect(await waitFor(() => got === 1)).toBe(true);
    // It is the connection both use: nothing new was dialed.
    expect(tcpCounters(a)['connections-out'] ?? 0).toBe(0);
    expect(tcpStatus(a).connections).toBe(1);
    expect(tcpStatus(b).connections).toBe(1);
  });
});
