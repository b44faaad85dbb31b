import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AbortError, bytesEqual, createPeerRecord, Identity } from '@deccom/core';
import { ConnectionError, encodeHello, StreamError } from '../src/index.js';
import { CANCEL_TOO_MANY_STREAMS, encodeStreamCode, encodeStreamFrame, FRAME_STREAM_CANCEL, FRAME_STREAM_OPEN } from '../src/wire.js';
import { Book, HOSTS, makeNode, pattern, sleep, startIn, tcpCounters, waitFor, type TestNode } from './helpers.js';

const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

async function pair(host: string, options = {}, optionsB = options) {
  const book = new Book();
  const a = makeNode(book, host, options);
  const b = makeNode(book, host, optionsB);
  nodes.push(a, b);
  await startIn(book, a);
  await startIn(book, b);
  return { a, b };
}

/** A source that counts how much it produced. */
function counting(chunk: Uint8Array, count: number, produced: { bytes: number }): AsyncGenerator<Uint8Array> {
  return (async function* () {
    for (let i = 0; i < count; i++) {
      produced.bytes += chunk.byteLength;
      yield chunk;
    }
  })();
}

for (const host of HOSTS) {
  describe(`streams over ${host}`, () => {
    it('a slow receiver bounds what the sender produces (backpressure end to end)', async () => {
      const window = 256 * 1024;
      const { a, b } = await pair(host, {}, { streamWindowBytes: window });
      let iterator: AsyncIterator<Uint8Array> | undefined;
      b.handle('stream', (source) => void (iterator = source[Symbol.asyncIterator]()));
      const chunk = pattern(64 * 1024, 5);
      const produced = { bytes: 0 };
      const total = 200; // 12.5 MiB
      const sending = a.sendStream(b.id, counting(chunk, total, produced));
      expect(await waitFor(() => iterator !== undefined)).toBe(true);
      // Nobody reads: the sender stops after about one window.
      await sleep(300);
      const stalled = produced.bytes;
      await sleep(300);
      expect(produced.bytes).toBe(stalled);
      expect(stalled).toBeLessThanOrEqual(window + 2 * chunk.byteLength);
      // Read slowly: the sender follows, never more than a window ahead.
      let received = 0;
      let maxAhead = 0;
      const hash = createHash('sha256');
      for (;;) {
        const next = await iterator!.next();
        if (next.done) break;
        hash.update(next.value);
        received += next.value.byteLength;
        maxAhead = Math.max(maxAhead, produced.bytes - received);
        if (received % (1024 * 1024) < next.value.byteLength) await sleep(1);
      }
      await sending;
      expect(received).toBe(total * chunk.byteLength);
      expect(maxAhead).toBeLessThanOrEqual(window + 2 * chunk.byteLength);
      const expected = createHash('sha256');
      for (let i = 0; i < total; i++) expected.update(chunk);
      expect(hash.digest('hex')).toBe(expected.digest('hex'));
    });

    it('many unread streams together hold at most two windows: the connection stops reading, then catches up', async () => {
      const window = 128 * 1024;
      const { a, b } = await pair(host, {}, { streamWindowBytes: window });
      const readAll = async (iterator: AsyncIterator<Uint8Array>): Promise<number> => {
        let n = 0;
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) n += next.value.byteLength;
        return n;
      };
      const held: AsyncIterator<Uint8Array>[] = [];
      const reading: Promise<number>[] = [];
      let readNow = false;
      b.handle('stream', (source) => {
        const iterator = source[Symbol.asyncIterator]();
        if (readNow) reading.push(readAll(iterator));
        else held.push(iterator);
      });
      const chunk = pattern(32 * 1024, 8);
      const produced = [{ bytes: 0 }, { bytes: 0 }, { bytes: 0 }, { bytes: 0 }];
      const sends = Promise.all(produced.map((p) => a.sendStream(b.id, counting(chunk, 32, p))));
      sends.catch(() => undefined);
      expect(await waitFor(() => (tcpCounters(b)['reads-paused'] ?? 0) >= 1)).toBe(true);
      await sleep(300);
      // Each sender is held by its window, and b stopped reading past two windows.
      const total = produced.reduce((sum, p) => sum + p.bytes, 0);
      expect(total).toBeLessThanOrEqual(4 * (window + 2 * chunk.byteLength));
      expect(total).toBeLessThan(4 * 32 * chunk.byteLength);
      // Reading resumes everything.
      readNow = true;
      reading.push(...held.map(readAll));
      await sends;
      expect(await waitFor(() => reading.length === 4)).toBe(true);
      expect(await Promise.all(reading)).toEqual([1, 2, 3, 4].map(() => 32 * chunk.byteLength));
    });

    it('a consumer that stops reading cancels the stream at the sender', async () => {
      const { a, b } = await pair(host);
      b.handle('stream', (source) => {
        void (async () => {
          let n = 0;
          for await (const chunk of source) {
            n += chunk.byteLength;
            if (n > 100_000) break;
          }
        })();
      });
      const produced = { bytes: 0 };
      const error = await a.sendStream(b.id, counting(pattern(16 * 1024), 100_000, produced)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StreamError);
      expect((error as StreamError).code).toBe('STREAM_CANCELLED');
      expect(produced.bytes).toBeLessThan(100_000 * 16 * 1024);
      // The connection still works.
      let got = 0;
      b.handle('message', () => void got++);
      await a.sendMessage(b.id, Uint8Array.of(1));
      expect(await waitFor(() => got === 1)).toBe(true);
    });

    it('a receiver without a stream handler refuses streams, counted', async () => {
      const { a, b } = await pair(host);
      const error = await a.sendStream(b.id, counting(pattern(1024), 10_000, { bytes: 0 })).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StreamError);
      expect((error as StreamError).code).toBe('STREAM_REFUSED');
      expect(tcpCounters(b)['dropped.no-receiver']).toBe(1);
    });

    it('a failing source resets the stream: the sender rejects with its error, the receiver with STREAM_RESET', async () => {
      const { a, b } = await pair(host);
      const outcomes: unknown[] = [];
      b.handle('stream', (source) => {
        void (async () => {
          try {
            for await (const _chunk of source) void _chunk;
            outcomes.push('ended');
          } catch (error) {
            outcomes.push(error);
          }
        })();
      });
      const boom = new Error('disk on fire');
      const source = (async function* () {
        yield pattern(1000);
        await sleep(10);
        throw boom;
      })();
      await expect(a.sendStream(b.id, source)).rejects.toBe(boom);
      expect(await waitFor(() => outcomes.length === 1)).toBe(true);
      expect(outcomes[0]).toBeInstanceOf(StreamError);
      expect((outcomes[0] as StreamError).code).toBe('STREAM_RESET');
    });

    it('an aborted stream rejects with AbortError', async () => {
      const { a, b } = await pair(host, {}, { streamWindowBytes: 64 * 1024 });
      b.handle('stream', () => undefined); // never reads: the sender waits for credit
      const controller = new AbortController();
      const sending = a.sendStream(b.id, counting(pattern(16 * 1024), 1000, { bytes: 0 }), { signal: controller.signal });
      await sleep(100);
      controller.abort();
      await expect(sending).rejects.toBeInstanceOf(AbortError);
    });

    it("queues streams beyond the peer's maxIncomingStreams instead of opening them, and opens each when a slot frees", async () => {
      const { a, b } = await pair(host, { closeTimeoutMs: 200 }, { maxIncomingStreams: 2, closeTimeoutMs: 200 });
      const arrived: number[] = [];
      b.handle('stream', (source) => {
        void (async () => {
          for await (const chunk of source) arrived.push(chunk[0]!);
        })();
      });
      const gates: (() => void)[] = [];
      const held = (tag: number) =>
        (async function* () {
          yield Uint8Array.of(tag);
          await new Promise<void>((resolve) => gates.push(resolve));
        })();
      // Connected first: b's HELLO told a its limit.
      await a.sendMessage(b.id, Uint8Array.of(0));
      const first = a.sendStream(b.id, held(1));
      const second = a.sendStream(b.id, held(2));
      expect(await waitFor(() => arrived.length === 2)).toBe(true);
      expect(tcpCounters(a)['streams-queued']).toBeUndefined();
      let thirdDone = false;
      const third = a.sendStream(b.id, [Uint8Array.of(3)]).then(() => void (thirdDone = true));
      // Two are open at b: the third waits at a, it is not opened (and so not refused).
      await sleep(200);
      expect(arrived).toEqual([1, 2]);
      expect(thirdDone).toBe(false);
      expect(tcpCounters(a)['streams-queued']).toBe(1);
      gates.shift()!();
      await first;
      await third;
      expect(arrived).toEqual([1, 2, 3]);
      gates.shift()!();
      await second;
      expect(tcpCounters(b)['streams-refused']).toBeUndefined();
    });

    it('Promise.all of 40 streams to a peer that takes 4 at once: all arrive intact, never more than 4 open there', async () => {
      const { a, b } = await pair(host, {}, { maxIncomingStreams: 4 });
      const digests = new Map<number, string>();
      b.handle('stream', (source) => {
        void (async () => {
          const hash = createHash('sha256');
          let tag = -1;
          for await (const chunk of source) {
            if (tag < 0) tag = chunk[0]!;
            hash.update(chunk);
          }
          digests.set(tag, hash.digest('hex'));
        })();
      });
      const part = (i: number, k: number): Uint8Array => pattern(32 * 1024, i * 8 + k).fill(i, 0, 1);
      // A stream is open from its OPEN (before its source is first read) until its END
      // (after the source ended): sources being read at once bound the open streams.
      let reading = 0;
      let maxReading = 0;
      const source = (i: number) =>
        (async function* () {
          reading++;
          maxReading = Math.max(maxReading, reading);
          try {
            for (let k = 0; k < 8; k++) {
              await sleep(1);
              yield part(i, k);
            }
          } finally {
            reading--;
          }
        })();
      const expected = new Map<number, string>();
      for (let i = 0; i < 40; i++) {
        const hash = createHash('sha256');
        for (let k = 0; k < 8; k++) hash.update(part(i, k));
        expected.set(i, hash.digest('hex'));
      }
      await Promise.all(Array.from({ length: 40 }, (_, i) => a.sendStream(b.id, source(i))));
      expect(await waitFor(() => digests.size === 40)).toBe(true);
      expect(digests).toEqual(expected);
      expect(maxReading).toBe(4);
      expect(tcpCounters(a)['streams-queued']).toBeGreaterThan(0);
      expect(tcpCounters(b)['streams-refused']).toBeUndefined();
    });

    it('a stream waiting for a slot can be aborted, and stop() fails the ones still waiting', async () => {
      const { a, b } = await pair(host, { closeTimeoutMs: 200 }, { maxIncomingStreams: 1, closeTimeoutMs: 200 });
      const held: AsyncIterable<Uint8Array>[] = [];
      b.handle('stream', (source) => void held.push(source));
      const never = (async function* () {
        yield Uint8Array.of(1);
        await new Promise(() => undefined);
      })();
      // (A source that never yields again holds its sendStream until it does.)
      void a.sendStream(b.id, never).catch(() => undefined);
      expect(await waitFor(() => held.length === 1)).toBe(true);
      const controller = new AbortController();
      const aborted = a.sendStream(b.id, [Uint8Array.of(2)], { signal: controller.signal });
      const waiting = a.sendStream(b.id, [Uint8Array.of(3)]).catch((error: unknown) => error);
      await sleep(50);
      controller.abort();
      await expect(aborted).rejects.toBeInstanceOf(AbortError);
      expect(held.length).toBe(1);
      await a.stop();
      expect(await waiting).toMatchObject({ code: 'STOPPED' });
    });

    it('streams waiting for the first connection to a peer fail together when it cannot be made', async () => {
      const book = new Book();
      const a = makeNode(book, host, { dialAttempts: 1 });
      const b = makeNode(book, host);
      nodes.push(a, b);
      await startIn(book, a);
      await startIn(book, b);
      // b is gone: its record points at a port nobody listens on.
      await b.stop();
      const started = Date.now();
      const outcomes = await Promise.all([1, 2, 3].map((tag) => a.sendStream(b.id, [Uint8Array.of(tag)], { timeoutMs: 5_000 }).then(() => 'sent', (error: unknown) => error)));
      for (const outcome of outcomes) expect(outcome).toBeInstanceOf(ConnectionError);
      // One failed dial, not one per stream in turn.
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(tcpCounters(a)['dial-failures']).toBe(1);
      expect(tcpCounters(a)['streams-queued']).toBe(2);
    });

    it('a peer that does not keep to the limit it was told (an older version) gets its extra stream refused', async () => {
      const book = new Book();
      const b = makeNode(book, host, { maxIncomingStreams: 2, closeTimeoutMs: 200 });
      nodes.push(b);
      await startIn(book, b);
      b.handle('stream', () => undefined);
      const socket = await new Promise<Socket>((resolve, reject) => {
        const s = connect({ host, port: b.localPeer().tcpPort! }, () => resolve(s));
        s.on('error', reject);
      });
      const received: Buffer[] = [];
      socket.on('data', (data: Buffer) => void received.push(data));
      try {
        socket.write(encodeHello({ streamWindow: 1 << 20, maxMessageBytes: 1 << 20, peer: createPeerRecord(Identity.fromString('old-peer').public, { host, port: 1 }) }));
        for (const id of [1, 2, 3]) socket.write(encodeStreamFrame(FRAME_STREAM_OPEN, id));
        const refusal = Buffer.from(encodeStreamCode(FRAME_STREAM_CANCEL, 3, CANCEL_TOO_MANY_STREAMS));
        expect(await waitFor(() => Buffer.concat(received).includes(refusal))).toBe(true);
        const all = Buffer.concat(received);
        // b announced its limit in its own HELLO: flags 0, then the limit byte.
        expect(all[5 + 6]).toBe(0);
        expect(all[5 + 7]).toBe(2);
        expect(tcpCounters(b)['streams-refused']).toBe(1);
      } finally {
        socket.destroy();
      }
    });

    it('gathers small writes into larger chunks (each chunk costs a frame), bytes intact', async () => {
      const { a, b } = await pair(host);
      const received: Uint8Array[] = [];
      let ended = false;
      b.handle('stream', (source) => {
        void (async () => {
          for await (const chunk of source) received.push(chunk.slice());
          ended = true;
        })();
      });
      const writes = Array.from({ length: 2000 }, (_, i) => pattern(100, i));
      await a.sendStream(b.id, writes);
      expect(await waitFor(() => ended)).toBe(true);
      const all = Buffer.concat(received);
      expect(bytesEqual(all, Buffer.concat(writes))).toBe(true);
      // 200,000 bytes in 100-byte writes: four 64 KiB chunks, not 2,000 frames (the receiver
      // may see a chunk in pieces, as the socket's reads cut it).
      expect(tcpCounters(a)['stream-bytes-out']).toBe(200_000);
      expect(received.length).toBeLessThanOrEqual(50);
    });

    it('an interactive stream (each write waits for the reader to see the one before) does not stall', async () => {
      const { a, b } = await pair(host);
      const seen: number[] = [];
      let wake: (() => void) | undefined;
      b.handle('stream', (source) => {
        void (async () => {
          for await (const chunk of source) {
            seen.push(...chunk);
            wake?.();
          }
        })();
      });
      const ROUNDS = 20;
      await a.sendStream(
        b.id,
        (async function* () {
          for (let i = 0; i < ROUNDS; i++) {
            const read = new Promise<void>((resolve) => (wake = resolve));
            yield Uint8Array.of(i);
            await read;
          }
        })(),
        { timeoutMs: 10_000 },
      );
      expect(seen).toEqual(Array.from({ length: ROUNDS }, (_, i) => i));
    });

    it('multiplexes many streams and messages on one connection, all intact', async () => {
      const { a, b } = await pair(host);
      const streams = new Map<number, string>();
      const messages: Uint8Array[] = [];
      b.handle('message', (data) => void messages.push(data.slice()));
      b.handle('stream', (source) => {
        void (async () => {
          const parts: Uint8Array[] = [];
          for await (const chunk of source) parts.push(chunk.slice());
          const all = Buffer.concat(parts);
          streams.set(all[0]!, createHash('sha256').update(all).digest('hex'));
        })();
      });
      const expected = new Map<number, string>();
      const sends: Promise<void>[] = [];
      for (let s = 0; s < 10; s++) {
        const body = pattern(300_000 + s * 1000, s + 1);
        body[0] = s;
        expected.set(s, createHash('sha256').update(body).digest('hex'));
        const pieces = [body.subarray(0, 1000), body.subarray(1000, 150_000), body.subarray(150_000)];
        sends.push(a.sendStream(b.id, pieces));
        sends.push(a.sendMessage(b.id, pattern(5000, 100 + s)));
      }
      await Promise.all(sends);
      expect(await waitFor(() => streams.size === 10 && messages.length === 10)).toBe(true);
      expect(streams).toEqual(expected);
      messages.forEach((m, s) => expect(bytesEqual(m, pattern(5000, 100 + s))).toBe(true));
      expect(tcpCounters(a)['streams-out']).toBe(10);
      expect(tcpCounters(b)['streams-in']).toBe(10);
    });

    it('a stream cut by the peer stopping fails on both sides with typed errors', async () => {
      const { a, b } = await pair(host, { closeTimeoutMs: 200 });
      const outcomes: unknown[] = [];
      b.handle('stream', (source) => {
        void (async () => {
          try {
            for await (const _chunk of source) await sleep(5);
            outcomes.push('ended');
          } catch (error) {
            outcomes.push(error);
          }
        })();
      });
      const sending = a.sendStream(b.id, counting(pattern(64 * 1024), 10_000, { bytes: 0 })).then(
        () => 'sent',
        (e: unknown) => e,
      );
      await sleep(100);
      await b.stop();
      expect(await sending).toBeInstanceOf(ConnectionError);
      expect(await waitFor(() => outcomes.length === 1)).toBe(true);
      expect(outcomes[0]).toBeInstanceOf(Error);
    });
  });
}
