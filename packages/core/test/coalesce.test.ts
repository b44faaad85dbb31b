import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { coalesceWrites, COALESCE_BELOW_BYTES, COALESCE_MAX_BYTES } from '../src/index.js';

function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

async function collect(source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of source) out.push(chunk);
  return out;
}

describe('coalesceWrites', () => {
  it('gathers the small writes of a synchronous source into chunks of up to 64 KiB, in order, and stays synchronous', () => {
    const writes = Array.from({ length: 200 }, (_, i) => bytes(1000, i));
    const result = coalesceWrites(writes);
    expect(typeof (result as Partial<AsyncIterable<Uint8Array>>)[Symbol.asyncIterator]).toBe('undefined');
    const chunks = [...(result as Iterable<Uint8Array>)];
    expect(concat(chunks)).toEqual(concat(writes));
    // 200,000 bytes in 64 KiB chunks: 65 writes of 1000 fit in each.
    expect(chunks.map((c) => c.length)).toEqual([65_000, 65_000, 65_000, 5_000]);
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(COALESCE_MAX_BYTES);
    // After the first (grown as it filled), a bulk source's batches are allocated once, full size.
    expect(chunks.slice(1).map((c) => c.buffer.byteLength)).toEqual([COALESCE_MAX_BYTES, COALESCE_MAX_BYTES, COALESCE_MAX_BYTES]);
  });

  it('passes writes of 16 KiB and more through uncopied, after what was gathered before them', () => {
    const big = bytes(COALESCE_BELOW_BYTES, 7);
    const huge = bytes(1 << 20, 8);
    const writes = [bytes(10, 1), bytes(20, 2), big, bytes(30, 3), huge, bytes(0, 4), bytes(40, 5)];
    const chunks = [...(coalesceWrites(writes) as Iterable<Uint8Array>)];
    expect(chunks.length).toBe(5);
    expect(chunks[0]).toEqual(concat([writes[0]!, writes[1]!]));
    expect(chunks[1]).toBe(big);
    expect(chunks[2]).toEqual(writes[3]);
    expect(chunks[3]).toBe(huge);
    expect(chunks[4]).toEqual(writes[6]);
  });

  it('hands out fresh arrays: a gathered chunk is never overwritten by the next', () => {
    const writes = Array.from({ length: 10 }, (_, i) => bytes(10_000, i));
    const chunks = [...(coalesceWrites(writes, { max: 20_000 }) as Iterable<Uint8Array>)];
    expect(chunks.length).toBe(5);
    const buffers = new Set(chunks.map((c) => c.buffer));
    expect(buffers.size).toBe(5);
    expect(concat(chunks)).toEqual(concat(writes));
  });

  it('gathers what an asynchronous source has ready, in order', async () => {
    const writes = Array.from({ length: 300 }, (_, i) => bytes(512, i));
    const chunks = await collect(
      coalesceWrites(
        (async function* () {
          yield* writes;
        })(),
      ),
    );
    expect(concat(chunks)).toEqual(concat(writes));
    expect(chunks.length).toBeLessThanOrEqual(3);
  });

  it('never holds a write back waiting for more: an interactive source (write, wait for the answer) goes on', async () => {
    // Each write waits until the consumer has seen the previous one: gathering that held
    // a write back for more data would wait forever.
    let seen = 0;
    const source = (async function* () {
      for (let i = 0; i < 20; i++) {
        yield bytes(100, i);
        while (seen <= i) await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })();
    const chunks: Uint8Array[] = [];
    for await (const chunk of coalesceWrites(source, { below: 256 * 1024, max: 256 * 1024 })) {
      chunks.push(chunk);
      seen += chunk.length / 100;
    }
    expect(chunks.length).toBe(20);
    // Each write went out alone, in a small batch: not one of 256 KiB per 100 bytes.
    for (const chunk of chunks) expect(chunk.buffer.byteLength).toBeLessThanOrEqual(16 * 1024);
  });

  it('passes values that are not bytes through for the consumer to refuse, after what was gathered', () => {
    const odd = 'not bytes' as unknown as Uint8Array;
    const chunks = [...(coalesceWrites([bytes(5, 1), odd, bytes(5, 2)]) as Iterable<Uint8Array>)];
    expect(chunks).toEqual([bytes(5, 1), odd, bytes(5, 2)]);
  });

  it('ends the source when the consumer stops early (sync and async)', async () => {
    let syncEnded = false;
    const syncSource = (function* () {
      try {
        for (;;) yield bytes(COALESCE_BELOW_BYTES, 1);
      } finally {
        syncEnded = true;
      }
    })();
    for (const chunk of coalesceWrites(syncSource) as Iterable<Uint8Array>) {
      void chunk;
      break;
    }
    expect(syncEnded).toBe(true);
    let asyncEnded = false;
    const asyncSource = (async function* () {
      try {
        for (;;) yield bytes(COALESCE_BELOW_BYTES, 2);
      } finally {
        asyncEnded = true;
      }
    })();
    for await (const chunk of coalesceWrites(asyncSource)) {
      void chunk;
      break;
    }
    expect(asyncEnded).toBe(true);
  });

  it("passes the source's error on", async () => {
    const boom = new Error('disk on fire');
    const source = (async function* () {
      yield bytes(10, 1);
      throw boom;
    })();
    await expect(collect(coalesceWrites(source))).rejects.toBe(boom);
  });

  it('gives up a wait on a source that stalls once its signal aborts, and tells the source to end', async () => {
    let returned = false;
    let release: ((result: IteratorResult<Uint8Array>) => void) | undefined;
    let calls = 0;
    const stalled: AsyncIterableIterator<Uint8Array> = {
      [Symbol.asyncIterator]() {
        return this;
      },
      next: () => (calls++ === 0 ? Promise.resolve({ done: false, value: bytes(100, 1) }) : new Promise((resolve) => (release = resolve))),
      return: () => {
        returned = true;
        release?.({ done: true, value: undefined });
        return Promise.resolve({ done: true, value: undefined });
      },
    };
    const controller = new AbortController();
    const iterator = (coalesceWrites(stalled, { signal: controller.signal }) as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    // The gathered first chunk goes out once the next one is not there by the next turn.
    expect((await iterator.next()).value).toEqual(bytes(100, 1));
    const waiting = iterator.next();
    const reason = new Error('the stream must stop');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(returned).toBe(true);
    // Already aborted: the first wait rejects at once.
    const again = (coalesceWrites(stalled, { signal: controller.signal }) as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    await expect(again.next()).rejects.toBe(reason);
  });

  it('holds no chunk it handed on while its signal is alive (a long stream is not kept in memory)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const refs: WeakRef<Uint8Array>[] = [];
    const source = (async function* () {
      for (let i = 0; i < 40; i++) {
        const chunk = new Uint8Array(COALESCE_BELOW_BYTES * 4);
        refs.push(new WeakRef(chunk));
        yield chunk;
      }
      // Stays open: the consumer stops before the end, with the signal still live.
      await new Promise(() => undefined);
    })();
    const controller = new AbortController();
    const iterator = (coalesceWrites(source, { signal: controller.signal }) as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    for (let i = 0; i < 40; i++) expect((await iterator.next()).done).toBe(false);
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    const alive = refs.filter((ref) => ref.deref() !== undefined).length;
    expect(alive).toBeLessThanOrEqual(2);
    controller.abort(new Error('done'));
  });
});
