import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { bytesEqual, InvalidArgumentError, type NodeId } from '@deccom/core';
import { MessageTooLargeError } from '../src/index.js';
import { Book, HOSTS, makeNode, pattern, sleep, startIn, tcpStatus, waitFor, type TestNode } from './helpers.js';

const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

async function pair(host: string, options = {}) {
  const book = new Book();
  const a = makeNode(book, host, options);
  const b = makeNode(book, host, options);
  nodes.push(a, b);
  await startIn(book, a);
  await startIn(book, b);
  return { book, a, b };
}

for (const host of HOSTS) {
  describe(`tcp over ${host}`, () => {
    it('announces its TCP port in the peer record', async () => {
      const { a } = await pair(host);
      expect(a.localTcpPort()).toBeGreaterThan(0);
      expect(a.localPeer().tcpPort).toBe(a.localTcpPort());
    });

    it('delivers messages intact and in order, with the sender id and address', async () => {
      const { a, b } = await pair(host);
      const got: { data: Uint8Array; from: NodeId; host: string }[] = [];
      b.handle('message', (data, from, address) => void got.push({ data: data.slice(), from, host: address.host }));
      const payloads = [Uint8Array.of(1, 2, 3), new Uint8Array(0), pattern(70_000), pattern(3_000_000, 7)];
      for (let i = 0; i < 200; i++) payloads.push(Uint8Array.of(i));
      await Promise.all(payloads.map((p) => a.sendMessage(b.id, p)));
      expect(await waitFor(() => got.length === payloads.length)).toBe(true);
      payloads.forEach((p, i) => expect(bytesEqual(got[i]!.data, p)).toBe(true));
      expect(got.every((g) => g.from.equals(a.id) && g.host === host)).toBe(true);
    });

    it('streams bytes intact', async () => {
      const { a, b } = await pair(host);
      const hashes: string[] = [];
      b.handle('stream', (source) => {
        void (async () => {
          const hash = createHash('sha256');
          for await (const chunk of source) hash.update(chunk);
          hashes.push(hash.digest('hex'));
        })();
      });
      const chunks = [pattern(10), pattern(1_000_000, 2), pattern(5_000_000, 3), pattern(1, 4)];
      const expected = createHash('sha256');
      for (const c of chunks) expected.update(c);
      await a.sendStream(b.id, chunks);
      expect(await waitFor(() => hashes.length === 1)).toBe(true);
      expect(hashes[0]).toBe(expected.digest('hex'));
    });

    it('rejects a message over the maximum before sending', async () => {
      const { a, b } = await pair(host, { maxMessageBytes: 1000 });
      await expect(a.sendMessage(b.id, new Uint8Array(1001))).rejects.toBeInstanceOf(MessageTooLargeError);
    });
  });
}

function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

describe('lifecycle', () => {
  it('50 start / connect / send / stop cycles leave no socket, server or timer behind', async () => {
    const book = new Book();
    const b = makeNode(book, '127.0.0.1');
    nodes.push(b);
    await startIn(book, b);
    let got = 0;
    b.handle('message', () => void got++);
    const a = makeNode(book, '127.0.0.1');
    nodes.push(a);
    await startIn(book, a);
    await a.sendMessage(b.id, Uint8Array.of(0));
    await a.stop();
    await waitFor(() => got === 1 && tcpStatus(b).connections === 0);
    await sleep(100);
    const before = activeResources();
    for (let i = 1; i <= 50; i++) {
      await startIn(book, a);
      await a.sendMessage(b.id, Uint8Array.of(i));
      const streaming = a.sendStream(b.id, [pattern(1000, i)]).catch(() => undefined);
      await a.stop();
      await streaming;
    }
    expect(await waitFor(() => got === 51)).toBe(true);
    await waitFor(() => JSON.stringify(activeResources()) === JSON.stringify(before), 5000);
    expect(activeResources()).toEqual(before);
  });

  it('rejects calls before start and after stop with StateError', async () => {
    const book = new Book();
    const a = makeNode(book, '127.0.0.1');
    const b = makeNode(book, '127.0.0.1');
    nodes.push(a, b);
    await expect(a.sendMessage(b.id, Uint8Array.of(1))).rejects.toMatchObject({ code: 'NOT_STARTED' });
    await startIn(book, a);
    await startIn(book, b);
    await a.stop();
    await expect(a.sendMessage(b.id, Uint8Array.of(1))).rejects.toMatchObject({ code: 'STOPPED' });
    await expect(a.openConnection(b.id)).rejects.toMatchObject({ code: 'STOPPED' });
    expect(a.localTcpPort()).toBeUndefined();
  });

  it("refuses a call's timeoutMs that no timer can wait (NaN, negative, over 2^31 - 1 ms) with InvalidArgumentError", async () => {
    const book = new Book();
    const a = makeNode(book, '127.0.0.1');
    const b = makeNode(book, '127.0.0.1');
    nodes.push(a, b);
    await startIn(book, a);
    await startIn(book, b);
    for (const timeoutMs of [Number.NaN, -1, 2 ** 31]) {
      await expect(a.sendMessage(b.id, Uint8Array.of(1), { timeoutMs })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(a.sendStream(b.id, [Uint8Array.of(1)], { timeoutMs })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(a.openConnection(b.id, { timeoutMs })).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    let got = 0;
    b.handle('message', () => void got++);
    await a.sendMessage(b.id, Uint8Array.of(1), { timeoutMs: 10_000 });
    expect(await waitFor(() => got === 1)).toBe(true);
  });

  it('checks its options', () => {
    expect(() => makeNode(new Book(), 'localhost')).toThrow(InvalidArgumentError);
    expect(() => makeNode(new Book(), '127.0.0.1', { port: 70_000 })).toThrow(RangeError);
    expect(() => makeNode(new Book(), '127.0.0.1', { maxMessageBytes: 2 ** 32 })).toThrow(RangeError);
    expect(() => makeNode(new Book(), '127.0.0.1', { streamWindowBytes: 10 })).toThrow(RangeError);
  });
});
